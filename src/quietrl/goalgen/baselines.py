"""Baselines against which LPG is judged: uniform, random Dirichlet, a feature-count heuristic, and
per-agent ceilings fitted on each agent's own pairs."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .lpg import Examples
from .types import N_FEATURES, OBJECT_FEATURES

_PHI = jnp.asarray(OBJECT_FEATURES)


def uniform(n: int) -> np.ndarray:
    """(1/3, 1/3, 1/3) for every example. Shape (n, 3)."""
    return np.full((n, 3), 1.0 / 3.0)


def dirichlet(n: int, seed: int) -> np.ndarray:
    """Random Dirichlet(1, 1, 1) predictions. Shape (n, 3)."""
    return np.random.default_rng(seed).dirichlet(np.ones(3), size=n)


def _softmax3(va, vb):
    return jax.nn.softmax(jnp.stack([va, vb, jnp.zeros_like(va)], -1), -1)


def _kl(p, q):
    return jnp.sum(p * (jnp.log(p + 1e-6) - jnp.log(q + 1e-6)), -1)


def stage_feature_counts(pipelines) -> np.ndarray:
    """n_f = number of stages in which some goal has feature f. Shape (P, F)."""
    out = np.zeros((len(pipelines), N_FEATURES), np.float32)
    for i, p in enumerate(pipelines):
        for s in p.stages:
            out[i] += np.clip(sum(g.features() for g in s.goals), 0, 1)
    return out


class FeatureCount:
    """logit(o) = alpha * sum_f phi_f(o) n_f + beta: more training stages on a feature, more preference.
    alpha and beta are fitted (full-batch Adam on the 3-way KL, weighted rows)."""

    def __init__(self):
        self.theta = {"alpha": jnp.array(0.5), "beta": jnp.array(0.0)}

    def fit(self, ex: Examples, weight: np.ndarray | None = None, n_steps: int = 300,
            lr: float = 0.05) -> None:
        w = np.ones(len(ex.pipe), np.float32) if weight is None else np.asarray(weight, np.float32)
        self.theta = _fc_fit(self.theta, jnp.asarray(stage_feature_counts(ex.pipelines)),
                             jnp.asarray(ex.pipe), jnp.asarray(ex.obj_a), jnp.asarray(ex.obj_b),
                             jnp.asarray(ex.p_obs), jnp.asarray(w), n_steps, lr)

    def predict_examples(self, ex: Examples) -> np.ndarray:
        counts = jnp.asarray(stage_feature_counts(ex.pipelines))
        return np.asarray(_fc_pred_jit(self.theta, counts, jnp.asarray(ex.pipe), jnp.asarray(ex.obj_a),
                                       jnp.asarray(ex.obj_b)))


def _fc_pred(theta, counts, pipe, a, b):
    v = theta["alpha"] * counts @ _PHI.T + theta["beta"]     # (P, 24)
    return _softmax3(v[pipe, a], v[pipe, b])


# One compiled call per shape instead of op-by-op dispatch.
_fc_pred_jit = jax.jit(_fc_pred)


@jax.jit
def _fc_loss(theta, counts, pipe, a, b, p_obs, w):
    return jnp.sum(_kl(p_obs, _fc_pred(theta, counts, pipe, a, b)) * w) / jnp.maximum(w.sum(), 1.0)


def _fc_fit(theta, counts, pipe, a, b, p_obs, w, n_steps, lr):
    return _adam_jit(theta, (counts, pipe, a, b, p_obs, w), n_steps, lr)


@functools.partial(jax.jit, static_argnames=("n_steps", "lr"))
def _adam_jit(theta, args, n_steps, lr):
    opt = optax.adam(lr)

    def step(carry, _):
        th, st = carry
        g = jax.grad(_fc_loss)(th, *args)
        upd, st = opt.update(g, st, th)
        return (optax.apply_updates(th, upd), st), None

    (th, _), _ = jax.lax.scan(step, (theta, opt.init(theta)), None, length=n_steps)
    return th


def _adam(loss, theta, n_steps, lr):
    opt = optax.adam(lr)

    @jax.jit
    def run(theta):
        def step(carry, _):
            th, st = carry
            g = jax.grad(loss)(th)
            upd, st = opt.update(g, st, th)
            return (optax.apply_updates(th, upd), st), None
        (th, _), _ = jax.lax.scan(step, (theta, opt.init(theta)), None, length=n_steps)
        return th

    return run(theta)


def per_agent_ceiling(agent: np.ndarray, obj_a: np.ndarray, obj_b: np.ndarray, p_obs: np.ndarray,
                      kind: str, holdout: float = 0.25, seed: int = 0, n_steps: int = 300,
                      lr: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Ceiling references that see the test agent's own behaviour.

    Each agent (``agent`` (N,) int ids) gets its own values, ``kind`` = "feature" (v = theta . phi(o),
    10 parameters: the best feature-linear model) or "goal" (one value per object, 24 parameters), fitted
    on (1 - holdout) of its pairs and scored on the rest. Returns (test mask (N,) bool, p_pred (N, 3));
    predictions are meaningful only where the mask is True.
    """
    rng = np.random.default_rng(seed)
    test = rng.random(len(agent)) < holdout
    _, ag = np.unique(agent, return_inverse=True)
    n_agents = ag.max() + 1
    dim = N_FEATURES if kind == "feature" else OBJECT_FEATURES.shape[0]
    basis = _PHI if kind == "feature" else jnp.eye(OBJECT_FEATURES.shape[0])

    def predict(theta):
        v = theta @ basis.T                                         # (agents, 24)
        return _softmax3(v[ag, obj_a], v[ag, obj_b])

    p = jnp.asarray(p_obs)
    train_w = jnp.asarray(~test, jnp.float32)
    loss = lambda th: jnp.sum(_kl(p, predict(th)) * train_w) / jnp.maximum(train_w.sum(), 1)  # noqa
    theta = _adam(loss, jnp.zeros((n_agents, dim)), n_steps, lr)
    return test, np.asarray(jax.jit(predict)(theta))
