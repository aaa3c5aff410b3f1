"""Flax (linen) networks: the shared IPPO actor-critic and the ARMS reward model r̂_θ."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import numpy as np


def _dense(features: int, scale: float = np.sqrt(2.0)) -> nn.Dense:
    return nn.Dense(features, kernel_init=nn.initializers.orthogonal(scale), bias_init=nn.initializers.zeros)


class ActorCritic(nn.Module):
    """Separate 2-layer tanh MLPs for policy logits (..., n, num_actions) and value (..., n) on obs (..., n, D).

    ``centralised=True`` (MAPPO): the critic sees each agent's own observation concatenated with every
    agent's observation (the joint observation stands in for the global state); the actor stays local.
    """

    num_actions: int = 5
    hidden: int = 64
    centralised: bool = False

    @nn.compact
    def __call__(self, obs: jnp.ndarray):
        a = nn.tanh(_dense(self.hidden)(obs))
        a = nn.tanh(_dense(self.hidden)(a))
        logits = _dense(self.num_actions, 0.01)(a)
        critic_in = obs
        if self.centralised:
            n, d = obs.shape[-2:]
            joint = jnp.broadcast_to(obs.reshape(obs.shape[:-2] + (1, n * d)), obs.shape[:-1] + (n * d,))
            critic_in = jnp.concatenate([obs, joint], -1)
        v = nn.tanh(_dense(self.hidden)(critic_in))
        v = nn.tanh(_dense(self.hidden)(v))
        value = _dense(1, 1.0)(v)[..., 0]
        return logits, value


class RewardNet(nn.Module):
    """r̂_θ(o') in (-1, 1): a 2-layer tanh MLP with a tanh output on the post-step observation (..., D)."""

    hidden: int = 64

    @nn.compact
    def __call__(self, obs: jnp.ndarray) -> jnp.ndarray:
        h = nn.tanh(_dense(self.hidden)(obs))
        h = nn.tanh(_dense(self.hidden)(h))
        return nn.tanh(_dense(1, 1.0)(h)[..., 0])
