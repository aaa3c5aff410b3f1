"""Goal gridworld in JAX with the gymnax 1.x `Environment` interface.

A G x G grid holds the agent and up to M object slots. A slot holds an object id (0..23), whether it is a
goal (+1, episode ends) or a distractor (no reward, no end, walkable), and whether it is present. Every
other step costs ``step_cost``. The layout (agent, objects) is re-sampled on every reset; walls, if
switched on, come from a bank of connected layouts carried in `EnvParams`. Because the task lives in
`EnvParams` (a pytree), every training stage and every OOD test pair runs in one compiled program.

Observations:
- ``glyph``: a (5G, 5G, 6) uint8 image. Each object is its shape's 5x5 mask (pairwise Hamming distance
  >= 4) painted in an ink channel and in its colour's RGB channels (black = ink only); the agent and the
  walls have channels of their own, so no object colour is shared with them.
- ``symbolic`` (ablation): a (G, G, 12) uint8 grid of one-hot colour, one-hot shape, agent and wall,
  which makes colour and shape equally salient by construction.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from quietrl.core.errors import ConfigError

from .types import COLOURS, N_COLOURS, N_OBJECTS, N_SHAPES, SHAPES, Stage

MAX_SLOTS = 4
GLYPH = 5

_GLYPH_ART = {
    "cross": ["X...X", ".X.X.", "..X..", ".X.X.", "X...X"],
    "plus": ["..X..", "..X..", "XXXXX", "..X..", "..X.."],
    "diamond": ["..X..", ".XXX.", "XXXXX", ".XXX.", "..X.."],
    "hollow-diamond": ["..X..", ".X.X.", "X...X", ".X.X.", "..X.."],
    "ring": [".XXX.", "X...X", "X...X", "X...X", ".XXX."],
    "circle": [".XXX.", "XXXXX", "XXXXX", "XXXXX", ".XXX."],
}
_AGENT_ART = ["XX.XX", "X...X", ".....", "X...X", "XX.XX"]
# RGB per colour; black objects show only in the ink channel.
_COLOUR_RGB = {"black": (0, 0, 0), "blue": (0, 0, 1), "green": (0, 1, 0), "red": (1, 0, 0)}


def _mask(art: list[str]) -> np.ndarray:
    return np.array([[c == "X" for c in row] for row in art], np.uint8)


# Shape masks in SHAPES order. Shape (6, 5, 5).
GLYPH_MASKS: np.ndarray = np.stack([_mask(_GLYPH_ART[s]) for s in SHAPES])
AGENT_MASK: np.ndarray = _mask(_AGENT_ART)
GLYPH_CHANNELS = 6  # ink, R, G, B, agent, wall
SYMBOLIC_CHANNELS = N_COLOURS + N_SHAPES + 2  # colour, shape, agent, wall


def min_glyph_hamming() -> int:
    """Smallest pairwise Hamming distance between the six shape masks."""
    flat = GLYPH_MASKS.reshape(len(SHAPES), -1).astype(int)
    d = (flat[:, None, :] != flat[None, :, :]).sum(-1)
    return int(d[~np.eye(len(SHAPES), dtype=bool)].min())


assert min_glyph_hamming() >= 4


def _object_glyph_table() -> np.ndarray:
    """Painted glyph per object id plus a blank at index N_OBJECTS. Shape (25, 5, 5, 4): ink, R, G, B."""
    table = np.zeros((N_OBJECTS + 1, GLYPH, GLYPH, 4), np.uint8)
    for oid in range(N_OBJECTS):
        m = GLYPH_MASKS[oid % N_SHAPES]
        rgb = _COLOUR_RGB[COLOURS[oid // N_SHAPES]]
        table[oid, :, :, 0] = m
        for c in range(3):
            table[oid, :, :, 1 + c] = m * rgb[c]
    return table


def _symbolic_table() -> np.ndarray:
    """One-hot colour ++ one-hot shape per object id, blank at N_OBJECTS. Shape (25, 10)."""
    table = np.zeros((N_OBJECTS + 1, N_COLOURS + N_SHAPES), np.uint8)
    for oid in range(N_OBJECTS):
        table[oid, oid // N_SHAPES] = 1
        table[oid, N_COLOURS + oid % N_SHAPES] = 1
    return table


def make_wall_bank(grid: int, n_layouts: int, density: float, seed: int = 0) -> np.ndarray:
    """Random wall layouts whose free cells are 4-connected and number at least MAX_SLOTS + 1.

    ``int(grid**2 * density)`` cells are sampled with replacement (as the authors do); layouts failing
    the connectivity check are redrawn. Shape (n_layouts, grid, grid) bool.
    """
    rng = np.random.default_rng(seed)
    bank = np.zeros((n_layouts, grid, grid), bool)
    n_cells = int(grid * grid * density)
    for i in range(n_layouts):
        for _ in range(1000):
            walls = np.zeros((grid, grid), bool)
            cells = rng.integers(0, grid * grid, size=n_cells)
            walls.flat[cells] = True
            if _connected(walls) and (~walls).sum() > MAX_SLOTS:
                bank[i] = walls
                break
    return bank


def _connected(walls: np.ndarray) -> bool:
    free = np.argwhere(~walls)
    if len(free) == 0:
        return False
    seen = {tuple(free[0])}
    todo = deque(seen)
    g = walls.shape[0]
    while todo:
        r, c = todo.popleft()
        for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            n = (r + dr, c + dc)
            if 0 <= n[0] < g and 0 <= n[1] < g and not walls[n] and n not in seen:
                seen.add(n)
                todo.append(n)
    return len(seen) == len(free)


@struct.dataclass
class EnvState:
    agent: jax.Array      # (2,) int32 row, col
    objects: jax.Array    # (M, 2) int32 positions
    walls: jax.Array      # (G, G) bool
    time: int


@struct.dataclass
class EnvParams:
    """The task, as data. Shapes: obj_id (M,) int32, is_goal (M,) bool, present (M,) bool,
    wall_bank (L, G, G) bool."""

    obj_id: jax.Array
    is_goal: jax.Array
    present: jax.Array
    wall_bank: jax.Array
    use_walls: jax.Array = dataclasses.field(default_factory=lambda: jnp.array(False))
    goal_reward: float = 1.0
    step_cost: float = 0.01
    max_steps_in_episode: int = 30


class GoalGridEnv(environment.Environment[EnvState, EnvParams]):
    """Gridworld with goal and distractor objects. Actions: 0 up, 1 right, 2 down, 3 left."""

    def __init__(self, grid: int = 6, obs_mode: str = "glyph", n_wall_layouts: int = 64,
                 wall_density: float = 0.1, wall_seed: int = 0, max_steps: int = 30,
                 use_walls: bool = False):
        super().__init__()
        if grid < 3:
            raise ConfigError(f"grid must be >= 3, got {grid}")
        if obs_mode not in ("glyph", "symbolic"):
            raise ConfigError(f"obs_mode must be 'glyph' or 'symbolic', got {obs_mode!r}")
        if max_steps < 1:
            raise ConfigError(f"max_steps must be >= 1, got {max_steps}")
        self.grid = grid
        self.obs_mode = obs_mode
        self.max_steps = max_steps
        self.use_walls = use_walls
        self.wall_bank = jnp.asarray(make_wall_bank(grid, n_wall_layouts, wall_density, wall_seed))
        self._glyphs = jnp.asarray(_object_glyph_table())
        self._symbols = jnp.asarray(_symbolic_table())
        self._agent_glyph = jnp.asarray(AGENT_MASK)

    # -- task construction -------------------------------------------------------------------------
    def params_for(self, goals=(), distractors=(), use_walls: bool | None = None, **kw) -> EnvParams:
        """EnvParams for a task with the given goal and distractor objects (GameObject or ids)."""
        ids = [getattr(o, "id", o) for o in goals] + [getattr(o, "id", o) for o in distractors]
        if not 1 <= len(ids) <= MAX_SLOTS:
            raise ConfigError(f"a task holds 1..{MAX_SLOTS} objects, got {len(ids)}")
        pad = MAX_SLOTS - len(ids)
        kw.setdefault("max_steps_in_episode", self.max_steps)
        use_walls = self.use_walls if use_walls is None else use_walls
        return EnvParams(
            obj_id=jnp.array(ids + [0] * pad, jnp.int32),
            is_goal=jnp.array([True] * len(goals) + [False] * (len(ids) - len(goals)) + [False] * pad),
            present=jnp.array([True] * len(ids) + [False] * pad),
            wall_bank=self.wall_bank,
            use_walls=jnp.array(use_walls),
            **kw,
        )

    def stage_params(self, stage: Stage, **kw) -> EnvParams:
        return self.params_for(stage.goals, stage.distractors, **kw)

    @property
    def default_params(self) -> EnvParams:
        return self.params_for(goals=(0,))

    # -- dynamics ----------------------------------------------------------------------------------
    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        k_wall, k_cells = jax.random.split(key)
        g = self.grid
        layout = jax.random.randint(k_wall, (), 0, params.wall_bank.shape[0])
        walls = params.wall_bank[layout] & params.use_walls
        free = (~walls).reshape(-1).astype(jnp.float32)
        # Distinct free cells for the agent and every slot (absent slots get a cell too, never drawn).
        cells = jax.random.choice(k_cells, g * g, (MAX_SLOTS + 1,), replace=False, p=free / free.sum())
        pos = jnp.stack([cells // g, cells % g], -1).astype(jnp.int32)
        state = EnvState(agent=pos[0], objects=pos[1:], walls=walls, time=0)
        return self.get_obs(state, params), state

    def step_env(self, key, state: EnvState, action, params: EnvParams):
        moves = jnp.array([[-1, 0], [0, 1], [1, 0], [0, -1]], jnp.int32)
        target = state.agent + moves[action]
        inside = jnp.all((target >= 0) & (target < self.grid))
        clipped = jnp.clip(target, 0, self.grid - 1)
        blocked = state.walls[clipped[0], clipped[1]]
        agent = jnp.where(inside & ~blocked, clipped, state.agent)
        on = jnp.all(state.objects == agent[None, :], -1) & params.present  # (M,)
        hit_goal = on & params.is_goal
        terminated = jnp.any(hit_goal)
        # The slot reached when the episode ends on a goal; -1 otherwise.
        reached = jnp.where(terminated, jnp.argmax(hit_goal), -1)
        reward = jnp.where(terminated, params.goal_reward, -params.step_cost)
        state = state.replace(agent=agent, time=state.time + 1)
        obs = self.get_obs(state, params)
        return obs, state, reward, terminated, {"reached": reached}

    def is_terminated(self, state: EnvState, params: EnvParams) -> jax.Array:
        on = jnp.all(state.objects == state.agent[None, :], -1) & params.present & params.is_goal
        return jnp.any(on)

    # -- observation -------------------------------------------------------------------------------
    def get_obs(self, state: EnvState, params: EnvParams | None = None, key=None) -> jax.Array:
        g = self.grid
        flat = state.objects[:, 0] * g + state.objects[:, 1]
        ids = jnp.where(params.present, params.obj_id, N_OBJECTS)
        # Cell -> object id (blank where none). Later slots win ties, which never happen: cells differ.
        cell_id = jnp.full((g * g,), N_OBJECTS, jnp.int32).at[flat].set(ids).reshape(g, g)
        agent = jnp.zeros((g, g), jnp.uint8).at[state.agent[0], state.agent[1]].set(1)
        walls = state.walls.astype(jnp.uint8)
        if self.obs_mode == "symbolic":
            return jnp.concatenate([self._symbols[cell_id], agent[..., None], walls[..., None]], -1)
        glyph = self._glyphs[cell_id]                                        # (G, G, 5, 5, 4)
        agent_px = agent[:, :, None, None] * self._agent_glyph[None, None]   # (G, G, 5, 5)
        wall_px = jnp.broadcast_to(walls[:, :, None, None], (g, g, GLYPH, GLYPH))
        img = jnp.concatenate([glyph, agent_px[..., None], wall_px[..., None]], -1)
        return img.transpose(0, 2, 1, 3, 4).reshape(g * GLYPH, g * GLYPH, GLYPH_CHANNELS)

    # -- spaces ------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return "GoalGrid-v0"

    @property
    def num_actions(self) -> int:
        return 4

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(4)

    def observation_space(self, params: EnvParams | None = None) -> spaces.Box:
        return spaces.Box(0, 1, self.obs_shape, jnp.uint8)

    @property
    def obs_shape(self) -> tuple[int, ...]:
        if self.obs_mode == "symbolic":
            return (self.grid, self.grid, SYMBOLIC_CHANNELS)
        return (self.grid * GLYPH, self.grid * GLYPH, GLYPH_CHANNELS)


def stack_params(params: list[EnvParams]) -> EnvParams:
    """Stack EnvParams along a new leading axis (for vmap over tasks)."""
    return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *params)
