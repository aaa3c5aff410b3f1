"""Preference oracle: one binary label per episode from a Bradley-Terry-Luce link on the return gap.

P(o = 1 | tau1, tau2) = mu(c * (R(tau1) - R(tau2))), mu the logistic function, c > 0 the temperature
(the temperature is ours [derived]; the readable paper text has none). Every call checks each per-step
reward against the environment's declared range and names the episode and step of a violation.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from quietrl.core.errors import ConfigError, UserError

__all__ = ["BTLOracle", "sigmoid", "log1pexp"]


def sigmoid(x):
    """Numerically stable logistic function, elementwise."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out


def log1pexp(x):
    """log(1 + e^x) without overflow."""
    return np.logaddexp(0.0, x)


@dataclasses.dataclass(frozen=True)
class BTLOracle:
    """BTL preference oracle with temperature ``c`` over the declared reward range ``[r_min, r_max]``."""

    reward_range: tuple[float, float]
    temperature: float = 1.0
    tolerance: float = 1e-9

    def __post_init__(self):
        if not self.temperature > 0:
            raise ConfigError(f"oracle temperature must be > 0, got {self.temperature}")
        lo, hi = self.reward_range
        if not lo < hi:
            raise ConfigError(f"oracle reward range must have r_min < r_max, got {self.reward_range}")

    def check(self, rewards: np.ndarray, episode: int, which: int) -> None:
        """Raise UserError if any reward of one trajectory is outside the range (``episode`` as given, the
        learners pass it 1-based; steps are 1-based)."""
        lo, hi = self.reward_range
        rewards = np.asarray(rewards, dtype=np.float64)
        bad = np.nonzero((rewards < lo - self.tolerance) | (rewards > hi + self.tolerance) | ~np.isfinite(rewards))[0]
        if bad.size:
            h = int(bad[0])
            raise UserError(
                f"reward {rewards[h]:.6g} outside the declared range [{lo}, {hi}] "
                f"at episode {episode}, step {h + 1} (trajectory {which})"
            )

    def probability(self, rewards1: np.ndarray, rewards2: np.ndarray) -> float:
        """P(o = 1): trajectory 1 preferred."""
        gap = float(np.sum(rewards1) - np.sum(rewards2))
        return float(sigmoid(np.array([self.temperature * gap]))[0])

    def __call__(self, rewards1: np.ndarray, rewards2: np.ndarray, episode: int, rng: np.random.Generator) -> int:
        """Label o in {0, 1} (1: trajectory 1 preferred) after range checks on both reward sequences."""
        self.check(rewards1, episode, 1)
        self.check(rewards2, episode, 2)
        return int(rng.random() < self.probability(rewards1, rewards2))
