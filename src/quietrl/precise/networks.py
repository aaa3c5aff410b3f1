"""Velocity networks v_theta(x_t, t, c) ~ E[eps - x0 | x_t, c] (flax.linen)."""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import numpy as np


def fourier_features(t, num: int):
    """Sin/cos features of t at log-spaced frequencies: t (N,) -> (N, num)."""
    freqs = jnp.asarray(np.geomspace(1.0, 200.0, num // 2), dtype=jnp.float32)
    ang = t[:, None] * freqs[None, :]
    return jnp.concatenate([jnp.sin(ang), jnp.cos(ang)], -1)


class VelocityMLP(nn.Module):
    """MLP on [x, Fourier(t), embedding(c)] with SiLU hidden layers; output has x's dimension."""

    num_classes: int
    hidden: int = 128
    depth: int = 3
    num_fourier: int = 16
    embed_dim: int = 16

    @nn.compact
    def __call__(self, x, t, c):
        """x: (N, D) float32, t: (N,) in [0, 1], c: (N,) int prompts -> v: (N, D)."""
        emb = nn.Embed(self.num_classes, self.embed_dim)(c)
        h = jnp.concatenate([x, fourier_features(t, self.num_fourier), emb], -1)
        for _ in range(self.depth):
            h = nn.silu(nn.Dense(self.hidden)(h))
        return nn.Dense(x.shape[-1], kernel_init=nn.initializers.zeros)(h)
