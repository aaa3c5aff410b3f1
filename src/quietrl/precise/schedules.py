"""Time grids for K-step sampling from t = 1 (noise) to t = 0 (data).

Grids are built in NumPy float64 (the coefficient formulas near t = 0 and t = 1 lose digits in float32)
and handed to JAX as float32 by :func:`quietrl.precise.samplers.make_schedule`.
"""
from __future__ import annotations

import numpy as np

from quietrl.core.errors import UserError

GRIDS = ("uniform", "shifted", "flux")


def _check_steps(num_steps: int) -> int:
    if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)) or num_steps < 1:
        raise UserError(f"number of steps K must be an integer >= 1, got {num_steps!r}")
    return int(num_steps)


def uniform_grid(num_steps: int) -> np.ndarray:
    """Uniform grid 1 = t_0 > ... > t_K = 0; float64 array of shape (K + 1,)."""
    k = _check_steps(num_steps)
    return np.linspace(1.0, 0.0, k + 1, dtype=np.float64)


def shifted_grid(num_steps: int, shift: float = 3.0) -> np.ndarray:
    """SD3 / Flow-GRPO grid: uniform u mapped to s*u / (1 + (s - 1)*u); shape (K + 1,), float64."""
    if not shift > 0:
        raise UserError(f"grid shift must be > 0, got {shift!r}")
    u = uniform_grid(num_steps)
    return shift * u / (1.0 + (shift - 1.0) * u)


def empirical_mu(image_seq_len: int, num_steps: int) -> float:
    """FLUX.2 shift parameter mu as a function of the token count and K (diffusers' empirical fit)."""
    a1, b1 = 8.73809524e-05, 1.89833333
    a2, b2 = 0.00016927, 0.45666666
    if image_seq_len > 4300:
        return float(a2 * image_seq_len + b2)
    m_200 = a2 * image_seq_len + b2
    m_10 = a1 * image_seq_len + b1
    slope = (m_200 - m_10) / 190.0
    return float(slope * num_steps + (m_200 - 200.0 * slope))


def flux_grid(num_steps: int, image_seq_len: int = 1024, mu: float | None = None) -> np.ndarray:
    """FLUX.2 Klein grid: u = linspace(1, 1/K, K) -> e^mu u / (e^mu u + 1 - u), then 0 appended.

    At 512 px (1024 tokens) and K = 20 this is the spec's 20-step grid 1, .992, ..., .263, 0.
    Returns float64 of shape (K + 1,).
    """
    k = _check_steps(num_steps)
    if mu is None:
        mu = empirical_mu(image_seq_len, k)
    u = np.linspace(1.0, 1.0 / k, k, dtype=np.float64)
    em = np.exp(mu)
    t = em * u / (em * u + 1.0 - u)
    return np.concatenate([t, [0.0]])


def make_grid(kind: str, num_steps: int, shift: float = 3.0) -> np.ndarray:
    """Grid by name: "uniform", "shifted" (shift s) or "flux" (1024 tokens); float64 (K + 1,)."""
    if kind == "uniform":
        return uniform_grid(num_steps)
    if kind == "shifted":
        return shifted_grid(num_steps, shift)
    if kind == "flux":
        return flux_grid(num_steps)
    raise UserError(f"unknown grid {kind!r}; valid grids: {', '.join(GRIDS)}")
