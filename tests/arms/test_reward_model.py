"""Bradley-Terry ranking loss on toy data: recovers a known order; ties add nothing."""

import jax
import jax.numpy as jnp
import numpy as np

from quietrl.arms.networks import RewardNet
from quietrl.arms.reward_model import fit_ranking, pair_loss, ranking_loss, trajectory_returns


def linear(params, obs):
    return obs @ params["w"]


def test_recovers_a_known_order():
    # 6 one-step "trajectories" = one-hot states with labels in a known order (two tied)
    obs = jnp.eye(6)[:, None, :]
    mask = jnp.ones((6, 1))
    y = jnp.array([0.0, 3.0, 1.0, 5.0, 1.0, 4.0])
    params, losses = fit_ranking(jax.random.PRNGKey(0), linear, {"w": jnp.zeros(6)}, obs, mask, y, gamma=0.9,
                                 steps=150, lr=0.1, l2=0.0, num_pairs=64)
    g = np.asarray(trajectory_returns(linear, params, obs, mask, 0.9))
    for i in range(6):
        for j in range(6):
            if y[i] > y[j]:
                assert g[i] > g[j]
    assert float(losses[-1]) < float(losses[0])


def test_ties_add_nothing():
    g_a, g_b = jnp.array([1.0, 0.2, 3.0]), jnp.array([0.0, 0.5, -1.0])
    y_a, y_b = jnp.array([1.0, 0.0, 2.0]), jnp.array([0.0, 1.0, 2.0])  # third pair tied
    with_tie = pair_loss(g_a, g_b, y_a, y_b)
    without = pair_loss(g_a[:2], g_b[:2], y_a[:2], y_b[:2])
    assert np.isclose(float(with_tie), float(without))
    assert float(pair_loss(g_a[2:], g_b[2:], y_a[2:], y_b[2:])) == 0.0
    net = RewardNet(8)
    obs = jax.random.normal(jax.random.PRNGKey(1), (4, 3, 5))
    params = net.init(jax.random.PRNGKey(2), obs)
    grads = jax.jit(jax.grad(lambda p: ranking_loss(net.apply, p, obs[:2], jnp.ones((2, 3)), jnp.ones(2), obs[2:],
                                            jnp.ones((2, 3)), jnp.ones(2), 0.9, 0.0)))(params)
    assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree_util.tree_leaves(grads))


def test_loss_is_bradley_terry():
    # −log σ(Ĝ⁺ − Ĝ⁻) with the better trajectory first or second
    l1 = pair_loss(jnp.array([2.0]), jnp.array([0.0]), jnp.array([1.0]), jnp.array([0.0]))
    l2 = pair_loss(jnp.array([0.0]), jnp.array([2.0]), jnp.array([0.0]), jnp.array([1.0]))
    assert np.isclose(float(l1), np.log1p(np.exp(-2.0))) and np.isclose(float(l1), float(l2))


def test_masked_steps_do_not_count():
    obs = jnp.ones((1, 3, 2))
    g = trajectory_returns(lambda p, o: o.sum(-1), None, obs, jnp.array([[1.0, 1.0, 0.0]]), 0.5)
    assert np.isclose(float(g[0]), 2.0 + 2.0 * 0.5)
