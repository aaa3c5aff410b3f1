import numpy as np
import pytest

from quietrl.core.errors import ConfigError
from quietrl.goalgen.env import GoalGridEnv
from quietrl.goalgen.grammar import parse_pipeline
from quietrl.goalgen.ppo import PPOConfig, pipeline_schedule, train_population


def test_schedule_and_config():
    p = parse_pipeline("red_cross@0.25_then_blue_plus")
    s = pipeline_schedule(p, 4, total=10)
    assert s.tolist() == [0, 0, 1, 1, 1, 1, 1, 1, -1, -1]
    with pytest.raises(ConfigError):
        PPOConfig(n_envs=10, n_steps=3, n_minibatches=4)


@pytest.fixture(scope="module")
def trained():
    # A 5x5 grid with an 8-step limit: a random walker rarely reaches the goal in time, a trained agent
    # almost always does. Two agents share one program: a single-goal one and a two-stage one.
    env = GoalGridEnv(grid=5, obs_mode="symbolic", max_steps=8)
    cfg = PPOConfig(n_envs=64, n_steps=16, n_epochs=4, n_minibatches=4, lr=3e-3, hidden=(32, 32))
    pls = [parse_pipeline("red_cross_with_blue_plus_distractor"), parse_pipeline("blue_plus_then_red_cross")]
    params, success = train_population(env, cfg, pls, [0, 1], updates_per_stage=25, chunk_updates=25)
    return params, success


def test_ppo_learns_single_goal_task(trained):
    _, success = trained
    first, last = np.nanmean(success[0, :3]), np.nanmean(success[0, 22:25])
    assert last >= 0.65 and last > first + 0.3


def test_stages_continue_from_previous_weights(trained):
    params, success = trained
    assert success.shape == (2, 50)
    assert np.isnan(success[0, 25:]).all() and np.isfinite(success[1]).all()
    assert np.nanmean(success[1, 22:25]) >= 0.5                                 # stage 1 learned
    # Stage 2 (a new goal, same weights) keeps learning: above a random walker by the end.
    assert np.nanmean(success[1, 47:50]) > np.nanmean(success[1, :3]) + 0.1
