import numpy as np
import pytest

from quietrl.prefrl.envs import make_env
from quietrl.prefrl.features import grid_features, phi_dot
from quietrl.prefrl.kernels import state_action_kernel
from quietrl.prefrl.learners import make_learner
from quietrl.prefrl.planning import action_blocks, expand_blocks, plan, plan_linear
from quietrl.prefrl.types import LearnerConfig


def test_action_blocks_of_nystrom_features_round_trip():
    env = make_env("bumps1d")
    Phi = grid_features(env, state_action_kernel("se", 0.1, 1), 30)
    Phi_S = action_blocks(Phi, env.num_actions)
    assert Phi_S is not None and Phi_S.shape == (env.num_states, 30)
    assert np.abs(expand_blocks(Phi_S, env.num_actions) - Phi).max() < 1e-8
    rng = np.random.default_rng(0)
    M = rng.standard_normal((Phi.shape[1], 4))
    P2 = expand_blocks(Phi_S, env.num_actions)
    assert np.allclose(phi_dot(P2, M, Phi_S), P2 @ M, atol=1e-12)
    assert np.allclose(phi_dot(P2, M[:, 0], Phi_S), P2 @ M[:, 0], atol=1e-12)
    # a features matrix mixing actions has no block form
    assert action_blocks(rng.standard_normal((12, 6)), 3) is None


@pytest.mark.parametrize("env_name", ["chain", "bumps1d"])
def test_jax_plan_equals_numpy_plan(env_name):
    env = make_env(env_name)
    rng = np.random.default_rng(1)
    L = make_learner(env, LearnerConfig(algo="ucb"), rng)
    for _ in range(40):
        p = rng.integers(0, env.num_actions, (env.horizon, env.num_states))
        L.update(env.rollout(p, rng), env.rollout(p, rng), int(rng.random() < 0.5))
    rm, H, S, A = L.reward_model, env.horizon, env.num_states, env.num_actions
    r, b, tw = rm.reward(), rm.widths(), L.trans.widths()
    _, V_np = plan(H, S, A, r, L.trans.backup, np.random.default_rng(0), reward_bonus=b, transition_bonus=tw,
                   beta_r=0.7, beta_P=1.3)
    _, V0_np = plan(H, S, A, r, L.trans.backup, np.random.default_rng(0))
    args = (np.stack([r, r]), b, np.array([0.7, 0.0]), tw, np.array([1.3, 0.0]))
    _, V = plan_linear(*args, L._plan_F, L.trans.PhiTC, L.trans.A.L, rng, H, blocked=L._blocked)
    assert np.allclose(V[0], V_np[:H], atol=1e-10) and np.allclose(V[1], V0_np[:H], atol=1e-10)
    if env_name == "chain":  # the dense-feature path computes the same values (one more compile: once)
        _, Vd = plan_linear(*args, L.Phi, L.trans.PhiTC, L.trans.A.L, rng, H, blocked=False)
        assert np.allclose(Vd, V, atol=1e-10)


def test_plan_linear_breaks_ties_at_random():
    env = make_env("chain")
    L = make_learner(env, LearnerConfig(algo="greedy"), np.random.default_rng(0))
    # no data: every action ties everywhere, so plug-in policies are uniformly random
    pols = np.stack([L.select_pair()[0] for _ in range(200)])
    freq = pols.mean()
    assert abs(freq - 0.5) < 0.05
