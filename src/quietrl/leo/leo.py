"""LEO: one forward pass gives Q for every (goal, action); every goal learns from every transition.

Targets are computed once per update from the acting pass (the parameters that collected the
rollout), then E epochs of minibatch regression on the taken action's value for all K goals.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax


def leo_targets(maxq_next: jax.Array, ach_next: jax.Array, done: jax.Array, gamma: float) -> jax.Array:
    """All-goals 1-step targets y[b, k] = r[b, k] + gamma * (1 - d[b, k]) * max_a Q_old(s'_b)[k, a].

    maxq_next: (B, K) max over actions of the acting network's values at s'.
    ach_next:  (B, K) bool, goal k achieved in the true s' (reward 1, and goal k terminates).
    done:      (B,) bool, the episode ended: every goal terminates.
    Returns (B, K) float32.
    """
    r = ach_next.astype(jnp.float32)
    d = jnp.logical_or(ach_next, done[:, None]).astype(jnp.float32)
    return r + gamma * (1.0 - d) * maxq_next


def leo_loss(params, apply_fn: Callable, obs: jax.Array, action: jax.Array, targets: jax.Array):
    """1/2 mean over (batch, goal) of (Q(s)[k, a] - y[k])^2; obs (mb, F), action (mb,), targets (mb, K)."""
    q = apply_fn(params, obs)  # (mb, K, A)
    qa = jnp.take_along_axis(q, action[:, None, None], axis=-1)[..., 0]
    return 0.5 * jnp.mean((qa - targets) ** 2)


def leo_update(params, opt_state, tx: optax.GradientTransformation, apply_fn: Callable,
               obs: jax.Array, action: jax.Array, targets: jax.Array, key: jax.Array,
               minibatch_size: int, epochs: int):
    """E epochs over B transitions in shuffled minibatches (B divisible by minibatch_size).

    obs (B, F), action (B,), targets (B, K). Returns (params, opt_state, mean loss).
    """
    b = obs.shape[0]
    nmb = b // minibatch_size
    grad_fn = jax.value_and_grad(leo_loss)

    def epoch(carry, k):
        params, opt_state = carry
        perm = jax.random.permutation(k, b)[: nmb * minibatch_size].reshape(nmb, minibatch_size)

        def minibatch(carry, idx):
            params, opt_state = carry
            loss, g = grad_fn(params, apply_fn, obs[idx], action[idx], targets[idx])
            updates, opt_state = tx.update(g, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        carry, losses = jax.lax.scan(minibatch, (params, opt_state), perm)
        return carry, losses.mean()

    (params, opt_state), losses = jax.lax.scan(epoch, (params, opt_state), jax.random.split(key, epochs))
    return params, opt_state, losses.mean()
