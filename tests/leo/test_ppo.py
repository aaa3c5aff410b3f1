"""PPO (commanded goal) and the Dual LEO learners: GAE, behaviour cloning, action mixing, one chunk."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from quietrl.leo.learners import make_learner
from quietrl.leo.networks import ActorCritic
from quietrl.leo.ppo import gae, ppo_update
from quietrl.leo.train import default_config, make_train

TINY = dict(map_size=8, wall_density=0.2, num_envs=16, num_steps=8, minibatch_size=64, epochs=1,
            trunk="64x2", updates_per_chunk=2, total_timesteps=16 * 8 * 4, lr=1e-3, leo_minibatch_size=64,
            leo_epochs=1)


def test_gae_known_answer_with_goal_termination():
    # One env, three steps; step 1 reaches the goal (terminal for GAE), then a new pursuit starts.
    reward = jnp.array([[0.0], [1.0], [0.0]])
    value = jnp.array([[0.5], [0.6], [0.4]])
    done = jnp.array([[False], [True], [False]])
    last = jnp.array([0.3])
    g, lam = 0.9, 0.8
    adv, ret = gae(reward, value, done, last, g, lam)
    d2 = 0.0 + g * 0.3 - 0.4
    d1 = 1.0 - 0.6  # no bootstrap after the goal is reached
    d0 = 0.0 + g * 0.6 - 0.5
    expected = [d0 + g * lam * d1, d1, d2]
    np.testing.assert_allclose(np.asarray(adv)[:, 0], expected, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(ret), np.asarray(adv) + np.asarray(value), rtol=1e-6)


def test_behaviour_cloning_pulls_the_policy_to_the_teacher():
    b, f, g, a = 64, 5, 3, 4
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    net = ActorCritic(a, (32,))
    goal_inputs = jax.random.normal(keys[0], (6, g))
    obs = jax.random.normal(keys[1], (b, f))
    goal = jax.random.randint(keys[2], (b,), 0, 6)
    params = net.init(keys[3], obs[:1], goal_inputs[:1])
    teacher = (goal % a).astype(jnp.int32)  # a goal-dependent teacher the policy must read from its input
    logits, v = net.apply(params, obs, goal_inputs[goal])
    logp = jax.nn.log_softmax(logits)
    action = jnp.zeros(b, jnp.int32)
    batch = dict(obs=obs, goal=goal, action=action, logp=logp[:, 0], value=v, adv=jnp.zeros(b), ret=v,
                 teacher_action=teacher)
    tx = optax.adam(1e-2)

    def agreement(p):
        return float((net.apply(p, obs, goal_inputs[goal])[0].argmax(-1) == teacher).mean())

    run = jax.jit(lambda p, o, k, bc: ppo_update(p, o, tx, net.apply, goal_inputs, batch, k, 16, 10, 0.2, 0.0,
                                                 0.0, bc))
    p_bc, _, _ = run(params, tx.init(params), keys[0], 1.0)
    p_no, _, _ = run(params, tx.init(params), keys[0], 0.0)
    assert agreement(p_bc) >= 0.9
    assert agreement(p_no) < 0.6  # without the term nothing moves the policy towards the teacher


def test_dual_leo_pqn_acts_on_the_mixed_values():
    base = default_config("dual_leo_pqn", **TINY)
    trainer = make_train(base)
    goals, a = trainer.genv.goals, trainer.genv.num_actions
    x = jax.random.normal(jax.random.PRNGKey(1), (32, 2))
    goal = jnp.arange(32, dtype=jnp.int32) % goals.num_goals
    greedy = {}
    for w in (0.0, 0.3, 1.0):
        lr = make_learner(dataclasses.replace(base, mix_leo_weight=w), goals, a, 4)
        p, _, aux, _ = lr.init(jax.random.PRNGKey(0), x[:1], goals.goal_inputs[:1])
        greedy[w] = np.asarray(lr.greedy(p, aux, x, goal))
    from quietrl.leo.networks import LEONetwork, UVFANetwork

    q_u = UVFANetwork(a, base.hidden).apply(p, x, goals.goal_inputs[goal])
    q_l = LEONetwork(goals.num_goals, a, base.hidden).apply(aux, x)[jnp.arange(32), goal]
    np.testing.assert_array_equal(greedy[0.0], np.asarray(q_u.argmax(-1)))
    np.testing.assert_array_equal(greedy[1.0], np.asarray(q_l.argmax(-1)))
    np.testing.assert_array_equal(greedy[0.3], np.asarray((0.7 * q_u + 0.3 * q_l).argmax(-1)))


def _run_chunk(algo):
    tr = make_train(default_config(algo, **TINY))
    s0 = tr.init(jax.random.PRNGKey(0))
    s1, m = tr.chunk(s0)
    return tr, s0, s1, m


def _changed(a, b):
    return any(not np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_dual_leo_ppo_trains_student_and_teacher():
    tr, s0, s1, m = _run_chunk("dual_leo_ppo")
    assert np.isfinite(np.asarray(m["loss"])).all() and int(s1.update) == 2
    assert _changed(s0.params, s1.params) and _changed(s0.aux_params, s1.aux_params)
    got = np.asarray(tr.greedy_test(s1.params, jax.random.PRNGKey(3), s1.aux_params))
    assert got.shape == (tr.genv.num_goals,) and got.any()  # the start cell counts at reset


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["ppo", "dual_leo_pqn"])
def test_other_new_learners_run_a_chunk(algo):
    tr, s0, s1, m = _run_chunk(algo)
    assert np.isfinite(np.asarray(m["loss"])).all() and int(s1.update) == 2
    assert _changed(s0.params, s1.params)
    if algo == "dual_leo_pqn":
        assert _changed(s0.aux_params, s1.aux_params)
