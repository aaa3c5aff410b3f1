"""Conditional flow matching for the prompt-conditioned tasks (2-D mixture, 8x8 digits) and sampling."""
from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from quietrl.precise.env import MixtureTask
from quietrl.precise.networks import VelocityMLP
from quietrl.precise.samplers import make_schedule
from quietrl.precise.schedules import make_grid
from quietrl.precise.types import FlowConfig

KIND = "precise.flow2d"  # the checkpoint kind of every task's model (the config names the task)


class FlowState(NamedTuple):
    params: Any
    opt_state: Any
    key: jnp.ndarray
    step: jnp.ndarray


def task_of(cfg: FlowConfig):
    """The task (data sampler and reward) of ``cfg``: a MixtureTask or a DigitsTask (both have ``dim``)."""
    if cfg.task == "digits":
        from quietrl.precise.digits import DigitsTask

        return DigitsTask()
    return MixtureTask(cfg.num_prompts, cfg.modes_per_prompt, cfg.mode_std)


def model_of(cfg: FlowConfig) -> VelocityMLP:
    return VelocityMLP(cfg.num_prompts, cfg.hidden, cfg.depth, cfg.num_fourier, cfg.embed_dim)


def init_params(cfg: FlowConfig, key):
    """Fresh model parameters."""
    dim = task_of(cfg).dim
    return model_of(cfg).init(key, jnp.zeros((1, dim)), jnp.zeros((1,)), jnp.zeros((1,), jnp.int32))


def init_flow_state(cfg: FlowConfig, seed: int) -> FlowState:
    key = jax.random.PRNGKey(seed)
    k_init, key = jax.random.split(key)
    params = init_params(cfg, k_init)
    return FlowState(params, make_optimizer(cfg).init(params), key, jnp.zeros((), jnp.int32))


def make_optimizer(cfg: FlowConfig):
    """Adam with cosine decay to 0: the decay sharpens the narrow modes far more than extra steps do."""
    return optax.adam(optax.cosine_decay_schedule(cfg.lr, cfg.steps))


def cfm_loss(params, apply, task: MixtureTask, key, batch: int):
    """Conditional flow matching: || v(x_t, t, c) - (eps - x0) ||^2 with x_t = (1 - t) x0 + t eps."""
    kc, kx, kt, ke = jax.random.split(key, 4)
    c = jax.random.randint(kc, (batch,), 0, task.num_prompts)
    x0 = task.sample(kx, c)
    # logit-normal t puts more weight mid-trajectory, where the narrow modes separate
    t = jax.nn.sigmoid(jax.random.normal(kt, (batch,)))
    eps = jax.random.normal(ke, x0.shape)
    xt = (1 - t)[:, None] * x0 + t[:, None] * eps
    v = apply(params, xt, t, c)
    return jnp.mean(jnp.sum((v - (eps - x0)) ** 2, -1))


def make_pretrain_chunk(cfg: FlowConfig):
    """A jitted chunk of ``cfg.chunk`` CFM updates: FlowState -> (FlowState, {"loss": (chunk,)})."""
    task, model = task_of(cfg), model_of(cfg)
    opt = make_optimizer(cfg)

    def update(state: FlowState, _):
        key, sub = jax.random.split(state.key)
        loss, grads = jax.value_and_grad(cfm_loss)(state.params, model.apply, task, sub, cfg.batch_size)
        updates, opt_state = opt.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return FlowState(params, opt_state, key, state.step + 1), loss

    @jax.jit
    def chunk(state):
        state, losses = jax.lax.scan(update, state, None, length=cfg.chunk)
        return state, {"loss": losses}

    return chunk


def pretrain(cfg: FlowConfig, seed: int = 0, stage=None, desc: str = "pretrain"):
    """Train the velocity model; returns params. With a core Stage, logs metrics and checkpoints per chunk."""
    from quietrl.core.train import run_chunks

    state = init_flow_state(cfg, seed)
    state = run_chunks(stage, state, make_pretrain_chunk(cfg), cfg.steps // cfg.chunk, kind=KIND,
                       config={**dataclasses.asdict(cfg), "seed": seed}, desc=desc, name="pretrain")
    return state.params


def make_sampler_fn(cfg: FlowConfig):
    """Returns sample(params, key, x1, c, sched, stochastic) -> x_final, running the unified transition."""
    model = model_of(cfg)

    @jax.jit
    def sample(params, key, x1, c, sched):
        keys = jax.random.split(key, sched.t.shape[0])

        def body(x, inp):
            k, t, tn, b, cc = inp
            v = model.apply(params, x, jnp.full(x.shape[:1], t), c)
            x0_hat, eps_hat = x - t * v, x + (1 - t) * v
            mu = (1 - tn) * x0_hat + b * eps_hat
            return mu + cc * jax.random.normal(k, x.shape), None

        x, _ = jax.lax.scan(body, x1, (keys, sched.t, sched.t_next, sched.b, sched.c))
        return x

    return sample


def sample_model(cfg: FlowConfig, params, prompts: np.ndarray, num_steps: int = 100, sampler: str = "ode",
                 eta=None, seed: int = 0, grid: str = "shifted"):
    """Samples (N, D) from the model for integer prompts (N,) with a K-step sampler (ODE by default)."""
    sched = make_schedule(sampler, make_grid(grid, num_steps), eta)
    if sampler == "ode":
        sched = sched._replace(c=jnp.zeros_like(sched.c))  # deterministic evaluation, no floor noise
    key = jax.random.PRNGKey(seed)
    k1, k2 = jax.random.split(key)
    prompts = jnp.asarray(prompts, jnp.int32)
    x1 = jax.random.normal(k1, (prompts.shape[0], task_of(cfg).dim))
    return np.asarray(make_sampler_fn(cfg)(params, k2, x1, prompts, sched))


def mode_weight_error(cfg: FlowConfig, params, n_per_prompt: int = 256, num_steps: int = 100, seed: int = 0):
    """Max over prompts and modes of |empirical mode weight - 1/M| for K-step ODE samples, and mean q."""
    task = task_of(cfg)
    prompts = np.repeat(np.arange(cfg.num_prompts), n_per_prompt)
    x = jnp.asarray(sample_model(cfg, params, prompts, num_steps, seed=seed))
    onehot = np.asarray(task.mode_weights(x, jnp.asarray(prompts)))
    freq = onehot.reshape(cfg.num_prompts, n_per_prompt, -1).mean(1)
    _, q = task.reward_parts(x, jnp.asarray(prompts))
    return float(np.abs(freq - 1 / cfg.modes_per_prompt).max()), float(np.mean(q))
