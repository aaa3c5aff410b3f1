"""Actor-critic network for the goal gridworld (flax.linen)."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from .env import GLYPH


class ActorCritic(nn.Module):
    """Policy logits and value from one observation batch.

    Glyph observations (..., 5G, 5G, C) first pass a per-cell encoder: each 5x5xC glyph is cut out and
    mapped by one shared dense layer (a stride-5 convolution written as a reshape, which is faster on
    CPU), so the MLP sees G*G cell embeddings. Symbolic observations (..., G, G, C) are flattened.
    Returns logits (..., 4) and value (...,).
    """

    obs_mode: str = "glyph"
    hidden: Sequence[int] = (64, 64)
    cell_features: int = 8
    n_actions: int = 4

    @nn.compact
    def __call__(self, obs):
        x = obs.astype(jnp.float32)
        lead = x.shape[:-3]
        if self.obs_mode == "glyph":
            h, w, c = x.shape[-3:]
            g = h // GLYPH
            x = x.reshape(*lead, g, GLYPH, g, GLYPH, c)
            x = jnp.moveaxis(x, -3, -4).reshape(*lead, g * g, GLYPH * GLYPH * c)
            x = nn.relu(nn.Dense(self.cell_features, name="cell")(x))
        x = x.reshape(*lead, -1)
        a = x
        for i, n in enumerate(self.hidden):
            a = nn.tanh(nn.Dense(n, name=f"actor{i}")(a))
        logits = nn.Dense(self.n_actions, kernel_init=nn.initializers.orthogonal(0.01), name="pi")(a)
        v = x
        for i, n in enumerate(self.hidden):
            v = nn.tanh(nn.Dense(n, name=f"critic{i}")(v))
        value = nn.Dense(1, kernel_init=nn.initializers.orthogonal(1.0), name="v")(v)[..., 0]
        return logits, value
