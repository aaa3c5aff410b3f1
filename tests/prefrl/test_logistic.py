import numpy as np
import pytest

from quietrl.core.errors import ConfigError
from quietrl.prefrl.estimators import PreferenceRewardModel
from quietrl.prefrl.logistic import fit_logistic, logistic_objective
from quietrl.prefrl.oracle import sigmoid
from quietrl.prefrl.types import LearnerConfig


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    n, m = 400, 6
    theta = rng.standard_normal(m)
    X = rng.standard_normal((n, m)) / np.sqrt(m)
    o = (rng.random(n) < sigmoid(X @ theta)).astype(float)
    phibar = rng.standard_normal(m) / m
    return X, o, phibar


# the JAX backend compiles two while-loop programs (seconds each on 2 cores): slow-marked; its Newton is
# checked by default in test_backends_agree_and_padding_is_masked
@pytest.mark.parametrize("backend", ["numpy", pytest.param("jax", marks=pytest.mark.slow)])
def test_lbfgs_and_newton_reach_the_same_optimum(data, backend):
    X, o, pb = data
    args = (X, o, 1.5, 0.3, 50.0, pb)
    t_newton, i_newton = fit_logistic(*args, max_iter=50, tol=1e-10, backend=backend)
    t_lbfgs, i_lbfgs = fit_logistic(*args, max_iter=500, tol=1e-9, solver="lbfgs", backend=backend)
    assert i_newton.converged and i_lbfgs.converged
    assert i_lbfgs.iterations > i_newton.iterations  # really a different method
    assert np.allclose(t_newton, t_lbfgs, atol=1e-7)
    # the optimum: no coordinate perturbation lowers the objective
    f0 = logistic_objective(t_newton, X, o, 1.5, 0.3, 50.0, pb)
    for j in range(X.shape[1]):
        for eps in (1e-4, -1e-4):
            t = t_newton.copy()
            t[j] += eps
            assert logistic_objective(t, X, o, 1.5, 0.3, 50.0, pb) >= f0 - 1e-12


def test_backends_agree_and_padding_is_masked(data):
    X, o, pb = data
    a, _ = fit_logistic(X, o, 1.0, 0.5, 10.0, pb, max_iter=50, tol=1e-10, backend="numpy")
    b, _ = fit_logistic(X, o, 1.0, 0.5, 10.0, pb, max_iter=50, tol=1e-10, backend="jax")
    assert np.allclose(a, b, atol=1e-9)
    # garbage rows beyond n must not count, in either backend
    Xg = np.concatenate([X, 100 * np.ones((112, X.shape[1]))])
    og = np.concatenate([o, np.ones(112)])
    for be in ("numpy", "jax"):
        c, _ = fit_logistic(Xg, og, 1.0, 0.5, 10.0, pb, max_iter=50, tol=1e-10, n=X.shape[0], backend=be)
        assert np.allclose(a, c, atol=1e-9)


def test_lagged_newton_converges_to_the_textbook_optimum(data):
    X, o, pb = data
    m = PreferenceRewardModel(np.eye(X.shape[1]), c=1.0, lam=0.5, rho=10.0, hessian_refresh=2.0)
    m.phibar = pb
    m.add_batch(X[:300], o[:300])
    m.refit(max_iter=50, tol=1e-10)  # fresh Hessian (first refit)
    m.add_batch(X[300:], o[300:])  # n grew by 1.33 < 2: the next refit keeps the old Hessian
    hess_before = m._hess.copy()
    # tol 1e-8: the gradient of this 400-sample objective (~251) has a float64 rounding floor near 2e-9 on
    # some CPUs, which a lagged-Hessian Newton approaches but need not pass
    info = m.refit(max_iter=200, tol=1e-8)
    assert np.array_equal(m._hess, hess_before)
    ref, _ = fit_logistic(X, o, 1.0, 0.5, 10.0, pb, max_iter=50, tol=1e-10)
    assert info.converged and np.allclose(m.theta, ref, atol=1e-8)


def test_unknown_solver_or_backend_is_a_config_error(data):
    X, o, _ = data
    with pytest.raises(ConfigError, match="solver"):
        fit_logistic(X, o, solver="sgd")
    with pytest.raises(ConfigError, match="backend"):
        fit_logistic(X, o, backend="torch")
    with pytest.raises(ConfigError, match="solver"):
        LearnerConfig(solver="bfgs")
    with pytest.raises(ConfigError, match="hessian_refresh"):
        LearnerConfig(hessian_refresh=0.5)
