"""SDE-consistency statistics of the samplers (spec sections 4 and 6A).

S1 (model-free): per-step noise ratio nu_k = sqrt(B_k^2 + C_k^2) / t_{k+1} before the last step, and the
    last step's (B_K, C_K) before the std floor.
S2 (model-free): noise retention rho_K = prod B_k / t_{k+1} over the steps with both ends in [lo, hi],
    divided by the retention of the continuous SDE over the same interval, obtained by numerical
    integration of exp(-1/2 int g(u)^2 / u^2 du).
S3 (analytic mixtures, exact posterior mean): W1 to the exact marginals as a function of K, and the
    within-mode spread ratio.
"""
from __future__ import annotations

import dataclasses
import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from scipy import integrate, stats

from quietrl.core.errors import UserError
from quietrl.precise.samplers import make_schedule, resolve_eta, step_coefficients, transition

# ---------------------------------------------------------------------------------------------- S1, S2


def noise_ratios(name: str, grid: np.ndarray, eta: float | None = None):
    """S1: (nu, (B_K, C_K)); nu has shape (K - 1,) (steps before the last), B_K, C_K floats."""
    b, c = step_coefficients(name, grid, eta)
    tn = np.asarray(grid, dtype=np.float64)[1:]
    nu = np.sqrt(b[:-1] ** 2 + c[:-1] ** 2) / tn[:-1]
    return nu, (float(b[-1]), float(c[-1]))


def excess_variance(name: str, grid: np.ndarray, eta: float | None = None) -> float:
    """Summed excess variance sum_k (B_k^2 + C_k^2 - t_{k+1}^2) over all steps (0 when coefficient-preserving)."""
    b, c = step_coefficients(name, grid, eta)
    tn = np.asarray(grid, dtype=np.float64)[1:]
    return float(np.sum(b**2 + c**2 - tn**2))


def sde_g2(name: str, eta: float):
    """The squared diffusion g(u)^2 of the continuous SDE a sampler discretizes, or None (CPS: none)."""
    if name in ("flow_grpo", "precise", "mixgrpo"):
        return lambda u: eta**2 * u / (1.0 - u)
    if name in ("dance_grpo", "dance_precise"):
        return lambda u: eta**2
    if name == "ode":
        return lambda u: 0.0
    return None


def retention(name: str, grid: np.ndarray, eta: float | None = None, lo: float = 0.2, hi: float = 0.8):
    """S2: (rho_K, rho_SDE, ratio) over the steps with both ends in [lo, hi].

    rho_SDE integrates exp(-1/2 int_{t_end}^{t_start} g(u)^2/u^2 du) with scipy.integrate.quad over the
    interval those steps cover; for CPS (no continuous SDE) rho_SDE and the ratio are NaN.
    """
    eta = resolve_eta(name, eta)
    grid = np.asarray(grid, dtype=np.float64)
    b, _ = step_coefficients(name, grid, eta)
    t, tn = grid[:-1], grid[1:]
    inside = (t <= hi) & (tn >= lo)
    if not inside.any():
        raise UserError(f"no step of the {len(t)}-step grid lies inside [{lo}, {hi}]")
    rho_k = float(np.prod(b[inside] / tn[inside]))
    g2 = sde_g2(name, eta)
    if g2 is None:
        return rho_k, float("nan"), float("nan")
    a, z = float(tn[inside].min()), float(t[inside].max())
    val, _ = integrate.quad(lambda u: g2(u) / u**2, a, z, epsabs=1e-13, epsrel=1e-12)
    rho_sde = math.exp(-0.5 * val)
    return rho_k, rho_sde, rho_k / rho_sde


# ---------------------------------------------------------------------------------------------- S3


@dataclasses.dataclass(frozen=True)
class Mixture:
    """Isotropic Gaussian mixture in D dimensions: means (M, D), shared std s, weights (M,)."""

    means: np.ndarray
    std: float
    weights: np.ndarray

    @staticmethod
    def two_modes_1d(std: float = 0.3) -> "Mixture":
        """0.5 N(-1, s^2) + 0.5 N(1, s^2) (the spec's toy)."""
        return Mixture(np.array([[-1.0], [1.0]]), float(std), np.array([0.5, 0.5]))

    @staticmethod
    def ring_2d(num_modes: int = 8, std: float = 0.05) -> "Mixture":
        """num_modes equal-weight modes on the unit circle."""
        ang = 2 * np.pi * np.arange(num_modes) / num_modes
        return Mixture(np.stack([np.cos(ang), np.sin(ang)], 1), float(std), np.full(num_modes, 1 / num_modes))

    def sample_t(self, rng: np.random.Generator, n: int, t: float) -> np.ndarray:
        """Exact samples (n, D) of p_t: x_t = (1 - t) x0 + t eps."""
        idx = rng.choice(len(self.weights), size=n, p=self.weights)
        x0 = self.means[idx] + self.std * rng.standard_normal((n, self.means.shape[1]))
        return (1 - t) * x0 + t * rng.standard_normal(x0.shape)


def posterior_mean(x, t, means, std, log_weights):
    """Exact E[x0 | x_t = x] for an isotropic mixture. x: (N, D), t scalar; returns (N, D)."""
    var_t = (1 - t) ** 2 * std**2 + t**2
    centers = (1 - t) * means  # (M, D)
    d2 = jnp.sum((x[:, None, :] - centers[None]) ** 2, -1)  # (N, M)
    resp = jax.nn.softmax(log_weights[None] - d2 / (2 * var_t), axis=-1)
    cond = means[None] + ((1 - t) * std**2 / var_t) * (x[:, None, :] - centers[None])  # (N, M, D)
    return jnp.einsum("nm,nmd->nd", resp, cond)


@partial(jax.jit, static_argnames=("keep",))
def _simulate(key, x1, sched, means, std, log_weights, keep: int):
    def body(x, inp):
        k, t, tn, b, c = inp
        v = (x - posterior_mean(x, t, means, std, log_weights)) / t
        mu, sd = transition(x, v, t, tn, b, c)
        x = mu + sd * jax.random.normal(k, x.shape)
        return x, x[:keep]

    keys = jax.random.split(key, sched.t.shape[0])
    return jax.lax.scan(body, x1, (keys, sched.t, sched.t_next, sched.b, sched.c))


def simulate_mixture(name: str, grid: np.ndarray, mixture: Mixture, n: int, seed: int = 0,
                     eta: float | None = None, keep: int = 0):
    """Run sampler ``name`` with the exact posterior mean of ``mixture`` from x_1 ~ N(0, I).

    Returns (x_final (n, D) NumPy, path (K, keep, D) NumPy of the first ``keep`` samples after each step).
    """
    sched = make_schedule(name, grid, eta)
    key = jax.random.PRNGKey(seed)
    k0, k1 = jax.random.split(key)
    d = mixture.means.shape[1]
    x1 = jax.random.normal(k0, (n, d))
    xf, path = _simulate(k1, x1, sched, jnp.asarray(mixture.means, jnp.float32), jnp.float32(mixture.std),
                         jnp.log(jnp.asarray(mixture.weights, jnp.float32)), keep=keep)
    return np.asarray(xf, np.float64), np.asarray(path, np.float64)


def w1_distance(a: np.ndarray, b: np.ndarray, num_projections: int = 64, seed: int = 0) -> float:
    """W1 between sample sets (n, D): exact 1-D W1 for D = 1, sliced W1 (mean over projections) otherwise."""
    if a.shape[1] == 1:
        return float(stats.wasserstein_distance(a[:, 0], b[:, 0]))
    rng = np.random.default_rng(seed)
    dirs = rng.standard_normal((num_projections, a.shape[1]))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    return float(np.mean([stats.wasserstein_distance(a @ u, b @ u) for u in dirs]))


def spread_and_weights(x: np.ndarray, mixture: Mixture):
    """(within-mode spread ratio std(x - nearest mode)/s, max |mode weight - true weight|)."""
    d2 = ((x[:, None, :] - mixture.means[None]) ** 2).sum(-1)
    near = d2.argmin(1)
    resid = x - mixture.means[near]
    spread = float(np.sqrt(np.mean(resid**2))) / mixture.std
    freq = np.bincount(near, minlength=len(mixture.weights)) / len(x)
    return spread, float(np.abs(freq - mixture.weights).max())


def s3_row(name: str, grid: np.ndarray, mixture: Mixture, n: int = 50_000, seed: int = 0,
           eta: float | None = None, mid_samples: int = 10_000, mid_points: int = 40) -> dict:
    """S3 for one sampler and grid: terminal W1, max-over-grid W1 to p_t, spread ratio, mode-weight error.

    The intermediate error is taken at up to ``mid_points`` evenly spaced grid points (all of them when K
    is small) with ``mid_samples`` samples each, so its noise floor is about 1/sqrt(mid_samples).
    """
    grid = np.asarray(grid, np.float64)
    num_steps = len(grid) - 1
    keep = min(mid_samples, n, max(1000, int(2e7 // num_steps)))  # bound the (K, keep, D) path in memory
    xf, path = simulate_mixture(name, grid, mixture, n, seed, eta, keep=keep)
    rng = np.random.default_rng(seed + 1)
    term = w1_distance(xf, mixture.sample_t(rng, n, 0.0))
    steps = np.unique(np.linspace(0, num_steps - 2, min(mid_points, max(num_steps - 1, 1))).astype(int))
    mid = max((w1_distance(path[k], mixture.sample_t(rng, keep, grid[k + 1])) for k in steps if num_steps > 1),
              default=float("nan"))
    spread, werr = spread_and_weights(xf, mixture)
    return {"sampler": name, "K": len(grid) - 1, "term_w1": term, "mid_w1": mid, "spread_ratio": spread,
            "weight_err": werr}
