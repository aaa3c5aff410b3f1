"""Actor-critic network for the goal gridworld (flax.linen)."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from .env import GLYPH


class ActorCritic(nn.Module):
    """Policy logits and value from one observation batch.

    Glyph observations (..., G, G, 5, 5, C), the image stored tile-major, first pass a per-cell encoder:
    each 5x5xC glyph is mapped by one shared dense layer (a stride-5 convolution; the tile-major layout
    makes it a plain matmul with no transpose), so the MLP sees G*G cell embeddings. Symbolic
    observations (..., G, G, C) pass the same per-cell layer, so the ablation changes the input encoding
    and nothing else. (Flattening the 12 symbolic channels per cell straight into the MLP made its first
    layer 1.5x wider than glyph's and symbolic training slower than glyph training.)

    ``tiles`` given: ``obs`` holds the environment's cell codes (..., G*G) (`GoalGridEnv.cell_codes`) and
    ``tiles`` its per-code cell observations (`GoalGridEnv.tiles`). The glyph encoder then runs once per
    distinct tile (100 of them) and its outputs are gathered per cell: the same function of the same
    pixels, with the same gradients, as encoding the rendered observation, at a small part of the cost.
    Returns logits (..., 4) and value (...,).
    """

    obs_mode: str = "glyph"
    hidden: Sequence[int] = (64, 64)
    cell_features: int = 8
    n_actions: int = 4

    @nn.compact
    def __call__(self, obs, tiles=None):
        if tiles is not None:
            lead = obs.shape[:-1]
            t = tiles.astype(jnp.float32).reshape(tiles.shape[0], -1)
            t = nn.relu(nn.Dense(self.cell_features, name="cell")(t))       # (codes, cell_features)
            x = t[obs.astype(jnp.int32)]
        elif self.obs_mode == "glyph":
            x = obs.astype(jnp.float32)
            lead = x.shape[:-5]
            g = x.shape[-5]
            x = x.reshape(*lead, g * g, GLYPH * GLYPH * x.shape[-1])
            x = nn.relu(nn.Dense(self.cell_features, name="cell")(x))
        else:
            x = obs.astype(jnp.float32)
            lead = x.shape[:-3]
            x = x.reshape(*lead, x.shape[-3] * x.shape[-2], x.shape[-1])
            x = nn.relu(nn.Dense(self.cell_features, name="cell")(x))
        x = x.reshape(*lead, -1)
        a = v = x
        for i, n in enumerate(self.hidden):
            if i == 0:
                # The actor's and the critic's first layers read the same wide input: one matmul with
                # their kernels side by side (the same two layers) is cheaper than two on CPU.
                h = nn.tanh(nn.Dense(2 * n, name="actor_critic0")(x))
                a, v = h[..., :n], h[..., n:]
            else:
                a = nn.tanh(nn.Dense(n, name=f"actor{i}")(a))
                v = nn.tanh(nn.Dense(n, name=f"critic{i}")(v))
        logits = nn.Dense(self.n_actions, kernel_init=nn.initializers.orthogonal(0.01), name="pi")(a)
        value = nn.Dense(1, kernel_init=nn.initializers.orthogonal(1.0), name="v")(v)[..., 0]
        return logits, value
