"""Training: one config, one rollout shared by every learner, chunks of jitted updates.

`make_train(cfg)` returns a `Trainer` whose `init(key)` builds the whole runner state and whose
`chunk(state)` runs `cfg.updates_per_chunk` updates as one `lax.scan` (rollout of N envs x T steps,
then the algorithm's update). `train(cfg, seed, stage)` drives the chunks through
`quietrl.core.train.run_chunks`, which logs, checkpoints and resumes.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, Callable, Literal, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from quietrl.core.config import require
from quietrl.core.errors import ConfigError

from .env import ENV_NAMES, GoalEnv, make_env
from .leo import leo_targets, leo_update
from .networks import TRUNK_PRESETS, LEONetwork, UVFANetwork
from .pqn import (commanded_samples, her_samples, num_relabel_minibatches, pqn_update,
                  relabel_all_update)
from .types import RunnerState, TrackerState, Transition, success_rate

ALGOS = ("leo", "pqn", "pqn_her", "relabel_all")


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Defaults: LEO on the 12x12 gridworld at CPU scale (see `default_config`)."""

    algo: str = "leo"
    env: str = "gridworld"
    map_size: int = 12
    wall_density: float = 0.2
    map_seed: int = 0
    num_goals: Optional[int] = None  # first K goals of the listing; None = all
    num_envs: int = 256
    num_steps: int = 32  # T: rollout length per update
    total_timesteps: int = 500_000
    minibatch_size: int = 512
    epochs: int = 2
    gamma: float = 0.99
    lr: float = 2e-4
    anneal_lr: bool = True
    max_grad_norm: float = 1.0
    eps_start: float = 0.2
    eps_end: float = 0.01
    eps_decay_frac: float = 0.2  # fraction of updates over which epsilon decays linearly
    trunk: str = "256x2"
    her_num_relabel: int = 2  # relabelled copies per transition (PQN+HER)
    her_random_prop: float = 0.5  # share of them with a uniform goal; the rest "positive"
    only_seen_goals: bool = True
    success_decay: float = 0.99  # per-update decay of the live success counters
    reset_pool_size: int = 16
    updates_per_chunk: int = 20
    test_max_steps: int = 200

    def __post_init__(self):
        require(self.algo in ALGOS, "algo", f"unknown algo {self.algo!r}; choose one of {', '.join(ALGOS)}")
        require(self.env in ENV_NAMES, "env", f"unknown env {self.env!r}; choose one of {', '.join(ENV_NAMES)}")
        require(self.trunk in TRUNK_PRESETS, "trunk",
                f"unknown trunk {self.trunk!r}; choose one of {', '.join(TRUNK_PRESETS)}")
        for name in ("num_envs", "num_steps", "minibatch_size", "epochs", "updates_per_chunk",
                     "reset_pool_size", "test_max_steps"):
            require(getattr(self, name) >= 1, name, "must be >= 1")
        require(self.num_goals is None or self.num_goals >= 1, "num_goals", "must be >= 1")
        require(0.0 < self.gamma < 1.0, "gamma", "must be in (0, 1)")
        require(self.lr > 0, "lr", "must be > 0")
        require(0.0 <= self.eps_end <= self.eps_start <= 1.0, "eps_start", "need 0 <= eps_end <= eps_start <= 1")
        require(0.0 < self.eps_decay_frac <= 1.0, "eps_decay_frac", "must be in (0, 1]")
        require(0.0 <= self.her_random_prop <= 1.0, "her_random_prop", "must be in [0, 1]")
        require(self.her_num_relabel >= 0, "her_num_relabel", "must be >= 0")
        require(0.0 < self.success_decay <= 1.0, "success_decay", "must be in (0, 1]")
        if self.algo in ("leo", "pqn"):
            require(self.batch_size % self.minibatch_size == 0, "minibatch_size",
                    f"must divide num_envs * num_steps = {self.batch_size}")
        if self.algo == "pqn_her":
            require((self.batch_size * (1 + self.her_num_relabel)) % self.minibatch_size == 0,
                    "minibatch_size", f"must divide num_envs * num_steps * (1 + her_num_relabel)")
        require(self.num_updates >= self.updates_per_chunk, "total_timesteps",
                f"gives {self.num_updates} updates, fewer than updates_per_chunk={self.updates_per_chunk}")

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.batch_size

    @property
    def num_chunks(self) -> int:
        # Whole chunks only: the run does num_chunks * updates_per_chunk updates.
        return self.num_updates // self.updates_per_chunk

    @property
    def hidden(self) -> tuple[int, ...]:
        return TRUNK_PRESETS[self.trunk]


# The authors' per-algorithm settings [code], at CPU scale (fewer envs, smaller trunk).
_ALGO_DEFAULTS: dict[str, dict[str, Any]] = {
    "leo": dict(num_steps=32, minibatch_size=512, epochs=2, gamma=0.99, eps_decay_frac=0.2),
    "relabel_all": dict(num_steps=32, minibatch_size=512, epochs=2, gamma=0.99, eps_decay_frac=0.2),
    "pqn": dict(num_steps=2, minibatch_size=256, epochs=1, gamma=0.995, eps_decay_frac=0.5,
                updates_per_chunk=100),
    "pqn_her": dict(num_steps=2, minibatch_size=256, epochs=1, gamma=0.995, eps_decay_frac=0.5,
                    updates_per_chunk=100),
}


def default_config(algo: str = "leo", env: str = "gridworld", **overrides: Any) -> TrainConfig:
    """The per-algorithm defaults for `algo` on `env`, then `overrides` (field=value)."""
    if algo not in _ALGO_DEFAULTS:
        raise ConfigError(f"algo: unknown algo {algo!r}; choose one of {', '.join(ALGOS)}")
    kw: dict[str, Any] = dict(algo=algo, env=env, **_ALGO_DEFAULTS[algo])
    if env == "craftax-classic":
        kw.update(num_envs=64, total_timesteps=50_000, test_max_steps=512)
    kw.update(overrides)
    return TrainConfig(**kw)


def build_env(cfg: TrainConfig) -> GoalEnv:
    """The goal env a config names (UserError for a K larger than the goal set)."""
    return make_env(cfg.env, cfg.num_goals, cfg.map_size, cfg.wall_density, cfg.map_seed)


@dataclass
class Trainer:
    cfg: TrainConfig
    genv: GoalEnv
    init: Callable[[jax.Array], RunnerState]
    chunk: Callable[[RunnerState], tuple[RunnerState, dict]]
    greedy_test: Callable[[Any, jax.Array], jax.Array]
    q_fn: Callable  # acting values: (params, x (N, F), goal (N,)) -> (N, A)


def _grad_steps_per_update(cfg: TrainConfig, k: int) -> int:
    b = cfg.batch_size
    if cfg.algo == "relabel_all":
        return cfg.epochs * num_relabel_minibatches(b, k, cfg.minibatch_size)
    if cfg.algo == "pqn_her":
        return cfg.epochs * b * (1 + cfg.her_num_relabel) // cfg.minibatch_size
    return cfg.epochs * b // cfg.minibatch_size


def make_optimizer(cfg: TrainConfig, k: int) -> optax.GradientTransformation:
    """Global-norm clip then RAdam, the learning rate annealed linearly to 0 over all gradient steps."""
    steps = cfg.num_chunks * cfg.updates_per_chunk * _grad_steps_per_update(cfg, k)
    lr = optax.linear_schedule(cfg.lr, 0.0, max(steps, 1)) if cfg.anneal_lr else cfg.lr
    return optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), optax.radam(lr))


def make_train(cfg: TrainConfig, genv: GoalEnv | None = None) -> Trainer:
    """Build init / chunk / greedy-test functions for `cfg` (all jitted, pure)."""
    genv = genv or build_env(cfg)
    goals = genv.goals
    k, a, n, t_len = genv.num_goals, genv.num_actions, cfg.num_envs, cfg.num_steps
    is_leo = cfg.algo == "leo"
    net = LEONetwork(k, a, cfg.hidden) if is_leo else UVFANetwork(a, cfg.hidden)
    tx = make_optimizer(cfg, k)
    total_updates = cfg.num_chunks * cfg.updates_per_chunk
    decay_updates = max(1, int(cfg.eps_decay_frac * total_updates))

    def q_fn(params, x, goal):
        """Acting values for the commanded goals, plus LEO's all-goal max (N, K) (zeros otherwise)."""
        if is_leo:
            q_all = net.apply(params, x)  # (N, K, A)
            return q_all[jnp.arange(x.shape[0]), goal], q_all.max(-1)
        return net.apply(params, x, goals.goal_inputs[goal]), jnp.zeros((x.shape[0], 0))

    def sample_goals(key, seen, shape):
        logits = jnp.where(seen, 0.0, -jnp.inf) if cfg.only_seen_goals else jnp.zeros(k)
        return jax.random.categorical(key, logits, shape=shape).astype(jnp.int32)

    def init(key) -> RunnerState:
        k_net, k_env, k_goal, key = jax.random.split(key, 4)
        obs, env_state = genv.reset_batch(k_env, n)
        x = genv.encode(obs)
        params = net.init(k_net, x[:1]) if is_leo else net.init(k_net, x[:1], goals.goal_inputs[:1])
        seen = goals.achieved(genv.features(obs)).any(0)
        goal = sample_goals(k_goal, seen, (n,))
        tracker = TrackerState(goal=goal, first_goal=goal, pending=jnp.ones(n, bool), seen=seen,
                               succ=jnp.zeros(k), fail=jnp.zeros(k))
        return RunnerState(params=params, opt_state=tx.init(params), env_state=env_state, obs=obs,
                           tracker=tracker, key=key, update=jnp.int32(0))

    def epsilon(update):
        frac = jnp.clip(update / decay_updates, 0.0, 1.0)
        return cfg.eps_start + frac * (cfg.eps_end - cfg.eps_start)

    def rollout(rs: RunnerState, key):
        eps = epsilon(rs.update)
        k_pool, key = jax.random.split(key)
        pool = genv.reset_batch(k_pool, cfg.reset_pool_size)

        def step(carry, kk):
            env_state, obs, tr = carry
            k_eps, k_rand, k_step, k_goal = jax.random.split(kk, 4)
            x = genv.encode(obs)
            q, maxq = q_fn(rs.params, x, tr.goal)
            explore = jax.random.uniform(k_eps, (n,)) < eps
            action = jnp.where(explore, jax.random.randint(k_rand, (n,), 0, a), q.argmax(-1)).astype(jnp.int32)
            true_next, act_obs, act_state, done = genv.step_batch(k_step, env_state, action, pool)
            # Every goal's reward on the true next state, before any reset: one matmul.
            ach_next = goals.achieved(genv.features(true_next))
            ach_obs = goals.achieved(genv.features(obs))
            hit = ach_next[jnp.arange(n), tr.goal]
            # While the first goal is pending it is the commanded goal (goals change only when achieved).
            first_hit = tr.pending & hit
            first_miss = tr.pending & ~hit & done
            succ = tr.succ + jax.ops.segment_sum(first_hit.astype(jnp.float32), tr.first_goal, k)
            fail = tr.fail + jax.ops.segment_sum(first_miss.astype(jnp.float32), tr.first_goal, k)
            new_goal = jnp.where(hit | done, sample_goals(k_goal, tr.seen, (n,)), tr.goal)
            tr2 = tr.replace(goal=new_goal, first_goal=jnp.where(done, new_goal, tr.first_goal),
                             pending=jnp.where(done, True, tr.pending & ~hit), succ=succ, fail=fail)
            trans = Transition(obs=x, action=action, goal=tr.goal, ach_next=ach_next, ach_obs=ach_obs,
                               done=done, next_obs=genv.encode(act_obs), maxq_next=maxq)
            return (act_state, act_obs, tr2), trans

        tr0 = rs.tracker.replace(succ=rs.tracker.succ * cfg.success_decay,
                                 fail=rs.tracker.fail * cfg.success_decay)
        (env_state, obs, tr), traj = jax.lax.scan(step, (rs.env_state, rs.obs, tr0), jax.random.split(key, t_len))
        # Seen goals grow only after a rollout, from its s_t: new goals are commandable next update.
        tr = tr.replace(seen=tr.seen | traj.ach_obs.any((0, 1)))
        return env_state, obs, tr, traj

    def update(rs: RunnerState, _):
        key, k_roll, k_upd = jax.random.split(rs.key, 3)
        env_state, obs, tr, traj = rollout(rs, k_roll)
        flat = lambda x: x.reshape((-1,) + x.shape[2:])  # noqa: E731  (T, N, ...) -> (T N, ...)
        if is_leo:
            # Q_old(s_{t+1}) is the acting pass of step t+1; one more pass for the final observation.
            _, last = q_fn(rs.params, genv.encode(obs), tr.goal)
            maxq_next = jnp.concatenate([traj.maxq_next[1:], last[None]], 0)
            y = leo_targets(flat(maxq_next), flat(traj.ach_next), flat(traj.done), cfg.gamma)
            params, opt_state, loss = leo_update(rs.params, rs.opt_state, tx, net.apply, flat(traj.obs),
                                                 flat(traj.action), y, k_upd, cfg.minibatch_size, cfg.epochs)
        elif cfg.algo == "relabel_all":
            params, opt_state, loss = relabel_all_update(
                rs.params, rs.opt_state, tx, net.apply, goals.goal_inputs, flat(traj.obs), flat(traj.action),
                flat(traj.goal), flat(traj.ach_next), flat(traj.done), flat(traj.next_obs), k_upd,
                cfg.minibatch_size, cfg.epochs, cfg.gamma)
        else:
            if cfg.algo == "pqn":
                samples = commanded_samples(flat(traj.obs), flat(traj.action), flat(traj.goal),
                                            flat(traj.ach_next), flat(traj.done), flat(traj.next_obs))
            else:
                k_her, k_upd = jax.random.split(k_upd)
                samples = her_samples(k_her, flat(traj.obs), flat(traj.action), flat(traj.goal),
                                      flat(traj.ach_obs), flat(traj.ach_next), flat(traj.done),
                                      flat(traj.next_obs), rs.tracker.seen, cfg.her_num_relabel,
                                      cfg.her_random_prop, cfg.only_seen_goals)
            params, opt_state, loss = pqn_update(rs.params, rs.opt_state, tx, net.apply, goals.goal_inputs,
                                                 samples, k_upd, cfg.minibatch_size, cfg.epochs, cfg.gamma)
        new = rs.replace(params=params, opt_state=opt_state, env_state=env_state, obs=obs, tracker=tr,
                         key=key, update=rs.update + 1)
        metrics = dict(loss=loss, live_success=success_rate(tr.succ, tr.fail).mean(),
                       goals_seen=tr.seen.mean(), epsilon=epsilon(rs.update),
                       env_steps=(rs.update + 1) * cfg.batch_size)
        return new, metrics

    @jax.jit
    def chunk(rs: RunnerState):
        return jax.lax.scan(update, rs, None, cfg.updates_per_chunk)

    @jax.jit
    def greedy_test(params, key):
        """Command every goal once from a fresh reset, epsilon 0: (K,) bool achieved within the episode.

        Success counts the reset observation and every observation until the first episode ends
        (at most cfg.test_max_steps steps).
        """
        obs, state = genv.reset_batch(key, k)
        goal = jnp.arange(k, dtype=jnp.int32)
        got = goals.achieved(genv.features(obs))[goal, goal]
        pool = (obs, state)  # never used for a live episode: finished envs are masked out below

        def step(carry, kk):
            state, obs, got, alive = carry
            q, _ = q_fn(params, genv.encode(obs), goal)
            true_next, act_obs, act_state, done = genv.step_batch(kk, state, q.argmax(-1).astype(jnp.int32), pool)
            hit = goals.achieved(genv.features(true_next))[goal, goal]
            return (act_state, act_obs, got | (alive & hit), alive & ~done), None

        (_, _, got, _), _ = jax.lax.scan(step, (state, obs, got, jnp.ones(k, bool)),
                                         jax.random.split(key, cfg.test_max_steps))
        return got

    jit_init = jax.jit(init)

    def strong_init(key) -> RunnerState:
        # Round-trip through NumPy drops JAX weak types (e.g. Craftax's Python-int timestep), which would
        # otherwise make the second chunk call see new input types and compile the chunk again.
        return jax.tree.map(lambda x: jnp.asarray(np.asarray(x)), jit_init(key))

    return Trainer(cfg=cfg, genv=genv, init=strong_init, chunk=chunk, greedy_test=greedy_test, q_fn=q_fn)


def chunk_metrics(cfg: TrainConfig):
    """metrics_fn for run_chunks: end-of-chunk success/seen/steps, mean loss, chunk SPS."""
    last_t = [time.perf_counter()]

    def fn(chunk: int, state: RunnerState, m: dict) -> dict[str, float]:
        now = time.perf_counter()
        sps = cfg.updates_per_chunk * cfg.batch_size / max(now - last_t[0], 1e-9)
        last_t[0] = now
        return dict(env_steps=int(np.asarray(m["env_steps"])[-1]),
                    live_success=float(np.asarray(m["live_success"])[-1]),
                    goals_seen=float(np.asarray(m["goals_seen"])[-1]),
                    loss=float(np.mean(m["loss"])), epsilon=float(np.asarray(m["epsilon"])[-1]),
                    sps=float(sps))

    return fn


def train(cfg: TrainConfig, seed: int = 0, stage: Any = None, name: str = "train",
          checkpoint_dir: Any = None, desc: str | None = None) -> tuple[RunnerState, Trainer]:
    """Train `cfg` from `seed` in chunks (resumable through the stage's checkpoint); returns (state, trainer).

    The first chunk includes compilation, so its SPS is low; later chunks give the steady rate.
    """
    from quietrl.core.config import to_dict
    from quietrl.core.train import run_chunks

    trainer = make_train(cfg)
    state = trainer.init(jax.random.PRNGKey(seed))
    state = run_chunks(stage, state, trainer.chunk, cfg.num_chunks, kind=f"leo/{cfg.algo}",
                       config={**to_dict(cfg), "seed": seed}, metrics_fn=chunk_metrics(cfg),
                       desc=desc or f"{cfg.algo} {cfg.env}", name=name, checkpoint_dir=checkpoint_dir,
                       checkpoint=stage is not None or checkpoint_dir is not None)
    return state, trainer
