"""Prioritised space-time A*: plans execute in the env; the swap layout (agents must pass) is solved."""

import numpy as np

from quietrl.arms.astar import plan_task, reference_success
from quietrl.arms.env import MAPFEnv, make_env
from quietrl.arms.maps import bank_from_tasks
from quietrl.arms.types import EnvConfig


def test_swap_layout_is_solved_and_executes():
    # the swap game's 2x3 grid: A (0,0)->(0,2), B (0,2)->(0,0); one must step aside into the second row
    bank = bank_from_tasks(np.zeros((1, 2, 3), bool), np.array([[[0, 0], [0, 2]]]), np.array([[[0, 2], [0, 0]]]))
    env = MAPFEnv(bank, horizon=6, obs_radius=1)
    res = reference_success(env, np.array([0]))
    assert res["isr"] == 1.0 and res["csr"] == 1.0


def test_reference_rate_on_generated_maps():
    env = make_env(EnvConfig(grid_size=8, num_agents=4, horizon=32, num_train_tasks=8, num_heldout_tasks=8))
    res = reference_success(env, np.arange(8, 16))
    assert 0.8 <= res["isr"] <= 1.0
    b = env.bank
    plans = plan_task(b.obstacles[8], b.starts[8], b.goals[8], b.dist[8], 32)
    assert plans.shape == (4, 32) and plans.min() >= 0 and plans.max() <= 4
