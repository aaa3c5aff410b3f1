"""Data types that cross module boundaries in quietrl.leo."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class GoalSpace:
    """A finite goal set with its achievement oracle as one matrix.

    masks:       (K, D) float32 0/1; goal k is achieved in an observation whose binary feature
                 vector is f (D,) iff f @ masks[k] > 0 (union semantics, one matmul for a batch).
    goal_inputs: (K, G) float32; what a goal-conditioned (UVFA) network receives as the goal.
    """

    masks: jax.Array
    goal_inputs: jax.Array

    @property
    def num_goals(self) -> int:
        return int(self.masks.shape[0])

    def achieved(self, features: jax.Array) -> jax.Array:
        """Achievement of every goal: features (..., D) -> (..., K) bool, as one matmul."""
        return (features @ self.masks.T) > 0.5


@struct.dataclass
class Transition:
    """One rollout step for N envs (leading axes (T, N) once stacked by a scan).

    obs:       network input of s_t, (N, F) float32
    action:    (N,) int32
    goal:      commanded goal index at s_t, (N,) int32
    ach_next:  achievement of every goal on the true s_{t+1} (before any reset), (N, K) bool
    ach_obs:   achievement of every goal on s_t, (N, K) bool (for positive HER relabels)
    done:      episode end (death or time limit) at this step, (N,) bool
    next_obs:  network input of s_{t+1} as acted on next (a reset observation after a done; only ever
               used multiplied by (1 - done)), (N, F) float32
    maxq:      learners with a LEO network: max_a Q_old(s_t)[k, a] from the acting pass, (N, K); the
               update shifts it by one step to get the targets' max_a Q_old(s_{t+1}); (N, 0) otherwise
    logp:      PPO learners: log pi(a_t | s_t, g) at collection, (N,); zeros otherwise
    value:     PPO learners: V(s_t, g) at collection, (N,); zeros otherwise
    teacher_action: Dual LEO (PPO): argmax_a Q_LEO(s_t)[g, a] cached while acting, (N,); zeros otherwise
    """

    obs: jax.Array
    action: jax.Array
    goal: jax.Array
    ach_next: jax.Array
    ach_obs: jax.Array
    done: jax.Array
    next_obs: jax.Array
    maxq: jax.Array
    logp: jax.Array
    value: jax.Array
    teacher_action: jax.Array


@struct.dataclass
class TrackerState:
    """Per-env commanded goals and per-goal live success counters.

    goal:        (N,) int32 commanded goal
    first_goal:  (N,) int32 the episode's first commanded goal (the only one the success metric uses)
    pending:     (N,) bool, the first goal is not yet resolved in this episode
    seen:        (K,) bool, goals observed so far (commanded goals are drawn from these)
    succ, fail:  (K,) float32 decayed counters of episodes whose first goal was achieved / missed
    """

    goal: jax.Array
    first_goal: jax.Array
    pending: jax.Array
    seen: jax.Array
    succ: jax.Array
    fail: jax.Array


@struct.dataclass
class RunnerState:
    """Everything a training chunk carries: a pytree that checkpoints as a whole."""

    params: Any
    opt_state: Any
    env_state: Any
    obs: Any
    tracker: TrackerState
    key: jax.Array
    update: jax.Array  # int32 scalar, updates done so far
    aux_params: Any = None  # Dual LEO: the LEO network (params holds the UVFA or PPO network); else None
    aux_opt_state: Any = None


def success_rate(succ: jax.Array, fail: jax.Array) -> jax.Array:
    """Per-goal success rate s/(s+f), 0 for goals never resolved: (K,) -> (K,)."""
    tot = succ + fail
    return jnp.where(tot > 0, succ / jnp.maximum(tot, 1e-12), 0.0)
