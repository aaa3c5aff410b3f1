"""Every learner as three pure functions over one shared rollout: init, act, learn.

A `Learner` is what `train.make_train` needs to run an algorithm; a new method is a new constructor
here, not a flag threaded through the loop. All networks build on `networks.Trunk`.

- leo:           LEO network acts (epsilon-greedy on the commanded row) and learns every goal.
- pqn, pqn_her, relabel_all: a UVFA acts; commanded-goal, hindsight or explicit all-goals samples.
- ppo:           goal-conditioned actor-critic, commanded goal.
- dual_leo_pqn:  UVFA and LEO trained side by side on the same rollouts, separate optimisers; acting
                 on (1 - w) Q_UVFA(s, g) + w Q_LEO(s)[g] (w = mix_leo_weight); LEO updated first.
- dual_leo_ppo:  the PPO student acts; LEO learns off-policy from its rollouts and is the teacher of
                 a behaviour-cloning term bc_t * -log pi(argmax_a Q_LEO(s)[g, a] | s, g), with the
                 teacher's Q cached while acting; bc_t anneals linearly to 0 when `anneal_bc`. PPO is
                 updated first, then LEO.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from .leo import leo_targets, leo_update
from .networks import ActorCritic, LEONetwork, UVFANetwork
from .ppo import gae, ppo_update
from .pqn import commanded_samples, her_samples, num_relabel_minibatches, pqn_update, relabel_all_update
from .types import GoalSpace, RunnerState, Transition

LEO_FAMILY = ("leo", "dual_leo_pqn", "dual_leo_ppo")  # learners that own a LEO network
PPO_FAMILY = ("ppo", "dual_leo_ppo")


@dataclass(frozen=True)
class Learner:
    """An algorithm as pure functions (all jit-able).

    init(key, x (1, F), goal_in (1, G)) -> (params, opt_state, aux_params, aux_opt_state)
    act(params, aux, x (N, F), goal (N,), key, eps) -> (action (N,) int32, extras) where extras is a
        dict with maxq (N, K or 0), logp (N,), value (N,), teacher_action (N,) (zeros where unused)
    greedy(params, aux, x (N, F), goal (N,)) -> action (N,) int32, the test-time policy
    learn(rs, traj (T, N, ...), last extras at s_T, key) -> (params, opt_state, aux, aux_opt, loss)
    """

    init: Callable
    act: Callable
    greedy: Callable
    learn: Callable


def grad_steps(cfg, k: int) -> tuple[int, int]:
    """Gradient steps per update of the main network and of the auxiliary (LEO) network."""
    b = cfg.batch_size
    if cfg.algo == "relabel_all":
        return cfg.epochs * num_relabel_minibatches(b, k, cfg.minibatch_size), 0
    if cfg.algo == "pqn_her":
        return cfg.epochs * b * (1 + cfg.her_num_relabel) // cfg.minibatch_size, 0
    main = cfg.epochs * b // cfg.minibatch_size
    if cfg.algo == "dual_leo_pqn":
        return main, main
    if cfg.algo == "dual_leo_ppo":
        return main, cfg.leo_epochs * b // cfg.leo_minibatch_size
    return main, 0


def make_optimizer(lr: float, steps: int, anneal: bool, max_grad_norm: float, kind: str = "radam",
                   ) -> optax.GradientTransformation:
    """Global-norm clip then RAdam (Q-learners) or Adam eps 1e-5 (PPO); lr annealed linearly to 0."""
    sched = optax.linear_schedule(lr, 0.0, max(steps, 1)) if anneal else lr
    opt = optax.radam(sched) if kind == "radam" else optax.adam(sched, eps=1e-5)
    return optax.chain(optax.clip_by_global_norm(max_grad_norm), opt)


def _eps_greedy(key, q, eps):
    """Epsilon-greedy over q (N, A) -> (N,) int32."""
    k_eps, k_rand = jax.random.split(key)
    n, a = q.shape
    explore = jax.random.uniform(k_eps, (n,)) < eps
    return jnp.where(explore, jax.random.randint(k_rand, (n,), 0, a), q.argmax(-1)).astype(jnp.int32)


def _flat(x):
    """(T, N, ...) -> (T N, ...)."""
    return x.reshape((-1,) + x.shape[2:])


def _leo_step(params, opt_state, tx, net, traj: Transition, last_maxq, key, minibatch_size, epochs, gamma):
    """LEO's update: targets once from the acting passes (start-of-update parameters), then E epochs."""
    maxq_next = jnp.concatenate([traj.maxq[1:], last_maxq[None]], 0)  # Q_old(s_{t+1}) from step t + 1
    y = leo_targets(_flat(maxq_next), _flat(traj.ach_next), _flat(traj.done), gamma)
    return leo_update(params, opt_state, tx, net.apply, _flat(traj.obs), _flat(traj.action), y, key,
                      minibatch_size, epochs)


def make_learner(cfg, goals: GoalSpace, num_actions: int, total_updates: int) -> Learner:
    """The Learner for `cfg.algo` (a TrainConfig) over `goals`, for a run of `total_updates` updates."""
    k, a, hidden = goals.num_goals, num_actions, cfg.hidden
    steps_main, steps_aux = grad_steps(cfg, k)
    q_kind = "adam" if cfg.algo in PPO_FAMILY else "radam"
    tx = make_optimizer(cfg.lr, total_updates * steps_main, cfg.anneal_lr, cfg.max_grad_norm, q_kind)
    tx_leo = make_optimizer(cfg.lr, total_updates * steps_aux, cfg.anneal_lr, cfg.max_grad_norm, "radam")
    leo = LEONetwork(k, a, hidden)
    uvfa = UVFANetwork(a, hidden)
    ac = ActorCritic(a, hidden)
    gin = goals.goal_inputs
    algo = cfg.algo

    def zeros_extras(n, with_maxq=None):
        return dict(maxq=jnp.zeros((n, 0)) if with_maxq is None else with_maxq, logp=jnp.zeros(n),
                    value=jnp.zeros(n), teacher_action=jnp.zeros(n, jnp.int32))

    # ---------------------------------------------------------------------------------------- init
    def init(key, x, goal_in):
        k1, k2 = jax.random.split(key)
        if algo == "leo":
            p = leo.init(k1, x)
            return p, tx.init(p), None, None
        if algo in ("pqn", "pqn_her", "relabel_all"):
            p = uvfa.init(k1, x, goal_in)
            return p, tx.init(p), None, None
        main = ac.init(k1, x, goal_in) if algo in PPO_FAMILY else uvfa.init(k1, x, goal_in)
        if algo == "ppo":
            return main, tx.init(main), None, None
        aux = leo.init(k2, x)
        return main, tx.init(main), aux, tx_leo.init(aux)

    # ----------------------------------------------------------------------------------------- act
    def act(params, aux, x, goal, key, eps):
        n = x.shape[0]
        rows = jnp.arange(n)
        if algo == "leo":
            q_all = leo.apply(params, x)  # (N, K, A): one pass, every goal
            return _eps_greedy(key, q_all[rows, goal], eps), zeros_extras(n, q_all.max(-1))
        if algo in ("pqn", "pqn_her", "relabel_all"):
            return _eps_greedy(key, uvfa.apply(params, x, gin[goal]), eps), zeros_extras(n)
        if algo == "dual_leo_pqn":
            q_all = leo.apply(aux, x)
            q = (1.0 - cfg.mix_leo_weight) * uvfa.apply(params, x, gin[goal]) + cfg.mix_leo_weight * q_all[rows, goal]
            return _eps_greedy(key, q, eps), zeros_extras(n, q_all.max(-1))
        logits, value = ac.apply(params, x, gin[goal])
        action = jax.random.categorical(key, logits).astype(jnp.int32)
        logp = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None], -1)[:, 0]
        ex = zeros_extras(n)
        ex.update(logp=logp, value=value)
        if algo == "dual_leo_ppo":
            q_all = leo.apply(aux, x)
            ex.update(maxq=q_all.max(-1), teacher_action=q_all[rows, goal].argmax(-1).astype(jnp.int32))
        return action, ex

    def greedy(params, aux, x, goal):
        rows = jnp.arange(x.shape[0])
        if algo == "leo":
            q = leo.apply(params, x)[rows, goal]
        elif algo in ("pqn", "pqn_her", "relabel_all"):
            q = uvfa.apply(params, x, gin[goal])
        elif algo == "dual_leo_pqn":
            q = (1.0 - cfg.mix_leo_weight) * uvfa.apply(params, x, gin[goal]) \
                + cfg.mix_leo_weight * leo.apply(aux, x)[rows, goal]
        else:
            q = ac.apply(params, x, gin[goal])[0]
        return q.argmax(-1).astype(jnp.int32)

    # --------------------------------------------------------------------------------------- learn
    def uvfa_samples(traj, key, seen):
        args = (_flat(traj.obs), _flat(traj.action), _flat(traj.goal))
        if algo == "pqn_her":
            return her_samples(key, *args, _flat(traj.ach_obs), _flat(traj.ach_next), _flat(traj.done),
                               _flat(traj.next_obs), seen, cfg.her_num_relabel, cfg.her_random_prop,
                               cfg.only_seen_goals)
        return commanded_samples(*args, _flat(traj.ach_next), _flat(traj.done), _flat(traj.next_obs))

    def ppo_batch(traj, last):
        t, n = traj.goal.shape
        hit = jnp.take_along_axis(traj.ach_next, traj.goal[..., None], -1)[..., 0]  # (T, N)
        # Achieving the commanded goal ends its pursuit (a new goal follows), like the episode's end.
        adv, ret = gae(hit.astype(jnp.float32), traj.value, traj.done | hit, last["value"], cfg.gamma,
                       cfg.gae_lambda)
        return dict(obs=_flat(traj.obs), goal=_flat(traj.goal), action=_flat(traj.action), logp=_flat(traj.logp),
                    value=_flat(traj.value), adv=_flat(adv), ret=_flat(ret),
                    teacher_action=_flat(traj.teacher_action))

    def learn(rs: RunnerState, traj: Transition, last: dict, key):
        p, o, aux, aux_o = rs.params, rs.opt_state, rs.aux_params, rs.aux_opt_state
        k1, k2 = jax.random.split(key)
        if algo == "leo":
            p, o, loss = _leo_step(p, o, tx, leo, traj, last["maxq"], k1, cfg.minibatch_size, cfg.epochs, cfg.gamma)
        elif algo == "relabel_all":
            p, o, loss = relabel_all_update(p, o, tx, uvfa.apply, gin, _flat(traj.obs), _flat(traj.action),
                                            _flat(traj.goal), _flat(traj.ach_next), _flat(traj.done),
                                            _flat(traj.next_obs), k1, cfg.minibatch_size, cfg.epochs, cfg.gamma)
        elif algo in ("pqn", "pqn_her"):
            p, o, loss = pqn_update(p, o, tx, uvfa.apply, gin, uvfa_samples(traj, k2, rs.tracker.seen), k1,
                                    cfg.minibatch_size, cfg.epochs, cfg.gamma)
        elif algo == "dual_leo_pqn":
            aux, aux_o, _ = _leo_step(aux, aux_o, tx_leo, leo, traj, last["maxq"], k1, cfg.minibatch_size,
                                      cfg.epochs, cfg.gamma)
            p, o, loss = pqn_update(p, o, tx, uvfa.apply, gin, uvfa_samples(traj, k2, rs.tracker.seen), k2,
                                    cfg.minibatch_size, cfg.epochs, cfg.gamma)
        else:
            bc = 0.0
            if algo == "dual_leo_ppo":
                frac = rs.update.astype(jnp.float32) / max(total_updates, 1)
                bc = cfg.bc_coef * (1.0 - frac) if cfg.anneal_bc else cfg.bc_coef
            p, o, loss = ppo_update(p, o, tx, ac.apply, gin, ppo_batch(traj, last), k1, cfg.minibatch_size,
                                    cfg.epochs, cfg.clip_eps, cfg.ent_coef, cfg.vf_coef, bc)
            if algo == "dual_leo_ppo":
                aux, aux_o, _ = _leo_step(aux, aux_o, tx_leo, leo, traj, last["maxq"], k2,
                                          cfg.leo_minibatch_size, cfg.leo_epochs, cfg.gamma)
        return p, o, aux, aux_o, loss

    return Learner(init=init, act=act, greedy=greedy, learn=learn)

