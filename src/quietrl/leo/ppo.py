"""Goal-conditioned PPO (commanded goal), optionally with a behaviour-cloning term towards a teacher.

The reward is 1 when the commanded goal is achieved in s'; the GAE recursion treats achieving the
goal as terminal (the next step pursues a new goal) as well as the end of the episode. Clipped value
loss, advantages normalised per minibatch, entropy bonus. With `bc_coef > 0` (Dual LEO, "LEO as
teacher") the loss adds bc_coef * -log pi(teacher action | s, g).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax


def gae(reward: jax.Array, value: jax.Array, done: jax.Array, last_value: jax.Array, gamma: float,
        lam: float) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimates over a rollout.

    reward, value: (T, N) float; done: (T, N) bool, step t ends the pursuit (no bootstrap from t + 1);
    last_value: (N,) V(s_T). Returns (advantages (T, N), returns = advantages + value (T, N)).
    """
    next_value = jnp.concatenate([value[1:], last_value[None]], 0)
    not_done = 1.0 - done.astype(jnp.float32)
    delta = reward + gamma * not_done * next_value - value

    def back(adv_next, xs):
        d, nd = xs
        adv = d + gamma * lam * nd * adv_next
        return adv, adv

    _, adv = jax.lax.scan(back, jnp.zeros_like(last_value), (delta, not_done), reverse=True)
    return adv, adv + value


def ppo_loss(params, apply_fn: Callable, mb: dict, clip_eps: float, ent_coef: float, vf_coef: float,
             bc_coef: jax.Array | float = 0.0):
    """PPO's clipped objective on one minibatch (+ optional behaviour cloning).

    mb: obs (m, F), goal_in (m, G), action (m,), logp (m,) at collection, value (m,) at collection,
    adv (m,), ret (m,), teacher_action (m,) (read only when bc_coef is non-zero). Returns a scalar.
    """
    logits, v = apply_fn(params, mb["obs"], mb["goal_in"])
    logp_all = jax.nn.log_softmax(logits)
    logp = jnp.take_along_axis(logp_all, mb["action"][:, None], -1)[:, 0]
    adv = (mb["adv"] - mb["adv"].mean()) / (mb["adv"].std() + 1e-8)
    ratio = jnp.exp(logp - mb["logp"])
    pg = -jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - clip_eps, 1 + clip_eps) * adv).mean()
    v_clip = mb["value"] + jnp.clip(v - mb["value"], -clip_eps, clip_eps)
    v_loss = 0.5 * jnp.maximum((v - mb["ret"]) ** 2, (v_clip - mb["ret"]) ** 2).mean()
    entropy = -(jnp.exp(logp_all) * logp_all).sum(-1).mean()
    bc = -jnp.take_along_axis(logp_all, mb["teacher_action"][:, None], -1)[:, 0].mean()
    return pg + vf_coef * v_loss - ent_coef * entropy + bc_coef * bc


def ppo_update(params, opt_state, tx: optax.GradientTransformation, apply_fn: Callable, goal_inputs: jax.Array,
               batch: dict, key: jax.Array, minibatch_size: int, epochs: int, clip_eps: float, ent_coef: float,
               vf_coef: float, bc_coef: jax.Array | float = 0.0):
    """E epochs of shuffled minibatch PPO steps over a flat batch (leading axis B, divisible by mb).

    batch: what `ppo_loss` reads, with goal indices `goal` (B,) instead of `goal_in`; the goal inputs
    (K, G) are gathered per minibatch so a (B, G) copy is never built. Returns (params, opt_state, loss).
    """
    b = batch["action"].shape[0]
    nmb = b // minibatch_size
    grad_fn = jax.value_and_grad(ppo_loss)

    def epoch(carry, k):
        perm = jax.random.permutation(k, b)[: nmb * minibatch_size].reshape(nmb, minibatch_size)

        def step(carry, idx):
            p, o = carry
            mb = jax.tree.map(lambda x: x[idx], batch)
            mb["goal_in"] = goal_inputs[mb["goal"]]
            loss, g = grad_fn(p, apply_fn, mb, clip_eps, ent_coef, vf_coef, bc_coef)
            updates, o = tx.update(g, o, p)
            return (optax.apply_updates(p, updates), o), loss

        carry, losses = jax.lax.scan(step, carry, perm)
        return carry, losses.mean()

    (params, opt_state), losses = jax.lax.scan(epoch, (params, opt_state), jax.random.split(key, epochs))
    return params, opt_state, losses.mean()
