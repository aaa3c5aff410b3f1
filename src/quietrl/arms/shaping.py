"""Shaping terms for the MAPF learners (per step, per agent; pure jnp): the hand-made ones (PBRS, bonus)
and how each ARMS method combines the learned r̂_θ with the sparse reward (:func:`learned_reward`).

All take arrays of one rollout shaped (T, E, n) (or any common shape) and return the shaping term to add
to the sparse reward; steps after an agent's removal or after the episode's end must be masked by the caller.
"""

from __future__ import annotations

import jax.numpy as jnp


def potential(dist: jnp.ndarray, dmax: jnp.ndarray, zero: jnp.ndarray) -> jnp.ndarray:
    """Φ = −d_BFS / d_max, and 0 where ``zero`` (agent arrived, or timeout) [spec §5]."""
    return jnp.where(zero, 0.0, -dist / dmax)


def pbrs_term(dist_before, dist_after, dmax, alive_before, terminal_after, gamma: float) -> jnp.ndarray:
    """F = γ Φ(s') − Φ(s) with Φ = 0 at removal and at every terminal (arrival and timeout).

    ``terminal_after`` is True where the step ends the agent's game (arrival) or the episode (timeout / all
    arrived). With Φ zeroed there, Σ_t γ^t F_t = −Φ(s_0) whatever is played (telescoping).
    """
    phi_before = potential(dist_before, dmax, ~alive_before)
    phi_after = potential(dist_after, dmax, terminal_after)
    return jnp.where(alive_before, gamma * phi_after - phi_before, 0.0)


def bonus_term(dist_before, dist_after, alive_before, bonus: float = 0.3) -> jnp.ndarray:
    """+bonus for each step that reduces the agent's BFS distance to its goal (not potential-based)."""
    return jnp.where(alive_before & (dist_after < dist_before), bonus, 0.0)


def learned_potential_term(phi: jnp.ndarray, alive_before, terminal_after, gamma: float) -> jnp.ndarray:
    """F_t = γ Φ_{t+1} − Φ_t from a learned potential evaluated on each step's pre-step observation.

    phi (T, ...) = r̂_θ(o_t) along one rollout of whole episodes (o_{t+1} is the post-step observation of step t
    while the episode goes on); Φ is 0 after ``terminal_after`` (arrival or episode end), so for every agent
    Σ_t γ^t F_t = −Φ(o_0): a constant offset of each payoff, whatever the policies (Nash set unchanged).
    """
    phi_next = jnp.concatenate([phi[1:], jnp.zeros_like(phi[:1])], 0)
    phi_next = jnp.where(terminal_after, 0.0, phi_next)
    return jnp.where(alive_before, gamma * phi_next - phi, 0.0)


LEARNED_FORMS = {"arms": "potential", "arms-frozen": "potential", "arms-replace": "replace", "arms-add": "add"}


def learned_reward(method: str, sparse, rhat, alive_before, terminal_after, gamma: float, beta: float = 1.0):
    """The reward an ARMS method hands the policy, and the learned term in it.

    ``rhat`` is the normalised r̂_θ (masked where the agent is not alive) on the observation the method's form
    reads: the pre-step one for ``arms`` and ``arms-frozen``, which use r̂ as a potential, R + (γΦ' − Φ)
    (telescopes, Nash set kept; needs ``alive_before`` and ``terminal_after``), the post-step one for
    ``arms-replace`` (r̂(o') instead of R) and ``arms-add`` (R + β r̂(o')), which ignore the masks.
    """
    form = LEARNED_FORMS.get(method)
    if form is None:
        raise ValueError(f"not an ARMS method: {method!r}; choose one of {', '.join(LEARNED_FORMS)}")
    if form == "potential":
        term = learned_potential_term(rhat, alive_before, terminal_after, gamma)
        return sparse + term, term
    if form == "replace":
        return rhat, rhat
    return sparse + beta * rhat, rhat
