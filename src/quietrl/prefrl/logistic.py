"""Regularised logistic MLE for trajectory preferences: Newton and L-BFGS, NumPy and jitted-JAX backends.

Objective (spec §2.1; the gauge term is our reconstruction [derived]):

    J(theta) = sum_i l(c <theta, x_i>, o_i) + lam/2 |theta|^2 + rho/2 <phibar, theta>^2,  l(u, o) = log(1+e^u) - o u

Two solvers, same optimum (tested):
  newton  Newton with Armijo backtracking (spec pitfall 1: undamped Newton diverges on separable early data).
          ``hessian=None`` recomputes the Hessian every iteration (textbook Newton); a given Cholesky factor
          is used as a fixed metric instead ("lagged" Newton: the learners refresh it only when the data have
          grown by a set factor, so a warm-started refit costs O(n m) instead of O(n m^2)).
  lbfgs   limited-memory BFGS (memory 10) with the same Armijo backtracking; O(n m) per iteration.

Backends: ``numpy`` (default) and ``jax`` (jitted, float64 inside ``jax.enable_x64(True)``; the global switch
is never touched: float32 Newton systems with small lam are unreliable, spec §7). The JAX backend pads the
rows to a power of two with a mask so jit compiles once per capacity. NumPy is the default because it is
clearly faster here: on this 2-core CPU, XLA's float64 matrix-vector products over the (n, m) data are
5-10x slower than single-threaded OpenBLAS at n = 1e4, m = 180, each compile takes seconds, and a refit
is a handful of such products (benchmarks/prefrl_scaling.py measures both in one run).

Shapes: X (N, m) with N >= n rows of which the first n are data, o (N,), theta (m,), phibar (m,).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg as sla

__all__ = ["SolverInfo", "NewtonInfo", "logistic_objective", "fit_logistic", "SOLVERS", "BACKENDS"]

SOLVERS = ("newton", "lbfgs")
BACKENDS = ("numpy", "jax")
_LBFGS_MEMORY = 10
_MAX_HALVINGS = 40


@dataclasses.dataclass(frozen=True)
class SolverInfo:
    """Outcome of one solve: iterations taken, final gradient max-norm, objective, converged flag."""

    iterations: int
    grad_norm: float
    objective: float
    converged: bool
    solver: str = "newton"


NewtonInfo = SolverInfo  # the name the first slice exported


def _pow2_rows(n: int, minimum: int = 16) -> int:
    return max(minimum, 1 << max(int(n) - 1, 0).bit_length())


def _pad(X: np.ndarray, o: np.ndarray, rows: int) -> tuple[np.ndarray, np.ndarray]:
    n = X.shape[0]
    if rows == n:
        return X, o
    Xp = np.zeros((rows, X.shape[1]))
    Xp[:n] = X
    op = np.zeros(rows)
    op[:n] = o
    return Xp, op


# ----------------------------------------------------------------------------------------------------
# jitted pieces (traced under x64)
# ----------------------------------------------------------------------------------------------------


def _loss_terms(u, o, mask):
    return mask * (jnp.logaddexp(0.0, u) - o * u)


def _value(u, theta, o, mask, lam, rho, phibar):
    g = phibar @ theta
    return jnp.sum(_loss_terms(u, o, mask)) + 0.5 * lam * theta @ theta + 0.5 * rho * g * g


def _grad(X, u, theta, o, mask, c, lam, rho, phibar):
    r = mask * (jax.nn.sigmoid(u) - o)
    return c * (X.T @ r) + lam * theta + rho * phibar * (phibar @ theta)


def _hess_chol(X, theta, mask, c, lam, rho, phibar):
    mu = jax.nn.sigmoid(c * (X @ theta))
    w = mask * c * c * mu * (1.0 - mu)
    Hs = (X.T * w) @ X + lam * jnp.eye(X.shape[1]) + rho * jnp.outer(phibar, phibar)
    return jnp.linalg.cholesky(Hs)


def _armijo(X, u, theta, f, g, step, o, mask, c, lam, rho, phibar):
    """Backtrack t = 1, 1/2, ... until J(theta + t step) <= J + 1e-4 t g.step. One O(n m) product for the
    direction, then O(n) per trial (u is linear in t). Returns (theta, u, f, moved)."""
    du = c * (X @ step)
    slope = g @ step

    def trial(t):
        th = theta + t * step
        return _value(u + t * du, th, o, mask, lam, rho, phibar)

    def cond(s):
        t, ft, k = s
        return (ft > f + 1e-4 * t * slope) & (k < _MAX_HALVINGS)

    def body(s):
        t, _, k = s
        t = 0.5 * t
        return t, trial(t), k + 1

    t, ft, _ = jax.lax.while_loop(cond, body, (1.0, trial(1.0), 0))
    # a failed search (rounding at the optimum) leaves theta where it was
    ok = (ft <= f) & (slope < 0)
    t = jnp.where(ok, t, 0.0)
    return theta + t * step, u + t * du, jnp.where(ok, ft, f), ok


@jax.jit
def _newton(X, o, n, theta0, L0, c, lam, rho, phibar, tol, max_iter, fresh_hessian):
    mask = (jnp.arange(X.shape[0]) < n).astype(X.dtype)
    u0 = c * (X @ theta0)
    f0 = _value(u0, theta0, o, mask, lam, rho, phibar)
    g0 = _grad(X, u0, theta0, o, mask, c, lam, rho, phibar)

    def cond(s):
        it, _, _, _, g, _, moved = s
        return (it < max_iter) & (jnp.max(jnp.abs(g)) >= tol) & moved

    def body(s):
        it, theta, u, f, g, L, _ = s
        # one compiled program serves both modes (compiles are seconds on a loaded machine)
        L = jax.lax.cond(fresh_hessian, lambda: _hess_chol(X, theta, mask, c, lam, rho, phibar), lambda: L)
        step = -jax.scipy.linalg.cho_solve((L, True), g)
        theta, u, f, moved = _armijo(X, u, theta, f, g, step, o, mask, c, lam, rho, phibar)
        g = _grad(X, u, theta, o, mask, c, lam, rho, phibar)
        return it + 1, theta, u, f, g, L, moved

    it, theta, _, f, g, L, _ = jax.lax.while_loop(cond, body, (0, theta0, u0, f0, g0, L0, True))
    return theta, it, jnp.max(jnp.abs(g)), f, L


@jax.jit
def _lbfgs(X, o, n, theta0, c, lam, rho, phibar, tol, max_iter):
    M = _LBFGS_MEMORY
    m = theta0.shape[0]
    mask = (jnp.arange(X.shape[0]) < n).astype(X.dtype)
    u0 = c * (X @ theta0)
    f0 = _value(u0, theta0, o, mask, lam, rho, phibar)
    g0 = _grad(X, u0, theta0, o, mask, c, lam, rho, phibar)

    def direction(g, Sh, Yh, rh, k):
        # two-loop recursion over the k most recent pairs (ring buffer, newest at (k - 1) % M)
        kk = jnp.minimum(k, M)

        def back(i, s):
            q, al = s
            j = (k - 1 - i) % M
            a = jnp.where(i < kk, rh[j] * (Sh[j] @ q), 0.0)
            return q - a * Yh[j], al.at[i].set(a)

        q, al = jax.lax.fori_loop(0, M, back, (g, jnp.zeros(M)))
        jn = (k - 1) % M
        gamma = jnp.where(k > 0, (Sh[jn] @ Yh[jn]) / jnp.maximum(Yh[jn] @ Yh[jn], 1e-300),
                          1.0 / jnp.maximum(jnp.linalg.norm(g), 1e-300))

        def fwd(i2, r):
            i = M - 1 - i2
            j = (k - 1 - i) % M
            b = rh[j] * (Yh[j] @ r)
            return r + jnp.where(i < kk, al[i] - b, 0.0) * Sh[j]

        return -jax.lax.fori_loop(0, M, fwd, gamma * q)

    def cond(s):
        it, _, _, _, g, _, _, _, _, moved = s
        return (it < max_iter) & (jnp.max(jnp.abs(g)) >= tol) & moved

    def body(s):
        it, theta, u, f, g, Sh, Yh, rh, k, _ = s
        step = direction(g, Sh, Yh, rh, k)
        theta_n, u_n, f_n, moved = _armijo(X, u, theta, f, g, step, o, mask, c, lam, rho, phibar)
        g_n = _grad(X, u_n, theta_n, o, mask, c, lam, rho, phibar)
        sv, yv = theta_n - theta, g_n - g
        sy = sv @ yv
        keep = sy > 1e-12 * jnp.maximum(yv @ yv, 1e-300)  # curvature condition (else skip the pair)
        j = k % M
        Sh = jnp.where(keep, Sh.at[j].set(sv), Sh)
        Yh = jnp.where(keep, Yh.at[j].set(yv), Yh)
        rh = jnp.where(keep, rh.at[j].set(1.0 / jnp.where(keep, sy, 1.0)), rh)
        k = k + keep.astype(k.dtype)
        return it + 1, theta_n, u_n, f_n, g_n, Sh, Yh, rh, k, moved

    init = (0, theta0, u0, f0, g0, jnp.zeros((M, m)), jnp.zeros((M, m)), jnp.zeros(M), jnp.array(0), True)
    it, theta, _, f, g, *_ = jax.lax.while_loop(cond, body, init)
    return theta, it, jnp.max(jnp.abs(g)), f


# ----------------------------------------------------------------------------------------------------
# NumPy backend and the public API
# ----------------------------------------------------------------------------------------------------


def logistic_objective(theta, X, o, c, lam, rho, phibar):
    """J(theta) for unpadded ``X (n, m)``, ``o (n,)`` (float64 NumPy; used by tests and diagnostics)."""
    u = c * (np.asarray(X) @ theta)
    g = float(phibar @ theta) if phibar is not None else 0.0
    return float(np.sum(np.logaddexp(0.0, u) - o * u) + 0.5 * lam * theta @ theta + 0.5 * rho * g * g)


def _np_value(u, theta, o, lam, rho, phibar):
    g = phibar @ theta
    return float(np.sum(np.logaddexp(0.0, u) - o * u) + 0.5 * lam * theta @ theta + 0.5 * rho * g * g)


def _np_grad(X, u, theta, o, c, lam, rho, phibar):
    mu = 0.5 * (1.0 + np.tanh(0.5 * u))  # overflow-free sigmoid
    return c * (X.T @ (mu - o)) + lam * theta + rho * phibar * (phibar @ theta)


def _np_hess_chol(X, theta, c, lam, rho, phibar):
    mu = 0.5 * (1.0 + np.tanh(0.5 * c * (X @ theta)))
    Hs = (X.T * (c * c * mu * (1.0 - mu))) @ X
    Hs[np.diag_indices_from(Hs)] += lam
    Hs += rho * np.outer(phibar, phibar)
    return np.linalg.cholesky(Hs)


def _np_armijo(X, u, theta, f, g, step, o, c, lam, rho, phibar):
    du = c * (X @ step)
    slope = float(g @ step)
    if not slope < 0:
        return theta, u, f, False
    t = 1.0
    for _ in range(_MAX_HALVINGS):
        ft = _np_value(u + t * du, theta + t * step, o, lam, rho, phibar)
        if ft <= f + 1e-4 * t * slope:
            return theta + t * step, u + t * du, ft, True
        t *= 0.5
    return theta, u, f, False  # no decrease within rounding: at the optimum


def _np_newton(X, o, theta, L, c, lam, rho, phibar, tol, max_iter):
    u = c * (X @ theta)
    f = _np_value(u, theta, o, lam, rho, phibar)
    g = _np_grad(X, u, theta, o, c, lam, rho, phibar)
    it = 0
    fresh = L is None
    while it < max_iter and np.max(np.abs(g)) >= tol:
        if fresh:
            L = _np_hess_chol(X, theta, c, lam, rho, phibar)
        step = -sla.cho_solve((L, True), g, check_finite=False)
        theta, u, f, moved = _np_armijo(X, u, theta, f, g, step, o, c, lam, rho, phibar)
        it += 1
        if not moved:
            break
        g = _np_grad(X, u, theta, o, c, lam, rho, phibar)
    return theta, it, float(np.max(np.abs(g))), f, L


def _np_lbfgs(X, o, theta, c, lam, rho, phibar, tol, max_iter):
    u = c * (X @ theta)
    f = _np_value(u, theta, o, lam, rho, phibar)
    g = _np_grad(X, u, theta, o, c, lam, rho, phibar)
    pairs: list[tuple[np.ndarray, np.ndarray, float]] = []
    it = 0
    while it < max_iter and np.max(np.abs(g)) >= tol:
        q = g.copy()
        al = []
        for s_, y_, r_ in reversed(pairs):  # newest first
            a_ = r_ * (s_ @ q)
            q -= a_ * y_
            al.append(a_)
        if pairs:
            s_, y_, _ = pairs[-1]
            q *= (s_ @ y_) / (y_ @ y_)
        else:
            q /= max(np.linalg.norm(g), 1e-300)
        for (s_, y_, r_), a_ in zip(pairs, reversed(al)):  # oldest first
            q += (a_ - r_ * (y_ @ q)) * s_
        theta_n, u_n, f_n, moved = _np_armijo(X, u, theta, f, g, -q, o, c, lam, rho, phibar)
        it += 1
        if not moved:
            break
        g_n = _np_grad(X, u_n, theta_n, o, c, lam, rho, phibar)
        sv, yv = theta_n - theta, g_n - g
        sy = float(sv @ yv)
        if sy > 1e-12 * float(yv @ yv):  # curvature condition, else skip the pair
            pairs.append((sv, yv, 1.0 / sy))
            pairs = pairs[-_LBFGS_MEMORY:]
        theta, u, f, g = theta_n, u_n, f_n, g_n
    return theta, it, float(np.max(np.abs(g))), f


def fit_logistic(
    X: np.ndarray,
    o: np.ndarray,
    c: float = 1.0,
    lam: float = 1.0,
    rho: float = 0.0,
    phibar: np.ndarray | None = None,
    theta0: np.ndarray | None = None,
    max_iter: int = 50,
    tol: float = 1e-8,
    solver: str = "newton",
    n: int | None = None,
    hessian: np.ndarray | None = None,
    return_hessian: bool = False,
    backend: str = "numpy",
):
    """Minimise J over theta (m,); returns (theta, SolverInfo).

    X (N, m) trajectory-difference features, o (N,) labels in {0, 1}; only the first ``n`` rows count
    (default all; pass a padded buffer and n to avoid recompiling as data arrive). Stops when the gradient's
    max-norm is below ``tol``, after ``max_iter`` iterations, or when a line search cannot decrease J.
    ``hessian``: a lower Cholesky factor used as Newton's fixed metric (lagged Newton), else fresh each step;
    ``return_hessian``: also return the last factor Newton used (for lagging), as a third element.
    ``backend``: "numpy" (default, faster here) or "jax" (jitted; X may then be a device array).
    """
    if solver not in SOLVERS:
        from quietrl.core.errors import ConfigError

        raise ConfigError(f"solver: unknown '{solver}'; valid: {', '.join(SOLVERS)}")
    if backend not in BACKENDS:
        from quietrl.core.errors import ConfigError

        raise ConfigError(f"backend: unknown '{backend}'; valid: {', '.join(BACKENDS)}")
    theta0 = None if theta0 is None else np.asarray(theta0, dtype=np.float64)
    pb = None if phibar is None else np.asarray(phibar, dtype=np.float64)
    if backend == "numpy":
        X = np.asarray(X, dtype=np.float64)
        o = np.asarray(o, dtype=np.float64)
        n = X.shape[0] if n is None else int(n)
        X, o = X[:n], o[:n]  # views: no copy
        m = X.shape[1]
        theta0 = np.zeros(m) if theta0 is None else theta0.copy()
        pb = np.zeros(m) if pb is None else pb
        if solver == "lbfgs":
            theta, it, gn, f = _np_lbfgs(X, o, theta0, c, lam, rho, pb, tol, max_iter)
            L = None
        else:
            theta, it, gn, f, L = _np_newton(X, o, theta0, hessian, c, lam, rho, pb, tol, max_iter)
        info = SolverInfo(int(it), gn, float(f), gn < tol, solver)
        return (theta, info, L) if return_hessian else (theta, info)
    if not isinstance(X, jax.Array):  # device arrays are used as they are (no copy of a large buffer)
        X = np.asarray(X, dtype=np.float64)
        o = np.asarray(o, dtype=np.float64)
    N, m = X.shape
    n = N if n is None else int(n)
    if N & (N - 1) or N < 16:  # not a power of two: pad so that jit sees few distinct shapes
        X, o = _pad(np.asarray(X), np.asarray(o), _pow2_rows(N))
    theta0 = np.zeros(m) if theta0 is None else theta0
    pb = np.zeros(m) if pb is None else pb
    args = (float(c), float(lam), float(rho), pb, float(tol), int(max_iter))
    with jax.enable_x64(True):
        if solver == "lbfgs":
            theta, it, gn, f = _lbfgs(X, o, n, theta0, *args)
        else:
            fresh = hessian is None
            L0 = np.eye(m) if fresh else np.asarray(hessian, dtype=np.float64)
            theta, it, gn, f, L = _newton(X, o, n, theta0, L0, *args, fresh)
        theta = np.asarray(theta)
        gn = float(gn)
    info = SolverInfo(int(it), gn, float(f), gn < tol, solver)
    if return_hessian:
        return theta, info, (np.asarray(L) if solver == "newton" else None)
    return theta, info
