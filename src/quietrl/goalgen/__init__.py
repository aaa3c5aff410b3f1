"""quietrl.goalgen: goal generalisation in sequential RL and latent policy gradients (arXiv 2605.23565).

Environment suite (`GoalGridEnv`), pipeline grammar (`parse_pipeline`) and families (`generate_families`),
vectorised multi-stage PPO (`train_population`), OOD pair evaluation (`make_pair_evaluator`, `PairTable`),
latent policy gradients (`LPG`, `LPGConfig`) with baselines and the held-out protocol (`run_protocol`).
"""

from .env import EnvParams, EnvState, GoalGridEnv, glyph_image
from .evaluate import PairTable, make_pair_evaluator, make_task_evaluator, pair_ids, table_from_counts
from .families import FAMILIES, generate_families
from .grammar import parse_object, parse_pipeline
from .lpg import LPG, Examples, LPGConfig, fit_jobs, rk4_integrate, simulate
from .metrics import brier, direction, kl3, summarize
from .ppo import PopulationJob, PPOConfig, Trainer, make_population_trainer, population_job, train_population
from .protocol import SPLITS, make_folds, run_protocol
from .types import ALL_OBJECTS, ALL_PAIRS, TRAIN_OBJECTS, GameObject, Pipeline, Stage

__all__ = [
    "ALL_OBJECTS", "ALL_PAIRS", "EnvParams", "EnvState", "Examples", "FAMILIES", "GameObject", "GoalGridEnv",
    "LPG", "LPGConfig", "PPOConfig", "PairTable", "Pipeline", "PopulationJob", "SPLITS", "Stage",
    "TRAIN_OBJECTS", "Trainer", "brier", "direction", "fit_jobs", "generate_families", "glyph_image", "kl3",
    "make_folds", "make_pair_evaluator", "make_population_trainer", "make_task_evaluator", "pair_ids",
    "parse_object", "parse_pipeline", "population_job", "rk4_integrate", "run_protocol", "simulate", "summarize",
    "table_from_counts", "train_population",
]
