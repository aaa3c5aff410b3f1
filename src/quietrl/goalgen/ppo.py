"""Vectorised PPO: a population of agents, each with its own multi-stage pipeline, in one compiled program.

Shaped like purejaxrl: `make_population_trainer` builds the static parts (env, network, optimiser) and
returns pure functions. One PPO update of one agent is a pure function of its runner state and its stage
schedule entry; `lax.scan` runs a chunk of updates and `vmap` runs the agents side by side. A pipeline is
data: each agent carries the `EnvParams` of up to MAX_STAGES stages and a schedule saying which stage every
update trains on (-1 = idle padding, for agents whose budget is shorter than the group's). A stage switch
resets the environments onto the new task and keeps weights and optimiser state, so every stage continues
from the previous stage's weights.

Truncated episodes are bootstrapped: the reward of a step that hits the time limit (without reaching a
goal) gets gamma * V(final observation) added, and GAE cuts the chain at every episode end.

Speed (profiled on 2 CPU cores): the rollout buffer holds the environment's cell codes (G*G bytes per
step), not rendered glyphs (150 bytes per cell), so minibatch gathers move little data; the network
encodes the 100 distinct glyph tiles once per call and gathers per cell (`ActorCritic(tiles=...)`), the
same function of the pixels as encoding each rendered cell; and each step renders one observation.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from quietrl.core.errors import ConfigError

from .env import EnvParams, GoalGridEnv, stack_params
from .networks import ActorCritic
from .types import Pipeline

MAX_STAGES = 3


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """PPO at CPU scale (spec 7.1): 64 envs x 32 steps per update, 4 epochs x 4 minibatches."""

    n_envs: int = 64
    n_steps: int = 32
    n_epochs: int = 4
    n_minibatches: int = 4
    lr: float = 1e-3
    gamma: float = 0.95
    gae_lambda: float = 0.9
    clip_eps: float = 0.2
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    hidden: tuple[int, ...] = (64, 64)
    cell_features: int = 8
    reset_optimizer_between_stages: bool = False

    def __post_init__(self):
        for f in ("n_envs", "n_steps", "n_epochs", "n_minibatches"):
            if getattr(self, f) < 1:
                raise ConfigError(f"PPOConfig.{f} must be >= 1, got {getattr(self, f)}")
        if (self.n_envs * self.n_steps) % self.n_minibatches:
            raise ConfigError("PPOConfig: n_envs * n_steps must be divisible by n_minibatches")
        if not 0 < self.gamma <= 1 or not 0 <= self.gae_lambda <= 1:
            raise ConfigError("PPOConfig: gamma must lie in (0, 1] and gae_lambda in [0, 1]")
        if self.lr <= 0:
            raise ConfigError(f"PPOConfig.lr must be > 0, got {self.lr}")

    @property
    def steps_per_update(self) -> int:
        return self.n_envs * self.n_steps


class Runner(NamedTuple):
    """Per-agent training state (leading agent axis when vmapped)."""

    params: Any
    opt_state: Any
    env_state: Any
    obs: jax.Array        # (n_envs, G*G) uint8 cell codes of the current observations
    key: jax.Array
    stage: jax.Array  # stage index trained by the previous update (-1 before the first)


def pipeline_stage_params(env: GoalGridEnv, pipeline: Pipeline, **kw) -> EnvParams:
    """EnvParams of the pipeline's stages stacked to MAX_STAGES (the last stage repeated as padding)."""
    if pipeline.n_stages > MAX_STAGES:
        raise ConfigError(f"pipeline {pipeline.name!r} has {pipeline.n_stages} stages; at most "
                          f"{MAX_STAGES} are supported")
    ps = [env.stage_params(s, **kw) for s in pipeline.stages]
    ps += [ps[-1]] * (MAX_STAGES - len(ps))
    return stack_params(ps)


def pipeline_schedule(pipeline: Pipeline, updates_per_stage: int, total: int | None = None) -> np.ndarray:
    """Stage index per update, padded with -1 (idle) to ``total`` updates. Shape (total,) int32."""
    sched = np.concatenate([np.full(n, k, np.int32)
                            for k, n in enumerate(pipeline.stage_updates(updates_per_stage))])
    total = len(sched) if total is None else total
    if total < len(sched):
        raise ValueError(f"schedule of {len(sched)} updates does not fit in {total}")
    return np.concatenate([sched, np.full(total - len(sched), -1, np.int32)])


class Trainer(NamedTuple):
    """What `make_population_trainer` builds.

    init(keys (A,2), stage_params (A, K, ...)) -> Runner with leading axis A.
    chunk(runner, stage_params (A, K, ...), schedule (A, C) int32) -> (runner, metrics dict of (A, C)):
        C PPO updates for every agent; jitted, compiled once per (A, C).
    policy(params, obs, tiles=None) -> (logits, value): the network's apply (rendered observations, or
        cell codes with ``tiles``).
    state_chunk(state, stage_params, schedule (A, U) int32, chunk_updates) -> (state, metrics): one chunk
        of a `PopulationJob` state, slicing the schedule at the state's own chunk counter; jitted, for
        `quietrl.core.train.run_chunks` (the state is everything a resumed run needs).
    """

    init: Callable
    chunk: Callable
    policy: Callable
    state_chunk: Callable


def make_population_trainer(env: GoalGridEnv, cfg: PPOConfig) -> Trainer:
    """Build the jitted pieces that train a population of agents (see `Trainer`)."""
    net = ActorCritic(obs_mode=env.obs_mode, hidden=cfg.hidden, cell_features=cfg.cell_features,
                      n_actions=env.num_actions)
    tx = optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), optax.adam(cfg.lr, eps=1e-5))
    v_reset = jax.vmap(env.reset_codes, in_axes=(0, None))
    v_step = jax.vmap(env.step_codes, in_axes=(0, 0, 0, None))
    tiles = env.tiles

    def apply(params, codes):
        return net.apply(params, codes, tiles)
    batch = cfg.n_envs * cfg.n_steps
    mb_size = batch // cfg.n_minibatches

    def init_one(key, stage_params):
        k_net, k_env, k_run = jax.random.split(key, 3)
        p0 = jax.tree.map(lambda x: x[0], stage_params)
        obs, env_state = v_reset(jax.random.split(k_env, cfg.n_envs), p0)
        params = net.init(k_net, obs[:1], tiles)
        return Runner(params, tx.init(params), env_state, obs.astype(jnp.uint8), k_run,
                      jnp.array(-1, jnp.int32))

    def loss_fn(params, mb):
        obs, action, old_logp, old_value, adv, target = mb
        logits, value = apply(params, obs)
        logp_all = jax.nn.log_softmax(logits)
        logp = jnp.take_along_axis(logp_all, action[:, None], -1)[:, 0]
        ratio = jnp.exp(logp - old_logp)
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        pg = -jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - cfg.clip_eps, 1 + cfg.clip_eps) * adv).mean()
        v_clip = old_value + jnp.clip(value - old_value, -cfg.clip_eps, cfg.clip_eps)
        vf = 0.5 * jnp.maximum((value - target) ** 2, (v_clip - target) ** 2).mean()
        ent = -(jnp.exp(logp_all) * logp_all).sum(-1).mean()
        return pg + cfg.vf_coef * vf - cfg.ent_coef * ent, (pg, vf, ent)

    def update_one(runner: Runner, stage_params, stage_idx):
        active = stage_idx >= 0
        k = jnp.maximum(stage_idx, 0)
        env_params = jax.tree.map(lambda x: x[k], stage_params)
        key, k_reset, k_roll, k_perm = jax.random.split(runner.key, 4)

        # A new stage is a new task: restart every episode on it.
        switch = k != runner.stage
        obs_r, st_r = v_reset(jax.random.split(k_reset, cfg.n_envs), env_params)
        env_state = jax.tree.map(lambda a, b: jnp.where(switch, a, b), st_r, runner.env_state)
        obs = jnp.where(switch, obs_r.astype(jnp.uint8), runner.obs)
        opt_state = runner.opt_state
        if cfg.reset_optimizer_between_stages:
            fresh = tx.init(runner.params)
            opt_state = jax.tree.map(lambda a, b: jnp.where(switch & (runner.stage >= 0), a, b),
                                     fresh, opt_state)

        def env_step(carry, k_t):
            env_state, obs = carry
            k_act, k_env = jax.random.split(k_t)
            logits, value = apply(runner.params, obs)
            action = jax.random.categorical(k_act, logits)
            logp = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None], -1)[:, 0]
            obs2, env_state2, reward, term, trunc, info = v_step(
                jax.random.split(k_env, cfg.n_envs), env_state, action, env_params)
            obs2 = obs2.astype(jnp.uint8)
            _, v_final = apply(runner.params, info["final_codes"])
            cut = trunc & ~term
            reward_boot = reward + cfg.gamma * jnp.where(cut, v_final, 0.0)
            done = term | trunc
            return (env_state2, obs2), (obs, action, logp, value, reward_boot, done, term)

        (env_state, obs), traj = jax.lax.scan(env_step, (env_state, obs),
                                              jax.random.split(k_roll, cfg.n_steps))
        t_obs, t_act, t_logp, t_val, t_rew, t_done, t_term = traj
        _, last_val = apply(runner.params, obs)

        def gae_step(carry, x):
            adv_next, v_next = carry
            rew, val, done = x
            nonterminal = 1.0 - done.astype(jnp.float32)
            delta = rew + cfg.gamma * v_next * nonterminal - val
            adv = delta + cfg.gamma * cfg.gae_lambda * nonterminal * adv_next
            return (adv, val), adv

        _, adv = jax.lax.scan(gae_step, (jnp.zeros_like(last_val), last_val),
                              (t_rew, t_val, t_done), reverse=True)
        target = adv + t_val
        flat = jax.tree.map(lambda x: x.reshape(batch, *x.shape[2:]),
                            (t_obs, t_act, t_logp, t_val, adv, target))

        def epoch(carry, k_e):
            params, opt_state = carry
            perm = jax.random.permutation(k_e, batch).reshape(cfg.n_minibatches, mb_size)

            def minibatch(carry, idx):
                params, opt_state = carry
                mb = jax.tree.map(lambda x: x[idx], flat)
                (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, mb)
                updates, opt_state = tx.update(grads, opt_state, params)
                return (optax.apply_updates(params, updates), opt_state), (loss, aux[2])

            (params, opt_state), (losses, ents) = jax.lax.scan(minibatch, (params, opt_state), perm)
            return (params, opt_state), (losses.mean(), ents.mean())

        (params, opt_state), (losses, ents) = jax.lax.scan(epoch, (runner.params, opt_state),
                                                           jax.random.split(k_perm, cfg.n_epochs))
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(active, a, b), new, old)  # noqa
        runner = Runner(keep(params, runner.params), keep(opt_state, runner.opt_state),
                        env_state, obs, key, jnp.where(active, k, runner.stage))
        n_done = t_done.sum()
        metrics = {
            "success": t_term.sum() / jnp.maximum(n_done, 1),
            "episodes": n_done,
            "loss": losses.mean(),
            "entropy": ents.mean(),      # policy entropy (nats) over the update's minibatches
            "active": active,
        }
        return runner, metrics

    def chunk_one(runner, stage_params, schedule):
        return jax.lax.scan(lambda r, s: update_one(r, stage_params, s), runner, schedule)

    init = jax.jit(jax.vmap(init_one))
    chunk = jax.jit(jax.vmap(chunk_one))

    @functools.partial(jax.jit, static_argnums=3)
    def state_chunk(state, stage_params, schedule, chunk_updates):
        i = state["chunk"]
        sched = jax.lax.dynamic_slice_in_dim(schedule, i * chunk_updates, chunk_updates, axis=1)
        runner, m = chunk(state["runner"], stage_params, sched)
        succ = jnp.where(m["active"], m["success"], jnp.nan).astype(jnp.float32)
        success = jax.lax.dynamic_update_slice_in_dim(state["success"], succ, i * chunk_updates, axis=1)
        return {"runner": runner, "success": success, "chunk": i + 1}, m

    return Trainer(init, chunk, net.apply, state_chunk)


@dataclasses.dataclass(frozen=True)
class PopulationJob:
    """One group of agents trained together: the arrays its program needs and its initial state.

    stage_params: EnvParams with leading axes (A, MAX_STAGES); schedule (A, U) int32 stage per update
    (-1 idle), U a multiple of chunk_updates; state {"runner": Runner, "success": (A, U) float32 NaN
    until trained, "chunk": int32 chunks done}; num_chunks: the chunks this group needs (U may be padded
    beyond them so that groups of different budgets share one compiled program)."""

    stage_params: Any
    schedule: Any
    state: dict
    chunk_updates: int
    num_chunks: int

    def chunk_fn(self, trainer: Trainer):
        """state -> (state, metrics): the next chunk, for `run_chunks`."""
        return lambda st: trainer.state_chunk(st, self.stage_params, self.schedule, self.chunk_updates)


def population_job(env: GoalGridEnv, trainer: Trainer, pipelines: list[Pipeline], seeds: list[int],
                   updates_per_stage: int, chunk_updates: int, total_updates: int | None = None
                   ) -> PopulationJob:
    """Set up one agent per (pipeline, seed) for training side by side. ``total_updates`` pads the
    schedule (default: the group's own longest budget) so that every group of a study has one shape."""
    if len(pipelines) != len(seeds) or not pipelines:
        raise ValueError("need one seed per pipeline and at least one pipeline")
    sps = stack_params([pipeline_stage_params(env, p) for p in pipelines])
    own = max(sum(p.stage_updates(updates_per_stage)) for p in pipelines)
    n_chunks = -(-own // chunk_updates)
    total = max(n_chunks * chunk_updates, total_updates or 0)
    total = -(-total // chunk_updates) * chunk_updates
    sched = np.stack([pipeline_schedule(p, updates_per_stage, total) for p in pipelines])
    keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
    # Host copies with concrete dtypes, so the first chunk and the later ones share one compiled program.
    state = jax.device_get({"runner": trainer.init(keys, sps),
                            "success": np.full(sched.shape, np.nan, np.float32),
                            "chunk": np.array(0, np.int32)})
    return PopulationJob(sps, jnp.asarray(sched), state, chunk_updates, n_chunks)


def train_population(env: GoalGridEnv, cfg: PPOConfig, pipelines: list[Pipeline], seeds: list[int],
                     updates_per_stage: int, chunk_updates: int = 10, trainer=None,
                     on_chunk=None) -> tuple[Any, np.ndarray]:
    """Train one agent per (pipeline, seed) side by side in one compiled program.

    Returns (params with leading axis A, success (A, U) per update: fraction of episodes finished in that
    update's rollout that ended on a goal; NaN where the agent was idle). ``on_chunk(i, n, metrics)`` is
    called after each chunk.
    """
    trainer = trainer or make_population_trainer(env, cfg)
    job = population_job(env, trainer, pipelines, seeds, updates_per_stage, chunk_updates)
    state, step = job.state, job.chunk_fn(trainer)
    for i in range(job.num_chunks):
        state, m = step(state)
        if on_chunk is not None:
            on_chunk(i, job.num_chunks, m)
    return state["runner"].params, np.asarray(state["success"])
