"""Data types that cross module boundaries: task banks, env state, configs."""

from __future__ import annotations

import dataclasses
from typing import Literal, NamedTuple

import numpy as np

from quietrl.core.errors import ConfigError

COLLISION_RULES = ("follow", "block_occupied")
SPARSITY = ("S0", "S1", "S2")  # own arrival / own reward at episode end / all-arrived team reward
METHODS = ("sparse", "bonus", "pbrs", "arms", "arms-replace", "arms-add", "arms-frozen")
LAYOUTS = ("random", "bottleneck", "rooms", "shelves")


class TaskBank(NamedTuple):
    """Stacked MAPF tasks of one map shape (B tasks, R x C grid, n agents).

    obstacles (B, R, C) bool; starts, goals (B, n, 2) int32 as (row, col); dist (B, n, R, C) int32 BFS
    distance to agent i's goal (``maps.UNREACHABLE`` where unreachable); dmax (B,) float32 largest finite
    distance, used to normalise potentials.
    """

    obstacles: np.ndarray
    starts: np.ndarray
    goals: np.ndarray
    dist: np.ndarray
    dmax: np.ndarray

    @property
    def num_tasks(self) -> int:
        return int(self.obstacles.shape[0])

    @property
    def num_agents(self) -> int:
        return int(self.starts.shape[1])


def _check(cond: bool, field: str, msg: str) -> None:
    if not cond:
        raise ConfigError(f"{field}: {msg}")


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """The MAPF grid: map bank, agents, observation radius, collision rule, default sparsity, horizon."""

    grid_size: int = 8
    num_agents: int = 2
    obs_radius: int = 2
    density: float = 0.2
    horizon: int = 32
    collision: Literal["follow", "block_occupied"] = "block_occupied"
    sparsity: Literal["S0", "S1", "S2"] = "S0"
    num_train_tasks: int = 256
    num_heldout_tasks: int = 64
    train_layouts: tuple[str, ...] = ("random",)
    heldout_layouts: tuple[str, ...] = ("random", "bottleneck", "rooms", "shelves")
    map_seed: int = 0

    def __post_init__(self) -> None:
        _check(self.grid_size >= 3, "grid_size", f"must be >= 3, got {self.grid_size}")
        _check(self.num_agents >= 1, "num_agents", f"must be >= 1, got {self.num_agents}")
        _check(self.num_agents < self.grid_size ** 2 // 2, "num_agents",
               f"{self.num_agents} agents do not fit a {self.grid_size}x{self.grid_size} map")
        _check(self.obs_radius >= 1, "obs_radius", f"must be >= 1, got {self.obs_radius}")
        _check(0.0 <= self.density < 0.6, "density", f"must be in [0, 0.6), got {self.density}")
        _check(self.horizon >= 1, "horizon", f"must be >= 1, got {self.horizon}")
        _check(self.collision in COLLISION_RULES, "collision", f"must be one of {', '.join(COLLISION_RULES)}")
        _check(self.sparsity in SPARSITY, "sparsity", f"must be one of {', '.join(SPARSITY)}")
        _check(self.num_train_tasks >= 1, "num_train_tasks", "must be >= 1")
        _check(self.num_heldout_tasks >= 0, "num_heldout_tasks", "must be >= 0")
        for f in ("train_layouts", "heldout_layouts"):
            for lay in getattr(self, f):
                _check(lay in LAYOUTS, f, f"unknown layout {lay!r}; choose from {', '.join(LAYOUTS)}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """IPPO (parameter sharing) + a shaping method; defaults are common PPO values, not the paper's.

    ``total_agent_steps`` is the per-run budget: iterations = budget / (num_envs * num_agents * horizon).
    """

    method: Literal["sparse", "bonus", "pbrs", "arms", "arms-replace", "arms-add", "arms-frozen"] = "sparse"
    learner: Literal["ippo", "mappo"] = "ippo"
    num_envs: int = 64
    num_seeds: int = 1
    total_agent_steps: int = 2_000_000
    iters_per_chunk: int = 10
    lr: float = 5e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    update_epochs: int = 4
    num_minibatches: int = 4
    hidden: int = 64
    # hand-made shaping
    bonus: float = 0.3
    # ARMS reward model. `arms` (and `arms-frozen`): r̂_θ as a potential, R + (γ r̂(o') − r̂(o)), 0 at
    # terminals (Nash set kept by construction); `arms-replace`: r̂_θ(o') as the per-step reward instead of R;
    # `arms-add`: R + beta r̂_θ(o') per step (the per-step forms can change the Nash set)
    beta: float = 1.0
    warmup_iters: int = 5
    reward_every: int = 2
    reward_steps: int = 10
    reward_pairs: int = 64
    reward_lr: float = 1e-3
    reward_l2: float = 1e-3
    buffer_size: int = 256
    std_decay: float = 0.99
    # evaluation on held-out tasks
    eval_envs: int = 64

    def __post_init__(self) -> None:
        _check(self.method in METHODS, "method", f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        for f in ("num_envs", "num_seeds", "total_agent_steps", "iters_per_chunk", "update_epochs",
                  "num_minibatches", "hidden", "reward_every", "reward_steps", "reward_pairs", "buffer_size",
                  "eval_envs"):
            _check(getattr(self, f) >= 1, f, f"must be >= 1, got {getattr(self, f)}")
        _check(self.learner in ("ippo", "mappo"), "learner", f"must be ippo or mappo, got {self.learner!r}")
        _check(self.warmup_iters >= 0, "warmup_iters", "must be >= 0")
        _check(self.lr > 0 and self.reward_lr > 0, "lr", "learning rates must be > 0")
        _check(0.0 < self.gamma <= 1.0, "gamma", f"must be in (0, 1], got {self.gamma}")
        _check(0.0 <= self.gae_lambda <= 1.0, "gae_lambda", "must be in [0, 1]")
        _check(self.ent_coef >= 0, "ent_coef", "must be >= 0")
        _check(0.0 < self.std_decay < 1.0, "std_decay", "must be in (0, 1)")
        _check(self.num_envs % self.num_minibatches == 0, "num_minibatches",
               f"num_envs={self.num_envs} must be divisible by num_minibatches={self.num_minibatches}")
