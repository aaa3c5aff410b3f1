import numpy as np
import pytest

from quietrl.core.errors import ConfigError, UserError
from quietrl.prefrl.envs import bumps1d, chain
from quietrl.prefrl.learners import make_learner, run_learner
from quietrl.prefrl.planning import plan
from quietrl.prefrl.types import ALGOS, LearnerConfig


@pytest.fixture(scope="module")
def chain_runs():
    env = chain()
    return {a: run_learner(env, LearnerConfig(algo=a), 300, 0) for a in ("uniform", "ucb", "oracle_ucb")}


def test_ucb_beats_uniform_on_chain(chain_runs):
    u, c, o = (chain_runs[a].cumulative_regret[-1] for a in ("uniform", "ucb", "oracle_ucb"))
    assert c < 0.4 * u
    assert o < 0.4 * u
    # ucb's per-episode regret falls over the run
    r = chain_runs["ucb"].regret
    assert r[-100:].mean() < 0.5 * r[:100].mean()


def test_run_result_fields(chain_runs):
    r = chain_runs["ucb"]
    env = chain()
    assert r.v1.shape == (300,) and r.states1.shape == (300, env.horizon + 1)
    assert np.all(r.v1 <= r.vstar + 1e-9) and np.all(r.v2 <= r.vstar + 1e-9)
    assert set(np.unique(r.labels)) <= {0, 1}
    assert r.reward_hat.shape == (env.num_states * env.num_actions,)


@pytest.mark.parametrize("algo", ALGOS)
def test_every_algo_selects_valid_pairs(algo):
    env = bumps1d()
    rng = np.random.default_rng(0)
    learner = make_learner(env, LearnerConfig(algo=algo, pool_size=2), rng)
    for _ in range(3):
        p1, p2 = learner.select_pair()
        for p in (p1, p2):
            assert p.shape == (env.horizon, env.num_states)
            assert p.min() >= 0 and p.max() < env.num_actions
        t1, t2 = env.rollout(p1, rng), env.rollout(p2, rng)
        learner.update(t1, t2, int(rng.random() < 0.5))


def test_planner_with_true_model_is_optimal():
    env = bumps1d()
    rng = np.random.default_rng(0)
    pol, V = plan(env.horizon, env.num_states, env.num_actions, env.r.ravel(),
                  lambda v: (env.P @ v).ravel(), rng)
    assert V[0, env.s1] == pytest.approx(env.optimal_value)
    assert env.evaluate(pol) == pytest.approx(env.optimal_value)


def test_bad_configs():
    with pytest.raises(ConfigError, match="algo"):
        LearnerConfig(algo="ppo")
    with pytest.raises(ConfigError, match="unknown kernel 'gauss'"):
        LearnerConfig(kernel="gauss")
    with pytest.raises(ConfigError, match="lam_r"):
        LearnerConfig(lam_r=0)
    with pytest.raises(UserError, match="episodes"):
        run_learner(chain(), LearnerConfig(), 0, 0)


def test_theory_beta_mode_is_conservative_and_finite():
    env = chain()
    rng = np.random.default_rng(0)
    th = make_learner(env, LearnerConfig(algo="ucb", beta_mode="theory"), rng)
    const = make_learner(env, LearnerConfig(algo="ucb"), rng)
    for learner in (th, const):
        for _ in range(5):
            p1, p2 = learner.select_pair()
            learner.update(env.rollout(p1, rng), env.rollout(p2, rng), 1)
    assert np.isfinite(th.beta_r()) and th.beta_r() > 10 * const.beta_r()
    assert th.kappa > 1e4  # cH(r_max - r_min) = 12 on the chain: kappa ~ e^12


def test_exact_reward_mode_learns_and_keeps_exact_widths():
    """ucb on the exact (dual, incremental-Cholesky) reward model: learns the chain, and after 150 episodes
    its cached widths equal a from-scratch factorisation and, the delta kernel's features being exact, the
    primal confidence widths of the same data."""
    env = chain()
    res = run_learner(env, LearnerConfig(algo="ucb", reward_features="exact"), 150, 0)
    uniform_per_episode = 2 * (env.optimal_value - env.uniform_value())
    assert res.regret[-50:].mean() < 0.25 * uniform_per_episode
    rng = np.random.default_rng(1)
    exact = make_learner(env, LearnerConfig(algo="ucb", reward_features="exact"), rng)
    primal = make_learner(env, LearnerConfig(algo="ucb"), rng)
    for _ in range(40):
        p1, p2 = exact.select_pair()
        t1, t2, o = env.rollout(p1, rng), env.rollout(p2, rng), int(rng.random() < 0.5)
        exact.update(t1, t2, o)
        primal.update(t1, t2, o)
    m = exact.reward_model.model
    assert m.n == 41  # 40 episodes and the gauge row
    assert np.allclose(m.widths(), m.batch_widths(), atol=1e-8)
    assert np.allclose(exact.reward_model.widths(), primal.reward_model.widths(), atol=1e-6)
    with pytest.raises(ConfigError, match="reward_features=exact"):
        LearnerConfig(algo="perturbed", reward_features="exact")
