import numpy as np
import pytest

from quietrl.core.errors import ConfigError, UserError
from quietrl.prefrl.kernels import (
    Delta, Linear, Matern, SquaredExponential, make_kernel, state_action_kernel, KERNEL_NAMES,
)

RNG = np.random.default_rng(0)
X = np.concatenate([RNG.random((40, 2)), RNG.integers(0, 3, (40, 1)).astype(float)], 1)


def _min_eig_rel(K):
    ev = np.linalg.eigvalsh(0.5 * (K + K.T))
    return ev.min() / max(ev.max(), 1e-300)


@pytest.mark.parametrize("name", KERNEL_NAMES)
def test_base_kernels_psd(name):
    K = make_kernel(name, 0.3)(X)
    assert K.shape == (40, 40)
    assert np.allclose(K, K.T)
    assert _min_eig_rel(K) > -1e-10


def test_compositions_psd_and_algebra():
    k1, k2 = SquaredExponential(0.2, dims=(0, 1)), Matern(1.5, 0.5, dims=(0, 1))
    kd = Delta(dims=(2,))
    assert np.allclose((k1 + k2)(X), k1(X) + k2(X))
    assert np.allclose((k1 * kd)(X), k1(X) * kd(X))
    assert np.allclose((2.5 * k2)(X), 2.5 * k2(X))
    assert np.allclose((k2 * 2.5).diag(X), 2.5 * np.ones(40))
    for k in (k1 + k2, k1 * kd, 0.5 * (k1 + k2) * kd, state_action_kernel("matern52", 0.1, 2)):
        assert _min_eig_rel(k(X)) > -1e-10


def test_closed_forms():
    x, y = np.array([[0.0, 0.0]]), np.array([[0.3, 0.4]])  # Euclidean r = 0.5 (L1 would be 0.7)
    r, l = 0.5, 0.25
    assert Matern(0.5, l)(x, y)[0, 0] == pytest.approx(np.exp(-r / l))
    s = np.sqrt(3) * r / l
    assert Matern(1.5, l)(x, y)[0, 0] == pytest.approx((1 + s) * np.exp(-s))
    s = np.sqrt(5) * r / l
    assert Matern(2.5, l)(x, y)[0, 0] == pytest.approx((1 + s + s * s / 3) * np.exp(-s))
    assert SquaredExponential(l)(x, y)[0, 0] == pytest.approx(np.exp(-(r**2) / (2 * l**2)))
    assert Linear(2.0, 1.0)(np.array([[1.0, 2.0]]), np.array([[3.0, -1.0]]))[0, 0] == pytest.approx(2 * 1 + 1)
    assert Delta()(np.array([[1.0], [2.0]]), np.array([[1.0], [2.0], [3.0]])).tolist() == [[1, 0, 0], [0, 1, 0]]
    # diag agrees with the Gram diagonal
    for name in KERNEL_NAMES:
        k = make_kernel(name, 0.3)
        assert np.allclose(k.diag(X), np.diag(k(X)))


def test_bad_kernels():
    with pytest.raises(UserError, match="unknown kernel 'rbff'"):
        make_kernel("rbff")
    with pytest.raises(ConfigError, match="nu"):
        Matern(nu=2.0)
    with pytest.raises(ConfigError, match="lengthscale"):
        SquaredExponential(lengthscale=0.0)
    with pytest.raises(UserError, match="dims"):
        SquaredExponential(dims=(5,))(X)
