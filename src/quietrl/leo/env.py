"""Goal-conditioned environments: the gridworld, the batched goal env with a reset pool, and lookup.

Every environment follows gymnax's `Environment` interface (reset_env / step_env on immutable
state dataclasses). Goal rewards are not the environment's business: the env exposes a binary
feature vector per observation and a K x D goal-mask matrix (`GoalSpace`), and the learners compute
every goal's reward with one matmul on the *true* next observation, before any reset.

Difference from the authors' code (documented on purpose): their auto-reset wrappers hand the learner
the next episode's reset observation at a terminal step, so rewards, terminations and success counters
on terminal transitions are evaluated on the reset state. Here they are evaluated on the true terminal
state; the reset observation only becomes the next step's s_t.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from .types import GoalSpace

from quietrl.core.errors import UserError


# ----------------------------------------------------------------------------------------- gridworld


@struct.dataclass
class GridState(environment.EnvState):
    pos: jax.Array  # (2,) int32 (row, col)


@struct.dataclass
class GridParams(environment.EnvParams):
    max_steps_in_episode: int = 200
    # Episodes start at a random time in [0, max_start_offset): lengths 151..200 desynchronise workers.
    max_start_offset: int = 50


_MOVES = np.array([[0, -1], [0, 1], [-1, 0], [1, 0]], dtype=np.int32)  # L, R, U, D


def make_gridworld_map(map_size: int, wall_density: float, map_seed: int) -> np.ndarray:
    """Boolean wall map (map_size, map_size); the centre cell is always free.

    The key is split once before the uniform draw, as the authors' generator does, which reproduces
    their goal counts (16x16 @ 0.3, seed 0: K = 174; 12x12 @ 0.2: K = 108).
    """
    _, sub = jax.random.split(jax.random.PRNGKey(map_seed))
    walls = np.array(jax.random.uniform(sub, (map_size, map_size)) < wall_density)
    walls[map_size // 2, map_size // 2] = False
    return walls


class Gridworld(environment.Environment):
    """Grid navigation; every free cell is a goal, achieved iff the agent stands on it.

    Observation: (row, col) int32. Actions: left, right, up, down; moving into a wall or off the map
    leaves the agent in place. Start at the centre; time limit 200 with a random start offset.
    """

    def __init__(self, map_size: int = 16, wall_density: float = 0.3, map_seed: int = 0):
        super().__init__()
        if map_size < 3:
            raise UserError(f"gridworld map_size must be >= 3, got {map_size}")
        if not 0.0 <= wall_density < 1.0:
            raise UserError(f"gridworld wall_density must be in [0, 1), got {wall_density}")
        self.map_size = map_size
        self.walls_np = make_gridworld_map(map_size, wall_density, map_seed)
        self.walls = jnp.asarray(self.walls_np)
        # Goal listing: free cells in row-major order.
        self.free_cells = np.argwhere(~self.walls_np).astype(np.int32)

    @property
    def default_params(self) -> GridParams:
        return GridParams()

    def reset_env(self, key, params):
        c = self.map_size // 2
        t0 = jax.random.randint(key, (), 0, params.max_start_offset)
        state = GridState(time=t0, pos=jnp.array([c, c], dtype=jnp.int32))
        return state.pos, state

    def step_env(self, key, state, action, params):
        del key
        target = state.pos + jnp.asarray(_MOVES)[action]
        inside = jnp.all((target >= 0) & (target < self.map_size))
        clipped = jnp.clip(target, 0, self.map_size - 1)
        free = inside & ~self.walls[clipped[0], clipped[1]]
        pos = jnp.where(free, clipped, state.pos)
        state = GridState(time=state.time + 1, pos=pos)
        # Rewards are goal-conditioned and computed by the learner from the goal oracle.
        return pos, state, jnp.float32(0.0), jnp.bool_(False), {}

    def is_terminated(self, state, params):
        return jnp.bool_(False)

    @property
    def num_actions(self) -> int:
        return 4

    def action_space(self, params=None):
        return spaces.Discrete(4)

    def observation_space(self, params):
        return spaces.Box(0, self.map_size - 1, (2,), jnp.int32)

    # goal interface ------------------------------------------------------------------------------
    def features(self, obs: jax.Array) -> jax.Array:
        """Binary features for the oracle: one-hot cell index, (..., 2) -> (..., size**2)."""
        idx = obs[..., 0] * self.map_size + obs[..., 1]
        return jax.nn.one_hot(idx, self.map_size * self.map_size, dtype=jnp.float32)

    def encode(self, obs: jax.Array) -> jax.Array:
        """Network input: coordinates scaled to [-1, 1], (..., 2) -> (..., 2) float32.

        Scaling stands in for the authors' input BatchRenorm, which we do not implement.
        """
        return obs.astype(jnp.float32) * (2.0 / (self.map_size - 1)) - 1.0

    def goal_space(self, num_goals: int | None = None) -> tuple[GoalSpace, list[str]]:
        """The first `num_goals` free cells (all when None) as a GoalSpace, with their names."""
        cells = _take_goals(self.free_cells, num_goals, "gridworld")
        d = self.map_size * self.map_size
        masks = np.zeros((len(cells), d), np.float32)
        masks[np.arange(len(cells)), cells[:, 0] * self.map_size + cells[:, 1]] = 1.0
        inputs = cells.astype(np.float32) * (2.0 / (self.map_size - 1)) - 1.0
        names = [f"cell ({r},{c})" for r, c in cells]
        return GoalSpace(masks=jnp.asarray(masks), goal_inputs=jnp.asarray(inputs)), names


def _take_goals(listing: Any, num_goals: int | None, env_name: str):
    total = len(listing)
    if num_goals is None:
        return listing
    if num_goals < 1 or num_goals > total:
        raise UserError(
            f"--num-goals {num_goals} is out of range for {env_name}: its goal set holds {total} goals"
        )
    return listing[:num_goals]


# ------------------------------------------------------------------------------ batched goal env


@dataclass(frozen=True)
class GoalEnv:
    """A gymnax env plus everything the learners need to run N copies with a reset pool.

    features: obs -> (D,) binary features for the goal oracle
    encode:   obs -> (F,) float network input
    """

    env: Any
    params: Any
    goals: GoalSpace
    goal_names: tuple[str, ...]
    features: Callable[[Any], jax.Array]
    encode: Callable[[Any], jax.Array]
    name: str

    @property
    def num_goals(self) -> int:
        return self.goals.num_goals

    @property
    def num_actions(self) -> int:
        return self.env.num_actions

    @property
    def obs_dim(self) -> int:
        # Shape only: tracing the reset is far cheaper than running a Craftax world generation.
        out = jax.eval_shape(lambda k: self.encode(self.env.reset_env(k, self.params)[0]), jax.random.PRNGKey(0))
        return int(out.shape[-1])

    def reset_batch(self, key: jax.Array, n: int):
        """n fresh episodes: (obs batched over n, state batched over n)."""
        return jax.vmap(self.env.reset_env, in_axes=(0, None))(jax.random.split(key, n), self.params)

    def step_batch(self, key: jax.Array, state, action: jax.Array, pool):
        """Step N envs; evaluate on the true next state; then reset finished envs from the pool.

        action: (N,) int32. pool: (obs, state) batched over P fresh episodes.
        Returns (true_next_obs, acting_obs, acting_state, done (N,) bool): `true_next_obs` is the
        state reached (terminal included), `acting_obs/state` replace finished episodes by pool entries.
        """
        n = action.shape[0]
        k_step, k_pick = jax.random.split(key)
        obs, nstate, _, term, _ = jax.vmap(self.env.step_env, in_axes=(0, 0, 0, None))(
            jax.random.split(k_step, n), state, action, self.params
        )
        trunc = jax.vmap(self.env.is_truncated, in_axes=(0, None))(nstate, self.params)
        done = jnp.logical_or(term, trunc)
        pool_obs, pool_state = pool
        p = jax.tree.leaves(pool_state)[0].shape[0]

        def reset_some(args):
            o, s = args
            idx = jax.random.randint(k_pick, (n,), 0, p)
            pick = lambda fresh, cur: jnp.where(  # noqa: E731
                done.reshape((n,) + (1,) * (cur.ndim - 1)), fresh[idx], cur
            )
            return jax.tree.map(pick, pool_obs, o), jax.tree.map(pick, pool_state, s)

        # The full-state select costs about as much as a step for Craftax: skip it when nobody finished.
        act_obs, act_state = jax.lax.cond(jnp.any(done), reset_some, lambda a: a, (obs, nstate))
        return obs, act_obs, act_state, done


ENV_NAMES = ("gridworld", "craftax-classic", "craftax")


def make_env(
    name: str,
    num_goals: int | None = None,
    map_size: int = 16,
    wall_density: float = 0.3,
    map_seed: int = 0,
) -> GoalEnv:
    """Build a goal env by name ('gridworld', 'craftax-classic' or 'craftax'); UserError on bad names or K."""
    if name == "gridworld":
        env = Gridworld(map_size, wall_density, map_seed)
        goals, names = env.goal_space(num_goals)
        return GoalEnv(env, env.default_params, goals, tuple(names), env.features, env.encode,
                       f"gridworld-{map_size}x{map_size}-w{wall_density:g}")
    if name == "craftax-classic":
        from .craftax_env import make_craftax_classic  # lazy: craftax is slow to import

        return make_craftax_classic(num_goals)
    if name == "craftax":
        from .craftax_full import make_craftax  # lazy: craftax is slow to import

        return make_craftax(num_goals)
    raise UserError(f"unknown env {name!r}; choose one of {', '.join(ENV_NAMES)}")
