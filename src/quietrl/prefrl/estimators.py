"""Estimators: kernel logistic reward MLE, confidence widths, transition ridge regression, exact solver.

Float64 throughout (spec §7: float32 Cholesky with small ridge is unreliable). The logistic MLE runs as
jitted JAX inside ``jax.enable_x64`` contexts (``logistic.py``); the rank-k confidence-matrix updates, the
incremental Cholesky and the dual solver stay NumPy/SciPy (why: NOTES.md). The global x64 switch is never
touched. Reconstructed choices [derived, ours, not the paper's]: the gauge term,
the unweighted confidence matrix V_n, the beta formulas (kernel-logistic-bandit form), the Laplace width,
the KOVI-style transition bonus. Each is a separate function or class so it can be swapped.

Shapes: m features, n observations, |Z| grid state-action pairs, S states.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg as sla

from quietrl.core.errors import UserError
from quietrl.prefrl.features import phi_dot
from quietrl.prefrl.logistic import NewtonInfo, SolverInfo, fit_logistic, logistic_objective
from quietrl.prefrl.oracle import log1pexp, sigmoid

__all__ = [
    "NewtonInfo",
    "SolverInfo",
    "logistic_objective",
    "fit_logistic",
    "FeatureGram",
    "PreferenceRewardModel",
    "theory_beta",
    "kappa_btl",
    "RidgeRewardModel",
    "TransitionModel",
    "IncrementalCholesky",
    "ExactRewardModel",
]


# ----------------------------------------------------------------------------------------------------
# Kernel logistic MLE (primal, finite features)
# ----------------------------------------------------------------------------------------------------


def kappa_btl(c: float, horizon: int, reward_range: tuple[float, float]) -> float:
    """kappa = sup_{|x| <= c Delta} 1/mu'(x) = 2 + e^{c Delta} + e^{-c Delta}, Delta = H (r_max - r_min)."""
    d = c * horizon * (reward_range[1] - reward_range[0])
    return 2.0 + math.exp(d) + math.exp(-d)


def theory_beta(logdet_ratio: float, kappa: float, lam: float, norm_bound: float = 1.0, delta: float = 0.05) -> float:
    """Theory width multiplier of ||x||_{V^{-1}} [derived from the kernel-logistic-bandit form, spec §2.1]:

    beta = 4 L B + (2 L / sqrt(kappa lam)) sqrt(2 log(1/delta) + logdet(I + K/(kappa lam))), L = 1/4,
    rescaled to a return-difference width: sqrt(kappa lam) * beta / L.
    """
    L = 0.25
    b = 4 * L * norm_bound + (2 * L / math.sqrt(kappa * lam)) * math.sqrt(2 * math.log(1 / delta) + max(logdet_ratio, 0.0))
    return math.sqrt(kappa * lam) * b / L


class FeatureGram:
    """G = G0 + sum_j x_j x_j^T (m x m) with its Cholesky, log det and cached widths phi(z)^T G^{-1} phi(z)
    for every grid row of ``Phi (|Z|, m)``. Row additions update the widths by Woodbury in O(|Z| m k)."""

    def __init__(self, Phi: np.ndarray, G0: np.ndarray, refresh_every: int = 200, Phi_S: np.ndarray | None = None):
        self.Phi = Phi
        self.Phi_S = Phi_S  # optional action-block form of Phi (features.phi_dot)
        self.G = np.array(G0, dtype=np.float64)
        self.refresh_every = refresh_every
        self._adds = 0
        self._factor()
        self.logdet0 = self.logdet
        self.w2 = self._full_widths()

    def _factor(self):
        self.L = np.linalg.cholesky(self.G)
        self.logdet = 2.0 * float(np.sum(np.log(np.diag(self.L))))

    def _full_widths(self):
        B = sla.solve_triangular(self.L, self.Phi.T, lower=True)
        return np.sum(B * B, axis=0)

    def solve(self, b: np.ndarray) -> np.ndarray:
        """G^{-1} b for b (m,) or (m, k)."""
        return sla.cho_solve((self.L, True), b, check_finite=False)

    def add(self, Xnew: np.ndarray) -> None:
        """G += Xnew^T Xnew for Xnew (k, m); widths by Woodbury, log det by the determinant lemma."""
        Xnew = np.atleast_2d(Xnew)
        if Xnew.shape[0] > self.G.shape[0] // 2:
            # many rows at once: refactor and recompute the widths directly (cheaper than a k x k Woodbury)
            self.G += Xnew.T @ Xnew
            self._factor()
            self.w2 = self._full_widths()
            return
        U = self.solve(Xnew.T)  # (m, k)
        S = np.eye(Xnew.shape[0]) + Xnew @ U
        Ls = np.linalg.cholesky(S)
        Gz = sla.solve_triangular(Ls, phi_dot(self.Phi, U, self.Phi_S).T, lower=True)  # (k, |Z|)
        self.G += Xnew.T @ Xnew
        self._factor()
        self._adds += 1
        if self._adds % self.refresh_every == 0:
            self.w2 = self._full_widths()  # bound the drift of repeated downdates
        else:
            self.w2 = np.maximum(self.w2 - np.sum(Gz * Gz, axis=0), 0.0)

    def widths(self) -> np.ndarray:
        """||phi(z)||_{G^{-1}} for every grid row; shape (|Z|,)."""
        return np.sqrt(np.maximum(self.w2, 0.0))

    def sample(self, rng: np.random.Generator, k: int = 1) -> np.ndarray:
        """Draws of N(0, G^{-1}); shape (k, m)."""
        xi = rng.standard_normal((self.G.shape[0], k))
        return sla.solve_triangular(self.L.T, xi, lower=False).T


class PreferenceRewardModel:
    """Reward from trajectory preferences: logistic MLE on x = Psi(tau1) - Psi(tau2) with gauge fix, and the
    confidence matrix V_n = kappa lam I + rho phibar phibar^T + c^2 sum x x^T (rank-one updates).

    ``Phi (|Z|, m)``: grid features; the gauge direction phibar is their mean (spec §2.1, [proto] rho = 1e3).
    r_hat(z) = Phi @ theta; widths ||phi(z)||_{V^{-1}} cached for every z.
    """

    def __init__(self, Phi, c=1.0, lam=1.0, rho=1e3, kappa=1.0, capacity=256, solver="newton", hessian_refresh=1.25,
                 Phi_S=None):
        self.Phi, self.Phi_S = Phi, Phi_S
        self.c, self.lam, self.rho, self.kappa = float(c), float(lam), float(rho), float(kappa)
        self.solver, self.hessian_refresh = solver, float(hessian_refresh)
        self._hess: np.ndarray | None = None  # lagged Newton metric (Cholesky factor) and the n it was made at
        self._hess_n = 0
        m = Phi.shape[1]
        self.phibar = Phi.mean(0)
        self.V = FeatureGram(Phi, kappa * lam * np.eye(m) + rho * np.outer(self.phibar, self.phibar), Phi_S=Phi_S)
        self.X = np.zeros((capacity, m))
        self.o = np.zeros(capacity)
        self.n = 0
        self.theta = np.zeros(m)
        self.last_info: NewtonInfo | None = None

    def reserve(self, n: int) -> None:
        """Grow the buffers (by doubling, so their row count stays a power of two) to hold n observations."""
        while n > self.X.shape[0]:
            self.X = np.concatenate([self.X, np.zeros_like(self.X)])
            self.o = np.concatenate([self.o, np.zeros_like(self.o)])

    def add(self, x: np.ndarray, label: int) -> None:
        """Append one observation (buffers double when full)."""
        self.reserve(self.n + 1)
        self.X[self.n] = x
        self.o[self.n] = label
        self.n += 1
        self.V.add(self.c * x[None, :])

    def add_batch(self, X: np.ndarray, labels: np.ndarray) -> None:
        """Append many observations ``X (k, m)``, ``labels (k,)`` with one confidence-matrix update."""
        k = X.shape[0]
        self.reserve(self.n + k)
        self.X[self.n : self.n + k] = X
        self.o[self.n : self.n + k] = labels
        self.n += k
        self.V.add(self.c * X)

    def refit(self, max_iter: int = 3, tol: float = 1e-6, solver: str | None = None) -> SolverInfo:
        """Warm-started refit of theta (``solver``: the model's by default). Newton is textbook (fresh
        Hessian every iteration) when n has grown by ``hessian_refresh`` since the last such refit, and keeps
        that refit's last Hessian factor as a fixed metric in between: O(n m) instead of O(n m^2) per refit."""
        solver = solver or self.solver
        fresh = solver == "newton" and (self._hess is None or self.n >= self.hessian_refresh * self._hess_n)
        self.theta, self.last_info, L = fit_logistic(
            self.X, self.o, self.c, self.lam, self.rho, self.phibar, self.theta, max_iter, tol,
            solver=solver, n=self.n, hessian=None if fresh else self._hess, return_hessian=True,
        )
        if fresh:
            self._hess, self._hess_n = L, self.n
        return self.last_info

    def reward(self, theta: np.ndarray | None = None) -> np.ndarray:
        """r_hat on the grid, shape (|Z|,)."""
        return phi_dot(self.Phi, self.theta if theta is None else theta, self.Phi_S)

    def widths(self) -> np.ndarray:
        """||phi(z)||_{V^{-1}} for every grid z; shape (|Z|,)."""
        return self.V.widths()

    def centred_widths(self, m_h: np.ndarray) -> np.ndarray:
        """||phi(z) - m_h||_{V^{-1}} for reference features m_h (H, m); shape (H, |Z|)."""
        Vm = self.V.solve(m_h.T)  # (m, H)
        cross = phi_dot(self.Phi, Vm, self.Phi_S)  # (|Z|, H)
        quad = np.sum(m_h.T * Vm, axis=0)  # (H,)
        return np.sqrt(np.maximum(self.V.w2[None, :] - 2 * cross.T + quad[:, None], 0.0))

    def logdet_ratio(self) -> float:
        """log det(V_n) - log det(V_0): the information term of the theory beta."""
        return self.V.logdet - self.V.logdet0

    def laplace_cov_widths(self, Q: np.ndarray) -> np.ndarray:
        """Laplace-posterior standard deviations of <theta, q> for rows of Q (k, m) at the current theta
        (Hessian of the regularised log-likelihood, weighted by mu')."""
        X = self.X[: self.n]
        mu = sigmoid(self.c * (X @ self.theta))
        Hs = (X.T * (self.c**2 * mu * (1 - mu))) @ X + self.lam * np.eye(len(self.theta)) + self.rho * np.outer(
            self.phibar, self.phibar
        )
        Lh = np.linalg.cholesky(Hs)
        B = sla.solve_triangular(Lh, Q.T, lower=True)
        return np.sqrt(np.sum(B * B, axis=0))


class RidgeRewardModel:
    """Numeric-reward ridge regression (for the oracle_ucb reference): A_r = lam I + sum phi phi^T."""

    def __init__(self, Phi, lam=1.0, Phi_S=None):
        self.Phi, self.Phi_S = Phi, Phi_S
        self.lam = float(lam)
        self.A = FeatureGram(Phi, lam * np.eye(Phi.shape[1]), Phi_S=Phi_S)
        self.b = np.zeros(Phi.shape[1])
        self.theta = np.zeros(Phi.shape[1])

    def add(self, z_idx: np.ndarray, y: np.ndarray) -> None:
        F = self.Phi[z_idx]
        self.A.add(F)
        self.b += F.T @ y
        self.theta = self.A.solve(self.b)

    def reward(self) -> np.ndarray:
        return phi_dot(self.Phi, self.theta, self.Phi_S)

    def widths(self) -> np.ndarray:
        """sqrt(lam phi^T A^{-1} phi) per grid z (spec §5)."""
        return math.sqrt(self.lam) * self.A.widths()


class TransitionModel:
    """KOVI-style kernel ridge regression of V(s') on z with Nyström features (spec §2.2).

    P_hat V(z) = phi(z)^T A_P^{-1} sum_j phi(z_j) V(s'_j), A_P = lam_P I + sum_j phi(z_j) phi(z_j)^T; bonus
    b^P(z) = ||phi(z)||_{A_P^{-1}} = lam_P^{-1/2} sigma_P(z). Observed pairs are grid points, so the data
    enter through a count matrix C (|Z|, S) and P_hat V = Phi A_P^{-1} Phi^T (C V).
    """

    def __init__(self, Phi, num_states, lam=1.0, Phi_S=None):
        self.Phi, self.Phi_S = Phi, Phi_S
        self.lam = float(lam)
        self.A = FeatureGram(Phi, lam * np.eye(Phi.shape[1]), Phi_S=Phi_S)
        self.C = np.zeros((Phi.shape[0], num_states))
        self.PhiTC = np.zeros((Phi.shape[1], num_states))  # Phi^T C, kept incrementally: O(m) per transition

    def add(self, z_idx: np.ndarray, s_next: np.ndarray) -> None:
        """Add transitions (z_j -> s'_j), both (k,)."""
        np.add.at(self.C, (z_idx, s_next), 1.0)
        np.add.at(self.PhiTC.T, s_next, self.Phi[z_idx])
        self.A.add(self.Phi[z_idx])

    def backup(self, V: np.ndarray) -> np.ndarray:
        """P_hat V on every grid z; V (S,) -> (|Z|,). O(m S + m^2 + |Z| m)."""
        return phi_dot(self.Phi, self.A.solve(self.PhiTC @ V), self.Phi_S)

    def matrix(self) -> np.ndarray:
        """P_hat as a (|Z|, S) matrix (signed: kernel ridge weights need not be probabilities)."""
        return phi_dot(self.Phi, self.A.solve(self.PhiTC), self.Phi_S)

    def widths(self) -> np.ndarray:
        return self.A.widths()


# ----------------------------------------------------------------------------------------------------
# Exact (dual) reward model: incremental Cholesky of the trajectory-dueling Gram
# ----------------------------------------------------------------------------------------------------


class IncrementalCholesky:
    """Lower Cholesky factor of a growing SPD matrix M (n x n), one row/column appended at a time in O(n^2).

    The factor lives in a square buffer that doubles when full; triangular solves run blockwise on views of
    it (one BLAS matrix-vector product per block, no copy of the factor). Also tracks log det M.
    """

    def __init__(self, capacity: int = 256, block: int = 512):
        self.buf = np.zeros((capacity, capacity))
        self.n = 0
        self.logdet = 0.0
        self.block = block

    @property
    def L(self) -> np.ndarray:
        return self.buf[: self.n, : self.n]

    def _grow(self):
        cap = self.buf.shape[0]
        new = np.zeros((2 * cap, 2 * cap))
        new[:cap, :cap] = self.buf
        self.buf = new

    def solve_lower(self, b: np.ndarray) -> np.ndarray:
        """L^{-1} b for b (n,) by blocked forward substitution."""
        n, B = self.n, self.block
        x = np.array(b, dtype=np.float64)
        for i0 in range(0, n, B):
            i1 = min(i0 + B, n)
            if i0:
                x[i0:i1] -= self.buf[i0:i1, :i0] @ x[:i0]
            x[i0:i1] = sla.solve_triangular(self.buf[i0:i1, i0:i1], x[i0:i1], lower=True, check_finite=False)
        return x

    def solve_upper(self, b: np.ndarray) -> np.ndarray:
        """L^{-T} b for b (n,) by blocked back substitution."""
        n, B = self.n, self.block
        x = np.array(b, dtype=np.float64)
        starts = list(range(0, n, B))
        for i0 in reversed(starts):
            i1 = min(i0 + B, n)
            if i1 < n:
                x[i0:i1] -= self.buf[i1:n, i0:i1].T @ x[i1:n]
            x[i0:i1] = sla.solve_triangular(
                self.buf[i0:i1, i0:i1], x[i0:i1], lower=True, trans="T", check_finite=False
            )
        return x

    def solve(self, b: np.ndarray) -> np.ndarray:
        """M^{-1} b."""
        return self.solve_upper(self.solve_lower(b))

    def append(self, col: np.ndarray, diag: float) -> tuple[np.ndarray, float]:
        """Append M's new last row: ``col (n,)`` = M[n, :n], ``diag`` = M[n, n]. Returns (l, d), the new
        factor row's off-diagonal part and diagonal."""
        l = self.solve_lower(col) if self.n else np.zeros(0)
        d2 = diag - float(l @ l)
        if not d2 > 0:
            raise UserError(f"incremental Cholesky: matrix not positive definite at row {self.n} (pivot {d2:.3g})")
        d = math.sqrt(d2)
        if self.n == self.buf.shape[0]:
            self._grow()
        self.buf[self.n, : self.n] = l
        self.buf[self.n, self.n] = d
        self.n += 1
        self.logdet += 2.0 * math.log(d)
        return l, d


class ExactRewardModel:
    """Exact kernel (dual) confidence widths for the trajectory-difference reward model.

    Data are count-difference vectors c_i in R^{|Z|} (visits of tau1 minus visits of tau2), so
    x_i = sum_z c_i[z] phi(z) and the trajectory-dueling Gram is K^D_ij = c_i^T K_ZZ c_j. A gauge pseudo-row
    x_0 = sqrt(rho) * mean_z phi(z) comes first. Maintains the incremental Cholesky of K^D + lam I, log det,
    and for every grid z the cached s2(z) = k(z,z) - k_n(z)^T (K^D + lam I)^{-1} k_n(z), so that
    ||phi(z)||^2_{V_n^{-1}} = s2(z) / lam with V_n = lam I + sum x x^T. One episode costs O(n^2 + n|Z|).
    """

    def __init__(self, Kzz: np.ndarray, lam: float = 1.0, rho: float = 1e3, c: float = 1.0, capacity: int = 256):
        self.Kzz = np.asarray(Kzz, dtype=np.float64)
        self.lam, self.rho, self.c = float(lam), float(rho), float(c)
        nz = self.Kzz.shape[0]
        self.chol = IncrementalCholesky(capacity)
        self.Cm = np.zeros((capacity, nz))  # scaled count vectors, one row per observation
        self.A = np.zeros((capacity, nz))  # rows a_j(z) = (L^{-1} k_n(z))_j
        self.s2 = np.diag(self.Kzz).copy()
        self.labels = np.zeros(capacity)
        if rho > 0:
            self._append(np.full(nz, math.sqrt(rho) / nz))

    @property
    def n(self) -> int:
        return self.chol.n

    def _grow(self):
        for name in ("Cm", "A"):
            arr = getattr(self, name)
            setattr(self, name, np.concatenate([arr, np.zeros_like(arr)]))
        self.labels = np.concatenate([self.labels, np.zeros_like(self.labels)])

    def _append(self, cvec: np.ndarray) -> None:
        n = self.n
        if n == self.Cm.shape[0]:
            self._grow()
        nz_idx = np.nonzero(cvec)[0]
        g = self.Kzz[:, nz_idx] @ cvec[nz_idx]  # k_n(z) for the new row: (|Z|,)
        col = self.Cm[:n] @ g  # K^D[n, :n]
        diag = float(cvec[nz_idx] @ g[nz_idx]) + self.lam
        l, d = self.chol.append(col, diag)
        a = (g - self.A[:n].T @ l) / d
        self.Cm[n] = cvec
        self.A[n] = a
        self.s2 = np.maximum(self.s2 - a * a, 0.0)

    def add(self, z1: np.ndarray, z2: np.ndarray, label: int) -> None:
        """One episode: visited state-action indices of tau1 and tau2 (H,) each, and the label."""
        if self.n == self.Cm.shape[0]:
            self._grow()
        cvec = np.zeros(self.Kzz.shape[0])
        np.add.at(cvec, z1, self.c)
        np.add.at(cvec, z2, -self.c)
        self.labels[self.n] = label
        self._append(cvec)

    def widths(self) -> np.ndarray:
        """||phi(z)||_{V_n^{-1}} for every grid z; shape (|Z|,)."""
        return np.sqrt(self.s2 / self.lam)

    @classmethod
    def from_batch(cls, Kzz, z1s, z2s, labels, lam=1.0, rho=1e3, c=1.0, capacity=None) -> "ExactRewardModel":
        """The state after appending episodes ``z1s, z2s (n, H)`` one by one, built by one batch factorisation
        (used to start benchmarks at large n; the tests check it equals the incremental path)."""
        n = len(z1s)
        nz = Kzz.shape[0]
        cap = max(capacity or 0, n + 2)
        m = cls(Kzz, lam, 0.0, c, capacity=cap)
        m.rho = float(rho)
        rows = [np.full(nz, math.sqrt(rho) / nz)] if rho > 0 else []
        for a, b in zip(z1s, z2s):
            v = np.zeros(nz)
            np.add.at(v, a, c)
            np.add.at(v, b, -c)
            rows.append(v)
        Cm = np.array(rows)
        KC = Cm @ m.Kzz
        KD = KC @ Cm.T
        KD[np.diag_indices_from(KD)] += lam
        L = np.linalg.cholesky(KD)
        A = sla.solve_triangular(L, KC, lower=True, check_finite=False)
        k = len(rows)
        m.chol.buf[:k, :k] = L
        m.chol.n = k
        m.chol.logdet = 2.0 * float(np.sum(np.log(np.diag(L))))
        m.Cm[:k], m.A[:k] = Cm, A
        m.labels[k - n : k] = labels
        m.s2 = np.maximum(np.diag(m.Kzz) - np.sum(A * A, axis=0), 0.0)
        m.alpha = np.zeros(k)
        return m

    # --- dual logistic MLE: Newton with preconditioned conjugate gradients ---
    def _K_matvec(self, v):
        n = self.n
        L = self.chol.buf[:n, :n]
        return L @ (L.T @ v) - self.lam * v  # K^D v = (K^D + lam I) v - lam v, from the factor alone

    def refit(self, newton_steps: int = 3, cg_tol: float = 1e-6, cg_max: int = 100) -> dict:
        """Dual logistic MLE f = sum_j alpha_j x_j (gauge row j = 0 with quadratic loss u_0^2 / 2):

        J(alpha) = sum_{j>=1} [log(1+e^{u_j}) - o_j u_j] + u_0^2/2 + lam/2 alpha^T K alpha, u = K alpha.
        Newton system (W K + lam I) D = -(g + lam alpha), solved as B y = W^{-1/2} r with
        B = W^{1/2} K W^{1/2} + lam I by conjugate gradients preconditioned with W^{-1/2}(K + lam I)^{-1}W^{-1/2}
        (the incremental factor), O(n^2) per iteration; Armijo backtracking along D.
        Returns {"newton": steps, "cg": total CG iterations, "grad": final gradient max-norm}.
        """
        n = self.n
        if not hasattr(self, "alpha") or self.alpha.shape[0] != n:
            a = np.zeros(n)
            if hasattr(self, "alpha"):
                a[: self.alpha.shape[0]] = self.alpha
            self.alpha = a
        o = self.labels[:n]
        gauge = self.rho > 0
        alpha = self.alpha
        u = self._K_matvec(alpha)

        def parts(u):
            mu = sigmoid(u)
            g, w = mu - o, mu * (1 - mu)
            loss = log1pexp(u) - o * u
            if gauge:
                g[0], w[0], loss[0] = u[0], 1.0, 0.5 * u[0] ** 2
            return g, np.maximum(w, 1e-12), loss

        total_cg, gn = 0, np.inf
        for step in range(newton_steps):
            g, w, loss = parts(u)
            r = -(g + self.lam * alpha)
            gn = float(np.max(np.abs(self._K_matvec(-r))))
            if gn < 1e-10:
                break
            sw = np.sqrt(w)
            b = r / sw
            Bmv = lambda v: sw * self._K_matvec(sw * v) + self.lam * v
            Pinv = lambda v: self.chol.solve(v / sw) / sw
            y = np.zeros(n)
            res = b.copy()
            zv = Pinv(res)
            pdir = zv.copy()
            rz = res @ zv
            bnorm = np.linalg.norm(b)
            for it in range(cg_max):
                Bp = Bmv(pdir)
                a_ = rz / (pdir @ Bp)
                y += a_ * pdir
                res -= a_ * Bp
                total_cg += 1
                if np.linalg.norm(res) <= cg_tol * bnorm:
                    break
                zv = Pinv(res)
                rz_new = res @ zv
                pdir = zv + (rz_new / rz) * pdir
                rz = rz_new
            D = sw * y
            KD = self._K_matvec(D)
            J0 = float(loss.sum() + 0.5 * self.lam * alpha @ u)
            slope = float((g + self.lam * alpha) @ KD)
            t = 1.0
            while True:
                u_t = u + t * KD
                _, _, loss_t = parts(u_t)
                J = float(loss_t.sum() + 0.5 * self.lam * (alpha @ u + 2 * t * D @ u + t * t * D @ KD))
                if J <= J0 + 1e-4 * t * slope or t < 1e-8:
                    break
                t *= 0.5
            alpha = alpha + t * D
            u = u_t
        self.alpha = alpha
        return {"newton": step + 1, "cg": total_cg, "grad": gn}

    def reward(self) -> np.ndarray:
        """r_hat(z) = sum_j alpha_j <x_j, phi(z)> on the grid; shape (|Z|,)."""
        n = self.n
        alpha = getattr(self, "alpha", np.zeros(n))
        return self.Kzz @ (self.Cm[: len(alpha)].T @ alpha)

    @property
    def logdet(self) -> float:
        """log det(K^D + lam I) including the gauge row."""
        return self.chol.logdet

    def batch_widths(self) -> np.ndarray:
        """Same widths by a from-scratch factorisation (O(n^3)): the reference for tests and benchmarks."""
        n = self.n
        Cm = self.Cm[:n]
        KC = Cm @ self.Kzz  # (n, |Z|) = k_n(z)^T rows
        KD = KC @ Cm.T + self.lam * np.eye(n)
        L = np.linalg.cholesky(KD)
        B = sla.solve_triangular(L, KC, lower=True)
        return np.sqrt(np.maximum(np.diag(self.Kzz) - np.sum(B * B, axis=0), 0.0) / self.lam)
