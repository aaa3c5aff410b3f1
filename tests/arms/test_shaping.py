"""PBRS telescoping on real env rollouts; the learned-potential term telescopes too; the bonus term; the
reward each ARMS method hands the policy (potential, replace, add)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from quietrl.arms.env import make_env
from quietrl.arms.shaping import bonus_term, learned_potential_term, learned_reward, pbrs_term
from quietrl.arms.types import EnvConfig


def test_pbrs_telescopes_to_minus_initial_potential():
    env = make_env(EnvConfig(grid_size=6, num_agents=3, horizon=12, num_train_tasks=16, num_heldout_tasks=0))
    gamma = 0.97

    def episode(key, task):
        _, st = env.reset_to(task)
        d0 = env._dist[task][jnp.arange(3), st.pos[:, 0], st.pos[:, 1]].astype(jnp.float32)
        phi0 = -d0 / env._dmax[task]

        def step(carry, k):
            st, over, t = carry
            a = jax.random.randint(k, (3,), 0, 5)
            _, st2, _, done, info = env.step_arrays(st, a)
            f = pbrs_term(info["dist_before"], info["dist_after"], info["dmax"], info["alive"] & ~over,
                          info["arrived"] | done, gamma)
            return (st2, over | done, t + 1), f * gamma ** t

        (_, _, _), fs = jax.lax.scan(step, (st, jnp.bool_(False), 0.0), jax.random.split(key, 12))
        return fs.sum(0), phi0

    keys = jax.random.split(jax.random.PRNGKey(0), 16)
    total, phi0 = jax.jit(jax.vmap(episode))(keys, jnp.arange(16))
    assert np.allclose(np.asarray(total), -np.asarray(phi0), atol=1e-5)
    assert (np.asarray(phi0) < 0).all()


def test_bonus_only_for_progress_while_alive():
    b = bonus_term(jnp.array([3.0, 3.0, 3.0]), jnp.array([2.0, 3.0, 2.0]), jnp.array([True, True, False]), 0.3)
    assert np.allclose(np.asarray(b), [0.3, 0.0, 0.0])


def test_learned_potential_term_telescopes():
    """Any Φ (here random) with arrival/timeout zeroing: Σ_t γ^t F_t = −Φ_0 for every agent and episode."""
    rng = np.random.default_rng(0)
    T, E, n, gamma = 10, 64, 3, 0.95
    phi = rng.normal(size=(T, E, n)).astype(np.float32)
    arrive = rng.integers(0, T + 3, (E, n))  # step index of arrival; >= T: never (timeout)
    t = np.arange(T)[:, None, None]
    alive = t <= arrive[None]  # alive before step t up to and including the arrival step
    end = np.minimum(arrive.max(-1), T - 1)  # episode ends when all arrived or at T - 1
    done = t >= end[None, :, None]
    terminal = (t >= arrive[None]) | done
    alive = alive & (t <= end[None, :, None])
    f = learned_potential_term(jnp.asarray(phi), jnp.asarray(alive), jnp.asarray(terminal), gamma)
    total = (np.asarray(f) * gamma ** t).sum(0)
    assert np.allclose(total, -phi[0], atol=1e-5)
    assert not np.allclose(np.asarray(f), 0.0)  # a dense signal, not a constant


def test_learned_reward_forms():
    """`arms` = R + (γΦ' − Φ) telescopes to R's return − Φ_0; `arms-replace` drops R; `arms-add` = R + β r̂."""
    rng = np.random.default_rng(1)
    T, gamma, beta = 6, 0.9, 0.5
    sparse = np.zeros(T, np.float32)
    sparse[3] = 1.0  # arrival at step 3
    alive = np.arange(T) <= 3
    terminal = np.arange(T) >= 3
    pre = (rng.normal(size=T) * alive).astype(np.float32)
    post = (rng.normal(size=T) * alive).astype(np.float32)
    disc = gamma ** np.arange(T)
    for m in ("arms", "arms-frozen"):
        r, term = learned_reward(m, jnp.asarray(sparse), jnp.asarray(pre), jnp.asarray(alive), jnp.asarray(terminal),
                                 gamma, beta)
        assert np.isclose((np.asarray(r) * disc).sum(), gamma ** 3 - pre[0], atol=1e-5)
        assert np.allclose(np.asarray(r) - sparse, np.asarray(term))
    r, term = learned_reward("arms-replace", jnp.asarray(sparse), jnp.asarray(post), None, None, gamma, beta)
    assert np.allclose(np.asarray(r), post) and np.allclose(np.asarray(term), post)  # R is gone
    r, _ = learned_reward("arms-add", jnp.asarray(sparse), jnp.asarray(post), None, None, gamma, beta)
    assert np.allclose(np.asarray(r), sparse + beta * post)
    with pytest.raises(ValueError, match="not an ARMS method"):
        learned_reward("pbrs", jnp.asarray(sparse), None, None, None, gamma)
