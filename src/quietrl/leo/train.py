"""Training: one config, one rollout shared by every learner, chunks of jitted updates.

`make_train(cfg)` returns a `Trainer` whose `init(key)` builds the whole runner state and whose
`chunk(state)` runs `cfg.updates_per_chunk` updates as one `lax.scan` (rollout of N envs x T steps,
then the algorithm's update). `train(cfg, seed, stage)` drives the chunks through
`quietrl.core.train.run_chunks`, which logs, checkpoints and resumes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from quietrl.core.config import require
from quietrl.core.errors import ConfigError

from .env import ENV_NAMES, GoalEnv, make_env
from .learners import Learner, make_learner
from .networks import TRUNK_PRESETS
from .types import RunnerState, TrackerState, Transition, success_rate

ALGOS = ("leo", "pqn", "pqn_her", "relabel_all", "ppo", "dual_leo_pqn", "dual_leo_ppo")


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
    gae_lambda: float = 0.95  # PPO
    clip_eps: float = 0.2
    ent_coef: float = 0.005
    vf_coef: float = 0.5
    mix_leo_weight: float = 0.3  # Dual LEO (PQN): LEO's share of the acting values
    bc_coef: float = 0.1  # Dual LEO (PPO): behaviour-cloning weight towards LEO's greedy action
    anneal_bc: bool = True  # ... annealed linearly to 0 over the run (the authors' sweep)
    leo_minibatch_size: int = 512  # Dual LEO (PPO): the LEO teacher's minibatch and epochs
    leo_epochs: int = 2
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
                     "reset_pool_size", "test_max_steps", "leo_minibatch_size", "leo_epochs"):
            require(getattr(self, name) >= 1, name, "must be >= 1")
        require(self.num_goals is None or self.num_goals >= 1, "num_goals", "must be >= 1")
        require(0.0 < self.gamma < 1.0, "gamma", "must be in (0, 1)")
        require(0.0 <= self.gae_lambda <= 1.0, "gae_lambda", "must be in [0, 1]")
        require(self.lr > 0, "lr", "must be > 0")
        require(0.0 <= self.eps_end <= self.eps_start <= 1.0, "eps_start", "need 0 <= eps_end <= eps_start <= 1")
        require(0.0 < self.eps_decay_frac <= 1.0, "eps_decay_frac", "must be in (0, 1]")
        require(0.0 <= self.her_random_prop <= 1.0, "her_random_prop", "must be in [0, 1]")
        require(self.her_num_relabel >= 0, "her_num_relabel", "must be >= 0")
        require(0.0 <= self.mix_leo_weight <= 1.0, "mix_leo_weight", "must be in [0, 1]")
        require(self.bc_coef >= 0.0, "bc_coef", "must be >= 0")
        require(self.clip_eps > 0.0, "clip_eps", "must be > 0")
        require(0.0 < self.success_decay <= 1.0, "success_decay", "must be in (0, 1]")
        if self.algo not in ("pqn_her", "relabel_all"):
            require(self.batch_size % self.minibatch_size == 0, "minibatch_size",
                    f"must divide num_envs * num_steps = {self.batch_size}")
        if self.algo == "dual_leo_ppo":
            require(self.batch_size % self.leo_minibatch_size == 0, "leo_minibatch_size",
                    f"must divide num_envs * num_steps = {self.batch_size}")
        if self.algo == "pqn_her":
            require((self.batch_size * (1 + self.her_num_relabel)) % self.minibatch_size == 0,
                    "minibatch_size", "must divide num_envs * num_steps * (1 + her_num_relabel)")
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


# The authors' per-algorithm settings [code], at CPU scale (fewer envs, smaller trunk). PPO keeps their
# 32 minibatches per update (1024 x 64 / 2048 there, 256 x 64 / 512 here).
_ALGO_DEFAULTS: dict[str, dict[str, Any]] = {
    "leo": dict(num_steps=32, minibatch_size=512, epochs=2, gamma=0.99, eps_decay_frac=0.2),
    "relabel_all": dict(num_steps=32, minibatch_size=512, epochs=2, gamma=0.99, eps_decay_frac=0.2),
    "pqn": dict(num_steps=2, minibatch_size=256, epochs=1, gamma=0.995, eps_decay_frac=0.5,
                updates_per_chunk=100),
    "pqn_her": dict(num_steps=2, minibatch_size=256, epochs=1, gamma=0.995, eps_decay_frac=0.5,
                    updates_per_chunk=100),
    "ppo": dict(num_steps=64, minibatch_size=512, epochs=1, gamma=0.995, updates_per_chunk=5),
    "dual_leo_pqn": dict(num_steps=32, minibatch_size=512, epochs=2, gamma=0.99, eps_decay_frac=0.2),
    "dual_leo_ppo": dict(num_steps=64, minibatch_size=512, epochs=1, gamma=0.995, leo_minibatch_size=512,
                         leo_epochs=2, updates_per_chunk=5),
}


def default_config(algo: str = "leo", env: str = "gridworld", **overrides: Any) -> TrainConfig:
    """The per-algorithm defaults for `algo` on `env`, then `overrides` (field=value)."""
    if algo not in _ALGO_DEFAULTS:
        raise ConfigError(f"algo: unknown algo {algo!r}; choose one of {', '.join(ALGOS)}")
    kw: dict[str, Any] = dict(algo=algo, env=env, **_ALGO_DEFAULTS[algo])
    if env in ("craftax-classic", "craftax"):
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
    greedy_test: Callable[..., jax.Array]  # (params, key, aux_params=None) -> (K,) bool
    learner: Learner


def make_train(cfg: TrainConfig, genv: GoalEnv | None = None) -> Trainer:
    """Build init / chunk / greedy-test functions for `cfg` (all jitted, pure)."""
    genv = genv or build_env(cfg)
    goals = genv.goals
    k, n, t_len = genv.num_goals, cfg.num_envs, cfg.num_steps
    total_updates = cfg.num_chunks * cfg.updates_per_chunk
    learner = make_learner(cfg, goals, genv.num_actions, total_updates)
    decay_updates = max(1, int(cfg.eps_decay_frac * total_updates))

    def sample_goals(key, seen, shape):
        logits = jnp.where(seen, 0.0, -jnp.inf) if cfg.only_seen_goals else jnp.zeros(k)
        return jax.random.categorical(key, logits, shape=shape).astype(jnp.int32)

    def init(key) -> RunnerState:
        k_net, k_env, k_goal, key = jax.random.split(key, 4)
        obs, env_state = genv.reset_batch(k_env, n)
        x = genv.encode(obs)
        params, opt_state, aux, aux_opt = learner.init(k_net, x[:1], goals.goal_inputs[:1])
        seen = goals.achieved(genv.features(obs)).any(0)
        goal = sample_goals(k_goal, seen, (n,))
        tracker = TrackerState(goal=goal, first_goal=goal, pending=jnp.ones(n, bool), seen=seen,
                               succ=jnp.zeros(k), fail=jnp.zeros(k))
        return RunnerState(params=params, opt_state=opt_state, env_state=env_state, obs=obs,
                           tracker=tracker, key=key, update=jnp.int32(0), aux_params=aux, aux_opt_state=aux_opt)

    def epsilon(update):
        frac = jnp.clip(update / decay_updates, 0.0, 1.0)
        return cfg.eps_start + frac * (cfg.eps_end - cfg.eps_start)

    def rollout(rs: RunnerState, key):
        eps = epsilon(rs.update)
        k_pool, key = jax.random.split(key)
        pool = genv.reset_batch(k_pool, cfg.reset_pool_size)

        def step(carry, kk):
            env_state, obs, tr = carry
            k_act, k_step, k_goal = jax.random.split(kk, 3)
            x = genv.encode(obs)
            action, ex = learner.act(rs.params, rs.aux_params, x, tr.goal, k_act, eps)
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
                               done=done, next_obs=genv.encode(act_obs), **ex)
            return (act_state, act_obs, tr2), trans

        tr0 = rs.tracker.replace(succ=rs.tracker.succ * cfg.success_decay,
                                 fail=rs.tracker.fail * cfg.success_decay)
        (env_state, obs, tr), traj = jax.lax.scan(step, (rs.env_state, rs.obs, tr0), jax.random.split(key, t_len))
        # Seen goals grow only after a rollout, from its s_t: new goals are commandable next update.
        tr = tr.replace(seen=tr.seen | traj.ach_obs.any((0, 1)))
        return env_state, obs, tr, traj

    def update(rs: RunnerState, _):
        key, k_roll, k_last, k_upd = jax.random.split(rs.key, 4)
        env_state, obs, tr, traj = rollout(rs, k_roll)
        # Values at the final observation (LEO's max_a Q_old(s_T), PPO's V(s_T, g_T)): one more pass.
        _, last = learner.act(rs.params, rs.aux_params, genv.encode(obs), tr.goal, k_last, 0.0)
        # The learner sees the tracker as it was when the rollout began (HER's seen goals).
        params, opt_state, aux, aux_opt, loss = learner.learn(rs, traj, last, k_upd)
        new = rs.replace(params=params, opt_state=opt_state, aux_params=aux, aux_opt_state=aux_opt,
                         env_state=env_state, obs=obs, tracker=tr, key=key, update=rs.update + 1)
        metrics = dict(loss=loss, live_success=success_rate(tr.succ, tr.fail).mean(),
                       goals_seen=tr.seen.mean(), epsilon=epsilon(rs.update),
                       env_steps=(rs.update + 1) * cfg.batch_size)
        return new, metrics

    @jax.jit
    def chunk(rs: RunnerState):
        return jax.lax.scan(update, rs, None, cfg.updates_per_chunk)

    @jax.jit
    def greedy_test(params, key, aux_params=None):
        """Command every goal once from a fresh reset, greedily: (K,) bool achieved within the episode.

        Success counts the reset observation and every observation until the first episode ends
        (at most cfg.test_max_steps steps). Dual learners need `aux_params` (the LEO network).
        """
        obs, state = genv.reset_batch(key, k)
        goal = jnp.arange(k, dtype=jnp.int32)
        got = goals.achieved(genv.features(obs))[goal, goal]
        pool = (obs, state)  # never used for a live episode: finished envs are masked out below

        def step(carry, kk):
            state, obs, got, alive = carry
            action = learner.greedy(params, aux_params, genv.encode(obs), goal)
            true_next, act_obs, act_state, done = genv.step_batch(kk, state, action, pool)
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

    return Trainer(cfg=cfg, genv=genv, init=strong_init, chunk=chunk, greedy_test=greedy_test, learner=learner)


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
