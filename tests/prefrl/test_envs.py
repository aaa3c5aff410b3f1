import numpy as np
import pytest

from quietrl.core.errors import UserError
from quietrl.prefrl.envs import bumps1d, bumps2d, chain, from_arrays, make_env, monte_carlo_value
from quietrl.prefrl.oracle import BTLOracle


def test_exact_values_bumps1d():
    env = bumps1d()
    vstar, pol = env.optimal()
    assert round(vstar, 3) == 3.221
    assert env.evaluate(pol) == pytest.approx(vstar)
    stay = env.evaluate(np.ones((env.horizon, env.num_states), dtype=np.int64))
    assert round(stay, 3) == 1.277
    assert env.uniform_value() == pytest.approx(0.82, abs=0.01)


def test_exact_values_chain():
    env = chain()
    vstar, pol = env.optimal()
    assert round(vstar, 3) == 2.160
    # the uniform value equals the average over random deterministic policies (Monte-Carlo check)
    rng = np.random.default_rng(0)
    vals = [env.evaluate(rng.integers(0, 2, (env.horizon, env.num_states))) for _ in range(400)]
    assert np.mean(vals) == pytest.approx(env.uniform_value(), abs=4 * np.std(vals) / 20)


def test_rollouts_match_exact_value():
    env = chain()
    _, pol = env.optimal()
    rng = np.random.default_rng(1)
    rets = np.array([env.rollout(pol, rng).rewards.sum() for _ in range(3000)])
    se = rets.std() / np.sqrt(len(rets))
    assert abs(rets.mean() - env.optimal_value) < 4 * se
    tau = env.rollout(pol, rng)
    assert tau.states.shape == (env.horizon + 1,) and tau.actions.shape == (env.horizon,)
    assert tau.states[0] == env.s1


def test_gym_style_interface_and_bumps2d():
    env = bumps2d()
    assert env.num_states == 31 * 31 and env.num_actions == 5
    assert env.features.shape == (31 * 31 * 5, 3)
    v, _ = env.optimal()
    assert env.uniform_value() < v < env.horizon
    rng = np.random.default_rng(0)
    s = env.reset(rng)
    done = False
    steps = 0
    while not done:
        s, r, done = env.step(0)
        steps += 1
    assert steps == env.horizon
    with pytest.raises(UserError, match="after the episode ended"):
        env.step(0)


def test_bad_horizon_and_env():
    with pytest.raises(UserError, match="horizon"):
        make_env("chain", horizon=0)
    with pytest.raises(UserError, match="horizon"):
        bumps1d(horizon=-3)
    with pytest.raises(UserError, match="unknown env 'foo'"):
        make_env("foo")
    with pytest.raises(UserError, match="outside"):
        from_arrays(np.ones((2, 1, 2)) / 2, np.array([[0.0], [2.0]]), 3, reward_range=(0, 1))


def test_oracle_range_check_names_episode_and_step():
    orc = BTLOracle((-0.05, 1.0))
    rng = np.random.default_rng(0)
    ok = np.array([0.1, 0.5, 1.0])
    with pytest.raises(UserError, match=r"episode 7, step 3 \(trajectory 2\)") as e:
        orc(ok, np.array([0.0, 0.2, 1.3]), 7, rng)
    assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="step 1"):
        orc(np.array([-0.2, 0.0, 0.0]), ok, 0, rng)


def test_oracle_btl_probability_and_labels():
    orc = BTLOracle((0.0, 1.0), temperature=2.0)
    r1, r2 = np.array([1.0, 0.5]), np.array([0.25, 0.25])
    p = orc.probability(r1, r2)
    assert p == pytest.approx(1 / (1 + np.exp(-2.0 * 1.0)))
    rng = np.random.default_rng(0)
    freq = np.mean([orc(r1, r2, i, rng) for i in range(4000)])
    assert abs(freq - p) < 4 * np.sqrt(p * (1 - p) / 4000)


def test_monte_carlo_user_mdp():
    class Coin:
        horizon, reward_range, num_actions = 3, (0.0, 1.0), 2

        def reset(self, rng):
            return 0

        def step(self, s, a, rng):
            return s, float(a)

    m, se = monte_carlo_value(Coin(), lambda h, s: 1, 10, np.random.default_rng(0))
    assert m == 3.0 and se == 0.0

    class Bad(Coin):
        def step(self, s, a, rng):
            return s, 5.0

    with pytest.raises(UserError, match="episode 1, step 1"):
        monte_carlo_value(Bad(), lambda h, s: 1, 10, np.random.default_rng(0))


def test_separable_transitions_equal_the_dense_array():
    import dataclasses

    env = bumps2d()
    dense = dataclasses.replace(env, separable=None)
    rng = np.random.default_rng(3)
    V = rng.standard_normal((2, env.num_states))
    assert np.allclose(env.expected_next(V), dense.expected_next(V), atol=1e-13)
    assert np.allclose(env.expected_next(V[0]), env.P @ V[0], atol=1e-13)
    pol = rng.integers(0, env.num_actions, (env.horizon, env.num_states))
    assert env.evaluate(pol) == pytest.approx(dense.evaluate(pol), abs=1e-12)
    assert env.optimal()[0] == pytest.approx(dense.optimal()[0], abs=1e-12)
    with pytest.raises(UserError, match="separable"):
        dataclasses.replace(env, separable=(env.separable[0][:, :5, :5], env.separable[1]))
