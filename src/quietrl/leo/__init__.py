"""quietrl.leo: goal-conditioned agents that learn every goal at once (LEO, arXiv 2605.23551).

One network maps an observation to a K x A table of sigmoid Q-values, so a single PQN-style update
gives every goal a 1-step TD target on every transition (implicit all-goals relabelling). Baselines:
commanded-goal PQN (UVFA), PQN + HER and explicit all-goals relabelling, sharing the same trunk.
"""

from .env import ENV_NAMES, GoalEnv, Gridworld, make_env, make_gridworld_map
from .leo import leo_loss, leo_targets, leo_update
from .networks import TRUNK_PRESETS, LEONetwork, Trunk, UVFANetwork
from .pqn import (commanded_samples, decode_pairs, her_samples, pqn_loss, pqn_update, relabel_all_update,
                  relabel_pair_targets, relabel_pairs, uvfa_targets)
from .speedup import SpeedupSetup, flop_model, time_updates
from .train import ALGOS, TrainConfig, Trainer, default_config, make_train, train
from .types import GoalSpace, RunnerState, TrackerState, Transition, success_rate

__all__ = [
    "ALGOS", "ENV_NAMES", "GoalEnv", "GoalSpace", "Gridworld", "LEONetwork", "RunnerState", "SpeedupSetup",
    "TRUNK_PRESETS", "TrackerState", "TrainConfig", "Trainer", "Transition", "Trunk", "UVFANetwork",
    "commanded_samples", "decode_pairs", "default_config", "flop_model", "her_samples", "leo_loss",
    "leo_targets", "leo_update", "make_env", "make_gridworld_map", "make_train", "pqn_loss", "pqn_update",
    "relabel_all_update", "relabel_pair_targets", "relabel_pairs", "success_rate", "time_updates", "train",
    "uvfa_targets",
]
