"""Goal gridworld in JAX with the gymnax 1.x `Environment` interface.

A G x G grid holds the agent and up to M object slots. A slot holds an object id (0..23), whether it is a
goal (+1, episode ends) or a distractor (no reward, no end, walkable), and whether it is present. Every
other step costs ``step_cost``. The layout (agent, objects) is re-sampled on every reset; walls, if
switched on, come from a bank of connected layouts carried in `EnvParams`. Because the task lives in
`EnvParams` (a pytree), every training stage and every OOD test pair runs in one compiled program.

Observations:
- ``glyph``: a (5G, 5G, 6) uint8 image stored tile-major as (G, G, 5, 5, 6): ``obs[r, c, y, x]`` is image
  pixel (5r + y, 5c + x); `glyph_image` gives the plain image. Each object is its shape's 5x5 mask
  (pairwise Hamming distance >= 4) painted in an ink channel and in its colour's RGB channels (black = ink
  only); the agent and the walls have channels of their own, so no object colour is shared with them.
  The tile-major layout is what the network's per-cell encoder reads, so no transpose is ever done.
- ``symbolic`` (ablation): a (G, G, 12) uint8 grid of one-hot colour, one-hot shape, agent and wall,
  which makes colour and shape equally salient by construction.

Rendering is a single gather: every cell's content is a code (object id or blank, agent or not, wall or
not), and the tiles of all 25 x 2 x 2 codes are precomputed. `step` overrides gymnax's auto-reset so that
one observation is rendered per step instead of two (the stepped and the reset one).
"""

from __future__ import annotations

import dataclasses
from collections import deque

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


def _cell_tiles(obs_mode: str) -> np.ndarray:
    """Observation of one cell for every cell code ``obj + 25 * agent + 50 * wall`` (obj = N_OBJECTS for an
    empty cell). Shape (100, 5, 5, 6) for glyphs, (100, 12) for symbols; uint8."""
    n = N_OBJECTS + 1
    objs = _object_glyph_table() if obs_mode == "glyph" else _symbolic_table()
    tiles = []
    for wall in (0, 1):
        for agent in (0, 1):
            for o in range(n):
                if obs_mode == "glyph":
                    t = np.concatenate([objs[o], (agent * AGENT_MASK)[..., None],
                                        np.full((GLYPH, GLYPH, 1), wall, np.uint8)], -1)
                else:
                    t = np.concatenate([objs[o], [agent, wall]]).astype(np.uint8)
                tiles.append(t)
    return np.stack(tiles).astype(np.uint8)


def glyph_image(obs: np.ndarray) -> np.ndarray:
    """Tile-major glyph observation (..., G, G, 5, 5, C) -> image (..., 5G, 5G, C)."""
    obs = np.asarray(obs)
    *lead, g, _, h, w, c = obs.shape
    return np.moveaxis(obs, -4, -3).reshape(*lead, g * h, g * w, c)


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
        self._tiles = jnp.asarray(_cell_tiles(obs_mode))

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
    def _sample_layout(self, key: jax.Array, params: EnvParams) -> EnvState:
        k_wall, k_cells = jax.random.split(key)
        g = self.grid
        layout = jax.random.randint(k_wall, (), 0, params.wall_bank.shape[0])
        walls = params.wall_bank[layout] & params.use_walls
        # Distinct free cells for the agent and every slot (absent slots get a cell too, never drawn):
        # the MAX_SLOTS + 1 smallest of iid uniforms over the free cells, walls pushed past every draw.
        u = jnp.where(walls.reshape(-1), 2.0, jax.random.uniform(k_cells, (g * g,)))
        _, cells = jax.lax.top_k(-u, MAX_SLOTS + 1)
        pos = jnp.stack([cells // g, cells % g], -1).astype(jnp.int32)
        return EnvState(agent=pos[0], objects=pos[1:], walls=walls, time=0)

    def reset_codes(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        """`reset` with the observation as cell codes (G*G,) int32."""
        state = self._sample_layout(key, params)
        return self.cell_codes(state, params), state

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        state = self._sample_layout(key, params)
        return self.get_obs(state, params), state

    def _transition(self, state: EnvState, action, params: EnvParams):
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
        return state.replace(agent=agent, time=state.time + 1), reward, terminated, reached

    def step_env_codes(self, key, state: EnvState, action, params: EnvParams):
        """`step_env` (no auto-reset) with the observation as cell codes (G*G,) int32."""
        state, reward, terminated, reached = self._transition(state, action, params)
        return self.cell_codes(state, params), state, reward, terminated, {"reached": reached}

    def step_env(self, key, state: EnvState, action, params: EnvParams):
        codes, state, reward, terminated, info = self.step_env_codes(key, state, action, params)
        return self.observe(codes), state, reward, terminated, info

    def step_codes(self, key, state: EnvState, action, params: EnvParams):
        """`step` with observations as cell codes (G*G,) int32 (see `cell_codes`); the trainer stores
        codes, 150x smaller than glyph tiles, and renders them with `observe` only where needed.
        info["final_codes"] holds the codes before the auto-reset."""
        key_step, key_reset = jax.random.split(key)
        state_st, reward, terminated, reached = self._transition(state, action, params)
        truncated = self.is_truncated(state_st, params)
        done = terminated | truncated
        state_re = self._sample_layout(key_reset, params)
        new = jax.tree.map(lambda a, b: jax.lax.select(done, a, b), state_re, state_st)
        info = {"reached": reached, "terminated": terminated, "truncated": truncated,
                "final_codes": self.cell_codes(state_st, params)}
        return self.cell_codes(new, params), new, reward, terminated, truncated, info

    def step(self, key, state: EnvState, action, params: EnvParams | None = None):
        """gymnax 1.x step with auto-reset: (obs, state, reward, terminated, truncated, info); info holds
        ``reached``, ``terminated``, ``truncated`` and ``final_observation`` (the observation before the
        reset). One observation is rendered per step, not gymnax's two."""
        params = self.default_params if params is None else params
        codes, new, reward, terminated, truncated, info = self.step_codes(key, state, action, params)
        info = dict(info, final_observation=self.observe(info.pop("final_codes")))
        return self.observe(codes), new, reward, terminated, truncated, info

    def is_terminated(self, state: EnvState, params: EnvParams) -> jax.Array:
        on = jnp.all(state.objects == state.agent[None, :], -1) & params.present & params.is_goal
        return jnp.any(on)

    # -- observation -------------------------------------------------------------------------------
    def cell_codes(self, state: EnvState, params: EnvParams) -> jax.Array:
        """Per-cell code ``obj + 25 * agent + 50 * wall`` (obj = 24 for no object). Shape (G*G,) int32.
        Built from comparisons rather than a scatter, which is slow under vmap on CPU."""
        g = self.grid
        cells = jnp.arange(g * g, dtype=jnp.int32)
        flat = state.objects[:, 0] * g + state.objects[:, 1]                        # (M,)
        hit = (cells[:, None] == flat[None, :]) & params.present[None, :]           # (G*G, M)
        # Cells of present objects are distinct, so at most one slot matches a cell.
        obj = N_OBJECTS + jnp.sum(jnp.where(hit, params.obj_id[None, :] - N_OBJECTS, 0), -1)
        agent = cells == state.agent[0] * g + state.agent[1]
        return obj + (N_OBJECTS + 1) * agent + 2 * (N_OBJECTS + 1) * state.walls.reshape(-1)

    @property
    def tiles(self) -> jax.Array:
        """Observation of one cell per cell code: (100, 5, 5, 6) glyph tiles or (100, 12) symbols."""
        return self._tiles

    def observe(self, codes: jax.Array) -> jax.Array:
        """Render cell codes (..., G*G) as observations (..., *obs_shape): one gather of precomputed tiles."""
        return self._tiles[codes].reshape(*codes.shape[:-1], *self.obs_shape)

    def get_obs(self, state: EnvState, params: EnvParams | None = None, key=None) -> jax.Array:
        params = self.default_params if params is None else params
        return self.observe(self.cell_codes(state, params))

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
        return (self.grid, self.grid, GLYPH, GLYPH, GLYPH_CHANNELS)


def stack_params(params: list[EnvParams]) -> EnvParams:
    """Stack EnvParams along a new leading axis (for vmap over tasks)."""
    return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *params)
