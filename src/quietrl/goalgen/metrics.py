"""Prediction metrics over (agent, pair) examples and pipeline-grouped bootstrap intervals."""

from __future__ import annotations

import numpy as np

EPS = 1e-6
DIRECTION_THRESHOLD = 0.10


def kl3(p_obs: np.ndarray, p_pred: np.ndarray) -> np.ndarray:
    """KL(p_obs || p_pred) over (a, b, neither), EPS inside both logs. (N, 3) -> (N,)."""
    return np.sum(p_obs * (np.log(p_obs + EPS) - np.log(p_pred + EPS)), -1)


def brier(p_obs: np.ndarray, p_pred: np.ndarray) -> np.ndarray:
    """Sum of squared differences over the three outcomes. (N, 3) -> (N,)."""
    return np.sum((p_pred - p_obs) ** 2, -1)


def direction(p_obs: np.ndarray, p_pred: np.ndarray, threshold: float = DIRECTION_THRESHOLD):
    """(correct (N,) float, counted (N,) bool): sign(pred_a - pred_b) == sign(obs_a - obs_b), counted only
    where |obs_a - obs_b| >= threshold. Ties in the prediction never match (a uniform predictor scores 0)."""
    d_obs = p_obs[:, 0] - p_obs[:, 1]
    d_pred = p_pred[:, 0] - p_pred[:, 1]
    counted = np.abs(d_obs) >= threshold
    correct = (np.sign(d_pred) == np.sign(d_obs)) & (d_pred != 0)
    return correct.astype(float), counted


METRICS = ("kl3", "dir_acc", "brier")


def per_example(p_obs: np.ndarray, p_pred: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-example (value, weight) for every metric; means are weighted sums / weight sums."""
    ones = np.ones(len(p_obs))
    corr, counted = direction(p_obs, p_pred)
    return {"kl3": (kl3(p_obs, p_pred), ones), "dir_acc": (corr, counted.astype(float)),
            "brier": (brier(p_obs, p_pred), ones)}


def summarize(p_obs: np.ndarray, p_pred: np.ndarray, groups: np.ndarray, n_boot: int = 1000,
              seed: int = 0) -> dict[str, dict[str, float]]:
    """Mean of each metric and its 95% bootstrap interval, resampling *pipelines* (``groups``, (N,)) with
    replacement so that seeds and pairs of one pipeline move together. Returns {metric: {mean, lo, hi}}."""
    ex = per_example(p_obs, p_pred)
    return {m: _grouped_bootstrap(v, w, groups, n_boot, seed) for m, (v, w) in ex.items()}


def _group_sums(values, weights, groups):
    _, inv = np.unique(groups, return_inverse=True)
    n = inv.max() + 1
    return np.bincount(inv, values * weights, n), np.bincount(inv, weights, n)


def _grouped_bootstrap(values, weights, groups, n_boot, seed):
    num, den = _group_sums(values, weights, groups)
    mean = num.sum() / den.sum() if den.sum() > 0 else float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(num), size=(n_boot, len(num)))
    with np.errstate(invalid="ignore", divide="ignore"):
        boots = num[idx].sum(1) / den[idx].sum(1)
    lo, hi = np.nanpercentile(boots, [2.5, 97.5]) if np.isfinite(boots).any() else (np.nan, np.nan)
    return {"mean": float(mean), "lo": float(lo), "hi": float(hi)}


def paired_difference(values_a: np.ndarray, values_b: np.ndarray, groups: np.ndarray, n_boot: int = 1000,
                      seed: int = 0) -> dict[str, float]:
    """Mean of (a - b) per example with a pipeline-grouped 95% bootstrap interval (same resamples)."""
    return _grouped_bootstrap(values_a - values_b, np.ones(len(values_a)), groups, n_boot, seed)
