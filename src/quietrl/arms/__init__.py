"""quietrl.arms: ARMS-style learned trajectory-ranking shaping for sparse-reward MAPF, checked against exact
Nash sets (arXiv 2605.23562; the method is the spec's reconstruction, see docs in each module)."""

from quietrl.arms.astar import plan_task, reference_success
from quietrl.arms.env import MAPFEnv, MAPFState, as_jaxmarl, make_env, observe, resolve_moves
from quietrl.arms.equilibria import (GridGame, MatrixGame, classic_games, compare_nash, crossing_game,
                                     grid_game_table, mixed_nash, pure_nash, pure_nash_matrix, swap_game)
from quietrl.arms.maps import load_map_file, load_movingai, make_bank, parse_movingai_map, parse_movingai_scen
from quietrl.arms.oscillation import OscillationResult, detect
from quietrl.arms.ppo import make_train
from quietrl.arms.reward_model import pair_loss, ranking_loss, trajectory_returns
from quietrl.arms.types import EnvConfig, TaskBank, TrainConfig

__all__ = [
    "MAPFEnv", "MAPFState", "as_jaxmarl", "make_env", "observe", "resolve_moves",
    "GridGame", "MatrixGame", "classic_games", "compare_nash", "crossing_game", "grid_game_table", "mixed_nash",
    "pure_nash", "pure_nash_matrix", "swap_game",
    "load_map_file", "load_movingai", "make_bank", "parse_movingai_map", "parse_movingai_scen",
    "OscillationResult", "detect", "make_train", "pair_loss", "ranking_loss", "trajectory_returns",
    "EnvConfig", "TaskBank", "TrainConfig", "plan_task", "reference_success",
]
