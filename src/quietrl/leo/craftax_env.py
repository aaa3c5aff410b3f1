"""Goal-conditioned Craftax-Classic (K = 136) on the installed `craftax` package (imported lazily).

The observation is Craftax-Classic's symbolic view re-encoded as one-hot fields (D = 1562):
block map 7x9x17, mob map 7x9x5 (4 mob kinds + "no mob"), 12 inventory counts x 10, 4 intrinsics x 10,
direction 4, light level 10 bins, sleeping 2. A goal is a binary mask over the same features and is
achieved iff the observation overlaps it, so K goals are one K x D matrix.

Goal listing (in this order): 6 items (wood, stone, coal, iron, diamond, sapling) x count exactly
1..9 (54); owning each pickaxe and sword (6); 15 block kinds (all but INVALID and WOOD) adjacent
left/right/up/down (60); 4 mob kinds (zombie, cow, skeleton, arrow) adjacent x 4 (16).
Deviation: the network sees the flat one-hot vector (MLP trunk), not the authors' conv over the maps.
"""

from __future__ import annotations

import abc

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from .env import GoalEnv, _take_goals
from .types import GoalSpace

VIEW = (7, 9)
CENTRE = (3, 4)
N_BLOCKS = 17
MOBS = ("zombie", "cow", "skeleton", "arrow")
ITEMS = ("wood", "stone", "coal", "iron", "diamond", "sapling")
TOOLS = ("wood_pickaxe", "stone_pickaxe", "iron_pickaxe", "wood_sword", "stone_sword", "iron_sword")
INVENTORY = ITEMS + TOOLS
BLOCK_NAMES = ("invalid", "out_of_bounds", "grass", "water", "stone", "tree", "wood", "path", "coal", "iron",
               "diamond", "crafting_table", "furnace", "sand", "lava", "plant", "ripe_plant")
GOAL_BLOCKS = tuple(b for b in range(N_BLOCKS) if BLOCK_NAMES[b] not in ("invalid", "wood"))
DIRS = {"left": (0, -1), "right": (0, 1), "up": (-1, 0), "down": (1, 0)}

# Feature layout: (name, shape) in order; offsets into the flat D-vector follow.
FIELDS = (("block_map", VIEW + (N_BLOCKS,)), ("mob_map", VIEW + (5,)), ("inventory", (12, 10)),
          ("intrinsics", (4, 10)), ("direction", (4,)), ("light", (10,)), ("sleeping", (2,)))
_SIZES = [int(np.prod(s)) for _, s in FIELDS]
OFFSETS = dict(zip([n for n, _ in FIELDS], np.cumsum([0] + _SIZES[:-1]).tolist()))
OBS_DIM = int(sum(_SIZES))  # 1562


def _index(field: str, *idx: int) -> int:
    shape = dict(FIELDS)[field]
    return OFFSETS[field] + int(np.ravel_multi_index(idx, shape))


class GoalListing:
    """A goal listing being built: one 0/1 observation mask (obs_dim,) per goal, with its name."""

    def __init__(self, obs_dim: int):
        self.obs_dim, self.rows, self.names = obs_dim, [], []

    def add(self, name: str, idxs) -> None:
        m = np.zeros(self.obs_dim, np.float32)
        m[idxs] = 1.0
        self.rows.append(m)
        self.names.append(name)

    def result(self) -> tuple[np.ndarray, list[str]]:
        """(K, obs_dim) masks and the K names, in the order added."""
        return np.stack(self.rows), self.names


def goal_listing() -> tuple[np.ndarray, list[str]]:
    """The 136 Classic goals as a (136, 1562) 0/1 mask matrix and their names."""
    listing = GoalListing(OBS_DIM)
    add = listing.add

    for i, item in enumerate(ITEMS):
        for n in range(1, 10):
            add(f"{item} = {n}", [_index("inventory", i, n)])
    for j, tool in enumerate(TOOLS):
        add(f"has {tool}", [_index("inventory", len(ITEMS) + j, n) for n in range(1, 10)])
    for b in GOAL_BLOCKS:
        for d, (dr, dc) in DIRS.items():
            add(f"{BLOCK_NAMES[b]} {d}", [_index("block_map", CENTRE[0] + dr, CENTRE[1] + dc, b)])
    for m, mob in enumerate(MOBS):
        for d, (dr, dc) in DIRS.items():
            add(f"{mob} {d}", [_index("mob_map", CENTRE[0] + dr, CENTRE[1] + dc, m)])
    return listing.result()


def onehot_features(state) -> jax.Array:
    """Craftax-Classic state -> flat one-hot features (1562,) float32 (see module docstring)."""
    from craftax.craftax_classic.constants import BlockType

    pad = max(VIEW) + 2
    grid = jnp.pad(state.map, pad, constant_values=BlockType.OUT_OF_BOUNDS.value)
    corner = state.player_position - jnp.array(CENTRE) + pad
    view = jax.lax.dynamic_slice(grid, corner, VIEW)
    blocks = jax.nn.one_hot(view, N_BLOCKS)
    mob = jnp.zeros(VIEW + (4,))
    for m, mobs in enumerate((state.zombies, state.cows, state.skeletons, state.arrows)):
        local = mobs.position - state.player_position + jnp.array(CENTRE)
        on = mobs.mask & jnp.all((local >= 0) & (local < jnp.array(VIEW)), axis=-1)
        # Off-screen mobs are scattered to a clipped cell with value 0 (max keeps other mobs there).
        loc = jnp.clip(local, 0, jnp.array(VIEW) - 1)
        mob = mob.at[loc[:, 0], loc[:, 1], m].max(on.astype(jnp.float32))
    mob = jnp.concatenate([mob, 1.0 - mob.max(-1, keepdims=True)], -1)
    inv = jnp.stack([getattr(state.inventory, f) for f in INVENTORY])
    intr = jnp.stack([state.player_health, state.player_food, state.player_drink, state.player_energy])
    light_bin = jnp.clip(jnp.floor(state.light_level * 10), 0, 9).astype(jnp.int32)
    parts = [blocks, mob, jax.nn.one_hot(jnp.clip(inv, 0, 9), 10), jax.nn.one_hot(jnp.clip(intr, 0, 9), 10),
             jax.nn.one_hot(jnp.asarray(state.player_direction) - 1, 4), jax.nn.one_hot(light_bin, 10),
             jax.nn.one_hot(jnp.asarray(state.is_sleeping).astype(jnp.int32), 2)]
    return jnp.concatenate([p.reshape(-1) for p in parts]).astype(jnp.float32)


def direct_goal_predicates(state) -> jax.Array:
    """Every goal of `goal_listing` evaluated directly on the state (no masks): (136,) bool."""
    inv = jnp.stack([getattr(state.inventory, f) for f in INVENTORY])
    out = [inv[i] == n for i in range(len(ITEMS)) for n in range(1, 10)]
    out += [inv[len(ITEMS) + j] >= 1 for j in range(len(TOOLS))]
    pos = state.player_position
    h, w = state.map.shape
    for b in GOAL_BLOCKS:
        for dr, dc in DIRS.values():
            r, c = pos[0] + dr, pos[1] + dc
            inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
            block = jnp.where(inside, state.map[jnp.clip(r, 0, h - 1), jnp.clip(c, 0, w - 1)], 1)  # 1: out of bounds
            out.append(block == b)
    for mobs in (state.zombies, state.cows, state.skeletons, state.arrows):
        for dr, dc in DIRS.values():
            out.append(jnp.any(mobs.mask & jnp.all(mobs.position == pos + jnp.array([dr, dc]), axis=-1)))
    return jnp.stack(out)


@struct.dataclass
class CraftaxGoalState(environment.EnvState):
    inner: object  # the craftax EnvState


class CraftaxGoalsBase(environment.Environment, abc.ABC):
    """gymnax-style wrapper of a craftax game (no auto-reset) with one-hot observations. A subclass names
    the game: `_make_inner`, `_generate`, `_advance` (-> state, reward, done), `_features`, `obs_dim` and
    `n_actions` (craftax itself is imported lazily inside those hooks)."""

    obs_dim: int
    n_actions: int

    def __init__(self):
        super().__init__()
        self.inner = self._make_inner()

    @abc.abstractmethod
    def _make_inner(self):
        ...

    @abc.abstractmethod
    def _generate(self, key, params):
        ...

    @abc.abstractmethod
    def _advance(self, key, inner, action, params):
        ...

    @abc.abstractmethod
    def _features(self, inner) -> jax.Array:
        ...

    @property
    def default_params(self):
        return self.inner.default_params

    def reset_env(self, key, params):
        s = self._generate(key, params)
        return self._features(s), CraftaxGoalState(time=s.timestep, inner=s)

    def step_env(self, key, state, action, params):
        s, reward, done = self._advance(key, state.inner, action, params)
        return self._features(s), CraftaxGoalState(time=s.timestep, inner=s), reward, done, {}

    def is_truncated(self, state, params):
        return jnp.bool_(False)  # is_game_over already ends episodes at max_timesteps

    @property
    def num_actions(self) -> int:
        return self.n_actions

    def action_space(self, params=None):
        return spaces.Discrete(self.n_actions)

    def observation_space(self, params):
        return spaces.Box(0.0, 1.0, (self.obs_dim,), jnp.float32)


def goal_env(env: CraftaxGoalsBase, masks: np.ndarray, names: list[str], num_goals: int | None,
             name: str) -> GoalEnv:
    """A GoalEnv over `env` with the first `num_goals` goals of the listing (`masks`: (K, D))."""
    keep = _take_goals(np.arange(len(names)), num_goals, name)
    masks = jnp.asarray(masks[keep])
    ident = lambda x: x  # noqa: E731  (observations already are the binary features)
    return GoalEnv(env, env.default_params, GoalSpace(masks=masks, goal_inputs=masks),
                   tuple(names[i] for i in keep), ident, ident, name)


class CraftaxClassicGoals(CraftaxGoalsBase):
    """Craftax-Classic (17 actions, D = 1562)."""

    obs_dim = OBS_DIM
    n_actions = 17

    def _make_inner(self):
        from craftax.craftax_classic.envs.craftax_symbolic_env import CraftaxClassicSymbolicEnvNoAutoReset

        return CraftaxClassicSymbolicEnvNoAutoReset()

    def _generate(self, key, params):
        from craftax.craftax_classic.world_gen import generate_world

        return generate_world(key, params, self.inner.static_env_params)

    def _advance(self, key, inner, action, params):
        from craftax.craftax_classic.game_logic import craftax_step, is_game_over

        s, reward = craftax_step(key, inner, action, params, self.inner.static_env_params)
        return s, reward, is_game_over(s, params)

    def _features(self, inner) -> jax.Array:
        return onehot_features(inner)


def make_craftax_classic(num_goals: int | None = None) -> GoalEnv:
    """Goal-conditioned Craftax-Classic with the first `num_goals` of the 136 goals (all when None)."""
    masks, names = goal_listing()
    return goal_env(CraftaxClassicGoals(), masks, names, num_goals, "craftax-classic")
