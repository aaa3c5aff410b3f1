"""Gridworld, goal oracle and terminal-state evaluation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from quietrl.core.errors import UserError
from quietrl.leo.env import Gridworld, make_env, make_gridworld_map


@pytest.mark.parametrize("size,wall,k", [(16, 0.3, 174), (12, 0.2, 108), (8, 0.2, 43), (24, 0.3, 385)])
def test_goal_counts_match_the_authors_maps(size, wall, k):
    walls = make_gridworld_map(size, wall, 0)
    assert not walls[size // 2, size // 2]
    assert int((~walls).sum()) == k


def test_walls_and_borders_block_moves():
    env = Gridworld(8, 0.2, 0)
    params = env.default_params
    _, state = env.reset_env(jax.random.PRNGKey(0), params)
    walls = env.walls_np
    moves = [(0, -1), (0, 1), (-1, 0), (1, 0)]
    checked_wall = checked_border = False
    for r, c in np.argwhere(~walls):
        st = state.replace(pos=jnp.array([r, c], jnp.int32))
        for a, (dr, dc) in enumerate(moves):
            nr, nc = r + dr, c + dc
            pos = env.step_env(None, st, a, params)[0].tolist()
            outside = not (0 <= nr < 8 and 0 <= nc < 8)
            if outside or walls[nr, nc]:
                assert pos == [r, c]
                checked_border |= outside
                checked_wall |= not outside
            else:
                assert pos == [nr, nc]
        if checked_wall and checked_border:
            break
    assert checked_wall and checked_border


def test_oracle_matmul_equals_direct_predicate():
    genv = make_env("gridworld", map_size=12, wall_density=0.2)
    cells = np.asarray(genv.env.free_cells)
    pos = jax.random.randint(jax.random.PRNGKey(1), (300, 2), 0, 12)
    pos = jnp.concatenate([pos, jnp.asarray(cells[:20])])
    ach = np.asarray(genv.goals.achieved(genv.features(pos)))
    direct = (np.asarray(pos)[:, None, :] == cells[None, :, :]).all(-1)
    assert ach.shape == (320, 108)
    np.testing.assert_array_equal(ach, direct)
    assert ach[300:].sum() == 20


def test_num_goals_takes_the_first_goals_and_rejects_too_many():
    genv = make_env("gridworld", num_goals=10, map_size=12, wall_density=0.2)
    full = make_env("gridworld", map_size=12, wall_density=0.2)
    assert genv.num_goals == 10
    np.testing.assert_array_equal(np.asarray(genv.goals.masks), np.asarray(full.goals.masks[:10]))
    with pytest.raises(UserError, match="holds 108 goals"):
        make_env("gridworld", num_goals=109, map_size=12, wall_density=0.2)
    with pytest.raises(UserError, match="unknown env"):
        make_env("minigrid")


def test_step_batch_reports_the_true_terminal_state_before_reset():
    genv = make_env("gridworld", map_size=8, wall_density=0.0)
    obs, state = genv.reset_batch(jax.random.PRNGKey(0), 2)
    # Env 0 is one step from its time limit, env 1 is not; both step right from the centre.
    state = state.replace(time=jnp.array([199, 10]))
    pool = genv.reset_batch(jax.random.PRNGKey(1), 4)
    true_next, act_obs, act_state, done = genv.step_batch(jax.random.PRNGKey(2), state,
                                                          jnp.array([1, 1], jnp.int32), pool)
    assert done.tolist() == [True, False]
    assert true_next.tolist() == [[4, 5], [4, 5]]  # the terminal state, not the reset one
    assert act_obs.tolist() == [[4, 4], [4, 5]]  # env 0 restarted at the centre from the pool
    assert int(act_state.time[0]) < 50 and int(act_state.time[1]) == 11
