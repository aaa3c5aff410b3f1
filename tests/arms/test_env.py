"""MAPF env dynamics: both collision rules, removal, goals, rewards per sparsity, observation window."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from quietrl.arms.env import MAPFEnv, as_jaxmarl, make_env, obs_dim, observe, resolve_moves
from quietrl.arms.maps import parse_text_map
from quietrl.arms.types import EnvConfig
from quietrl.core.errors import UserError

STAY, N, S, W, E = range(5)


def moves(pos, actions, alive=None, obstacles=None, rule="block_occupied"):
    pos = jnp.array(pos, jnp.int32)
    alive = jnp.ones(len(pos), bool) if alive is None else jnp.array(alive)
    obst = jnp.zeros((3, 3), bool) if obstacles is None else jnp.array(obstacles)
    return np.asarray(resolve_moves(pos, jnp.array(actions), alive, obst, rule)).tolist()


@pytest.mark.parametrize("rule", ["follow", "block_occupied"])
def test_vertex_conflict_and_swap_cancel_both(rule):
    assert moves([[0, 0], [0, 2]], [E, W], rule=rule) == [[0, 0], [0, 2]]
    assert moves([[0, 0], [0, 1]], [E, W], rule=rule) == [[0, 0], [0, 1]]


@pytest.mark.parametrize("rule", ["follow", "block_occupied"])
def test_move_into_staying_agent_or_obstacle_is_blocked(rule):
    assert moves([[0, 0], [0, 1]], [E, STAY], rule=rule) == [[0, 0], [0, 1]]
    obst = np.zeros((3, 3), bool)
    obst[1, 0] = True
    assert moves([[0, 0]], [S], obstacles=obst, rule=rule) == [[0, 0]]
    assert moves([[0, 0]], [N], rule=rule) == [[0, 0]]  # off the map


def test_following_differs_between_rules():
    assert moves([[0, 0], [0, 1]], [E, E], rule="follow") == [[0, 1], [0, 2]]
    assert moves([[0, 0], [0, 1]], [E, E], rule="block_occupied") == [[0, 0], [0, 2]]


def test_follow_chain_blocked_by_a_cancelled_leader():
    # C runs off the map, so B (following C) and A (following B) stay too
    assert moves([[0, 0], [0, 1], [0, 2]], [E, E, E], rule="follow") == [[0, 0], [0, 1], [0, 2]]


@pytest.mark.parametrize("rule", ["follow", "block_occupied"])
def test_removed_agents_do_not_block(rule):
    assert moves([[0, 0], [0, 1]], [E, STAY], alive=[True, False], rule=rule) == [[0, 1], [0, 1]]


def test_observation_window_and_goal_projection():
    obst = np.zeros((3, 6), bool)
    obst[1, 1] = True
    pos = jnp.array([[0, 0], [0, 1]], jnp.int32)
    goal = jnp.array([[0, 5], [2, 2]], jnp.int32)
    o = np.asarray(observe(jnp.array(obst), pos, goal, jnp.array([True, True]), jnp.int32(2), 8, 1))
    assert o.shape == (2, obs_dim(1))
    ob, ag, tg = o[0, :9].reshape(3, 3), o[0, 9:18].reshape(3, 3), o[0, 18:27].reshape(3, 3)
    assert ob[0].tolist() == [1, 1, 1] and ob[:, 0].tolist() == [1, 1, 1]  # off-map counts as obstacle
    assert ob[2, 2] == 1 and ob[1, 1] == 0
    assert ag.sum() == 1 and ag[1, 2] == 1  # the other agent, not itself
    assert tg.sum() == 1 and tg[1, 2] == 1  # goal 5 cells east projected onto the east border
    assert np.allclose(o[0, 27:], [0.0, 5 / 6, 2 / 8, 1.0])
    tg1 = o[1, 18:27].reshape(3, 3)
    assert tg1[2, 2] == 1  # (2, 1) away, clipped to (1, 1)


@pytest.fixture(scope="module")
def corridor_env():
    bank = parse_text_map("A..a\n....\nB..b\n")
    return MAPFEnv(bank, horizon=6, obs_radius=1)


def run(env, actions_seq, sparsity):
    _, st = env.reset_to(0, sparsity)
    step = jax.jit(env.step_arrays)
    rewards, dones = [], []
    for a in actions_seq:
        _, st, r, d, info = step(st, jnp.array(a))
        rewards.append(np.asarray(r))
        dones.append(bool(d))
    return np.array(rewards), dones, st


def test_rewards_per_sparsity_one_arrival(corridor_env):
    seq = [[E, STAY]] * 3 + [[STAY, STAY]] * 3
    r0, d0, st = run(corridor_env, seq, 0)
    assert r0[:, 0].tolist() == [0, 0, 1, 0, 0, 0] and r0[:, 1].sum() == 0
    assert d0 == [False] * 5 + [True] and st.arrived.tolist() == [True, False]
    r1, _, _ = run(corridor_env, seq, 1)
    assert r1[:, 0].tolist() == [0, 0, 0, 0, 0, 1] and r1[:, 1].sum() == 0
    r2, _, _ = run(corridor_env, seq, 2)
    assert r2.sum() == 0


def test_team_reward_when_all_arrive(corridor_env):
    seq = [[E, E]] * 3
    r2, d2, _ = run(corridor_env, seq, 2)
    assert r2.tolist() == [[0, 0], [0, 0], [1, 1]] and d2 == [False, False, True]


def test_bad_rule_is_a_user_error():
    with pytest.raises(UserError, match="collision rule"):
        MAPFEnv(parse_text_map("A.a\n"), horizon=4, collision="soft")


def test_jaxmarl_interface_and_log_wrapper(corridor_env):
    jm = pytest.importorskip("jaxmarl.environments.multi_agent_env")
    from jaxmarl.wrappers.baselines import LogWrapper

    env = as_jaxmarl(corridor_env)
    assert isinstance(env, jm.MultiAgentEnv)
    wrapped = LogWrapper(env)
    key = jax.random.PRNGKey(0)
    obs, st = wrapped.reset(key)
    assert set(obs) == {"agent_0", "agent_1"} and obs["agent_0"].shape == (env.obs_dim,)
    for t in range(3):
        obs, st, rew, dones, info = wrapped.step(key, st, {"agent_0": jnp.int32(E), "agent_1": jnp.int32(E)})
    assert bool(dones["__all__"])
    assert np.asarray(info["returned_episode_returns"]).tolist() == [1.0, 1.0]
    assert int(st.env_state.step) == 0  # auto-reset


def test_heldout_splits_differ_in_seed_layout_density_and_size():
    from quietrl.arms.env import HELDOUT_SPLITS, make_heldout_envs

    cfg = EnvConfig(grid_size=8, num_agents=2, horizon=20, density=0.2, num_train_tasks=4, num_heldout_tasks=12)
    envs = make_heldout_envs(cfg)
    assert tuple(envs) == HELDOUT_SPLITS
    for name, env in envs.items():
        assert env.num_train == 0 and env.num_tasks == 12, name  # evaluation only: every task held out
    assert envs["seed"].map_shape == (8, 8) and envs["size"].map_shape == (12, 12)
    assert envs["size"].horizon == 30 and envs["seed"].horizon == 20
    fill = {k: float(e.bank.obstacles.mean()) for k, e in envs.items()}
    assert fill["density"] > fill["seed"] + 0.05
    train = make_env(cfg)
    assert not np.array_equal(envs["seed"].bank.obstacles, train.bank.obstacles[:12])
