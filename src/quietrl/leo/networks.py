"""Networks shared by every learner: one LayerNorm MLP trunk, a K x A LEO head, a UVFA head.

The trunk is the same code for LEO and the goal-conditioned baselines, so a timing or learning
difference comes from the head and the update, not from the body.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

# Named trunk presets: the CPU default and the paper's width.
TRUNK_PRESETS: dict[str, tuple[int, ...]] = {
    "64x2": (64, 64),  # tests and smoke runs
    "256x2": (256, 256),
    "1024x4": (1024, 1024, 1024, 1024),
}


class Trunk(nn.Module):
    """n x [Dense (orthogonal sqrt 2) -> LayerNorm -> ReLU]: (B, F) -> (B, hidden[-1]).

    `layer_norm=False` drops the LayerNorms: the authors' PPO networks have none.
    """

    hidden: Sequence[int] = (256, 256)
    layer_norm: bool = True

    @nn.compact
    def __call__(self, x):
        for width in self.hidden:
            x = nn.Dense(width, kernel_init=nn.initializers.orthogonal(np.sqrt(2.0)))(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = nn.relu(x)
        return x


class LEONetwork(nn.Module):
    """Observation only -> sigmoid Q table for every (goal, action): (B, F) -> (B, K, A).

    Sigmoid because returns are in [0, 1]: reward 1 and the goal terminates.
    """

    num_goals: int
    num_actions: int
    hidden: Sequence[int] = (256, 256)

    @nn.compact
    def __call__(self, obs):
        h = Trunk(self.hidden)(obs)
        out = nn.Dense(
            self.num_goals * self.num_actions,
            kernel_init=nn.initializers.orthogonal(1.0),
            bias_init=nn.initializers.zeros,
        )(h)
        return jax.nn.sigmoid(out.reshape(obs.shape[:-1] + (self.num_goals, self.num_actions)))


class UVFANetwork(nn.Module):
    """[observation, goal input] -> sigmoid Q over actions: (B, F), (B, G) -> (B, A)."""

    num_actions: int
    hidden: Sequence[int] = (256, 256)

    @nn.compact
    def __call__(self, obs, goal):
        h = Trunk(self.hidden)(jnp.concatenate([obs, goal], axis=-1))
        out = nn.Dense(
            self.num_actions,
            kernel_init=nn.initializers.orthogonal(1.0),
            bias_init=nn.initializers.zeros,
        )(h)
        return jax.nn.sigmoid(out)


class ActorCritic(nn.Module):
    """Goal-conditioned PPO network: [obs, goal] -> (logits (B, A), sigmoid value (B,)).

    Separate actor and critic trunks (the shared `Trunk` code, without LayerNorm as in the authors'
    PPO); the actor head starts near uniform (orthogonal 0.01); the value is a sigmoid because
    returns lie in [0, 1].
    """

    num_actions: int
    hidden: Sequence[int] = (256, 256)

    @nn.compact
    def __call__(self, obs, goal):
        x = jnp.concatenate([obs, goal], axis=-1)
        a = Trunk(self.hidden, layer_norm=False)(x)
        logits = nn.Dense(self.num_actions, kernel_init=nn.initializers.orthogonal(0.01),
                          bias_init=nn.initializers.zeros)(a)
        v = Trunk(self.hidden, layer_norm=False)(x)
        v = nn.Dense(1, kernel_init=nn.initializers.orthogonal(1.0), bias_init=nn.initializers.zeros)(v)
        return logits, jax.nn.sigmoid(v[..., 0])


def param_count(params) -> int:
    """Number of scalars in a parameter pytree."""
    return int(sum(np.prod(x.shape) for x in jax.tree.leaves(params)))
