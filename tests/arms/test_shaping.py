"""PBRS telescoping on real env rollouts; the bonus term."""

import jax
import jax.numpy as jnp
import numpy as np

from quietrl.arms.env import make_env
from quietrl.arms.shaping import bonus_term, pbrs_term
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
