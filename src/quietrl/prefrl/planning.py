"""Optimistic backward value iteration on the grid (spec §2.3) and feature occupancies (for maxinfo).

Q_h(z) = r_tilde(z) + beta_r b^r_h(z) + P_hat V_{h+1}(z) + beta_P (H - h) b^P(z),  V_h(s) = max_a Q_h(s, a),
V_{H+1} = 0 (h 1-based, so the transition bonus vanishes at the last step [proto]). No clipping (pitfall 2:
a Q-clip ties every action under large bonuses); ties are broken at random.

``plan_linear`` is the learners' hot path: k plans at once (e.g. ucb's optimistic and plug-in plans) in one
jitted JAX float64 program (``lax.scan`` over h), for the kernel-ridge transition model
P_hat V = Phi A^{-1} Phi^T C V. ``plan`` is the reference NumPy version for any ``backup`` callable.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["plan", "plan_linear", "action_blocks", "expand_blocks", "argmax_random_ties", "feature_occupancy"]


def argmax_random_ties(Q: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Row-wise argmax of ``Q (S, A)`` choosing uniformly among (near-)ties; shape (S,)."""
    top = Q.max(1, keepdims=True)
    tied = Q >= top - 1e-12 * (1.0 + np.abs(top))
    noise = rng.random(Q.shape) * tied
    return np.argmax(noise + tied, axis=1)


def plan(
    horizon: int,
    num_states: int,
    num_actions: int,
    reward: np.ndarray,
    backup,
    rng: np.random.Generator,
    reward_bonus: np.ndarray | None = None,
    transition_bonus: np.ndarray | None = None,
    beta_r: float = 0.0,
    beta_P: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Backward DP in a learned model.

    reward (|Z|,) or (H, |Z|); backup: V (S,) -> P_hat V (|Z|,); reward_bonus (|Z|,) or (H, |Z|);
    transition_bonus (|Z|,). Returns (policy (H, S), V (H+1, S)).
    """
    H, S, A = horizon, num_states, num_actions
    V = np.zeros((H + 1, S))
    pol = np.zeros((H, S), dtype=np.int64)
    for h in range(H - 1, -1, -1):
        q = (reward[h] if reward.ndim == 2 else reward).copy()
        if reward_bonus is not None and beta_r:
            q += beta_r * (reward_bonus[h] if reward_bonus.ndim == 2 else reward_bonus)
        if h < H - 1:
            q += backup(V[h + 1])
            if transition_bonus is not None and beta_P:
                q += beta_P * (H - 1 - h) * transition_bonus
        Q = q.reshape(S, A)
        a = argmax_random_ties(Q, rng)
        pol[h] = a
        V[h] = Q[np.arange(S), a]
    return pol, V


def feature_occupancy(policy: np.ndarray, P_hat: np.ndarray, Phi: np.ndarray, s1: int) -> np.ndarray:
    """E_pi Psi = sum_h sum_s d_h(s) phi(s, pi_h(s)) under a transition matrix ``P_hat (|Z|, S)``.

    policy (H, S); Phi (|Z|, m). Returns (m,). Per-step state occupancies d_h (S,) start at s1.
    """
    H, S = policy.shape
    A = P_hat.shape[0] // S
    d = np.zeros(S)
    d[s1] = 1.0
    out = np.zeros(Phi.shape[1])
    for h in range(H):
        z = np.arange(S) * A + policy[h]
        out += d @ Phi[z]
        d = d @ P_hat[z]
    return out


@functools.partial(jax.jit, static_argnames=("blocked",))
def _plan_linear(R, RB, cr, tw, ct, F, PhiTC, LA, noise, blocked):
    k, Z = R.shape
    H = RB.shape[0]
    S = PhiTC.shape[1]
    A = Z // S

    def next_values(w):  # w (m, k) -> phi(z)^T w for every z, as (k, S, A)
        if blocked:  # phi(s, a) = e_a (x) phi_S(s): one (S, m_S) x (m_S, A k) product, A times less work
            return jnp.einsum("si,iak->ksa", F, w.reshape(F.shape[1], A, k))
        return (F @ w).T.reshape(k, S, A)

    def step(V, xs):
        rb, rem = xs  # rb (Z,) reward bonus at step h; rem = H - 1 - h (h 0-based)
        w = jax.scipy.linalg.cho_solve((LA, True), PhiTC @ V.T)  # (m, k): A^{-1} Phi^T C V
        q = R + cr[:, None] * rb[None, :] + (rem * ct)[:, None] * tw[None, :]
        Q = q.reshape(k, S, A) + next_values(w)  # V = 0 at h = H - 1: no backup there
        top = Q.max(-1, keepdims=True)
        tied = Q >= top - 1e-12 * (1.0 + jnp.abs(top))
        a = jnp.argmax(noise * tied + tied, axis=-1)
        Vh = jnp.take_along_axis(Q, a[..., None], -1)[..., 0]
        return Vh, (a, Vh)

    rem = jnp.arange(H - 1, -1, -1, dtype=R.dtype)
    _, (pol, Vs) = jax.lax.scan(step, jnp.zeros((k, S), R.dtype), (RB, rem), reverse=True)
    return jnp.swapaxes(pol, 0, 1), jnp.swapaxes(Vs, 0, 1)


def action_blocks(Phi: np.ndarray, num_actions: int, tol: float = 1e-8) -> np.ndarray | None:
    """``Phi_S (S, m_S)`` when ``Phi (S*A, m_S*A)`` factors as phi(s, a) = e_a (x) phi_S(s) (feature index
    i*A + a), as Nyström features of k_S x delta_A do: the inducing Gram is block diagonal, so the factor has
    exact zeros across actions, and its diagonal blocks agree up to the Cholesky's rounding (<= 5e-10 on
    bumps1d), accepted up to ``tol`` x max|Phi|. None otherwise. ``expand_blocks`` rebuilds an exactly
    factored Phi, which learners then use everywhere so that all models see the same features."""
    Z, m = Phi.shape
    A = num_actions
    if A < 2 or m % A or Z % A:
        return None
    B = Phi.reshape(Z // A, A, m // A, A)
    diag = B[:, np.arange(A), :, np.arange(A)]  # (A, S, m_S)
    off = B.copy()
    off[:, np.arange(A), :, np.arange(A)] = 0.0
    scale = tol * max(float(np.abs(Phi).max()), 1e-300)
    if np.any(off) or np.abs(diag - diag[:1]).max() > scale:
        return None
    return np.ascontiguousarray(diag.mean(0))


def expand_blocks(Phi_S: np.ndarray, num_actions: int) -> np.ndarray:
    """Phi (S*A, m_S*A) with phi(s, a) = e_a (x) phi_S(s), feature index i*A + a; inverse of action_blocks."""
    S, mS = Phi_S.shape
    A = num_actions
    out = np.zeros((S, A, mS, A))
    out[:, np.arange(A), :, np.arange(A)] = Phi_S[None]
    return out.reshape(S * A, mS * A)


def plan_linear(
    rewards: np.ndarray,
    reward_bonus: np.ndarray,
    beta_r: np.ndarray,
    transition_bonus: np.ndarray,
    beta_P: np.ndarray,
    F,
    PhiTC: np.ndarray,
    LA: np.ndarray,
    rng: np.random.Generator,
    horizon: int,
    blocked: bool = False,
):
    """k optimistic DPs at once in the kernel-ridge transition model (spec §2.3), one jitted JAX float64 call.

    Q_h(z) = r_i(z) + beta_r[i] b_h(z) + phi(z)^T A^{-1} Phi^T C V_{h+1} + beta_P[i] (H - h) b^P(z) (h 1-based),
    V_h(s) = max_a Q_h(s, a), for plans i = 1..k. rewards (k, |Z|); reward_bonus (|Z|,) or (H, |Z|);
    beta_r, beta_P (k,) (0 switches a bonus off); transition_bonus (|Z|,); F: Phi (|Z|, m), or Phi_S (S, m/A)
    from ``action_blocks`` with ``blocked=True`` (ideally a cached x64 JAX array); PhiTC (m, S) = Phi^T C with
    C the transition count matrix; LA (m, m) lower Cholesky factor of A. Ties are broken at random by one
    uniform draw per (plan, state, action) from ``rng``, shared by the H steps of a call (JAX's threefry
    would multiply the compile time). Returns (policies (k, H, S) int, V (k, H, S)) as NumPy arrays.
    """
    rewards = np.atleast_2d(rewards)
    k, Z = rewards.shape
    S = PhiTC.shape[1]
    rb = np.asarray(reward_bonus, dtype=np.float64)
    rb = np.broadcast_to(rb, (horizon, Z)) if rb.ndim == 1 else rb
    noise = rng.random((k, S, Z // S))
    with jax.enable_x64(True):
        pol, V = _plan_linear(rewards, rb, np.asarray(beta_r, np.float64), transition_bonus,
                              np.asarray(beta_P, np.float64), F, PhiTC, LA, noise, blocked=blocked)
        return np.asarray(pol), np.asarray(V)
