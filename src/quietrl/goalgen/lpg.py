"""Latent policy gradients (LPG): predict OOD preferences by simulating a latent's gradient flow along a
training pipeline (spec section 5).

Model. Object o has features phi(o) in {0,1}^F. An agent's latent w in R^d values objects linearly,
v_w(o) = (S w) . phi(o), and in an environment with goals G and distractors D picks an object
Boltzmann-rationally against a null option worth 0: pi_w(o|e) = exp v(o) / (sum_{o' in G u D} exp v(o') + 1).
Training on environment e is modelled as gradient flow on the reverse KL between the goal mass
pi_G = sum_{o in G} pi_w(o|e) and the target q: L_e = KL(Bern(pi_G) || Bern(q)). A stage integrates
dw/dt = -mean_e grad_w L_e(w) with RK4 (100 steps over its duration, T = 1 by default), starting where the
previous stage ended; stage 1 starts at w0 = c * 1. An OOD pair (a, b) is predicted as
softmax([v(a), v(b), 0]) -> (P(a), P(b), P(neither)).

Global parameters theta = {S (F x d, full or diagonal), l_q (q = sigmoid(l_q)), c} are fitted by
differentiating the mean 3-way KL(p_obs || p_pred) through the integration (full batch Adam). Each
distinct pipeline is simulated once per step; its seeds share the simulation.

Variants (`LPGConfig.mode`): "sequential" (the model), "memoryless" (only the last stage is integrated:
last task wins), "simultaneous" (every stage's environments merged into one stage of total duration 1:
order-blind). `stage_time="proportional"` makes each stage's duration proportional to its PPO updates
(normalised so the pipeline's total equals its number of stages); `stage_time="split"` gives every pipeline
a total duration of 1, split evenly over its stages (what a model fitted on one-stage pipelines has seen).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax

from quietrl.core.errors import ConfigError, UserError

from .grammar import parse_pipeline
from .types import N_FEATURES, OBJECT_FEATURES, Pipeline

MAX_STAGES = 3
MAX_ENVS = 3     # environments per simulated stage (simultaneous mode merges up to 3 stages)
MAX_SLOTS = 4
EPS = 1e-6       # inside both logs of the fitting KL (the authors add a small epsilon too)
CLIP = 1e-8      # pi_G clipping before the loss, as in the authors' code


@dataclasses.dataclass(frozen=True)
class LPGConfig:
    """LPG model and fitting settings."""

    mode: Literal["sequential", "memoryless", "simultaneous"] = "sequential"
    saliency: Literal["full", "diagonal"] = "full"
    stage_time: Literal["fixed", "proportional", "split"] = "fixed"
    latent_dim: int = N_FEATURES
    rk4_steps: int = 100
    init_logit_q: float = 2.2
    init_c: float = -0.4
    lr: float = 0.02
    fit_steps: int = 300
    updates_per_stage: int = 40   # only used for stage_time="proportional"

    def __post_init__(self):
        if self.mode not in ("sequential", "memoryless", "simultaneous"):
            raise ConfigError(f"LPGConfig.mode must be sequential, memoryless or simultaneous, got {self.mode!r}")
        if self.saliency not in ("full", "diagonal"):
            raise ConfigError(f"LPGConfig.saliency must be full or diagonal, got {self.saliency!r}")
        if self.stage_time not in ("fixed", "proportional", "split"):
            raise ConfigError(f"LPGConfig.stage_time must be fixed, proportional or split, "
                              f"got {self.stage_time!r}")
        if self.saliency == "diagonal" and self.latent_dim != N_FEATURES:
            raise ConfigError("LPGConfig: diagonal saliency needs latent_dim == 10")
        if self.latent_dim < 1 or self.rk4_steps < 1 or self.fit_steps < 0 or self.lr <= 0:
            raise ConfigError("LPGConfig: latent_dim, rk4_steps must be >= 1, fit_steps >= 0, lr > 0")


# ---------------------------------------------------------------------------------------------------
# Encoding pipelines as arrays
# ---------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class EncodedPipelines:
    """Arrays for P pipelines: obj (P, K, E, M) int object ids, goal/present (P, K, E, M) bool,
    env_mask (P, K, E) bool, time (P, K) float stage durations (0 = no stage)."""

    obj: np.ndarray
    goal: np.ndarray
    present: np.ndarray
    env_mask: np.ndarray
    time: np.ndarray

    def as_jax(self):
        return jax.tree.map(jnp.asarray, dataclasses.astuple(self))


def encode_pipelines(pipelines: list[Pipeline | str], cfg: LPGConfig = LPGConfig()) -> EncodedPipelines:
    """Encode pipelines for the flow, applying the config's mode and stage-time variant."""
    pipelines = [parse_pipeline(p) if isinstance(p, str) else p for p in pipelines]
    n = len(pipelines)
    obj = np.zeros((n, MAX_STAGES, MAX_ENVS, MAX_SLOTS), np.int32)
    goal = np.zeros(obj.shape, bool)
    present = np.zeros(obj.shape, bool)
    env_mask = np.zeros(obj.shape[:3], bool)
    time = np.zeros((n, MAX_STAGES), np.float32)
    for i, p in enumerate(pipelines):
        if p.n_stages > MAX_STAGES:
            raise UserError(f"pipeline {p.name!r}: LPG supports at most {MAX_STAGES} stages")
        if cfg.stage_time == "proportional":
            ups = np.array(p.stage_updates(cfg.updates_per_stage), np.float32)
            durations = p.n_stages * ups / ups.sum()
        elif cfg.stage_time == "split":
            durations = np.full(p.n_stages, 1.0 / p.n_stages, np.float32)
        else:
            durations = np.ones(p.n_stages, np.float32)
        if cfg.mode == "sequential":
            stages = [[s] for s in p.stages]
            times = list(durations)
        elif cfg.mode == "memoryless":
            stages, times = [[p.stages[-1]]], [1.0]
        else:  # simultaneous: one stage holding every environment, total duration 1
            stages, times = [list(p.stages)], [1.0]
        for k, (envs, t) in enumerate(zip(stages, times)):
            time[i, k] = t
            for e, s in enumerate(envs):
                env_mask[i, k, e] = True
                for m, o in enumerate(s.objects):
                    obj[i, k, e, m] = o.id
                    goal[i, k, e, m] = m < len(s.goals)
                    present[i, k, e, m] = True
    return EncodedPipelines(obj, goal, present, env_mask, time)


# ---------------------------------------------------------------------------------------------------
# Parameters, flow, integration
# ---------------------------------------------------------------------------------------------------
def init_params(cfg: LPGConfig = LPGConfig(), key=None) -> dict:
    """theta at its initial point: S = identity (or scaled Gaussian when d != F), l_q = 2.2, c = -0.4.

    ``S_mask`` fixes S's structure (all ones = full, identity = diagonal); it never receives a gradient,
    so every variant has parameters of one shape and all variants share one compiled fitting program."""
    if cfg.latent_dim == N_FEATURES:
        s = jnp.eye(N_FEATURES)
    else:
        key = jax.random.PRNGKey(0) if key is None else key
        s = jax.random.normal(key, (N_FEATURES, cfg.latent_dim)) / np.sqrt(cfg.latent_dim)
    mask = jnp.eye(N_FEATURES) if cfg.saliency == "diagonal" else jnp.ones_like(s)
    # Strong float32 scalars: fitted thetas are, and a weak-typed one would compile every program again.
    return {"S": s, "S_mask": mask, "logit_q": jnp.array(cfg.init_logit_q, jnp.float32),
            "c": jnp.array(cfg.init_c, jnp.float32)}


def saliency_matrix(theta: dict) -> jax.Array:
    """S as an (F, d) matrix: a diagonal parameter vector is expanded, ``S_mask`` applied if present."""
    s = theta["S"]
    if s.ndim == 1:
        return jnp.diag(s)
    if "S_mask" in theta:
        s = s * jax.lax.stop_gradient(theta["S_mask"])
    return s


def object_values(theta: dict, w: jax.Array) -> jax.Array:
    """v_w(o) = (S w) . phi(o) for all 24 objects. w (..., d) -> (..., 24)."""
    u = w @ saliency_matrix(theta).T                        # (..., F)
    return u @ jnp.asarray(OBJECT_FEATURES).T


def env_loss(theta: dict, w, obj, goal, present) -> jax.Array:
    """Reverse-KL loss of one environment: KL(Bern(pi_G) || Bern(q)). obj/goal/present (M,)."""
    # Only the M slot objects matter here: value them directly rather than all 24.
    v = jnp.asarray(OBJECT_FEATURES)[obj] @ (saliency_matrix(theta) @ w)
    neg = -jnp.inf
    log_goal = jax.nn.logsumexp(jnp.where(goal & present, v, neg))
    log_all = jnp.logaddexp(jax.nn.logsumexp(jnp.where(present, v, neg)), 0.0)
    pi = jnp.clip(jnp.exp(log_goal - log_all), CLIP, 1 - CLIP)
    q = jax.nn.sigmoid(theta["logit_q"])
    return pi * jnp.log(pi / q) + (1 - pi) * jnp.log((1 - pi) / (1 - q))


def stage_velocity_autodiff(theta: dict, w, obj, goal, present, env_mask) -> jax.Array:
    """dw/dt = -(1/|E|) sum_e grad_w L_e(w) by automatic differentiation (reference for the closed form).
    obj/goal/present (E, M), env_mask (E,). Returns (d,)."""
    goal, present = _safe_masks(goal, present, env_mask)

    def mean_loss(w):
        losses = jax.vmap(env_loss, in_axes=(None, None, 0, 0, 0))(theta, w, obj, goal, present)
        return jnp.sum(jnp.where(env_mask, losses, 0.0)) / jnp.maximum(env_mask.sum(), 1)
    return -jax.grad(mean_loss)(w)


def _safe_masks(goal, present, env_mask):
    # Padded (masked) environments get one present goal so their (discarded) loss stays finite:
    # a NaN there would poison the gradient even behind the mask.
    first = (jnp.arange(goal.shape[-1]) == 0)[None, :] & ~env_mask[:, None]
    return goal | first, present | first


def stage_velocity(theta: dict, w, obj, goal, present, env_mask) -> jax.Array:
    """dw/dt = -(1/|E|) sum_e grad_w L_e(w) in closed form (what the fit differentiates through, so the
    second-order graph stays small). With p_o = exp v_o / (Z + 1) over present objects,
    dpi_G/dv_o = p_o (1[o in G] - pi_G) and dL/dpi_G = logit(pi_G) - logit(q) (0 where pi_G is clipped).
    obj/goal/present (E, M), env_mask (E,). Returns (d,)."""
    return _stage_flow(theta, obj, goal, present, env_mask)(w)


def _stage_flow(theta: dict, obj, goal, present, env_mask) -> Callable[[jax.Array], jax.Array]:
    """The stage's velocity field w -> dw/dt with everything that does not depend on w computed once:
    the slot objects' value directions A = phi(o) S (E, M, d), the masks and the environment weights.
    Integration calls the returned function 4 times per RK4 step, so only the w-dependent part (two
    contractions with A and a softmax over <= 4 slots) sits inside the loop."""
    goal, present = _safe_masks(goal, present, env_mask)
    a = jnp.asarray(OBJECT_FEATURES)[obj] @ saliency_matrix(theta)   # (E, M, d)
    goal_f = goal.astype(a.dtype)
    weight = env_mask / jnp.maximum(env_mask.sum(), 1)
    logit_q = theta["logit_q"]

    def velocity(w):
        v = jnp.where(present, a @ w, -jnp.inf)                       # (E, M)
        log_z = jnp.logaddexp(jax.nn.logsumexp(v, -1), 0.0)          # (E,)
        p = jnp.exp(v - log_z[:, None])                               # (E, M), 0 where absent
        pi = jnp.sum(goal_f * p, -1)                                  # (E,)
        inside = (pi > CLIP) & (pi < 1 - CLIP)
        pi_c = jnp.clip(pi, CLIP, 1 - CLIP)
        dl_dpi = jnp.where(inside, jnp.log(pi_c) - jnp.log1p(-pi_c) - logit_q, 0.0) * weight
        dl_dv = dl_dpi[:, None] * p * (goal_f - pi[:, None])          # (E, M)
        return -jnp.einsum("em,emd->d", dl_dv, a)                     # (d,)
    return velocity


def rk4_integrate(f: Callable[[jax.Array], jax.Array], y0: jax.Array, duration, n_steps: int) -> jax.Array:
    """Classical RK4 for dy/dt = f(y) over [0, duration] in exactly ``n_steps`` equal steps."""
    dt = duration / n_steps

    def step(y, _):
        k1 = f(y)
        k2 = f(y + 0.5 * dt * k1)
        k3 = f(y + 0.5 * dt * k2)
        k4 = f(y + dt * k3)
        return y + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4), None

    y, _ = jax.lax.scan(step, y0, None, length=n_steps)
    return y


def simulate(theta: dict, enc, n_steps: int = 100, return_path: bool = False):
    """End-of-pipeline latent w_Omega for one encoded pipeline (no leading P axis), stages scanned.
    Returns (d,), or with ``return_path`` the latent after each stage (K, d)."""
    obj, goal, present, env_mask, time = enc
    d = saliency_matrix(theta).shape[1]
    w0 = jnp.full((d,), theta["c"])

    def stage(w, xs):
        o, g, p, m, t = xs
        w = rk4_integrate(_stage_flow(theta, o, g, p, m), w, t, n_steps)
        return w, w

    w, path = jax.lax.scan(stage, w0, (obj, goal, present, env_mask, time))
    return path if return_path else w


def predict_pairs(theta: dict, w: jax.Array, pipe, obj_a, obj_b) -> jax.Array:
    """p_pred = softmax([v(a), v(b), 0]) for rows (pipeline pipe[i], obj_a[i], obj_b[i]), given the
    pipelines' latents w (P, d) and int arrays (N,). Objects are valued once per pipeline (P, 24), then
    gathered per row. Returns (N, 3)."""
    v = object_values(theta, w)
    return jax.nn.softmax(jnp.stack([v[pipe, obj_a], v[pipe, obj_b], jnp.zeros(pipe.shape, v.dtype)], -1), -1)


def kl3(p_obs, p_pred) -> jax.Array:
    """KL(p_obs || p_pred) per row over (a, b, neither), with EPS inside both logs. (N, 3) -> (N,)."""
    return jnp.sum(p_obs * (jnp.log(p_obs + EPS) - jnp.log(p_pred + EPS)), -1)


# ---------------------------------------------------------------------------------------------------
# The model as an object: simulate, predict, fit
# ---------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Examples:
    """Fitting data: unique pipelines plus one row per (agent, pair). pipe (N,) indexes ``pipelines``."""

    pipelines: list[Pipeline]
    pipe: np.ndarray    # (N,) int
    obj_a: np.ndarray   # (N,) int
    obj_b: np.ndarray   # (N,) int
    p_obs: np.ndarray   # (N, 3) float

    @staticmethod
    def from_table(table) -> "Examples":
        """From a PairTable (already filtered with .valid() if wanted)."""
        names, pipe = np.unique(np.asarray(table.pipeline, dtype=str), return_inverse=True)
        fam = {n: f for n, f in zip(np.asarray(table.pipeline, dtype=str), table.family)}
        pipelines = [parse_pipeline(n, fam[n]) for n in names]
        return Examples(pipelines, pipe.astype(np.int32), np.asarray(table.obj_a, np.int32),
                        np.asarray(table.obj_b, np.int32), np.asarray(table.p_obs, np.float32))


def _bucket(n: int) -> int:
    """Padded size, so that folds of similar size share a compile: the next power of two >= n up to 64,
    then the next multiple of 64 (padding costs compute in proportion)."""
    if n <= 64:
        return max(8, 1 << max(0, int(n - 1).bit_length()))
    return -(-n // 64) * 64


def _pad_rows(x: np.ndarray, n: int) -> np.ndarray:
    pad = np.zeros((n - len(x),) + x.shape[1:], x.dtype)
    return np.concatenate([x, pad])


def _grouped(arrays: tuple, bucket: bool) -> tuple:
    """Encoded pipelines (obj, goal, present, env_mask, time) split by their number of stages, so that no
    pipeline pays RK4 steps for stages it does not have (a stage of duration 0 costs as much as any).
    Each group is cut to the stages, environments and slots it uses and, with ``bucket``, zero-padded to
    a `_bucket` size. Returns (groups, inv): ``inv[i]`` is pipeline i's row in the groups' concatenation."""
    n_k = np.maximum((arrays[4] > 0).sum(1), 1)           # padding pipelines (no stage) join group 1
    groups, inv, offset = [], np.zeros(len(n_k), np.int32), 0
    for k in np.unique(n_k):
        idx = np.nonzero(n_k == k)[0]
        g = _cut(tuple(x[idx] for x in arrays))
        if bucket:
            g = tuple(_pad_rows(x, _bucket(len(idx))) for x in g)
        inv[idx] = offset + np.arange(len(idx))
        offset += len(g[0])
        groups.append(tuple(jnp.asarray(x) for x in g))
    return tuple(groups), jnp.asarray(inv)


def _ungrouped(arrays: tuple) -> tuple:
    """All pipelines as one group at the full padded shape (one compile for every forward call)."""
    return (tuple(jnp.asarray(x) for x in arrays),), jnp.arange(len(arrays[0]), dtype=jnp.int32)


def _all_latents(theta, enc, n_rk4):
    """w_Omega (P, d) for an encoding from `_grouped`/`_ungrouped`, in the pipelines' input order."""
    groups, inv = enc
    w = jnp.concatenate([jax.vmap(lambda e: simulate(theta, e, n_rk4))(g) for g in groups])
    return w[inv]


_latents = jax.jit(_all_latents, static_argnames=("n_rk4",))


def _weighted_loss(theta, enc, pipe, a, b, p_obs, weight, n_rk4):
    kl = kl3(p_obs, predict_pairs(theta, _all_latents(theta, enc, n_rk4), pipe, a, b))
    return jnp.sum(kl * weight) / jnp.maximum(weight.sum(), 1.0)


_loss_jit = jax.jit(_weighted_loss, static_argnames=("n_rk4",))
# One compiled call instead of op-by-op dispatch (each eager op compiles per new shape).
_predict_pairs_jit = jax.jit(predict_pairs)


def _fit_scan_impl(theta, enc, pipe, a, b, p_obs, weight, n_rk4, n_steps, lr):
    """n_steps full-batch Adam steps in one compiled scan. Returns (theta, losses (n_steps,))."""
    opt = optax.adam(lr)

    def step(carry, _):
        th, st = carry
        loss, g = jax.value_and_grad(_weighted_loss)(th, enc, pipe, a, b, p_obs, weight, n_rk4)
        upd, st = opt.update(g, st, th)
        return (optax.apply_updates(th, upd), st), loss

    (theta, _), losses = jax.lax.scan(step, (theta, opt.init(theta)), None, length=n_steps)
    return theta, losses


_fit_scan = jax.jit(_fit_scan_impl, static_argnames=("n_rk4", "n_steps", "lr"))


class LPG:
    """Latent policy gradients with a given config; ``theta`` holds the global parameters.

    Pipelines and examples are zero-padded to power-of-two sizes so that fits on folds of similar size
    reuse one compiled program; padding carries zero weight and empty stages."""

    def __init__(self, cfg: LPGConfig = LPGConfig(), theta: dict | None = None):
        self.cfg = cfg
        self.theta = init_params(cfg) if theta is None else theta

    def _enc(self, pipelines, min_size: int = 8, grouped: bool = False):
        enc = encode_pipelines(pipelines, self.cfg)
        if grouped:   # fits: every pipeline integrates only its own stages
            return _grouped(dataclasses.astuple(enc), bucket=True)
        n = max(min_size, _bucket(len(pipelines)))
        return _ungrouped(tuple(_pad_rows(x, n) for x in dataclasses.astuple(enc)))

    def _data(self, ex: "Examples"):
        n = _bucket(len(ex.pipe))
        w = _pad_rows(np.ones(len(ex.pipe), np.float32), n)
        return tuple(jnp.asarray(_pad_rows(np.asarray(x), n))
                     for x in (ex.pipe.astype(np.int32), ex.obj_a.astype(np.int32),
                               ex.obj_b.astype(np.int32), ex.p_obs.astype(np.float32))) + (jnp.asarray(w),)

    def latents(self, pipelines: list[Pipeline]) -> np.ndarray:
        """w_Omega per pipeline. Shape (P, d)."""
        # Forward simulation is cheap: pad to >= 64 pipelines so that every small call shares one compile.
        enc = self._enc(pipelines, min_size=64)
        return np.asarray(_latents(self.theta, enc, self.cfg.rk4_steps))[:len(pipelines)]

    def values(self, pipelines: list[Pipeline]) -> np.ndarray:
        """Predicted object values v(o) after each pipeline. Shape (P, 24)."""
        return np.asarray(object_values(self.theta, jnp.asarray(self.latents(pipelines))))

    def predict(self, pipelines: list[Pipeline], pipe, obj_a, obj_b) -> np.ndarray:
        """p_pred (N, 3) for rows (pipelines[pipe[i]], obj_a[i], obj_b[i])."""
        return np.asarray(_predict_pairs_jit(self.theta, jnp.asarray(self.latents(pipelines)), jnp.asarray(pipe),
                                             jnp.asarray(obj_a), jnp.asarray(obj_b)))

    def predict_examples(self, ex: "Examples") -> np.ndarray:
        return self.predict(ex.pipelines, ex.pipe, ex.obj_a, ex.obj_b)

    def fit(self, ex: "Examples", n_steps: int | None = None) -> list[float]:
        """Fit theta by full-batch Adam through the RK4 integration. Returns the loss per step."""
        if len(ex.pipe) == 0:
            raise UserError("cannot fit LPG on an empty training split")
        n_steps = self.cfg.fit_steps if n_steps is None else n_steps
        if n_steps == 0:
            return []
        self.theta, losses = _fit_scan(self.theta, self._enc(ex.pipelines, grouped=True), *self._data(ex),
                                       n_rk4=self.cfg.rk4_steps, n_steps=n_steps, lr=self.cfg.lr)
        return [float(x) for x in np.asarray(losses)]

    def loss(self, ex: "Examples") -> float:
        """Mean 3-way KL(p_obs || p_pred) over the examples."""
        return float(_loss_jit(self.theta, self._enc(ex.pipelines), *self._data(ex),
                               n_rk4=self.cfg.rk4_steps))

    def saliency(self) -> np.ndarray:
        """S S^T: the feature-saliency metric (how learning on one feature moves others). (F, F)."""
        s = np.asarray(saliency_matrix(self.theta))
        return s @ s.T

    def params_dict(self) -> dict[str, Any]:
        return {k: np.asarray(v).tolist() for k, v in self.theta.items()}


@functools.partial(jax.jit, static_argnames=("n_rk4", "n_steps", "lr"))
def _fit_many(thetas, encs, weights, pipe, a, b, p_obs, n_rk4, n_steps, lr):
    """Several fits at once: vmap over (theta, encoding, example weights) of `_fit_scan` followed by the
    fitted model's predictions for every row (one program, one compile). Returns (thetas, losses
    (J, n_steps), predictions (J, N, 3))."""
    def one(th, enc, w):
        th, losses = _fit_scan_impl(th, enc, pipe, a, b, p_obs, w, n_rk4, n_steps, lr)
        return th, losses, predict_pairs(th, _all_latents(th, enc, n_rk4), pipe, a, b)
    return jax.vmap(one)(thetas, encs, weights)


def fit_jobs(ex: "Examples", jobs: list[tuple[LPGConfig, np.ndarray]], n_steps: int, batch: int = 8,
             on_batch=None) -> tuple[np.ndarray, list[dict]]:
    """Fit many LPG models on subsets of one example set in vectorised batches.

    ``jobs``: (config, train mask (N,) bool) per fit; configs must share ``lr`` and ``rk4_steps``.
    Every job sees all pipelines of ``ex`` (only its train rows carry weight). Jobs are grouped by the
    shape of their encoded pipelines, and each group is fitted in batches of ``batch`` by one compiled
    program: the simultaneous ablation (1 stage of up to 3 environments) and the others (up to 3 stages
    of 1 environment) would cost 3x each if padded to one shape. Returns (predictions for every row
    under every job (J, N, 3), fitted thetas in job order).
    """
    if not jobs:
        return np.zeros((0, len(ex.pipe), 3)), []
    lr, n_rk4 = jobs[0][0].lr, jobs[0][0].rk4_steps
    if any(c.lr != lr or c.rk4_steps != n_rk4 for c, _ in jobs):
        raise ValueError("fit_jobs: all jobs must share lr and rk4_steps")
    for c, m in jobs:
        if not np.any(m):
            raise UserError("cannot fit LPG on an empty training split")
    # Pipelines are not bucketed here (one call, one compile per shape group; padding costs compute in
    # proportion); only the rows are, cheaply. Pipelines are grouped by stage count (`_grouped`): a stage
    # of duration 0 would still cost its RK4 steps.
    n_n = _bucket(len(ex.pipe))
    encoded = {c: _grouped(dataclasses.astuple(encode_pipelines(ex.pipelines, c)), bucket=False)
               for c in {c for c, _ in jobs}}
    groups: dict[tuple, list[int]] = {}
    for j, (c, _) in enumerate(jobs):
        groups.setdefault(tuple(x.shape for x in jax.tree.leaves(encoded[c])), []).append(j)
    data = tuple(jnp.asarray(_pad_rows(np.asarray(x), n_n))
                 for x in (ex.pipe.astype(np.int32), ex.obj_a.astype(np.int32), ex.obj_b.astype(np.int32),
                           ex.p_obs.astype(np.float32)))
    preds: list = [None] * len(jobs)
    thetas: list = [None] * len(jobs)
    done = 0
    for idx in groups.values():
        # Never pad a batch past the group's jobs: padding costs as much as a real fit.
        size = min(batch, len(idx))
        for start in range(0, len(idx), size):
            chunk = idx[start:start + size]
            # Pad the batch with copies of its first job so every batch of the group has one shape.
            padded = [jobs[j] for j in chunk] + [jobs[chunk[0]]] * (size - len(chunk))
            th = jax.tree.map(lambda *xs: jnp.stack(xs), *[init_params(c) for c, _ in padded])
            encs = jax.tree.map(lambda *xs: jnp.stack(xs), *[encoded[c] for c, _ in padded])
            w = jnp.asarray(np.stack([_pad_rows(m.astype(np.float32), n_n) for _, m in padded]))
            th, _, p = _fit_many(th, encs, w, *data, n_rk4=n_rk4, n_steps=n_steps, lr=lr)
            p = np.asarray(p)
            for i, j in enumerate(chunk):
                preds[j] = p[i, :len(ex.pipe)]
                thetas[j] = jax.tree.map(lambda x, i=i: x[i], th)
            done += len(chunk)
            if on_batch is not None:
                on_batch(done, len(jobs))
    return np.stack(preds), thetas


def _cut(enc: tuple) -> tuple:
    """Drop trailing stages with duration 0 in every pipeline, and environments and object slots that no
    stage uses."""
    obj, goal, present, env_mask, time = enc
    n_k = int(np.max(np.nonzero(time.any(0))[0], initial=0)) + 1
    n_e = int(np.max(np.nonzero(env_mask.any((0, 1)))[0], initial=0)) + 1
    n_m = int(np.max(np.nonzero(present.any((0, 1, 2)))[0], initial=0)) + 1
    return (obj[:, :n_k, :n_e, :n_m], goal[:, :n_k, :n_e, :n_m], present[:, :n_k, :n_e, :n_m],
            env_mask[:, :n_k, :n_e], time[:, :n_k])


def convergence_steps(losses: list[float], rel_tol: float = 1e-3) -> int:
    """First step after which the loss stays within ``rel_tol`` (relative) of its final value."""
    final = losses[-1]
    ok = np.abs(np.asarray(losses) - final) <= rel_tol * max(abs(final), 1e-12)
    bad = np.nonzero(~ok)[0]
    return int(bad[-1] + 1) if len(bad) else 0
