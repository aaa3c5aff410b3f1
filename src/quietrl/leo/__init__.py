"""quietrl.leo: goal-conditioned agents that learn every goal at once (LEO, arXiv 2605.23551).

One network maps an observation to a K x A table of sigmoid Q-values, so a single PQN-style update
gives every goal a 1-step TD target on every transition (implicit all-goals relabelling). Baselines:
commanded-goal PQN (UVFA), PQN + HER, explicit all-goals relabelling, commanded-goal PPO, and the two
Dual LEO learners (PQN action mixing; PPO student with a LEO teacher), all on the same trunk code.
Environments: a goal gridworld, goal-conditioned Craftax-Classic (K = 136) and Craftax (K = 512).
"""

from .env import ENV_NAMES, GoalEnv, Gridworld, make_env, make_gridworld_map
from .learners import Learner, make_learner
from .leo import leo_loss, leo_targets, leo_update
from .networks import TRUNK_PRESETS, ActorCritic, LEONetwork, Trunk, UVFANetwork
from .ppo import gae, ppo_loss, ppo_update
from .pqn import (commanded_samples, decode_pairs, her_samples, pqn_loss, pqn_update, relabel_all_update,
                  relabel_pair_targets, relabel_pairs, uvfa_targets)
from .speedup import SpeedupSetup, flop_model, time_updates
from .train import ALGOS, TrainConfig, Trainer, default_config, make_train, train
from .types import GoalSpace, RunnerState, TrackerState, Transition, success_rate

__all__ = [
    "ActorCritic", "ALGOS", "commanded_samples", "decode_pairs", "default_config", "ENV_NAMES", "flop_model",
    "gae", "GoalEnv", "GoalSpace", "Gridworld", "her_samples", "Learner", "leo_loss", "leo_targets",
    "leo_update", "LEONetwork", "make_env", "make_gridworld_map", "make_learner", "make_train", "ppo_loss",
    "ppo_update", "pqn_loss", "pqn_update", "relabel_all_update", "relabel_pair_targets", "relabel_pairs",
    "RunnerState", "SpeedupSetup", "success_rate", "time_updates", "TrackerState", "train", "TrainConfig",
    "Trainer", "Transition", "Trunk", "TRUNK_PRESETS", "uvfa_targets", "UVFANetwork",
]
