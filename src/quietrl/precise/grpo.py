"""GRPO fine-tuning of the flow model where the sampler is the policy (spec sections 2, 5 and 6C).

One iteration: roll out G samples for each prompt slot with the arm's sampler (K steps, each a Gaussian
transition with a log-prob), reward the final samples, normalise advantages per group, then take
``minibatches`` clipped-ratio optimizer steps (the later ones off-policy) on every trained step.

Every arm is described by data only (an :class:`Arm` of per-step coefficient arrays), so all samplers at
the same K run the same compiled program: equal cost per iteration by construction, and one compile for
a whole comparison. The rollout noise depends on (seed, iteration) only, so all arms see the same noises.

What is trained: rank-r LoRA adapters on every Dense kernel with the base frozen (``lora_rank`` >= 1, the
default 8; the paper's LoRA has r = 16), or the whole model (``lora_rank`` = 0).

Why rank 8 at lr 1e-4 (2-D task, K = 10, T = 500, seed 0, loaded 2-core machine; ODE-eval reward from
-0.083 at iteration 0 to iteration 500, peak in brackets): the reward landscape has one weak ascent
direction (moving mass to the preferred mode) and strong negative curvature along others (the narrow
modes blur, the quality term q falls), so the usable step is small. One plain SGD step along a 4096-
trajectory gradient raises the SDE reward by only 3e-4 before the curvature wins. Adam steps of ~lr per
coordinate therefore decide it: LoRA-1 at lr 3e-3 fell to -0.47 (Precise) / -0.32 (Flow-GRPO); LoRA-1 at
3e-4 stayed flat (pref up, q down by the same amount); LoRA-8 at 3e-4 rose to +0.02 by iteration 200 and
then collapsed to -0.77; full fine-tuning at 1e-4 fell from the start; a KL term (beta = 1) and a 2x
larger batch did not change the trend, the plain ratio collapsed faster. LoRA-8 at 1e-4 learns in every
arm: Precise -0.083 -> +0.052 (+0.065), CPS -> +0.002 (+0.011), Flow-GRPO -> -0.040 (-0.035), Dance ->
-0.042. Across seeds it is not robust: seeds 1-3, Precise -> -0.013 / -0.118 / -0.071 from -0.111 / -0.098 /
-0.101 (CPS alike; lr 5e-5 fell on all three), and in the 5-seed benchmark the final rewards'
95% half-widths are 0.25 / 0.27 / 0.13 (Precise / CPS / Flow-GRPO): some seeds collapse.
With rationorm, the same advantages permuted across groups (a null signal, LoRA-8 at 3e-4) leave
the model where it started (drift < 0.01), so the decline at larger steps is curvature, not gradient noise.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from quietrl.precise.flow import model_of, task_of
from quietrl.precise.samplers import (
    STD_FLOOR, dmu_dv, gauss_logprob, mixgrpo_window_mask, resolve_eta,
    step_coefficients)
from quietrl.precise.schedules import make_grid
from quietrl.precise.types import FlowConfig, GRPOConfig

KIND = "precise.grpo"
ADV_EPS = 1e-4


class Arm(NamedTuple):
    """A sampler as data. Arrays are float32 (K,) unless noted."""

    t: jnp.ndarray
    t_next: jnp.ndarray
    b_sde: jnp.ndarray
    c_sde: jnp.ndarray  # before the floor
    windows: jnp.ndarray  # (K, K) bool: row p = SDE-step mask when the window is at position p
    num_windows: jnp.ndarray  # int32 scalar: positions the window cycles through (1 unless MixGRPO)
    window_every: jnp.ndarray  # int32 scalar: iterations per window position


def make_arm(name: str, cfg: GRPOConfig, eta: float | None = None) -> Arm:
    """Coefficient arrays of sampler ``name`` on cfg's grid (float64 -> float32)."""
    eta = resolve_eta(name, eta if eta is not None else (cfg.eta if name == cfg.sampler else None))
    grid = make_grid(cfg.grid, cfg.num_steps, cfg.shift)
    k = cfg.num_steps
    windows = np.zeros((k, k), bool)
    if name == "mixgrpo":
        b, c = step_coefficients("flow_grpo", grid, eta)
        num = max(1, k - 4)
        for p in range(num):
            windows[p] = mixgrpo_window_mask(k, p)
        every = max(1, cfg.iterations // 10)
    else:
        b, c = step_coefficients(name, grid, eta)
        windows[0] = True
        num, every = 1, 1
    f32 = lambda a: jnp.asarray(a, jnp.float32)
    return Arm(f32(grid[:-1]), f32(grid[1:]), f32(b), f32(c), jnp.asarray(windows),
               jnp.int32(num), jnp.int32(every))


def arm_coefficients(arm: Arm, iteration):
    """(b, c, trained) at ``iteration``: (K,), (K,) floored std, (K,) bool trained-step mask."""
    window = arm.windows[(iteration // arm.window_every) % arm.num_windows]
    b = jnp.where(window, arm.b_sde, arm.t_next)
    c = jnp.maximum(jnp.where(window, arm.c_sde, 0.0), STD_FLOOR)
    k = arm.t.shape[0]
    not_last = jnp.arange(k) < max(k - 1, 1)
    return b, c, window & not_last


def init_lora(base_params, rank: int, key):
    """Low-rank adapters (A ~ N(0, 1/in), B = 0, so the merged model starts equal to the base) for every
    Dense kernel (in, out) of ``base_params``; returns a pytree mirroring the kernels with {"a", "b"}."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(base_params)
    keys = jax.random.split(key, len(flat))
    out = []
    for (path, leaf), k in zip(flat, keys):
        if str(getattr(path[-1], "key", "")) == "kernel" and leaf.ndim == 2:
            out.append({"a": jax.random.normal(k, (leaf.shape[0], rank)) / np.sqrt(leaf.shape[0]),
                        "b": jnp.zeros((rank, leaf.shape[1]))})
        else:
            out.append(None)
    return jax.tree_util.tree_unflatten(treedef, out)


def merge_lora(base_params, lora):
    """Base parameters with every adapted kernel W replaced by W + A @ B."""
    return jax.tree_util.tree_map(
        lambda w, ab: w if ab is None else w + ab["a"] @ ab["b"], base_params, lora,
        is_leaf=lambda x: x is None or (isinstance(x, dict) and set(x) == {"a", "b"}))


def init_trainable(base_params, rank: int, key):
    """What GRPO updates: rank-r LoRA adapters (rank >= 1, base frozen) or, with rank 0, a copy of the
    whole model (full fine-tuning)."""
    if rank == 0:
        return jax.tree_util.tree_map(jnp.array, base_params)
    return init_lora(base_params, rank, key)


def model_params(base_params, trainable, rank: int):
    """The policy's parameters: base + LoRA (rank >= 1) or the trainable copy itself (rank 0)."""
    return trainable if rank == 0 else merge_lora(base_params, trainable)


class TrainState(NamedTuple):
    params: Any  # the LoRA adapters (base frozen, as in the paper) or, with lora_rank 0, the whole model
    opt_state: Any
    iteration: jnp.ndarray  # int32
    train_s: jnp.ndarray  # float32: seconds spent in training chunks (compilation excluded)


def group_advantages(rewards, clip: float = 5.0):
    """Per-group normalised advantages (r - mean_g) / (std_g + 1e-4), clipped to +-clip. rewards: (S, G)."""
    mean = rewards.mean(-1, keepdims=True)
    std = rewards.std(-1, keepdims=True)
    return jnp.clip((rewards - mean) / (std + ADV_EPS), -clip, clip)


def make_optimizer(cfg: GRPOConfig):
    """Adam with grad-norm clipping; lr annealed linearly to 0 over the run (as purejaxrl's PPO): with a
    constant lr the clipped fraction keeps growing and the narrow modes blur late in the run."""
    lr = optax.linear_schedule(cfg.lr, 0.0, cfg.iterations * cfg.minibatches) if cfg.anneal_lr else cfg.lr
    return optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), optax.adam(lr))


@dataclasses.dataclass(frozen=True)
class Trainer:
    """Jitted pieces for one (FlowConfig, GRPOConfig) shape; arms are passed in as data."""

    flow_cfg: FlowConfig
    cfg: GRPOConfig
    chunk: Any  # (state, arm, ref_params, noise_key) -> (state, metrics of (eval_every,) arrays)
    evaluate: Any  # (params, arm, eval_key) -> dict of scalars
    _compiled: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)

    def compiled_chunk(self, state, arm, ref_params, noise_key):
        """The chunk compiled ahead of time, once per trainer (every arm has the same shapes)."""
        if "chunk" not in self._compiled:
            self._compiled["chunk"] = self.chunk.lower(state, arm, ref_params, noise_key).compile()
        return self._compiled["chunk"]

    def init_state(self, base_params, seed: int = 0) -> TrainState:
        lora = init_trainable(base_params, self.cfg.lora_rank, jax.random.PRNGKey(30_000 + seed))
        return TrainState(lora, make_optimizer(self.cfg).init(lora), jnp.int32(0), jnp.float32(0.0))


def make_trainer(flow_cfg: FlowConfig, cfg: GRPOConfig) -> Trainer:
    """Build the jitted GRPO chunk (``eval_every`` iterations) and the evaluation for these configs."""
    task = task_of(flow_cfg)  # MixtureTask or DigitsTask
    dim = task.dim
    rank = cfg.lora_rank
    model = model_of(flow_cfg)
    opt = make_optimizer(cfg)
    num_slots = flow_cfg.num_prompts * cfg.prompt_repeats
    g = cfg.group_size
    n = num_slots * g
    k = cfg.num_steps
    prompts = jnp.repeat(jnp.tile(jnp.arange(flow_cfg.num_prompts), cfg.prompt_repeats), g)  # (n,)
    if num_slots % cfg.minibatches:
        raise ValueError(f"prompt slots ({num_slots}) must divide into {cfg.minibatches} minibatches")

    def velocity(params, x, t, c):
        return model.apply(params, x, jnp.broadcast_to(t, x.shape[:1]), c)

    def rollout(params, b, c, t, tn, key, x1, cprompts):
        """Trajectory xs (K+1, N, D) and old means (K, N, D) under the current params."""
        keys = jax.random.split(key, k)

        def body(x, inp):
            kk, tk, tnk, bk, ck = inp
            v = velocity(params, x, tk, cprompts)
            mu = (1 - tnk) * (x - tk * v) + bk * (x + (1 - tk) * v)
            x_next = mu + ck * jax.random.normal(kk, x.shape)
            return x_next, (x_next, mu)

        _, (xs, mus) = jax.lax.scan(body, x1, (keys, t, tn, b, c))
        return jnp.concatenate([x1[None], xs], 0), mus

    def step_means(params, xs, t, tn, b, cprompts):
        """Means (K, n, D) of every step's transition at the states xs[:-1] (all steps in one call)."""
        kk, nn = xs.shape[0] - 1, xs.shape[1]
        x = xs[:-1].reshape(kk * nn, -1)
        tt = jnp.repeat(t, nn)
        v = model.apply(params, x, tt, jnp.tile(cprompts, kk)).reshape(kk, nn, -1)
        x = xs[:-1]
        return (1 - tn)[:, None, None] * (x - t[:, None, None] * v) + (b[:, None, None] * (x + (1 - t)[:, None, None] * v))

    def loss_fn(lora, ref_params, xs, mu_old, adv, cprompts, t, tn, b, c, trained):
        mu = step_means(model_params(ref_params, lora, rank), xs, t, tn, b, cprompts)  # (K, n, 2)
        x_next = xs[1:]
        std = c[:, None, None]
        lp_new = gauss_logprob(x_next, mu, std)  # (K, n)
        lp_old = gauss_logprob(x_next, mu_old, std)
        if cfg.rationorm:
            z = (x_next - mu_old) / c[:, None, None]
            log_ratio = jnp.mean(z * (mu - mu_old), -1)
            scale = 1.0 / dmu_dv(t, tn, b)[:, None]
        else:
            log_ratio = lp_new - lp_old
            scale = jnp.ones((k, 1))
        ratio = jnp.exp(log_ratio)
        a = adv[None, :]
        per = jnp.maximum(-a * ratio, -a * jnp.clip(ratio, 1 - cfg.clip_eps, 1 + cfg.clip_eps)) * scale
        w = trained[:, None].astype(jnp.float32) * jnp.ones_like(per)
        denom = jnp.maximum(w.sum(), 1.0)
        loss = jnp.sum(per * w) / denom
        if cfg.beta > 0:
            mu_ref = step_means(ref_params, xs, t, tn, b, cprompts)
            kl = jnp.mean((mu - mu_ref) ** 2, -1) / (2 * c[:, None] ** 2)
            loss = loss + cfg.beta * jnp.sum(kl * w) / denom
        clipfrac = jnp.sum((jnp.abs(ratio - 1) > cfg.clip_eps) * w) / denom
        approx_kl = 0.5 * jnp.sum((lp_new - lp_old) ** 2 * w) / denom
        return loss, (clipfrac, approx_kl)

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def iteration(carry, _, arm: Arm, ref_params, noise_key):
        state: TrainState = carry
        b, c, trained = arm_coefficients(arm, state.iteration)
        key = jax.random.fold_in(noise_key, state.iteration)
        k_init, k_steps = jax.random.split(key)
        x1 = jax.random.normal(k_init, (n, dim))
        xs, mu_old = rollout(model_params(ref_params, state.params, rank), b, c, arm.t, arm.t_next, k_steps, x1,
                             prompts)
        pref, q = task.reward_parts(xs[-1], prompts)
        reward = pref + cfg.lam * q
        adv = group_advantages(reward.reshape(num_slots, g), cfg.adv_clip).reshape(n)
        group_std = reward.reshape(num_slots, g).std(-1)
        params, opt_state = state.params, state.opt_state
        per_mb = n // cfg.minibatches
        clipfracs, kls = [], []
        for m in range(cfg.minibatches):  # slots are laid out prompt-major, so each minibatch holds whole groups
            sl = slice(m * per_mb, (m + 1) * per_mb)
            (_, (cf, kl)), grads = grad_fn(params, ref_params, xs[:, sl], mu_old[:, sl], adv[sl], prompts[sl],
                                           arm.t, arm.t_next, b, c, trained)
            updates, opt_state = opt.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            clipfracs.append(cf)
            kls.append(kl)
        metrics = {"reward": reward.mean(), "pref": pref.mean(), "q": q.mean(),
                   "group_std": group_std.mean(), "zero_std_frac": jnp.mean(group_std < 1e-6),
                   "clipfrac": jnp.mean(jnp.stack(clipfracs)), "approx_kl": jnp.mean(jnp.stack(kls))}
        return TrainState(params, opt_state, state.iteration + 1, state.train_s), metrics

    @jax.jit
    def chunk(state, arm, ref_params, noise_key):
        return jax.lax.scan(lambda s, x: iteration(s, x, arm, ref_params, noise_key), state, None,
                            length=cfg.eval_every)

    ne = cfg.eval_noises
    eval_prompts = jnp.repeat(jnp.arange(flow_cfg.num_prompts), ne)

    @jax.jit
    def evaluate(params, arm, eval_key):
        """ODE at the same K (primary) and the arm's own SDE, on fixed noises; pref and q apart."""
        k_init, k_steps = jax.random.split(eval_key)
        x1 = jax.random.normal(k_init, (eval_prompts.shape[0], dim))
        zeros = jnp.zeros_like(arm.t)
        xs_ode, _ = rollout(params, arm.t_next, zeros, arm.t, arm.t_next, k_steps, x1, eval_prompts)
        b, c, _ = arm_coefficients(arm, jnp.int32(0))
        xs_sde, _ = rollout(params, b, c, arm.t, arm.t_next, k_steps, x1, eval_prompts)
        out = {}
        for tag, x in (("ode", xs_ode[-1]), ("sde", xs_sde[-1])):
            pref, q = task.reward_parts(x, eval_prompts)
            onehot = task.mode_weights(x, eval_prompts).reshape(flow_cfg.num_prompts, ne, -1).mean(1)
            ent = -jnp.sum(onehot * jnp.log(jnp.maximum(onehot, 1e-12)), -1).mean()
            out.update({f"eval_{tag}_reward": (pref + cfg.lam * q).mean(), f"eval_{tag}_pref": pref.mean(),
                        f"eval_{tag}_q": q.mean(), f"eval_{tag}_mode_entropy": ent})
        return out

    return Trainer(flow_cfg, cfg, chunk, evaluate)


def finetune(trainer: Trainer, params, arm: Arm, seed: int, stage=None, name: str = "finetune",
             desc: str = "finetune", checkpoint: bool = True):
    """Run cfg.iterations GRPO iterations of ``arm`` from ``params``; returns (final TrainState, records).

    Records (one per chunk of eval_every iterations) hold the iteration count, training seconds
    (compilation and evaluation excluded), the chunk's mean training metrics and the evaluation.
    """
    from quietrl.core.train import run_chunks

    cfg = trainer.cfg
    noise_key = jax.random.PRNGKey(10_000 + seed)  # independent of the arm: all arms share noises
    eval_key = jax.random.PRNGKey(20_000 + seed)
    state0 = trainer.init_state(params, seed)
    compiled = trainer.compiled_chunk(state0, arm, params, noise_key)  # keeps compilation out of timings
    records = []

    def chunk_fn(state):
        t0 = time.perf_counter()
        new, metrics = compiled(state, arm, params, noise_key)
        jax.block_until_ready(new)
        return new._replace(train_s=state.train_s + jnp.float32(time.perf_counter() - t0)), metrics

    def metrics_fn(chunk_index, state, metrics):
        rec = {"iteration": int(state.iteration), "train_s": float(state.train_s)}
        rec.update({k: float(np.mean(v)) for k, v in metrics.items()})
        merged = model_params(params, state.params, cfg.lora_rank)
        rec.update({k: float(v) for k, v in trainer.evaluate(merged, arm, eval_key).items()})
        records.append(rec)
        return rec

    # iteration 0 evaluation (before any update) anchors the curves
    base = {"iteration": 0, "train_s": 0.0}
    base.update({k: float(v) for k, v in trainer.evaluate(params, arm, eval_key).items()})
    config = {"flow": dataclasses.asdict(trainer.flow_cfg), "grpo": dataclasses.asdict(cfg), "seed": seed,
              "arm": name}
    state = run_chunks(stage, state0, chunk_fn, cfg.iterations // cfg.eval_every, kind=KIND, config=config,
                       metrics_fn=metrics_fn, desc=desc, name=name, checkpoint=checkpoint)
    return state, [base] + records
