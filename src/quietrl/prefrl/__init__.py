"""quietrl.prefrl: kernel MDPs learned from episodic trajectory preferences (arXiv 2605.23650).

Each episode runs two policies from s1 and reveals one BTL label on their return difference. The
estimators, confidence widths and pair rules are our reconstruction [derived] of an unreadable algorithm
(spec ../shared/specs/prefrl.md); each is a swappable component.
"""

from quietrl.prefrl.envs import ENV_NAMES, GriddedMDP, Trajectory, bumps1d, bumps2d, chain, from_arrays, make_env, monte_carlo_value
from quietrl.prefrl.estimators import (
    ExactRewardModel,
    FeatureGram,
    IncrementalCholesky,
    PreferenceRewardModel,
    RidgeRewardModel,
    TransitionModel,
    fit_logistic,
    kappa_btl,
    theory_beta,
)
from quietrl.prefrl.features import grid_features, nystrom_features, phi_dot
from quietrl.prefrl.kernels import (
    KERNEL_NAMES,
    Delta,
    Kernel,
    Linear,
    Matern,
    SquaredExponential,
    make_kernel,
    state_action_kernel,
)
from quietrl.prefrl.learners import Learner, make_learner, run_learner
from quietrl.prefrl.oracle import BTLOracle
from quietrl.prefrl.logistic import SolverInfo
from quietrl.prefrl.planning import action_blocks, expand_blocks, plan, plan_linear
from quietrl.prefrl.regret import fit_slope, local_slope, slope_summary
from quietrl.prefrl.types import ALGOS, LearnerConfig, RunResult

__all__ = [
    "ENV_NAMES", "GriddedMDP", "Trajectory", "bumps1d", "bumps2d", "chain", "from_arrays", "make_env",
    "monte_carlo_value", "ExactRewardModel", "FeatureGram", "IncrementalCholesky", "PreferenceRewardModel",
    "RidgeRewardModel", "TransitionModel", "fit_logistic", "kappa_btl", "theory_beta", "grid_features",
    "nystrom_features", "KERNEL_NAMES", "Delta", "Kernel", "Linear", "Matern", "SquaredExponential",
    "make_kernel", "state_action_kernel", "Learner", "make_learner", "run_learner", "BTLOracle", "plan",
    "plan_linear", "action_blocks", "expand_blocks", "phi_dot", "SolverInfo",
    "fit_slope", "local_slope", "slope_summary", "ALGOS", "LearnerConfig", "RunResult",
]
