"""IPPO with parameter sharing: two iterations through JaxMARL's LogWrapper; logged returns are sparse returns."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from quietrl.arms.env import MAPFEnv, as_jaxmarl, make_env
from quietrl.arms.maps import parse_text_map
from quietrl.arms.ppo import make_train, num_iterations
from quietrl.arms.types import EnvConfig, TrainConfig

TINY = dict(num_envs=8, num_minibatches=2, update_epochs=2, hidden=16, iters_per_chunk=2, eval_envs=8)


@pytest.fixture(scope="module")
def log_wrapper():
    return pytest.importorskip("jaxmarl.wrappers.baselines").LogWrapper


@pytest.fixture(scope="module")
def trained(log_wrapper):
    env = make_env(EnvConfig(grid_size=5, num_agents=2, horizon=8, num_train_tasks=16, num_heldout_tasks=4,
                             density=0.1))
    cfg = TrainConfig(method="sparse", **TINY)
    init, chunk, evaluate, rollout = make_train(env, cfg, wrapper=lambda e: log_wrapper(as_jaxmarl(e)))
    state = init(jax.random.PRNGKey(0), jnp.array([0.01, 0.05]), 0)
    state, metrics = jax.jit(chunk)(state)
    return env, cfg, state, metrics, rollout


def test_two_iterations_run(trained):
    env, cfg, state, metrics, _ = trained
    assert int(state["it"]) == 2
    assert metrics["train_isr"].shape == (2, 2) and metrics["heldout_isr"].shape == (2,)
    for v in jax.tree_util.tree_leaves(metrics):
        assert np.isfinite(np.asarray(v)).all()


def test_logged_returns_equal_sparse_returns(trained):
    _, _, _, metrics, _ = trained
    assert np.asarray(metrics["logged_return_gap"]).max() == 0.0


def test_scripted_episode_returns(log_wrapper):
    env = MAPFEnv(parse_text_map("A..a\n....\nB..b\n"), horizon=6, obs_radius=1)
    cfg = TrainConfig(method="sparse", **TINY)
    init, _, _, rollout = make_train(env, cfg, wrapper=lambda e: log_wrapper(as_jaxmarl(e)))
    params = jax.tree.map(lambda x: x[0], init(jax.random.PRNGKey(0), jnp.array([0.01]), 0)["seeds"]["params"])
    east = lambda obs, k: jnp.full(obs.shape[:2], 4, jnp.int32)  # both agents walk east: arrive at step 3
    run = jax.jit(lambda p, k, s: rollout(p, k, s, policy_fn=east))
    for sparsity in (0, 1, 2):
        traj = run(params, jax.random.PRNGKey(1), jnp.int32(sparsity))
        assert np.asarray(traj.done)[2].all() and not np.asarray(traj.done)[:2].any()
        assert np.allclose(np.asarray(traj.logged_return)[2], 1.0)
        assert np.allclose(np.asarray(traj.sparse * traj.live[..., None]).sum(0), 1.0)


def test_budget_sets_iterations():
    cfg = TrainConfig(num_envs=16, total_agent_steps=16 * 2 * 8 * 25, iters_per_chunk=10)
    assert num_iterations(cfg, 2, 8) == 20


@pytest.mark.slow
@pytest.mark.parametrize("method,learner", [("arms", "ippo"), ("arms-replace", "ippo"), ("arms-add", "ippo"),
                                            ("arms-frozen", "ippo"),
                                            ("pbrs", "mappo"), ("bonus", "ippo")])
def test_other_methods_and_mappo_run(method, learner):
    env = make_env(EnvConfig(grid_size=5, num_agents=2, horizon=8, num_train_tasks=16, num_heldout_tasks=4))
    cfg = TrainConfig(method=method, learner=learner, warmup_iters=1, reward_every=1, buffer_size=32, **TINY)
    init, chunk, _, _ = make_train(env, cfg)
    state, metrics = jax.jit(chunk)(init(jax.random.PRNGKey(0), jnp.array([0.01, 0.01]), jnp.array([0, 2])))
    for k, v in metrics.items():
        if k != "reward_loss":
            assert np.isfinite(np.asarray(v)).all(), k
    if method.startswith("arms"):
        assert np.isfinite(np.asarray(metrics["reward_loss"])[0]).all()  # trained during warm-up


def test_array_rollout_matches_the_jaxmarl_dict_rollout():
    """The fast path (env array API, no auto-reset) gives the dict path's transitions on every live step."""
    env = make_env(EnvConfig(grid_size=5, num_agents=2, horizon=8, num_train_tasks=16, num_heldout_tasks=0,
                             density=0.1))
    cfg = TrainConfig(method="sparse", **TINY)
    init, _, _, fast = make_train(env, cfg)
    _, _, _, slow = make_train(env, cfg, wrapper=lambda e: e)
    params = jax.tree.map(lambda x: x[0], init(jax.random.PRNGKey(0), jnp.array([0.01]), 0)["seeds"]["params"])
    a = jax.jit(fast)(params, jax.random.PRNGKey(4), jnp.int32(2))
    b = jax.jit(slow)(params, jax.random.PRNGKey(4), jnp.int32(2))
    live = np.asarray(a.live)
    assert np.array_equal(live, np.asarray(b.live)) and live.any() and np.asarray(a.done).any()
    for name in ("obs", "action", "sparse", "next_obs", "alive", "arrived", "dist_after", "done"):
        x, y = np.asarray(getattr(a, name)), np.asarray(getattr(b, name))
        assert np.array_equal(x[live], y[live]), name
