"""The prompt-conditioned 2-D mixture task and its reward (spec section 6B/6C).

Prompt c in {0..P-1} owns M narrow modes (std s) on the unit ring at angles 2 pi (c + P j) / (P M),
j = 0..M-1, so no two prompts share a mode. Its preferred mode m*(c) is mode j = 0.
Reward r = pref + lambda q with pref = exp(-|x - m*|^2 / (2 * 0.1^2)) and
q = clip((log p_data(x | c) - log p_max) / 5, -1, 0): q is what residual sampler noise lowers.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from quietrl.core.errors import ConfigError

PREF_WIDTH = 0.1
Q_SCALE = 5.0


@dataclasses.dataclass(frozen=True)
class MixtureTask:
    """Prompt-conditioned ring mixture (defaults: 8 prompts x 3 modes, std 0.05)."""

    num_prompts: int = 8
    modes_per_prompt: int = 3
    mode_std: float = 0.05
    dim = 2  # a class attribute, not a field

    def __post_init__(self):
        if self.num_prompts < 1:
            raise ConfigError(f"num_prompts must be >= 1, got {self.num_prompts}")
        if self.modes_per_prompt < 1:
            raise ConfigError(f"modes_per_prompt must be >= 1, got {self.modes_per_prompt}")
        if not self.mode_std > 0:
            raise ConfigError(f"mode_std must be > 0, got {self.mode_std}")

    def mode_means(self) -> np.ndarray:
        """(P, M, 2) float32 mode centres."""
        p, m = self.num_prompts, self.modes_per_prompt
        idx = np.arange(p)[:, None] + p * np.arange(m)[None, :]
        ang = 2 * np.pi * idx / (p * m)
        return np.stack([np.cos(ang), np.sin(ang)], -1).astype(np.float32)

    def sample(self, key, prompts):
        """Data samples x0 (N, 2) for integer prompts (N,), equal mode weights."""
        means = jnp.asarray(self.mode_means())
        k1, k2 = jax.random.split(key)
        j = jax.random.randint(k1, prompts.shape, 0, self.modes_per_prompt)
        return means[prompts, j] + self.mode_std * jax.random.normal(k2, prompts.shape + (2,))

    def log_density(self, x, prompts):
        """log p_data(x | c): (N, 2), (N,) -> (N,)."""
        means = jnp.asarray(self.mode_means())[prompts]  # (N, M, 2)
        s2 = self.mode_std**2
        d2 = jnp.sum((x[:, None, :] - means) ** 2, -1)
        return jax.nn.logsumexp(-d2 / (2 * s2), axis=-1) - jnp.log(self.modes_per_prompt * 2 * jnp.pi * s2)

    def log_density_max(self) -> float:
        """log p_data at a mode centre (other modes' contribution is negligible at these distances)."""
        return float(-np.log(self.modes_per_prompt * 2 * np.pi * self.mode_std**2))

    def reward_parts(self, x, prompts):
        """(pref, q), each (N,): preference for mode 0 and the data-likelihood quality term in [-1, 0]."""
        pref_mode = jnp.asarray(self.mode_means())[prompts, 0]
        pref = jnp.exp(-jnp.sum((x - pref_mode) ** 2, -1) / (2 * PREF_WIDTH**2))
        q = jnp.clip((self.log_density(x, prompts) - self.log_density_max()) / Q_SCALE, -1.0, 0.0)
        return pref, q

    def reward(self, x, prompts, lam: float = 1.0):
        """r = pref + lam * q, shape (N,)."""
        pref, q = self.reward_parts(x, prompts)
        return pref + lam * q

    def mode_weights(self, x, prompts):
        """(N, M) one-hot of each sample's nearest mode of its prompt (for mode-weight error / entropy)."""
        means = jnp.asarray(self.mode_means())[prompts]
        d2 = jnp.sum((x[:, None, :] - means) ** 2, -1)
        return jax.nn.one_hot(jnp.argmin(d2, -1), self.modes_per_prompt)
