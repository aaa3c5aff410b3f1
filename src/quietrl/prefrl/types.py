"""Data types that cross module boundaries: learner configuration and per-run results."""

from __future__ import annotations

import dataclasses
from typing import Literal, Optional

import numpy as np

from quietrl.core.errors import ConfigError

__all__ = ["LearnerConfig", "RunResult", "ALGOS"]

ALGOS = ("uniform", "greedy", "ucb", "ucb_centred", "perturbed", "maxinfo", "oracle_ucb")


@dataclasses.dataclass(frozen=True)
class LearnerConfig:
    """Hyperparameters of every learner (defaults = spec §9 prototype: lam = 1, beta = 1, refit every 2).

    kernel/lengthscale: state kernel (times a delta kernel on actions); None picks the env default
    (SE 0.1 on bumps*, delta on chain). inducing_states: Nyström inducing states per action (None: the env default, 30 on
    bumps1d [proto], 36 on bumps2d [derived]; the delta kernel always uses every state).
    beta_mode: "constant" (beta_r = beta_scale) or "theory" (beta_scale x the §2.1 formula, with kappa lam
    as the confidence-matrix ridge). solver: the logistic MLE's (newton_iters iterations per refit either way);
    hessian_refresh: Newton keeps its Hessian factor until the data have grown by this factor (1 = refresh
    at every refit; lagging it makes a refit O(n m) instead of O(n m^2)). bonus: "absolute" ||phi(z)||_{V^-1} or "centred" ||phi(z) - m_h||.
    reward_features: "nystrom" (primal MLE on Nyström features) or "exact" (the dual kernel model with
    incremental Cholesky, O(n^2) per episode; ucb/greedy with the absolute bonus and constant beta only).
    Transitions always use Nyström features.
    """

    algo: Literal["uniform", "greedy", "ucb", "ucb_centred", "perturbed", "maxinfo", "oracle_ucb"] = "ucb"
    kernel: Optional[str] = None
    lengthscale: float = 0.1
    inducing_states: Optional[int] = None
    lam_r: float = 1.0
    lam_P: float = 1.0
    rho: float = 1e3
    beta_scale: float = 1.0
    beta_mode: Literal["constant", "theory"] = "constant"
    beta_P: float = 1.0
    delta: float = 0.05
    refit_every: int = 2
    newton_iters: int = 3
    solver: Literal["newton", "lbfgs"] = "newton"
    hessian_refresh: float = 1.25
    bonus: Literal["absolute", "centred"] = "absolute"
    centre_window: int = 20
    keep_reward_bonus: bool = True
    pool_size: int = 4
    oracle_noise: float = 0.1
    temperature: float = 1.0
    reward_features: Literal["nystrom", "exact"] = "nystrom"

    def __post_init__(self):
        from quietrl.prefrl.kernels import KERNEL_NAMES

        if self.algo not in ALGOS:
            raise ConfigError(f"algo: unknown '{self.algo}'; valid: {', '.join(ALGOS)}")
        if self.kernel is not None and self.kernel not in KERNEL_NAMES:
            raise ConfigError(f"kernel: unknown kernel '{self.kernel}'; valid kernels: {', '.join(KERNEL_NAMES)}")
        for name in ("lengthscale", "lam_r", "lam_P", "temperature"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("rho", "beta_scale", "beta_P", "oracle_noise"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 < self.delta < 1:
            raise ConfigError(f"delta must be in (0, 1), got {self.delta}")
        for name in ("refit_every", "newton_iters", "centre_window", "pool_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.solver not in ("newton", "lbfgs"):
            raise ConfigError(f"solver: unknown '{self.solver}'; valid: newton, lbfgs")
        if not self.hessian_refresh >= 1.0:
            raise ConfigError(f"hessian_refresh must be >= 1, got {self.hessian_refresh}")
        if self.reward_features not in ("nystrom", "exact"):
            raise ConfigError(f"reward_features: unknown '{self.reward_features}'; valid: nystrom, exact")
        if self.reward_features == "exact" and (
            self.algo not in ("ucb", "greedy") or self.bonus != "absolute" or self.beta_mode != "constant"
        ):
            raise ConfigError("reward_features=exact supports algo ucb or greedy with bonus=absolute and "
                              f"beta_mode=constant, got algo={self.algo}, bonus={self.bonus}, beta_mode={self.beta_mode}")
        if self.inducing_states is not None and self.inducing_states < 1:
            raise ConfigError(f"inducing_states must be >= 1 or None, got {self.inducing_states}")


@dataclasses.dataclass
class RunResult:
    """One learner run: exact values of both chosen policies per episode and timings.

    v1, v2, labels, seconds: (N,); states1/2: (N, H+1) visited states; reward_hat: (|Z|,) final estimate.
    """

    algo: str
    env: str
    seed: int
    vstar: float
    v1: np.ndarray
    v2: np.ndarray
    labels: np.ndarray
    seconds: np.ndarray
    states1: np.ndarray
    states2: np.ndarray
    reward_hat: np.ndarray | None = None

    @property
    def regret(self) -> np.ndarray:
        """Per-episode regret counting both policies: 2 V* - V^pi1 - V^pi2; shape (N,)."""
        return 2 * self.vstar - self.v1 - self.v2

    @property
    def cumulative_regret(self) -> np.ndarray:
        return np.cumsum(self.regret)
