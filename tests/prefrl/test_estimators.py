import math

import numpy as np
import pytest

from quietrl.prefrl.envs import chain
from quietrl.prefrl.estimators import (
    ExactRewardModel, FeatureGram, IncrementalCholesky, PreferenceRewardModel, TransitionModel,
    fit_logistic, kappa_btl, theory_beta,
)
from quietrl.prefrl.features import grid_features
from quietrl.prefrl.kernels import state_action_kernel
from quietrl.prefrl.oracle import sigmoid


def _synthetic(theta, n, rng, c=1.0):
    X = rng.standard_normal((n, len(theta)))
    o = (rng.random(n) < sigmoid(c * X @ theta)).astype(float)
    return X, o


def test_newton_recovers_known_parameter():
    rng = np.random.default_rng(0)
    theta = np.array([1.0, -2.0, 0.5])
    errs = []
    for n in (300, 5000):
        X, o = _synthetic(theta, n, rng)
        est, info = fit_logistic(X, o, lam=1e-3, max_iter=50)
        assert info.converged
        errs.append(np.linalg.norm(est - theta))
    assert errs[1] < 0.15 and errs[1] < errs[0]


def test_newton_armijo_stays_finite_on_separable_data():
    X = np.array([[1.0], [2.0], [-1.0], [-3.0]])
    o = np.array([1.0, 1.0, 0.0, 0.0])
    est, info = fit_logistic(X, o, lam=1e-6, max_iter=30)
    assert np.all(np.isfinite(est)) and est[0] > 0


@pytest.fixture(scope="module")
def chain_setup():
    env = chain()
    Phi = grid_features(env, state_action_kernel("delta", 0.1, 1))
    return env, Phi


def _preference_data(env, Phi, n, rng):
    H, S, A = env.horizon, env.num_states, env.num_actions
    zs1, zs2, labels = [], [], []
    for _ in range(n):
        t1 = env.rollout(rng.integers(0, A, (H, S)), rng)
        t2 = env.rollout(rng.integers(0, A, (H, S)), rng)
        # larger-temperature labels make the test informative at small n
        p = sigmoid(np.array([3.0 * (t1.rewards.sum() - t2.rewards.sum())]))[0]
        zs1.append(t1.z(A)), zs2.append(t2.z(A)), labels.append(int(rng.random() < p))
    return zs1, zs2, labels


def test_mle_recovers_known_reward_up_to_gauge(chain_setup):
    """Gauge-aligned reward error falls with n; the learned reward ranks the two rewarding pairs on top."""
    env, Phi = chain_setup
    rng = np.random.default_rng(0)
    zs1, zs2, labels = _preference_data(env, Phi, 3000, rng)
    true = env.r.ravel() - env.r.mean()
    errs = []
    for n in (300, 3000):
        m = PreferenceRewardModel(Phi, c=3.0, lam=0.1, rho=1e3)
        m.add_batch(np.stack([Phi[zs1[i]].sum(0) - Phi[zs2[i]].sum(0) for i in range(n)]), np.array(labels[:n]))
        info = m.refit(max_iter=50, tol=1e-8)
        assert info.converged
        rh = m.reward()
        assert abs(rh.mean()) < 1e-2  # the gauge term pins the grid mean
        # pairs never visited by random policies carry no information: compare on visited pairs only
        seen = np.unique(np.concatenate(zs1[:n] + zs2[:n]))
        errs.append(np.sqrt(np.mean((rh[seen] - rh[seen].mean() - (true[seen] - true[seen].mean())) ** 2)))
    assert errs[1] < 0.6 * errs[0]
    assert errs[1] < 0.1
    top = np.argmax(rh)
    assert top in (0 * 2 + 0, 7 * 2 + 1)


def test_incremental_cholesky_equals_batch():
    rng = np.random.default_rng(0)
    n = 300
    B = rng.standard_normal((n, n // 2))
    M = B @ B.T + 0.5 * np.eye(n)
    ic = IncrementalCholesky(capacity=16, block=64)  # small capacity and block: exercises growth and blocking
    for i in range(n):
        ic.append(M[i, :i], M[i, i])
    L = np.linalg.cholesky(M)
    assert np.allclose(ic.L, L, atol=1e-9)
    assert ic.logdet == pytest.approx(np.linalg.slogdet(M)[1], rel=1e-10)
    b = rng.standard_normal(n)
    assert np.allclose(ic.solve(b), np.linalg.solve(M, b), atol=1e-8)


def test_exact_reward_model_widths_match_batch_and_primal(chain_setup):
    env, Phi = chain_setup
    rng = np.random.default_rng(1)
    zs1, zs2, labels = _preference_data(env, Phi, 60, rng)
    Kzz = Phi @ Phi.T  # the delta kernel's Nyström features are exact on the chain grid
    ex = ExactRewardModel(Kzz, lam=1.0, rho=1e3, capacity=8)
    pm = PreferenceRewardModel(Phi, c=1.0, lam=1.0, rho=1e3)
    for a, b, o in zip(zs1, zs2, labels):
        ex.add(a, b, o)
        pm.add(Phi[a].sum(0) - Phi[b].sum(0), o)
    assert np.allclose(ex.widths(), ex.batch_widths(), atol=1e-8)
    assert np.allclose(ex.widths(), pm.widths(), atol=1e-6)
    # log det(K^D + lam I) = log det(V_n) - m log lam  (Sylvester), gauge row included on both sides
    m = Phi.shape[1]
    assert ex.logdet == pytest.approx(pm.V.logdet - m * math.log(1.0), rel=1e-8)


def test_feature_gram_woodbury_equals_direct():
    rng = np.random.default_rng(2)
    Phi = rng.standard_normal((50, 6))
    g = FeatureGram(Phi, np.eye(6), refresh_every=10**9)
    G = np.eye(6)
    for _ in range(20):
        Xn = rng.standard_normal((3, 6))
        g.add(Xn)
        G += Xn.T @ Xn
    direct = np.einsum("ij,jk,ik->i", Phi, np.linalg.inv(G), Phi)
    assert np.allclose(g.w2, direct, rtol=1e-8)
    assert g.logdet == pytest.approx(np.linalg.slogdet(G)[1])


def test_transition_model_recovers_tabular_means(chain_setup):
    env, Phi = chain_setup
    tm = TransitionModel(Phi, env.num_states, lam=1e-6)
    rng = np.random.default_rng(0)
    z, s2 = [], []
    for s in range(env.num_states):
        for a in range(2):
            nxt = rng.choice(env.num_states, 400, p=env.P[s, a])
            z += [s * 2 + a] * 400
            s2 += list(nxt)
    tm.add(np.array(z), np.array(s2))
    V = np.linspace(0, 1, env.num_states)
    assert np.allclose(tm.backup(V), (env.P @ V).ravel(), atol=0.06)
    assert np.all(tm.widths() < 0.06)


N_DATASETS = 200


@pytest.fixture(scope="module")
def coverage_runs():
    """200 fixed-seed synthetic logistic datasets (d = 4, n = 150); theta drawn from the N(0, I) prior."""
    rng = np.random.default_rng(12345)
    q = np.array([0.6, -0.3, 0.5, 0.2])
    lam, n, d = 1.0, 150, 4
    out = []
    for _ in range(N_DATASETS):
        theta = rng.standard_normal(d)
        X = rng.standard_normal((n, d)) / np.sqrt(d)
        o = (rng.random(n) < sigmoid(X @ theta)).astype(float)
        m = PreferenceRewardModel(np.eye(d), c=1.0, lam=lam, rho=0.0,
                                  kappa=kappa_btl(1.0, 1, (0.0, float(np.abs(X @ theta).max()))))
        m.add_batch(X, o)
        m.refit(max_iter=50, tol=1e-10)
        err = abs(q @ (m.theta - theta))
        beta_th = theory_beta(m.logdet_ratio(), m.kappa, lam, norm_bound=np.linalg.norm(theta), delta=0.05)
        w_theory = beta_th * np.sqrt(q @ m.V.solve(q))
        w_laplace = 1.959964 * m.laplace_cov_widths(q[None, :])[0]
        out.append((err <= w_theory, err <= w_laplace))
    return np.array(out)


def test_theory_beta_coverage_at_least_nominal(coverage_runs):
    nominal = 0.95
    se = math.sqrt(nominal * (1 - nominal) / N_DATASETS)
    assert coverage_runs[:, 0].mean() >= nominal - 3 * se


def test_scale_one_laplace_widths_within_three_se_of_nominal(coverage_runs):
    nominal = 0.95
    se = math.sqrt(nominal * (1 - nominal) / N_DATASETS)
    assert abs(coverage_runs[:, 1].mean() - nominal) <= 3 * se


def test_exact_dual_refit_matches_primal_mle(chain_setup):
    """With exact features the dual Newton-PCG MLE equals the primal Newton MLE; from_batch = incremental."""
    env, Phi = chain_setup
    rng = np.random.default_rng(3)
    zs1, zs2, labels = _preference_data(env, Phi, 80, rng)
    Kzz = Phi @ Phi.T
    ex = ExactRewardModel(Kzz, lam=1.0, rho=1e3)
    for a, b, o in zip(zs1, zs2, labels):
        ex.add(a, b, o)
    info = ex.refit(newton_steps=30, cg_tol=1e-10)
    pm = PreferenceRewardModel(Phi, c=1.0, lam=1.0, rho=1e3)
    pm.add_batch(np.stack([Phi[a].sum(0) - Phi[b].sum(0) for a, b in zip(zs1, zs2)]), np.array(labels))
    pm.refit(max_iter=50, tol=1e-12)
    assert np.allclose(ex.reward(), pm.reward(), atol=1e-5), info
    fb = ExactRewardModel.from_batch(Kzz, zs1, zs2, labels, lam=1.0, rho=1e3)
    assert np.allclose(fb.widths(), ex.widths(), atol=1e-9)
    assert fb.logdet == pytest.approx(ex.logdet)
    assert np.allclose(fb.chol.L, ex.chol.L, atol=1e-9)
