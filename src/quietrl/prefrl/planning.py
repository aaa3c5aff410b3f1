"""Optimistic backward value iteration on the grid (spec §2.3) and feature occupancies (for maxinfo).

Q_h(z) = r_tilde(z) + beta_r b^r_h(z) + P_hat V_{h+1}(z) + beta_P (H - h) b^P(z),  V_h(s) = max_a Q_h(s, a),
V_{H+1} = 0 (h 1-based, so the transition bonus vanishes at the last step [proto]). No clipping (pitfall 2:
a Q-clip ties every action under large bonuses); ties are broken at random.
"""

from __future__ import annotations

import numpy as np

__all__ = ["plan", "argmax_random_ties", "feature_occupancy"]


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
