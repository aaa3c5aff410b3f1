"""Regret metrics (spec §8): cumulative regret, log-log slopes with a bootstrap CI over seeds, local
slopes, windowed per-episode regret. Regret counts both policies: 2 V* - V^pi1 - V^pi2 per episode.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from quietrl.core.errors import UserError

__all__ = ["fit_slope", "slope_summary", "SlopeSummary", "local_slope", "window_means"]


def fit_slope(cum_regret: np.ndarray, lo_frac: float = 0.2) -> float:
    """OLS slope of log R(n) on log n over n in [lo_frac N, N] for one run; cum_regret (N,)."""
    R = np.asarray(cum_regret, dtype=np.float64)
    N = R.shape[0]
    if N < 5:
        raise UserError(f"slope fit needs at least 5 episodes, got {N}")
    n = np.arange(1, N + 1)
    sel = n >= max(1, int(np.ceil(lo_frac * N)))
    sel &= R > 0  # log of zero regret is undefined; a run with none there reads slope 0 below
    if sel.sum() < 2:
        return 0.0
    x, y = np.log(n[sel]), np.log(R[sel])
    x = x - x.mean()
    return float((x @ (y - y.mean())) / (x @ x))


def local_slope(cum_regret: np.ndarray) -> float:
    """log(R(N) / R(N/2)) / log 2 (less flattered by burn-in than the global slope)."""
    R = np.asarray(cum_regret, dtype=np.float64)
    N = R.shape[0]
    a, b = R[N // 2 - 1], R[-1]
    if a <= 0 or b <= 0:
        return 0.0
    return float(np.log(b / a) / np.log(N / (N // 2)))


def window_means(regret: np.ndarray, windows: int = 5) -> np.ndarray:
    """Mean per-episode regret in ``windows`` equal consecutive windows; regret (N,) -> (windows,)."""
    return np.array([w.mean() for w in np.array_split(np.asarray(regret), windows)])


@dataclasses.dataclass(frozen=True)
class SlopeSummary:
    mean: float
    ci: tuple[float, float]
    per_seed: tuple[float, ...]


def slope_summary(cum_regrets: np.ndarray, lo_frac: float = 0.2, n_boot: int = 2000, seed: int = 0) -> SlopeSummary:
    """Per-seed slopes and a 95 % percentile bootstrap CI (resampling seeds) of their mean; (seeds, N)."""
    C = np.atleast_2d(np.asarray(cum_regrets, dtype=np.float64))
    s = np.array([fit_slope(c, lo_frac) for c in C])
    rng = np.random.default_rng(seed)
    boots = s[rng.integers(0, len(s), (n_boot, len(s)))].mean(1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return SlopeSummary(float(s.mean()), (float(lo), float(hi)), tuple(float(v) for v in s))
