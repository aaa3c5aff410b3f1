"""Partially observable multi-agent path finding in JAX, with JaxMARL's ``MultiAgentEnv`` interface shape.

One environment = one :class:`~quietrl.arms.types.TaskBank` (training tasks first, then held-out tasks),
indexed by ``state.task``; the sparsity level is ``state.sparsity``. Both are traced, so a single compiled
program runs every map of the bank at every sparsity. Map shape, agent count, radius, horizon and the
collision rule fix array shapes or control flow and are static.

Rules [spec §3.2, reconstruction]:
- actions 0..4 = stay, N, S, W, E; an agent that reaches its goal is removed (POGEMA's ``finish``): it no
  longer moves, blocks or appears in observations;
- collisions (:func:`resolve_moves`): a move off the map or into an obstacle is cancelled; two agents moving
  into one cell are both cancelled; a swap cancels both; a move into a cell occupied at time t is cancelled
  (``block_occupied``, the default) or only when that cell's occupant does not leave (``follow``);
- rewards by sparsity: S0 +1 at an agent's own arrival; S1 that +1 delayed to the episode's end; S2 +1 to
  every agent at the step the last one arrives;
- observation of agent i (flat): obstacles, other agents and own goal in a (2r+1)^2 window (off-map counts as
  obstacle; an out-of-view goal is projected onto the window border by clipping its offset), then the goal
  offset / max(R, C), t / horizon and the alive flag.

JaxMARL is imported lazily (:func:`as_jaxmarl`): the env works without it.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from quietrl.arms.types import COLLISION_RULES, SPARSITY, EnvConfig, TaskBank
from quietrl.core.errors import UserError

# stay, N, S, W, E as (drow, dcol)
MOVES = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]], dtype=np.int32)
NUM_ACTIONS = 5


@struct.dataclass
class MAPFState:
    """pos, goal (n, 2) int32; arrived (n,) bool; step, task, sparsity () int32; done () bool."""

    pos: jax.Array
    goal: jax.Array
    arrived: jax.Array
    step: jax.Array
    task: jax.Array
    sparsity: jax.Array
    done: jax.Array


# --------------------------------------------------------------------------------------------------------
# Pure functions shared with the exact equilibrium checker
# --------------------------------------------------------------------------------------------------------
def resolve_moves(pos: jax.Array, actions: jax.Array, alive: jax.Array, obstacles: jax.Array,
                  rule: str) -> jax.Array:
    """New positions (n, 2) after one joint move; pos (n, 2), actions (n,), alive (n,), obstacles (R, C).

    Removed (not alive) agents neither move nor occupy cells.
    """
    if rule not in COLLISION_RULES:
        raise UserError(f"unknown collision rule {rule!r}; choose one of {', '.join(COLLISION_RULES)}")
    n = pos.shape[0]
    rows, cols = obstacles.shape
    tgt = pos + jnp.asarray(MOVES)[actions]
    off = (tgt[:, 0] < 0) | (tgt[:, 0] >= rows) | (tgt[:, 1] < 0) | (tgt[:, 1] >= cols)
    tc = jnp.clip(tgt, 0, jnp.array([rows - 1, cols - 1]))
    blocked = off | obstacles[tc[:, 0], tc[:, 1]]
    moving = alive & (actions != 0) & ~blocked
    tgt = jnp.where(moving[:, None], tgt, pos)
    other = alive[:, None] & alive[None, :] & ~jnp.eye(n, dtype=bool)
    vertex = (tgt[:, None, :] == tgt[None, :, :]).all(-1) & other & moving[:, None] & moving[None, :]
    into = (tgt[:, None, :] == pos[None, :, :]).all(-1) & other  # i moves into j's cell at time t
    swap = into & into.T
    cancel = ~moving | vertex.any(1) | swap.any(1)
    if rule == "block_occupied":
        cancel = cancel | (into & moving[:, None]).any(1)
    else:
        # follow: blocked only by an occupant that stays; chains of followers resolve in <= n passes
        for _ in range(n):
            cancel = cancel | (into & moving[:, None] & cancel[None, :]).any(1)
    return jnp.where(cancel[:, None], pos, tgt)


def obs_dim(radius: int) -> int:
    """Length of one agent's flat observation: three (2r+1)^2 windows + goal offset (2) + time + alive."""
    return 3 * (2 * radius + 1) ** 2 + 4


def observe(obstacles: jax.Array, pos: jax.Array, goal: jax.Array, alive: jax.Array, t: jax.Array,
            horizon: int, radius: int) -> jax.Array:
    """Flat observations (n, obs_dim(radius)) float32 of every agent (see module docstring)."""
    rows, cols = obstacles.shape
    w = 2 * radius + 1
    obst = jnp.pad(obstacles.astype(jnp.float32), radius, constant_values=1.0)
    occ = jnp.zeros((rows, cols), jnp.float32).at[pos[:, 0], pos[:, 1]].add(alive.astype(jnp.float32))
    occ = jnp.pad(occ, radius)
    scale = float(max(rows, cols))

    def one(p, g, a):
        ow = jax.lax.dynamic_slice(obst, (p[0], p[1]), (w, w))
        aw = jax.lax.dynamic_slice(occ, (p[0], p[1]), (w, w))
        aw = aw.at[radius, radius].add(-a.astype(jnp.float32))  # other agents only
        d = g - p
        rel = jnp.clip(d, -radius, radius) + radius
        tw = jnp.zeros((w, w), jnp.float32).at[rel[0], rel[1]].set(1.0)
        extra = jnp.concatenate([d.astype(jnp.float32) / scale,
                                 jnp.array([t / horizon], jnp.float32), a.astype(jnp.float32)[None]])
        return jnp.concatenate([ow.ravel(), aw.ravel(), tw.ravel(), extra])

    return jax.vmap(one)(pos, goal, alive)


# --------------------------------------------------------------------------------------------------------
# The environment
# --------------------------------------------------------------------------------------------------------
class MAPFEnv:
    """MAPF over a task bank; JaxMARL ``MultiAgentEnv`` interface (dict observations/actions keyed by agent).

    ``num_train`` tasks (the first ones) are sampled by :meth:`reset`; the rest are held out and reached with
    :meth:`reset_to`. Array-level methods (``*_arrays``) serve the learners and tests.
    """

    def __init__(self, bank: TaskBank, horizon: int, obs_radius: int = 2, collision: str = "block_occupied",
                 sparsity: str = "S0", num_train: int | None = None):
        if collision not in COLLISION_RULES:
            raise UserError(f"unknown collision rule {collision!r}; choose one of {', '.join(COLLISION_RULES)}")
        if sparsity not in SPARSITY:
            raise UserError(f"unknown sparsity {sparsity!r}; choose one of {', '.join(SPARSITY)}")
        self.bank = bank
        self.horizon = int(horizon)
        self.radius = int(obs_radius)
        self.rule = collision
        self.default_sparsity = SPARSITY.index(sparsity)
        self.num_tasks = bank.num_tasks
        self.num_train = int(num_train if num_train is not None else bank.num_tasks)
        self.num_agents = bank.num_agents
        self.agents = [f"agent_{i}" for i in range(self.num_agents)]
        self.obs_dim = obs_dim(self.radius)
        self.map_shape = tuple(bank.obstacles.shape[1:])
        self._obstacles = jnp.asarray(bank.obstacles)
        self._starts = jnp.asarray(bank.starts)
        self._goals = jnp.asarray(bank.goals)
        self._dist = jnp.asarray(bank.dist)
        self._dmax = jnp.asarray(bank.dmax)

    # -- spaces (JaxMARL's, imported lazily) ----------------------------------------------------------------
    def observation_space(self, agent: str = "agent_0") -> Any:
        from jaxmarl.environments.spaces import Box

        return Box(-1.0, 1.0, (self.obs_dim,), jnp.float32)

    def action_space(self, agent: str = "agent_0") -> Any:
        from jaxmarl.environments.spaces import Discrete

        return Discrete(NUM_ACTIONS)

    @property
    def name(self) -> str:
        return "MAPF"

    # -- array-level API -------------------------------------------------------------------------------------
    def reset_to(self, task: jax.Array, sparsity: jax.Array | int | None = None) -> tuple[jax.Array, MAPFState]:
        """Observations (n, D) and state at the start of bank task ``task`` (traced) under ``sparsity`` (0..2)."""
        sp = self.default_sparsity if sparsity is None else sparsity
        n = self.num_agents
        state = MAPFState(pos=self._starts[task], goal=self._goals[task], arrived=jnp.zeros((n,), bool),
                          step=jnp.int32(0), task=jnp.asarray(task, jnp.int32),
                          sparsity=jnp.asarray(sp, jnp.int32), done=jnp.bool_(False))
        return self.obs_arrays(state), state

    def reset_arrays(self, key: jax.Array, sparsity: jax.Array | int | None = None) -> tuple[jax.Array, MAPFState]:
        """Reset to a uniformly drawn training task."""
        task = jax.random.randint(key, (), 0, self.num_train)
        return self.reset_to(task, sparsity)

    def obs_arrays(self, state: MAPFState) -> jax.Array:
        """Observations (n, D) of a state."""
        return observe(self._obstacles[state.task], state.pos, state.goal, ~state.arrived,
                       state.step, self.horizon, self.radius)

    def step_arrays(self, state: MAPFState, actions: jax.Array):
        """One step without reset: (obs (n, D), state, sparse rewards (n,), done (), info dict of (n,) arrays).

        info: ``alive`` (before the step), ``arrived`` (after), ``dist_before``/``dist_after`` (BFS to own goal),
        ``dmax`` (task's largest distance, broadcast to (n,)).
        """
        obstacles = self._obstacles[state.task]
        alive = ~state.arrived
        new_pos = resolve_moves(state.pos, actions, alive, obstacles, self.rule)
        newly = alive & (new_pos == state.goal).all(-1)
        arrived = state.arrived | newly
        step = state.step + 1
        all_arrived = arrived.all()
        done = all_arrived | (step >= self.horizon)
        team = jnp.broadcast_to(all_arrived & ~state.arrived.all(), arrived.shape)
        reward = jnp.select([state.sparsity == 0, state.sparsity == 1],
                            [newly, arrived & done], team).astype(jnp.float32)
        dist = self._dist[state.task]
        idx = jnp.arange(self.num_agents)
        info = {
            "alive": alive,
            "arrived": arrived,
            "dist_before": dist[idx, state.pos[:, 0], state.pos[:, 1]].astype(jnp.float32),
            "dist_after": dist[idx, new_pos[:, 0], new_pos[:, 1]].astype(jnp.float32),
            "dmax": jnp.broadcast_to(self._dmax[state.task], arrived.shape),
            "pos": new_pos,
        }
        new_state = state.replace(pos=new_pos, arrived=arrived, step=step, done=done)
        return self.obs_arrays(new_state), new_state, reward, done, info

    # -- JaxMARL interface -----------------------------------------------------------------------------------
    def _to_dict(self, x: jax.Array) -> dict[str, jax.Array]:
        return {a: x[i] for i, a in enumerate(self.agents)}

    @partial(jax.jit, static_argnums=(0,))
    def reset(self, key: jax.Array) -> tuple[dict, MAPFState]:
        """JaxMARL reset: observations keyed by agent and the state of a random training task."""
        obs, state = self.reset_arrays(key)
        return self._to_dict(obs), state

    def get_obs(self, state: MAPFState) -> dict[str, jax.Array]:
        return self._to_dict(self.obs_arrays(state))

    def get_avail_actions(self, state: MAPFState) -> dict[str, jax.Array]:
        return {a: jnp.ones((NUM_ACTIONS,), bool) for a in self.agents}

    def step_env(self, key: jax.Array, state: MAPFState, actions: dict):
        """JaxMARL step without reset; info also holds ``next_obs`` (n, D) and ``sparse_reward`` (n,)."""
        act = jnp.stack([jnp.asarray(actions[a]) for a in self.agents]).astype(jnp.int32)
        obs, state, reward, done, info = self.step_arrays(state, act)
        dones = self._to_dict(info["arrived"] | done)
        dones["__all__"] = done
        info = dict(info, next_obs=obs, sparse_reward=reward)
        return self._to_dict(obs), state, self._to_dict(reward), dones, info

    @partial(jax.jit, static_argnums=(0,))
    def step(self, key: jax.Array, state: MAPFState, actions: dict, reset_state: MAPFState | None = None):
        """JaxMARL step with automatic reset to a new training task at the same sparsity when all are done."""
        key, key_reset = jax.random.split(key)
        obs_st, st, rewards, dones, info = self.step_env(key, state, actions)
        if reset_state is None:
            obs_re, st_re = self.reset_arrays(key_reset, state.sparsity)
            obs_re = self._to_dict(obs_re)
        else:
            st_re, obs_re = reset_state, self.get_obs(reset_state)
        pick = lambda a, b: jax.tree.map(lambda x, y: jax.lax.select(dones["__all__"], x, y), a, b)
        return pick(obs_re, obs_st), pick(st_re, st), rewards, dones, info


def make_env(cfg: EnvConfig) -> MAPFEnv:
    """Env over a generated bank: ``num_train_tasks`` training tasks then ``num_heldout_tasks`` held-out ones.

    Held-out tasks use another map seed and the ``heldout_layouts`` (default: random + structured layouts).
    """
    from quietrl.arms.maps import concat_banks, make_bank

    train = make_bank(cfg.num_train_tasks, cfg.grid_size, cfg.num_agents, cfg.density, seed=cfg.map_seed,
                      layouts=cfg.train_layouts)
    banks = [train]
    if cfg.num_heldout_tasks:
        banks.append(make_bank(cfg.num_heldout_tasks, cfg.grid_size, cfg.num_agents, cfg.density,
                               seed=cfg.map_seed + 10_007, layouts=cfg.heldout_layouts))
    return MAPFEnv(concat_banks(*banks), cfg.horizon, cfg.obs_radius, cfg.collision, cfg.sparsity,
                   num_train=cfg.num_train_tasks)


HELDOUT_SPLITS = ("seed", "structured", "density", "size")


def make_heldout_envs(cfg: EnvConfig, num_tasks: int | None = None) -> dict[str, MAPFEnv]:
    """Evaluation-only envs (every task held out) for the generalisation splits [spec §3.2, E4]:

    - ``seed``: random maps of the training size and density from another map seed;
    - ``structured``: bottleneck / rooms / shelf layouts of the training size;
    - ``density``: random maps with density + 0.1 (at most 0.45);
    - ``size``: random maps 4 cells wider and taller, horizon scaled with the side length.
    The policy sees only a (2r+1)^2 window and the goal offset / map side, so it runs on any map size.
    """
    from quietrl.arms.maps import make_bank

    k = num_tasks or max(cfg.num_heldout_tasks, 1)
    g, n, base = cfg.grid_size, cfg.num_agents, cfg.map_seed + 20_011
    big = g + 4
    banks = {
        "seed": (make_bank(k, g, n, cfg.density, seed=base, layouts=("random",)), cfg.horizon),
        "structured": (make_bank(k, g, n, cfg.density, seed=base + 1, layouts=("bottleneck", "rooms", "shelves")),
                       cfg.horizon),
        "density": (make_bank(k, g, n, min(cfg.density + 0.1, 0.45), seed=base + 2, layouts=("random",)),
                    cfg.horizon),
        "size": (make_bank(k, big, n, cfg.density, seed=base + 3, layouts=("random",)),
                 int(round(cfg.horizon * big / g))),
    }
    return {name: MAPFEnv(bank, h, cfg.obs_radius, cfg.collision, cfg.sparsity, num_train=0)
            for name, (bank, h) in banks.items()}


_JAXMARL_CLS: dict[str, type] = {}


def as_jaxmarl(env: MAPFEnv) -> Any:
    """The same env as an instance of ``jaxmarl``'s ``MultiAgentEnv`` (imported here, not at package import)."""
    try:
        from jaxmarl.environments.multi_agent_env import MultiAgentEnv
    except ImportError:
        raise UserError("jaxmarl is not installed; pip install 'jaxmarl==0.2.0'") from None
    if "cls" not in _JAXMARL_CLS:
        _JAXMARL_CLS["cls"] = type("MAPFJaxMARLEnv", (MAPFEnv, MultiAgentEnv), {})
    cls = _JAXMARL_CLS["cls"]
    out = cls.__new__(cls)
    out.__dict__.update(env.__dict__)
    return out
