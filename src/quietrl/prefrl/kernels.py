"""Positive-definite kernels on state-action features, as composable objects.

A kernel maps two arrays of points ``X (n, d)`` and ``Y (m, d)`` to a Gram matrix ``(n, m)``. Each base
kernel looks only at the feature columns named by ``dims`` (all columns by default), so a state-action
kernel is the product of a state kernel on the state columns and a delta kernel on the action column.
Sums, products and positive scalings of kernels are kernels again (``k1 + k2``, ``k1 * k2``, ``2.0 * k``).

Distances are Euclidean (spec pitfall 7: a prior implementation used L1 in its Matérn kernels).
Everything here is NumPy float64: these Grams feed the estimators' Cholesky factorisations.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Sequence

import numpy as np

from quietrl.core.errors import ConfigError, UserError

__all__ = [
    "Kernel",
    "Linear",
    "Delta",
    "SquaredExponential",
    "Matern",
    "SumKernel",
    "ProductKernel",
    "ScaledKernel",
    "make_kernel",
    "KERNEL_NAMES",
]


def _select(X: np.ndarray, dims: tuple[int, ...] | None) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise UserError(f"kernel input must be a (n, d) array, got shape {X.shape}")
    if dims is None:
        return X
    if max(dims) >= X.shape[1]:
        raise UserError(f"kernel dims {dims} out of range for inputs with {X.shape[1]} feature columns")
    return X[:, list(dims)]


def _sqdist(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    # Expanded form is fast; clamp at 0 because cancellation can make it slightly negative.
    d2 = (X * X).sum(1)[:, None] + (Y * Y).sum(1)[None, :] - 2.0 * X @ Y.T
    return np.maximum(d2, 0.0)


class Kernel(abc.ABC):
    """Base class: ``k(X, Y) -> (n, m)`` Gram matrix and ``k.diag(X) -> (n,)``."""

    @abc.abstractmethod
    def __call__(self, X: np.ndarray, Y: np.ndarray | None = None) -> np.ndarray:
        """Gram matrix ``(n, m)`` between ``X (n, d)`` and ``Y (m, d)`` (``Y`` defaults to ``X``)."""

    def diag(self, X: np.ndarray) -> np.ndarray:
        """Diagonal ``k(x_i, x_i)`` for ``X (n, d)``; shape ``(n,)``."""
        X = np.asarray(X, dtype=np.float64)
        return np.array([self(X[i : i + 1], X[i : i + 1])[0, 0] for i in range(X.shape[0])])

    def __add__(self, other: "Kernel") -> "Kernel":
        if not isinstance(other, Kernel):
            return NotImplemented
        return SumKernel(self, other)

    def __mul__(self, other) -> "Kernel":
        if isinstance(other, Kernel):
            return ProductKernel(self, other)
        if np.isscalar(other):
            return ScaledKernel(self, float(other))
        return NotImplemented

    __rmul__ = __mul__


@dataclasses.dataclass(frozen=True)
class Linear(Kernel):
    """k(x, y) = variance * <x, y> + bias."""

    variance: float = 1.0
    bias: float = 0.0
    dims: tuple[int, ...] | None = None

    def __post_init__(self):
        if self.variance <= 0 or self.bias < 0:
            raise ConfigError(f"Linear kernel: variance must be > 0 and bias >= 0, got {self.variance}, {self.bias}")

    def __call__(self, X, Y=None):
        Y = X if Y is None else Y
        A, B = _select(X, self.dims), _select(Y, self.dims)
        return self.variance * (A @ B.T) + self.bias

    def diag(self, X):
        A = _select(X, self.dims)
        return self.variance * (A * A).sum(1) + self.bias


@dataclasses.dataclass(frozen=True)
class Delta(Kernel):
    """k(x, y) = variance * 1{x == y} on the selected columns (finite actions, tabular states)."""

    variance: float = 1.0
    dims: tuple[int, ...] | None = None

    def __post_init__(self):
        if self.variance <= 0:
            raise ConfigError(f"Delta kernel: variance must be > 0, got {self.variance}")

    def __call__(self, X, Y=None):
        Y = X if Y is None else Y
        A, B = _select(X, self.dims), _select(Y, self.dims)
        eq = np.all(A[:, None, :] == B[None, :, :], axis=-1)
        return self.variance * eq.astype(np.float64)

    def diag(self, X):
        return np.full(_select(X, self.dims).shape[0], self.variance)


@dataclasses.dataclass(frozen=True)
class SquaredExponential(Kernel):
    """k(x, y) = variance * exp(-|x - y|^2 / (2 lengthscale^2)), Euclidean distance."""

    lengthscale: float = 0.1
    variance: float = 1.0
    dims: tuple[int, ...] | None = None

    def __post_init__(self):
        if self.lengthscale <= 0 or self.variance <= 0:
            raise ConfigError(
                f"SE kernel: lengthscale and variance must be > 0, got {self.lengthscale}, {self.variance}"
            )

    def __call__(self, X, Y=None):
        Y = X if Y is None else Y
        A, B = _select(X, self.dims), _select(Y, self.dims)
        return self.variance * np.exp(-0.5 * _sqdist(A, B) / self.lengthscale**2)

    def diag(self, X):
        return np.full(_select(X, self.dims).shape[0], self.variance)


@dataclasses.dataclass(frozen=True)
class Matern(Kernel):
    """Matérn kernel with nu in {1/2, 3/2, 5/2} in closed form, Euclidean distance r = |x - y|.

    nu = 1/2: exp(-r/l);  3/2: (1 + sqrt3 r/l) exp(-sqrt3 r/l);  5/2: (1 + sqrt5 r/l + 5r^2/(3l^2)) exp(-sqrt5 r/l).
    """

    nu: float = 2.5
    lengthscale: float = 0.1
    variance: float = 1.0
    dims: tuple[int, ...] | None = None

    def __post_init__(self):
        if self.nu not in (0.5, 1.5, 2.5):
            raise ConfigError(f"Matern kernel: nu must be one of 0.5, 1.5, 2.5, got {self.nu}")
        if self.lengthscale <= 0 or self.variance <= 0:
            raise ConfigError(
                f"Matern kernel: lengthscale and variance must be > 0, got {self.lengthscale}, {self.variance}"
            )

    def __call__(self, X, Y=None):
        Y = X if Y is None else Y
        A, B = _select(X, self.dims), _select(Y, self.dims)
        r = np.sqrt(_sqdist(A, B)) / self.lengthscale
        if self.nu == 0.5:
            k = np.exp(-r)
        elif self.nu == 1.5:
            s = np.sqrt(3.0) * r
            k = (1.0 + s) * np.exp(-s)
        else:
            s = np.sqrt(5.0) * r
            k = (1.0 + s + s * s / 3.0) * np.exp(-s)
        return self.variance * k

    def diag(self, X):
        return np.full(_select(X, self.dims).shape[0], self.variance)


@dataclasses.dataclass(frozen=True)
class SumKernel(Kernel):
    """k1 + k2."""

    k1: Kernel
    k2: Kernel

    def __call__(self, X, Y=None):
        return self.k1(X, Y) + self.k2(X, Y)

    def diag(self, X):
        return self.k1.diag(X) + self.k2.diag(X)


@dataclasses.dataclass(frozen=True)
class ProductKernel(Kernel):
    """k1 * k2 (elementwise: the tensor-product RKHS)."""

    k1: Kernel
    k2: Kernel

    def __call__(self, X, Y=None):
        return self.k1(X, Y) * self.k2(X, Y)

    def diag(self, X):
        return self.k1.diag(X) * self.k2.diag(X)


@dataclasses.dataclass(frozen=True)
class ScaledKernel(Kernel):
    """scale * k, scale > 0."""

    k: Kernel
    scale: float

    def __post_init__(self):
        if not self.scale > 0:
            raise ConfigError(f"kernel scale must be > 0, got {self.scale}")

    def __call__(self, X, Y=None):
        return self.scale * self.k(X, Y)

    def diag(self, X):
        return self.scale * self.k.diag(X)


KERNEL_NAMES = ("linear", "delta", "se", "matern12", "matern32", "matern52")


def make_kernel(name: str, lengthscale: float = 0.1, dims: Sequence[int] | None = None) -> Kernel:
    """Build a base kernel by name (one of KERNEL_NAMES) on the columns ``dims``."""
    d = None if dims is None else tuple(int(i) for i in dims)
    if name == "linear":
        return Linear(dims=d)
    if name == "delta":
        return Delta(dims=d)
    if name in ("se", "rbf"):
        return SquaredExponential(lengthscale=lengthscale, dims=d)
    nus = {"matern12": 0.5, "matern32": 1.5, "matern52": 2.5}
    if name in nus:
        return Matern(nu=nus[name], lengthscale=lengthscale, dims=d)
    raise UserError(f"unknown kernel '{name}'; valid kernels: {', '.join(KERNEL_NAMES)}")


def state_action_kernel(state_kernel: str, lengthscale: float, state_dims: int) -> Kernel:
    """k((s,a),(s',a')) = k_S(s, s') * 1{a = a'} on features laid out as [s_1..s_d, a]."""
    ks = make_kernel(state_kernel, lengthscale, dims=range(state_dims))
    return ks * Delta(dims=(state_dims,))


__all__.append("state_action_kernel")
