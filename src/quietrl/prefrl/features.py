"""Finite feature maps for the scalable (primal) estimators.

Nyström features on a fixed inducing set U: phi(z) = L^{-1} k_U(z), L = chol(K_UU + eps I), so that
phi(z)^T phi(z') is the Nyström approximation of k(z, z') (exact on U). Inducing states are chosen by
farthest-point sampling over the state coordinates (even spacing on a 1-D grid, a spread on 2-D), crossed
with every action [derived; spec §6 uses 30 inducing states per action on bumps1d].
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from quietrl.core.errors import UserError
from quietrl.prefrl.kernels import Kernel

__all__ = ["farthest_point_states", "nystrom_features", "grid_features", "phi_dot"]


def farthest_point_states(coords: np.ndarray, m: int) -> np.ndarray:
    """Indices ``(m,)`` of m well-spread rows of ``coords (S, d)`` (greedy farthest-point sampling)."""
    S = coords.shape[0]
    if m >= S:
        return np.arange(S)
    if m <= 0:
        raise UserError(f"number of inducing states must be positive, got {m}")
    chosen = [int(np.argmin(coords.sum(1)))]
    d = ((coords - coords[chosen[0]]) ** 2).sum(1)
    for _ in range(m - 1):
        j = int(np.argmax(d))
        chosen.append(j)
        d = np.minimum(d, ((coords - coords[j]) ** 2).sum(1))
    return np.sort(np.array(chosen))


def nystrom_features(kernel: Kernel, Z: np.ndarray, U: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """Nyström feature matrix ``(n, m)`` for points ``Z (n, d)`` on inducing points ``U (m, d)``.

    The jitter is grown tenfold (up to 1e-2 relative) until the Cholesky succeeds.
    """
    Kuu = kernel(U, U)
    scale = max(float(np.mean(np.diag(Kuu))), 1e-300)
    jitter = eps
    while True:
        try:
            L = np.linalg.cholesky(Kuu + jitter * scale * np.eye(len(U)))
            break
        except np.linalg.LinAlgError:
            jitter *= 10.0
            if jitter > 1e-2:
                raise UserError("Nyström: inducing Gram matrix is not positive definite even with jitter 1e-2")
    Kzu = kernel(Z, U)
    return sla.solve_triangular(L, Kzu.T, lower=True).T


def grid_features(env, kernel: Kernel, inducing_states: int | None = None, eps: float = 1e-8) -> np.ndarray:
    """Features ``(S*A, m)`` for every grid state-action of ``env``; m = inducing_states * A (all states if None)."""
    Zf = env.features
    A = env.num_actions
    n_ind = env.num_states if inducing_states is None else int(inducing_states)
    states = farthest_point_states(env.state_coords, n_ind)
    idx = (states[:, None] * A + np.arange(A)[None, :]).ravel()
    return nystrom_features(kernel, Zf, Zf[idx], eps)


def phi_dot(Phi: np.ndarray, M: np.ndarray, Phi_S: np.ndarray | None = None) -> np.ndarray:
    """``Phi (|Z|, m) @ M`` for M (m,) or (m, k). With ``Phi_S (S, m/A)``, the exact action-block form of
    Phi (phi(s, a) = e_a (x) phi_S(s), feature index i*A + a; see planning.action_blocks), the product
    takes A times fewer flops and reads a matrix A^2 times smaller."""
    if Phi_S is None:
        return Phi @ M
    S, mS = Phi_S.shape
    A = Phi.shape[0] // S
    if M.ndim == 1:
        return (Phi_S @ M.reshape(mS, A)).ravel()
    k = M.shape[1]
    return (Phi_S @ M.reshape(mS, A * k)).reshape(S * A, k)
