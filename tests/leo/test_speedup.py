"""The speed-up timing: the baseline cut to fewer minibatches (for extrapolation), the line fit, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from quietrl.core.errors import ConfigError
from quietrl.leo.networks import UVFANetwork
from quietrl.leo.pqn import num_relabel_minibatches, relabel_all_update
from quietrl.leo.speedup import SpeedupSetup, _fit_line, time_updates

B, F, K, A, MB = 16, 5, 3, 4, 8  # 16 x (1 + 3) = 64 pairs -> 8 minibatches per epoch


@pytest.fixture(scope="module")
def relabel_case():
    keys = jax.random.split(jax.random.PRNGKey(0), 6)
    net = UVFANetwork(A, (16,))
    goal_inputs = jax.random.normal(keys[0], (K, 2))
    obs = jax.random.normal(keys[1], (B, F))
    next_obs = jax.random.normal(keys[2], (B, F))
    action = jax.random.randint(keys[3], (B,), 0, A)
    goal = jax.random.randint(keys[4], (B,), 0, K)
    ach_next = jax.random.uniform(keys[5], (B, K)) < 0.3
    done = jnp.zeros(B, bool).at[0].set(True)
    params = net.init(keys[0], obs[:1], goal_inputs[:1])
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.radam(1e-3))

    def run(cut, epochs=2):
        return relabel_all_update(params, tx.init(params), tx, net.apply, goal_inputs, obs, action, goal,
                                  ach_next, done, next_obs, jax.random.PRNGKey(7), MB, epochs, 0.99,
                                  max_minibatches=cut)

    return run


def _count(opt_state):
    return int(optax.tree_utils.tree_get(opt_state, "count"))


def test_cut_at_or_above_the_full_count_is_the_full_update(relabel_case):
    assert num_relabel_minibatches(B, K, MB) == 8
    full_p, full_o, _ = relabel_case(None)
    for cut in (50,):  # more than the 8 minibatches an epoch holds: nothing is cut
        p, o, _ = relabel_case(cut)
        for a, b in zip(jax.tree.leaves(full_p), jax.tree.leaves(p)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert _count(full_o) == 2 * 8


def test_cut_update_takes_that_many_steps_per_epoch(relabel_case):
    p3, o3, _ = relabel_case(3)
    p2, o2, _ = relabel_case(2)
    assert _count(o3) == 2 * 3 and _count(o2) == 2 * 2
    assert any(not np.array_equal(np.asarray(a), np.asarray(b))
               for a, b in zip(jax.tree.leaves(p3), jax.tree.leaves(p2)))


def test_fit_line_extrapolates_a_line_exactly():
    assert _fit_line([8, 16], [1.5, 2.5], 130) == pytest.approx(0.5 + 130 / 8)
    assert _fit_line([4, 8, 12], [1.0, 2.0, 3.0], 40) == pytest.approx(10.0)


SMALL = SpeedupSetup(fields=(4, 4), num_actions=A, trunk="64x2", batch=32, minibatch=16)


def test_time_updates_extrapolates_from_the_cut_counts():
    r = time_updates(SMALL, 7, repeats=1, with_pqn=False, with_target_pass=False, relabel_minibatches=(2, 4))
    assert r["relabel_extrapolated"] and [p[0] for p in r["relabel_points"]] == [2, 4]
    assert r["relabel_minibatches"] == num_relabel_minibatches(32, 7, 16) == 16
    # Timings of a tiny setup are noise: only what holds whatever they are is asserted. The full update
    # costs at least the dearest cut (a noisy fit below that is clamped to it and flagged).
    assert r["relabel_s"] >= max(p[1] for p in r["relabel_points"]) > 0
    assert r["relabel_cpu_s"] >= max(p[2] for p in r["relabel_points"])
    assert isinstance(r["relabel_lower_bound"], bool)
    assert r["ratio"] == pytest.approx(r["relabel_s"] / r["leo_s"])


def test_time_updates_needs_two_distinct_cut_counts():
    with pytest.raises(ConfigError, match="relabel_minibatches"):
        time_updates(SMALL, 7, repeats=1, with_pqn=False, with_target_pass=False, relabel_minibatches=(3, 3))
