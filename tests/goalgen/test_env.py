import jax
import jax.numpy as jnp
import numpy as np
import pytest

from quietrl.core.errors import ConfigError
from quietrl.goalgen.env import (AGENT_MASK, GLYPH_CHANNELS, GLYPH_MASKS, GoalGridEnv, glyph_image,
                                 make_wall_bank, min_glyph_hamming, _connected)
from quietrl.goalgen.networks import ActorCritic
from quietrl.goalgen.types import GameObject

RED_CROSS, BLUE_PLUS = GameObject("red", "cross"), GameObject("blue", "plus")


@pytest.fixture(scope="module")
def env():
    return GoalGridEnv(grid=5, obs_mode="glyph")


@pytest.fixture(scope="module")
def params(env):
    return env.params_for(goals=(RED_CROSS,), distractors=(BLUE_PLUS,), max_steps_in_episode=6)


@pytest.fixture(scope="module")
def step(env):
    return jax.jit(env.step_env)


def _state(env, params, agent, objects):
    _, st = env.reset(jax.random.PRNGKey(0), params)
    objs = np.array(objects + [[4, 4]] * (4 - len(objects)), np.int32)
    return st.replace(agent=jnp.array(agent, jnp.int32), objects=jnp.asarray(objs))


def test_glyphs_are_distinct():
    assert min_glyph_hamming() >= 4


def test_reset_places_distinct_cells(env, params):
    for k in range(5):
        obs, st = env.reset(jax.random.PRNGKey(k), params)
        cells = np.concatenate([np.asarray(st.agent)[None], np.asarray(st.objects)])
        assert len({tuple(c) for c in cells}) == 5
        assert obs.shape == (5, 5, 5, 5, GLYPH_CHANNELS) and obs.dtype == jnp.uint8
        assert int(obs[..., 4].sum()) > 0   # the agent is drawn in its own channel
        assert glyph_image(obs).shape == (25, 25, GLYPH_CHANNELS)


def test_goal_rewards_and_terminates(env, params, step):
    st = _state(env, params, [2, 2], [[2, 3], [1, 2]])  # goal right, distractor up
    _, st2, r, term, info = step(jax.random.PRNGKey(1), st, 1, params)
    assert float(r) == 1.0 and bool(term) and int(info["reached"]) == 0
    _, st3, r, term, info = step(jax.random.PRNGKey(1), st, 0, params)
    assert float(r) == pytest.approx(-0.01) and not bool(term) and int(info["reached"]) == -1
    assert np.array_equal(np.asarray(st3.agent), [1, 2])  # distractors are walkable


def test_walls_and_borders_block(env, params, step):
    st = _state(env, params, [0, 0], [[3, 3], [4, 3]])
    _, st2, _, _, _ = step(jax.random.PRNGKey(1), st, 0, params)   # up, off grid
    assert np.array_equal(np.asarray(st2.agent), [0, 0])
    walls = np.zeros((5, 5), bool)
    walls[0, 1] = True
    st = st.replace(walls=jnp.asarray(walls))
    _, st2, _, _, _ = step(jax.random.PRNGKey(1), st, 1, params)   # right, into a wall
    assert np.array_equal(np.asarray(st2.agent), [0, 0])


def test_truncation_and_autoreset(env, params):
    st = _state(env, params, [0, 0], [[4, 4], [4, 3]])
    for t in range(6):
        obs, st, r, term, trunc, info = env.step(jax.random.PRNGKey(t), st, 0, params)
    assert bool(trunc) and not bool(term) and int(st.time) == 0


def test_symbolic_observation():
    env = GoalGridEnv(grid=4, obs_mode="symbolic")
    p = env.params_for(goals=(RED_CROSS,))
    obs, st = env.reset(jax.random.PRNGKey(0), p)
    assert obs.shape == (4, 4, 12)
    r, c = np.asarray(st.objects[0])
    assert obs[r, c, 3] == 1 and obs[r, c, 4 + 1] == 1   # red, cross
    assert int(obs[..., :10].sum()) == 2


def test_wall_bank_connected():
    bank = make_wall_bank(6, 8, 0.2, seed=3)
    assert bank.any()
    assert all(_connected(b) for b in bank)


def test_bad_config():
    with pytest.raises(ConfigError):
        GoalGridEnv(obs_mode="pixels")


def test_glyph_rendering_places_tiles(env, params):
    st = _state(env, params, [2, 2], [[0, 1], [4, 3]])     # red cross at (0, 1), blue plus at (4, 3)
    img = glyph_image(env.get_obs(st, params))
    cross, plus = GLYPH_MASKS[1], GLYPH_MASKS[4]
    assert np.array_equal(img[0:5, 5:10, 0], cross) and np.array_equal(img[0:5, 5:10, 1], cross)  # ink, R
    assert not img[0:5, 5:10, 3].any()                                                           # not blue
    assert np.array_equal(img[20:25, 15:20, 3], plus) and not img[20:25, 15:20, 1].any()
    assert np.array_equal(img[10:15, 10:15, 4], AGENT_MASK)
    assert int(img[..., 4].sum()) == AGENT_MASK.sum() and not img[..., 5].any()


@pytest.mark.parametrize("mode", ["glyph", "symbolic"])
def test_network_on_codes_equals_network_on_pixels(mode):
    env = GoalGridEnv(grid=5, obs_mode=mode, use_walls=True, wall_density=0.2)
    p = env.params_for(goals=(RED_CROSS,), distractors=(BLUE_PLUS,))
    codes, st = jax.vmap(env.reset_codes, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(3), 16), p)
    obs = jax.vmap(env.get_obs, in_axes=(0, None))(st, p)
    assert np.array_equal(np.asarray(env.observe(codes)), np.asarray(obs))
    net = ActorCritic(obs_mode=mode)
    w = net.init(jax.random.PRNGKey(0), obs[:1])
    for a, b in zip(net.apply(w, obs), net.apply(w, codes, env.tiles)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    # Same gradients too: the per-tile encoder is a rewrite, not another model.
    g1 = jax.grad(lambda w: net.apply(w, obs)[1].sum())(w)
    g2 = jax.grad(lambda w: net.apply(w, codes, env.tiles)[1].sum())(w)
    for x, y in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-5)
