"""LEO's all-goals targets vs explicit relabelling, termination semantics, pair indexing, HER."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from quietrl.leo.leo import leo_targets
from quietrl.leo.networks import LEONetwork
from quietrl.leo.pqn import (decode_pairs, her_samples, relabel_minibatch_indices, relabel_pair_targets,
                             relabel_pairs)

GAMMA = 0.99


def test_per_goal_termination_vs_episode_termination():
    maxq = jnp.array([[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]])
    ach = jnp.array([[True, False, False], [True, False, False]])
    done = jnp.array([False, True])
    y = np.asarray(leo_targets(maxq, ach, done, GAMMA))
    # Not terminal: goal 0 achieved -> 1 and stops; other goals bootstrap.
    np.testing.assert_allclose(y[0], [1.0, GAMMA * 0.5, GAMMA * 0.5], rtol=1e-6)
    # Episode end: every goal terminates; only the achieved one has reward.
    np.testing.assert_allclose(y[1], [1.0, 0.0, 0.0])


def test_decode_pairs_known_answer():
    cmd = jnp.array([5, 2])
    t, g = decode_pairs(jnp.arange(2 * 4), cmd, 3)  # K = 3: 4 pairs per transition
    assert t.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert g.tolist() == [5, 0, 1, 2, 2, 0, 1, 2]


@pytest.fixture(scope="module")
def fixed_q_batch():
    """One fixed Q-function (a LEO network's table, sliced per goal) and one batch."""
    b, f, k, a = 48, 6, 11, 4
    keys = jax.random.split(jax.random.PRNGKey(0), 7)
    net = LEONetwork(k, a, (32, 32))
    params = jax.jit(net.init)(keys[0], jnp.zeros((1, f)))
    batch = dict(
        obs=jax.random.normal(keys[1], (b, f)), next_obs=jax.random.normal(keys[2], (b, f)),
        action=jax.random.randint(keys[3], (b,), 0, a), goal=jax.random.randint(keys[4], (b,), 0, k),
        ach_next=jax.random.uniform(keys[5], (b, k)) < 0.2, done=jax.random.uniform(keys[6], (b,)) < 0.2)
    return net, params, batch, k


def test_leo_and_explicit_relabelling_targets_agree(fixed_q_batch):
    net, params, bt, k = fixed_q_batch
    b = bt["obs"].shape[0]
    # LEO: one pass over s', every goal's target at once, parameters from the start of the update.
    y_leo = np.asarray(jax.jit(lambda p: leo_targets(net.apply(p, bt["next_obs"]).max(-1), bt["ach_next"],
                                                     bt["done"], GAMMA))(params))

    # Explicit relabelling with the same parameters: per shuffled minibatch of flat pair indices.
    @jax.jit
    def minibatch_targets(p, mb):
        def q_fn(next_obs, g):
            return net.apply(p, next_obs)[jnp.arange(g.shape[0]), g]

        pairs = relabel_pairs(mb, bt["obs"], bt["action"], bt["goal"], bt["ach_next"], bt["done"], bt["next_obs"])
        return relabel_pair_targets(q_fn, pairs, GAMMA)

    idx = np.asarray(relabel_minibatch_indices(jax.random.PRNGKey(3), b, k, 64))
    y_rel = np.full((b, k + 1), np.nan)
    for mb in idx:
        y_rel[mb // (k + 1), mb % (k + 1)] = np.asarray(minibatch_targets(params, mb))
    assert not np.isnan(y_rel).any()  # every (transition, goal) pair was visited
    np.testing.assert_allclose(y_rel[:, 1:], y_leo, atol=1e-6, rtol=0)
    np.testing.assert_allclose(y_rel[:, 0], y_leo[np.arange(b), np.asarray(bt["goal"])], atol=1e-6, rtol=0)
    # The targets are not trivial: some bootstrap, some terminate with reward.
    assert (y_leo == 1.0).any() and ((y_leo > 0) & (y_leo < 1)).any()


def test_relabel_indices_cover_every_pair_once_per_epoch():
    idx = np.asarray(relabel_minibatch_indices(jax.random.PRNGKey(0), 10, 6, 16))  # 70 pairs -> 5 x 16
    assert idx.shape == (5, 16)
    assert set(idx.ravel().tolist()) == set(range(70))


def test_her_relabels_random_seen_and_positive_goals():
    b, k = 64, 9
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    ach_obs = jax.random.uniform(keys[0], (b, k)) < 0.15
    ach_next = jax.random.uniform(keys[1], (b, k)) < 0.15
    seen = jnp.arange(k) < 5
    her = jax.jit(her_samples, static_argnums=(9, 10))
    s = her(keys[2], jnp.zeros((b, 2)), jnp.zeros(b, jnp.int32), jnp.zeros(b, jnp.int32), ach_obs,
            ach_next, jnp.zeros(b, bool), jnp.zeros((b, 2)), seen, 2, 0.5)
    g = np.asarray(s["goal"]).reshape(3, b)
    assert s["obs"].shape == (3 * b, 2)
    assert (g[1] < 5).all()  # random copies draw seen goals only
    has_pos = np.asarray(ach_obs).any(-1)
    assert np.asarray(ach_obs)[np.arange(b), g[2]][has_pos].all()  # positive copies: true in s
    # Rewards are recomputed by the oracle on s' for the relabelled goal.
    np.testing.assert_array_equal(np.asarray(s["reward"]).reshape(3, b)[2], np.asarray(ach_next)[np.arange(b), g[2]])
