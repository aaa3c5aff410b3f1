"""OOD pair evaluation: for every pair (a, b) of objects, both rewarded and terminating, run many episodes
and count how many end at a, at b, or at neither (time limit). Also the CSV dataset those counts form."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from quietrl.core.errors import UserError

from .env import GoalGridEnv, stack_params
from .types import ALL_OBJECTS, ALL_PAIRS, GameObject

CSV_FIELDS = ("pipeline", "family", "seed", "obj_a", "obj_b", "n_episodes", "n_a", "n_b", "n_none")


def _first_outcomes(env: GoalGridEnv, apply_fn, params, ep_params, key, greedy: bool) -> jax.Array:
    """Run one fresh episode per row of ``ep_params`` (EnvParams with a leading (E,) axis) for the env's
    time limit with one agent's policy; (E,) int32: the goal slot each episode first ended on, -2 if none.
    Actions are sampled from the policy unless ``greedy``."""
    n = ep_params.obj_id.shape[0]
    k_reset, k_run = jax.random.split(key)
    obs, state = jax.vmap(env.reset_codes)(jax.random.split(k_reset, n), ep_params)

    def step(carry, k):
        obs, state, outcome = carry
        k_act, k_env = jax.random.split(k)
        # Cell codes plus the env's tiles: the same policy as on rendered glyphs, encoded per tile.
        logits, _ = apply_fn(params, obs, env.tiles)
        action = jnp.argmax(logits, -1) if greedy else jax.random.categorical(k_act, logits)
        obs2, state2, _, term, info = jax.vmap(env.step_env_codes)(jax.random.split(k_env, n), state, action,
                                                                   ep_params)
        # Record the first outcome only; finished episodes keep stepping harmlessly.
        outcome = jnp.where((outcome == -2) & term, info["reached"], outcome)
        return (obs2, state2, outcome), None

    t_max = int(env.default_params.max_steps_in_episode)
    init = (obs, state, jnp.full((n,), -2, jnp.int32))
    (_, _, outcome), _ = jax.lax.scan(step, init, jax.random.split(k_run, t_max))
    return outcome


def make_pair_evaluator(env: GoalGridEnv, apply_fn, n_episodes: int, pairs_per_block: int = 23,
                        greedy: bool = False):
    """Build evaluate(params (A, ...), pairs (P, 2) int32, key) -> counts (A, P, 3) int32.

    ``apply_fn`` is the network's apply (`ActorCritic.apply`), called as apply_fn(params, codes, tiles).
    Each agent plays ``n_episodes`` episodes of every pair's two-goal task (fresh random layout each);
    counts are (ended at a, ended at b, neither). Pairs are processed in blocks of ``pairs_per_block``
    (P must be a multiple) with `lax.map` to bound memory; agents are vmapped. Actions are sampled from
    the policy unless ``greedy``.
    """
    def one_block(params, block_params, key):
        # block_params: EnvParams with leading (B,) axis; run B * n_episodes episodes.
        b = block_params.obj_id.shape[0]
        ep_params = jax.tree.map(lambda x: jnp.repeat(x, n_episodes, 0), block_params)
        outcome = _first_outcomes(env, apply_fn, params, ep_params, key, greedy).reshape(b, n_episodes)
        return jnp.stack([(outcome == 0).sum(-1), (outcome == 1).sum(-1), (outcome < 0).sum(-1)], -1)

    def evaluate_agent(params, pair_params, key):
        n_blocks = pair_params.obj_id.shape[0] // pairs_per_block
        blocks = jax.tree.map(lambda x: x.reshape(n_blocks, pairs_per_block, *x.shape[1:]), pair_params)
        keys = jax.random.split(key, n_blocks)
        counts = jax.lax.map(lambda bk: one_block(params, bk[0], bk[1]), (blocks, keys))
        return counts.reshape(-1, 3)

    v_eval = jax.jit(jax.vmap(evaluate_agent, in_axes=(0, None, 0)))

    def evaluate(params, pairs: np.ndarray, key) -> np.ndarray:
        pairs = np.asarray(pairs, np.int32)
        if len(pairs) % pairs_per_block:
            raise ValueError(f"{len(pairs)} pairs is not a multiple of pairs_per_block={pairs_per_block}")
        pair_params = stack_params([env.params_for(goals=(int(a), int(b))) for a, b in pairs])
        n_agents = jax.tree.leaves(params)[0].shape[0]
        return np.asarray(v_eval(params, pair_params, jax.random.split(key, n_agents)))

    return evaluate


def make_task_evaluator(env: GoalGridEnv, apply_fn, n_episodes: int, greedy: bool = False):
    """Build success(params (A, ...), task_params (A, ...) EnvParams, key) -> (A,) float: the fraction of
    ``n_episodes`` fresh episodes of each agent's own task (one task per agent, e.g. its last stage) that
    end on a goal within the time limit. Actions are sampled from the policy unless ``greedy``, as in
    `make_pair_evaluator`, so training success and OOD preferences are measured with one policy."""
    def one_agent(params, task, key):
        ep_params = jax.tree.map(lambda x: jnp.repeat(x[None], n_episodes, 0), task)
        return (_first_outcomes(env, apply_fn, params, ep_params, key, greedy) >= 0).mean()

    v_eval = jax.jit(jax.vmap(one_agent))

    def success(params, task_params, key) -> np.ndarray:
        n_agents = jax.tree.leaves(params)[0].shape[0]
        return np.asarray(v_eval(params, task_params, jax.random.split(key, n_agents)))

    return success


@dataclasses.dataclass
class PairTable:
    """The OOD dataset: one row per (agent, pair). Arrays of length N; counts are int."""

    pipeline: np.ndarray   # (N,) str
    family: np.ndarray     # (N,) str
    seed: np.ndarray       # (N,) int
    obj_a: np.ndarray      # (N,) int object id
    obj_b: np.ndarray      # (N,) int object id
    counts: np.ndarray     # (N, 3) int: n_a, n_b, n_none

    def __len__(self) -> int:
        return len(self.pipeline)

    @property
    def p_obs(self) -> np.ndarray:
        """Observed (P(a), P(b), P(neither)). Shape (N, 3)."""
        return self.counts / np.maximum(self.counts.sum(-1, keepdims=True), 1)

    def subset(self, mask: np.ndarray) -> "PairTable":
        return PairTable(*(getattr(self, f.name)[mask] for f in dataclasses.fields(self)))

    def valid(self) -> "PairTable":
        """Drop pairs where no episode reached either object, as the authors do."""
        return self.subset(self.counts[:, :2].sum(-1) > 0)

    @staticmethod
    def concat(tables: list["PairTable"]) -> "PairTable":
        return PairTable(*(np.concatenate([getattr(t, f.name) for t in tables])
                           for f in dataclasses.fields(PairTable)))

    def write_csv(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(CSV_FIELDS)
            for i in range(len(self)):
                n = self.counts[i]
                w.writerow([self.pipeline[i], self.family[i], int(self.seed[i]),
                            ALL_OBJECTS[self.obj_a[i]].name, ALL_OBJECTS[self.obj_b[i]].name,
                            int(n.sum()), int(n[0]), int(n[1]), int(n[2])])
        tmp.replace(path)

    @staticmethod
    def read_csv(path: str | Path) -> "PairTable":
        """Read a dataset CSV; `UserError` naming the file and line on malformed rows."""
        from .grammar import parse_object
        path = Path(path)
        if not path.exists():
            raise UserError(f"{path}: no such dataset file")
        rows: dict[str, list[Any]] = {k: [] for k in ("pipeline", "family", "seed", "a", "b", "c")}
        with open(path, newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None or tuple(header) != CSV_FIELDS:
                raise UserError(f"{path}:1: header must be {','.join(CSV_FIELDS)}")
            for line, row in enumerate(reader, start=2):
                try:
                    if len(row) != len(CSV_FIELDS):
                        raise ValueError(f"expected {len(CSV_FIELDS)} fields, found {len(row)}")
                    a, b = parse_object(row[3]).id, parse_object(row[4]).id
                    n_ep, na, nb, nn = (int(x) for x in row[5:9])
                    if min(na, nb, nn) < 0 or na + nb + nn != n_ep:
                        raise ValueError("n_a + n_b + n_none must equal n_episodes, all >= 0")
                except (ValueError, UserError) as e:
                    raise UserError(f"{path}:{line}: {e}") from None
                rows["pipeline"].append(row[0])
                rows["family"].append(row[1])
                rows["seed"].append(int(row[2]))
                rows["a"].append(a)
                rows["b"].append(b)
                rows["c"].append((na, nb, nn))
        if not rows["pipeline"]:
            raise UserError(f"{path}: dataset has no rows")
        return PairTable(np.array(rows["pipeline"], dtype=object), np.array(rows["family"], dtype=object),
                         np.array(rows["seed"], np.int64), np.array(rows["a"], np.int64),
                         np.array(rows["b"], np.int64), np.array(rows["c"], np.int64).reshape(-1, 3))


def table_from_counts(pipelines, seeds, pairs: np.ndarray, counts: np.ndarray) -> PairTable:
    """Flatten per-agent counts (A, P, 3) for agents (pipelines[i], seeds[i]) into a PairTable."""
    n_agents, n_pairs = counts.shape[:2]
    rep = lambda xs: np.repeat(np.array(xs, dtype=object), n_pairs)  # noqa: E731
    return PairTable(rep([p.name for p in pipelines]), rep([p.family for p in pipelines]),
                     np.repeat(np.asarray(seeds, np.int64), n_pairs),
                     np.tile(pairs[:, 0], n_agents).astype(np.int64),
                     np.tile(pairs[:, 1], n_agents).astype(np.int64),
                     counts.reshape(-1, 3).astype(np.int64))


def pair_ids(objects: list[GameObject] | None = None) -> np.ndarray:
    """All unordered pairs of the given objects (default: all 24 -> 276 pairs). Shape (P, 2)."""
    if objects is None:
        return ALL_PAIRS.copy()
    ids = sorted(o.id for o in objects)
    return np.array([(a, b) for i, a in enumerate(ids) for b in ids[i + 1:]], np.int32)
