"""Every sampler as one Gaussian transition x' ~ N(mu, C^2 I), mu = (1 - t') x0_hat + B eps_hat.

With x0_hat = x - t v and eps_hat = x + (1 - t) v (so (1 - t) x0_hat + t eps_hat = x), a sampler is fully
described by its per-step pair (B_k, C_k) on a time grid. The pairs are computed here in NumPy float64 and
handed to JAX as float32; the JAX transition is then the same code for every sampler, which is what makes
all arms cost the same per step and lets one compiled program run every arm.

Samplers (spec section 2): ``ode`` (Euler/DDIM), ``flow_grpo`` (Euler-Maruyama, g = a sqrt(t/(1-t))),
``dance_grpo`` (Euler-Maruyama, constant g), ``cps`` (coefficient-preserving), ``mixgrpo`` (a window of
Flow-GRPO steps inside an ODE trajectory), ``precise`` (exact solve of the logSNR-schedule SDE with x0_hat
frozen) and ``dance_precise`` (exact solve of the constant-g SDE).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from quietrl.core.errors import UserError

SAMPLERS = ("ode", "flow_grpo", "dance_grpo", "cps", "mixgrpo", "precise", "dance_precise")
DEFAULT_ETA = {
    "ode": 0.0,
    "flow_grpo": 0.7,
    "dance_grpo": 0.3,
    "cps": 0.7,
    "mixgrpo": 0.7,
    "precise": 1.5,
    "dance_precise": 0.3,
}
STD_FLOOR = 1e-6  # applied to every sampler's std so the log-prob of a clean step stays finite
MIX_WINDOW = 4  # MixGRPO's SDE window (its `group_size` default)


def check_sampler(name: str) -> str:
    """Return ``name`` if it is a known sampler, else raise UserError listing the valid ones."""
    if name not in SAMPLERS:
        raise UserError(f"unknown sampler {name!r}; valid samplers: {', '.join(SAMPLERS)}")
    return name


def resolve_eta(name: str, eta: float | None) -> float:
    """The noise level for ``name``: ``eta`` if given (must be finite and >= 0), else the default."""
    check_sampler(name)
    if eta is None:
        return DEFAULT_ETA[name]
    eta = float(eta)
    if not math.isfinite(eta) or eta < 0:
        raise UserError(f"eta must be a finite number >= 0, got {eta!r} for sampler {name!r}")
    return eta


def _check_grid(grid: np.ndarray) -> np.ndarray:
    grid = np.asarray(grid, dtype=np.float64)
    if grid.ndim != 1 or grid.size < 2:
        raise UserError(f"time grid must be 1-D with K + 1 >= 2 points, got shape {grid.shape}")
    if not (np.isclose(grid[0], 1.0) and grid[-1] == 0.0 and np.all(np.diff(grid) < 0)):
        raise UserError("time grid must decrease strictly from 1 to 0")
    return grid


def _em_coefficients(t, tn, g):
    """Euler-Maruyama step of the marginal-preserving SDE with diffusion g (array over steps)."""
    h = t - tn
    b = tn - g**2 * h / (2.0 * t)
    c = g * np.sqrt(h)
    return b, c


def pair_coefficients(name: str, t, t_next, eta: float | None = None, t1: float | None = None):
    """(B, C) of one step t -> t' for any pairs (float64 arrays of equal shape), before the std floor.

    ``t1`` is the grid's second point, which Flow-GRPO uses in place of t under 1/(1 - t) at t = 1;
    MixGRPO is not a per-pair sampler (see :func:`step_coefficients`).
    """
    eta = resolve_eta(name, eta)
    t = np.asarray(t, dtype=np.float64)
    tn = np.asarray(t_next, dtype=np.float64)
    if name == "ode":
        return tn.copy(), np.zeros_like(tn)
    if name in ("flow_grpo", "mixgrpo"):
        # g(1) would divide by zero; like the reference code, use t_1 in place of t = 1 inside 1/(1 - t).
        t1 = 0.0 if t1 is None else float(t1)
        at_one = t >= 1.0
        g = eta * np.sqrt(np.where(at_one, 1.0, t) / (1.0 - np.where(at_one, t1, t)))
        return _em_coefficients(t, tn, g)
    if name == "dance_grpo":
        return _em_coefficients(t, tn, np.full_like(t, eta))
    if name == "cps":
        return tn * math.cos(eta * math.pi / 2), tn * math.sin(eta * math.pi / 2)
    if name == "precise":
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where((tn > 0) & (t < 1), tn * (1.0 - t) / (t * (1.0 - tn)), 0.0)  # sqrt(SNR_t/SNR_t')
        rho2 = np.power(r, eta**2)  # 0^0 = 1, so eta = 0 is exactly the ODE
        return tn * np.sqrt(rho2), tn * np.sqrt(np.clip(1.0 - rho2, 0.0, 1.0))
    if name == "dance_precise":
        if eta == 0:
            return tn.copy(), np.zeros_like(tn)
        with np.errstate(divide="ignore", over="ignore"):
            rho = np.where(tn > 0, np.exp(-0.5 * eta**2 * (1.0 / np.maximum(tn, 1e-300) - 1.0 / t)), 0.0)
        return tn * rho, tn * np.sqrt(np.clip(1.0 - rho**2, 0.0, 1.0))
    raise AssertionError(name)  # unreachable: resolve_eta checked the name


def step_coefficients(name: str, grid: np.ndarray, eta: float | None = None,
                      window_start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-step (B_k, C_k) of sampler ``name`` on ``grid``, before the std floor.

    Args:
      name: one of SAMPLERS.
      grid: float64 (K + 1,), 1 = t_0 > ... > t_K = 0.
      eta: noise level (None: the sampler's default).
      window_start: MixGRPO only, first step of its SDE window.
    Returns:
      (B, C): float64 arrays of shape (K,).
    """
    eta = resolve_eta(name, eta)
    grid = _check_grid(grid)
    t, tn = grid[:-1], grid[1:]
    k = t.size
    t1 = grid[1] if k > 1 else 0.0
    if name == "mixgrpo":
        if not 0 <= window_start < k:
            raise UserError(f"mixgrpo window_start must be in [0, {k - 1}], got {window_start}")
        b_sde, c_sde = pair_coefficients("flow_grpo", t, tn, eta, t1)
        inside = mixgrpo_window_mask(k, window_start)
        return np.where(inside, b_sde, tn), np.where(inside, c_sde, 0.0)
    return pair_coefficients(name, t, tn, eta, t1)


def mixgrpo_window_mask(num_steps: int, window_start: int, window: int = MIX_WINDOW) -> np.ndarray:
    """Boolean (K,) mask of MixGRPO's SDE steps: [start, start + window), never the last step."""
    idx = np.arange(num_steps)
    return (idx >= window_start) & (idx < window_start + window) & (idx < num_steps - 1)


def mixgrpo_window_start(iteration: int, total_iterations: int, num_steps: int,
                         window: int = MIX_WINDOW) -> int:
    """Window position at ``iteration``: +1 step every T/10 iterations, rolling back to 0 at the end.

    The window stays inside the trained steps 0..K-2 (positions 0..K-1-window).
    """
    positions = max(1, num_steps - window)
    every = max(1, total_iterations // 10)
    return int((iteration // every) % positions)


def trained_mask(name: str, num_steps: int, window_start: int = 0) -> np.ndarray:
    """Boolean (K,) mask of the steps GRPO trains on: all but the last (MixGRPO: its window only)."""
    if name == "mixgrpo":
        return mixgrpo_window_mask(num_steps, window_start)
    mask = np.ones(num_steps, dtype=bool)
    mask[-1] = num_steps == 1  # a single step is the only one there is; otherwise skip the clean last step
    return mask


class Schedule(NamedTuple):
    """Per-step float32 arrays (K,) that drive the unified transition (a pytree, so it can be vmapped)."""

    t: jnp.ndarray
    t_next: jnp.ndarray
    b: jnp.ndarray
    c: jnp.ndarray  # std after the 1e-6 floor


def make_schedule(name: str, grid: np.ndarray, eta: float | None = None, window_start: int = 0,
                  dtype=jnp.float32) -> Schedule:
    """Coefficients of ``name`` on ``grid`` as a JAX Schedule (float32 unless ``dtype`` says otherwise)."""
    b, c = step_coefficients(name, grid, eta, window_start)
    grid = np.asarray(grid, dtype=np.float64)
    c = np.maximum(c, STD_FLOOR)
    return Schedule(*(jnp.asarray(a, dtype=dtype) for a in (grid[:-1], grid[1:], b, c)))


def transition(x, v, t, t_next, b, c):
    """Mean and std of x' given x and the velocity v: mu = (1 - t') x0_hat + B eps_hat, std = C.

    Args:
      x, v: (..., D) current state and velocity prediction.
      t, t_next, b, c: scalars or arrays broadcastable to x[..., :1] (one step's coefficients).
    Returns:
      (mu, std): mu of shape (..., D); std broadcastable to it, floored at 1e-6.
    """
    x0_hat = x - t * v
    eps_hat = x + (1.0 - t) * v
    mu = (1.0 - t_next) * x0_hat + b * eps_hat
    return mu, jnp.maximum(c, STD_FLOOR)


def dmu_dv(t, t_next, b):
    """|d mu / d v| of the unified step: |-t (1 - t') + (1 - t) B| (GRPO-Guard's loss normaliser)."""
    return jnp.abs(-t * (1.0 - t_next) + (1.0 - t) * b)


def gauss_logprob(x_next, mu, std):
    """Gaussian log-density averaged (not summed) over the last axis, constants included.

    Args: x_next, mu: (..., D); std broadcastable to (..., 1). Returns (...,).
    """
    z = (x_next - mu) / std
    return jnp.mean(-0.5 * z**2 - jnp.log(std) - 0.5 * jnp.log(2.0 * jnp.pi), axis=-1)


def sample_step(key, x, v, t, t_next, b, c):
    """One stochastic step: returns (x', mu, std) with x' = mu + std * z, z ~ N(0, I) of x's shape."""
    import jax

    mu, std = transition(x, v, t, t_next, b, c)
    z = jax.random.normal(key, x.shape, dtype=x.dtype)
    return mu + std * z, mu, std
