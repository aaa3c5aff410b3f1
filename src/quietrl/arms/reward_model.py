"""The ARMS reward model: trajectory returns under r̂_θ and the pairwise Bradley-Terry ranking loss.

Reconstruction [spec §2]: r̂_θ is shared by all agents and sees one agent's post-step observation; a
trajectory's learned return is Ĝ_θ(τ) = Σ_t γ^t m_t r̂_θ(o'_t) with m_t masking steps after the agent's removal.
Pairs are ordered by their discounted sparse return y; the loss is −log σ(Ĝ(τ⁺) − Ĝ(τ⁻)) averaged over
pairs with different labels. Tied pairs get weight 0 (they add nothing, so a dense r̂ is free to break ties),
plus an L2 penalty on θ.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax


def discounts(horizon: int, gamma: float) -> jax.Array:
    """γ^t for t = 0..horizon-1, shape (horizon,)."""
    return gamma ** jnp.arange(horizon, dtype=jnp.float32)


def trajectory_returns(apply_fn: Callable, params, obs: jax.Array, mask: jax.Array, gamma: float) -> jax.Array:
    """Learned discounted returns (B,) of trajectories obs (B, T, D) with step masks (B, T)."""
    r = apply_fn(params, obs)
    return (r * mask * discounts(obs.shape[1], gamma)).sum(-1)


def pair_loss(g_a: jax.Array, g_b: jax.Array, y_a: jax.Array, y_b: jax.Array) -> jax.Array:
    """Mean Bradley-Terry loss over untied pairs; g_*, y_* (P,). Tied pairs (y_a == y_b) contribute nothing."""
    sign = jnp.sign(y_a - y_b)
    w = (sign != 0).astype(jnp.float32)
    losses = jax.nn.softplus(-sign * (g_a - g_b))  # = -log σ(Ĝ⁺ - Ĝ⁻)
    return (w * losses).sum() / jnp.maximum(w.sum(), 1.0)


def l2_penalty(params) -> jax.Array:
    return sum(jnp.sum(jnp.square(p)) for p in jax.tree_util.tree_leaves(params))


def ranking_loss(apply_fn: Callable, params, obs_a, mask_a, y_a, obs_b, mask_b, y_b, gamma: float,
                 l2: float) -> jax.Array:
    """Pairwise ranking loss on P trajectory pairs: obs_* (P, T, D), mask_* (P, T), labels y_* (P,)."""
    g_a = trajectory_returns(apply_fn, params, obs_a, mask_a, gamma)
    g_b = trajectory_returns(apply_fn, params, obs_b, mask_b, gamma)
    return pair_loss(g_a, g_b, y_a, y_b) + l2 * l2_penalty(params)


def make_reward_step(apply_fn: Callable, tx: optax.GradientTransformation, gamma: float, l2: float,
                     num_pairs: int):
    """A jittable step: (params, opt_state, key, obs (B,T,D), mask (B,T), y (B,), valid (B,)) -> (params, opt_state, loss).

    Pairs are drawn uniformly among valid buffer entries; ties are drawn too but weigh nothing.
    """

    def step(params, opt_state, key, obs, mask, y, valid):
        p = valid.astype(jnp.float32) / jnp.maximum(valid.sum(), 1)
        ka, kb = jax.random.split(key)
        ia = jax.random.choice(ka, obs.shape[0], (num_pairs,), p=p)
        ib = jax.random.choice(kb, obs.shape[0], (num_pairs,), p=p)
        loss, grads = jax.value_and_grad(
            lambda th: ranking_loss(apply_fn, th, obs[ia], mask[ia], y[ia], obs[ib], mask[ib], y[ib], gamma, l2)
        )(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


def fit_ranking(key: jax.Array, apply_fn: Callable, params, obs, mask, y, gamma: float, steps: int = 300,
                lr: float = 3e-3, l2: float = 1e-4, num_pairs: int = 256):
    """Fit r̂ on a fixed trajectory set (B, T, D) / (B, T) / (B,) with ``steps`` Adam steps; returns (params, losses)."""
    tx = optax.adam(lr)
    step = make_reward_step(apply_fn, tx, gamma, l2, num_pairs)
    valid = jnp.ones((obs.shape[0],), bool)

    @jax.jit
    def run(params, opt_state, keys):  # one compiled scan instead of ``steps`` dispatches
        def body(carry, k):
            p, o = carry
            p, o, loss = step(p, o, k, obs, mask, y, valid)
            return (p, o), loss

        return jax.lax.scan(body, (params, opt_state), keys)

    (params, _), losses = run(params, tx.init(params), jax.random.split(key, steps))
    return params, losses
