"""Goal-conditioned PQN (UVFA): commanded goal, hindsight relabelling, explicit all-goals relabelling.

All three regress Q(s, g)[a] on 1-step targets whose s' pass runs inside the loss with the current
parameters (stop-gradient), PQN-style. They differ only in which (transition, goal) pairs they train on:
- commanded: the goal the worker was pursuing;
- HER: each transition plus `her_num_relabel` relabelled copies (uniform seen goals and "positive"
  goals true in s, mixed by `her_random_prop`);
- all-goals: the commanded goal plus every one of the K goals, (1 + K) pairs per transition. The pairs
  are decoded from flat indices per minibatch and never materialised, so memory stays O(B).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax


def uvfa_targets(q_next: jax.Array, reward: jax.Array, done: jax.Array, gamma: float) -> jax.Array:
    """y = r + gamma * (1 - d) * max_a q_next[a]: q_next (n, A), reward (n,), done (n,) bool -> (n,)."""
    return reward + gamma * (1.0 - done.astype(jnp.float32)) * q_next.max(-1)


def pqn_loss(params, apply_fn: Callable, obs, goal_in, action, reward, done, next_obs, gamma: float,
             target_params=None):
    """1/2 mean (Q(s, g)[a] - y)^2, y from Q(s', g) with gradient stopped.

    The s' pass uses `target_params` when given, else the current parameters (PQN-style).
    obs/next_obs (n, F), goal_in (n, G), action (n,), reward (n,), done (n,) bool.
    """
    tp = params if target_params is None else target_params
    q_next = jax.lax.stop_gradient(apply_fn(tp, next_obs, goal_in))
    y = uvfa_targets(q_next, reward, done, gamma)
    q = apply_fn(params, obs, goal_in)
    qa = jnp.take_along_axis(q, action[:, None], axis=-1)[:, 0]
    return 0.5 * jnp.mean((qa - y) ** 2)


def decode_pairs(pair_idx: jax.Array, cmd_goal: jax.Array, num_goals: int):
    """Flat pair index -> (transition index, goal index) for (1 + K) pairs per transition.

    Pair j = 0 of a transition is its commanded goal; pair j >= 1 is goal j - 1.
    pair_idx (n,), cmd_goal (B,) -> two (n,) int32 arrays.
    """
    t = pair_idx // (num_goals + 1)
    j = pair_idx % (num_goals + 1)
    return t, jnp.where(j == 0, cmd_goal[t], j - 1)


def relabel_pairs(pair_idx, obs, action, cmd_goal, ach_next, done, next_obs):
    """Gather the (s, g, a, r, d, s') samples of flat pair indices (n,) from B transitions.

    Reward and termination of each pair come from the oracle on s': r = ach_next[t, g], d = r or done[t].
    Returns a dict of obs (n, F), goal (n,), action (n,), reward (n,), done (n,) bool, next_obs (n, F).
    """
    t, g = decode_pairs(pair_idx, cmd_goal, ach_next.shape[1])
    r = ach_next[t, g]
    return dict(obs=obs[t], goal=g, action=action[t], reward=r.astype(jnp.float32),
                done=jnp.logical_or(r, done[t]), next_obs=next_obs[t])


def relabel_pair_targets(q_fn: Callable, pairs: dict, gamma: float) -> jax.Array:
    """Targets of the gathered pairs: q_fn(next_obs (n, F), goal (n,)) -> (n, A); returns (n,)."""
    return uvfa_targets(q_fn(pairs["next_obs"], pairs["goal"]), pairs["reward"], pairs["done"], gamma)


def relabel_minibatch_indices(key, batch: int, num_goals: int, minibatch_size: int) -> jax.Array:
    """One epoch's shuffled flat pair indices, (nmb, mb); the last minibatch wraps around."""
    total = batch * (num_goals + 1)
    nmb = num_relabel_minibatches(batch, num_goals, minibatch_size)
    perm = jax.random.permutation(key, total)
    return perm[jnp.arange(nmb * minibatch_size) % total].reshape(nmb, minibatch_size)


def _sgd(params, opt_state, tx, loss_fn, batches):
    """Scan minibatch gradient steps; batches is a pytree with a leading minibatch axis."""
    grad_fn = jax.value_and_grad(loss_fn)

    def step(carry, mb):
        params, opt_state = carry
        loss, g = grad_fn(params, mb)
        updates, opt_state = tx.update(g, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), batches)
    return params, opt_state, losses.mean()


def pqn_update(params, opt_state, tx, apply_fn, goal_inputs, samples: dict, key, minibatch_size: int,
               epochs: int, gamma: float):
    """E epochs over materialised (s, g, a, r, d, s') samples.

    samples: dict of obs (n, F), goal (n,) int32, action (n,), reward (n,), done (n,) bool,
    next_obs (n, F); n divisible by minibatch_size. goal_inputs (K, G). Returns (params, opt, loss).
    """
    n = samples["obs"].shape[0]
    nmb = n // minibatch_size

    def loss_fn(p, mb):
        return pqn_loss(p, apply_fn, mb["obs"], goal_inputs[mb["goal"]], mb["action"], mb["reward"],
                        mb["done"], mb["next_obs"], gamma)

    def epoch(carry, k):
        perm = jax.random.permutation(k, n)[: nmb * minibatch_size].reshape(nmb, minibatch_size)
        batches = jax.tree.map(lambda x: x[perm], samples)
        p, o, loss = _sgd(*carry, tx, loss_fn, batches)
        return (p, o), loss

    (params, opt_state), losses = jax.lax.scan(epoch, (params, opt_state), jax.random.split(key, epochs))
    return params, opt_state, losses.mean()


def commanded_samples(obs, action, goal, ach_next, done, next_obs) -> dict:
    """Commanded-goal samples from B transitions (reward = the commanded goal achieved in s')."""
    r = ach_next[jnp.arange(goal.shape[0]), goal]
    return dict(obs=obs, goal=goal, action=action, reward=r.astype(jnp.float32),
                done=jnp.logical_or(done, r), next_obs=next_obs)


def her_samples(key, obs, action, goal, ach_obs, ach_next, done, next_obs, seen, num_relabel: int,
                random_prop: float, only_seen: bool = True) -> dict:
    """Commanded samples plus `num_relabel` relabelled copies per transition: B (1 + num_relabel) samples.

    The first round(num_relabel * random_prop) copies take a uniform (seen) goal; the rest a "positive"
    goal true in s (uniform over those; a uniform seen goal when none is true).
    ach_obs/ach_next (B, K) bool, seen (K,) bool.
    """
    b, k = ach_next.shape
    n_rand = int(round(num_relabel * random_prop))
    base_logits = jnp.where(seen if only_seen else jnp.ones(k, bool), 0.0, -jnp.inf)
    parts = [commanded_samples(obs, action, goal, ach_next, done, next_obs)]
    for i, kk in enumerate(jax.random.split(key, num_relabel)):
        if i < n_rand:
            g = jax.random.categorical(kk, base_logits, shape=(b,))
        else:
            k1, k2 = jax.random.split(kk)
            pos = jax.random.categorical(k1, jnp.where(ach_obs, 0.0, -jnp.inf), axis=-1)
            g = jnp.where(ach_obs.any(-1), pos, jax.random.categorical(k2, base_logits, shape=(b,)))
        parts.append(commanded_samples(obs, action, g.astype(jnp.int32), ach_next, done, next_obs))
    return jax.tree.map(lambda *xs: jnp.concatenate(xs), *parts)


def num_relabel_minibatches(batch: int, num_goals: int, minibatch_size: int) -> int:
    """Minibatches per epoch of all-goals relabelling: ceil(B (1 + K) / mb)."""
    return -(-batch * (num_goals + 1) // minibatch_size)


def relabel_all_update(params, opt_state, tx, apply_fn, goal_inputs, obs, action, goal, ach_next, done,
                       next_obs, key, minibatch_size: int, epochs: int, gamma: float,
                       fixed_targets: bool = False, max_minibatches: int | None = None):
    """Explicit all-goals relabelling: E epochs over B (1 + K) (transition, goal) pairs.

    Pairs are shuffled as flat indices and decoded per minibatch; the last minibatch wraps around
    (a few pairs repeat) so every minibatch has the same size. Targets re-pass s' with the current
    parameters as PQN does, or with the update's starting parameters when `fixed_targets` (LEO's choice).
    `max_minibatches` keeps only the first that many minibatches of each epoch: a timing device (the
    scan's cost is linear in its length), never used in training.
    obs/next_obs (B, F), action/goal (B,), ach_next (B, K), done (B,). Returns (params, opt, loss).
    """
    b, k = ach_next.shape
    start_params = params if fixed_targets else None

    def loss_fn(p, idx):
        mb = relabel_pairs(idx, obs, action, goal, ach_next, done, next_obs)
        return pqn_loss(p, apply_fn, mb["obs"], goal_inputs[mb["goal"]], mb["action"], mb["reward"],
                        mb["done"], mb["next_obs"], gamma, target_params=start_params)

    def epoch(carry, kk):
        idx = relabel_minibatch_indices(kk, b, k, minibatch_size)[:max_minibatches]
        p, o, loss = _sgd(*carry, tx, loss_fn, idx)
        return (p, o), loss

    (params, opt_state), losses = jax.lax.scan(epoch, (params, opt_state), jax.random.split(key, epochs))
    return params, opt_state, losses.mean()
