"""IPPO with parameter sharing (or MAPPO: ``learner="mappo"``, centralised critic on the joint observation)
on the MAPF env, with sparse / hand-made / ARMS shaping.

Shape [purejaxrl]: :func:`make_train` builds everything static and returns pure functions; a *chunk* is a
``lax.scan`` over ``iters_per_chunk`` iterations, each ``vmap``-ped over seeds (and over per-seed entropy
coefficients, so an exploration sweep is one program). The Python loop over chunks lives in
:func:`quietrl.core.train.run_chunks`.

One iteration:
1. reset all E envs and roll out exactly ``horizon`` steps through the JaxMARL-style dict interface (a
   wrapper such as ``jaxmarl.wrappers.baselines.LogWrapper`` may sit in between). Every episode starts at
   step 0 and ends by step ``horizon``; steps after an env's first ``done`` belong to an auto-reset episode and
   are masked out, so each rollout is a batch of whole episodes (what ARMS ranks);
2. reward for the policy by method: sparse, ``+ pbrs``, ``+ bonus``, or ARMS (sparse only during
   ``warmup_iters``). ``arms`` (and ``arms-frozen``) use the ranking-trained r̂_θ as a potential:
   R + γ Φ(o') − Φ(o), Φ = r̂/σ̂, zero at the agent's terminal, which keeps the Nash set by construction;
   the per-step forms of the issue, ``arms-replace`` (r̂/σ̂ instead of R) and ``arms-add`` (R + β r̂/σ̂), can
   change it. σ̂ is a running RMS of r̂, never mean-centred [spec §7];
3. GAE (the episode's end is terminal, timeout included) and PPO epochs over env minibatches; the policy
   loss covers steps where the agent is alive, the value loss every step of the episode (S1/S2 rewards arrive
   after an agent's removal);
4. ARMS: push every agent's trajectory (post-step observations, alive mask, discounted sparse label) into a
   FIFO buffer and, every ``reward_every`` iterations (``arms-frozen``: only during warm-up), take
   ``reward_steps`` Adam steps of the Bradley-Terry ranking loss.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from quietrl.arms.env import NUM_ACTIONS, MAPFEnv, MAPFState
from quietrl.arms.networks import ActorCritic, RewardNet
from quietrl.arms.reward_model import make_reward_step, trajectory_returns
from quietrl.arms.shaping import LEARNED_FORMS, bonus_term, learned_reward, pbrs_term
from quietrl.arms.types import SPARSITY, TrainConfig

ARMS_METHODS = tuple(LEARNED_FORMS)
POTENTIAL_METHODS = tuple(m for m, f in LEARNED_FORMS.items() if f == "potential")  # the others: per step
NUM_PROBES = 128


class Transition(NamedTuple):
    """One rollout step for E envs and n agents (leading axes (E, n) unless noted)."""

    obs: jax.Array          # (E, n, D)
    action: jax.Array       # (E, n)
    logp: jax.Array         # (E, n)
    value: jax.Array        # (E, n)
    sparse: jax.Array       # (E, n) sparse reward
    next_obs: jax.Array     # (E, n, D) post-step observation (before any auto-reset)
    alive: jax.Array        # (E, n) agent not yet arrived before the step
    arrived: jax.Array      # (E, n) after the step
    dist_before: jax.Array  # (E, n)
    dist_after: jax.Array   # (E, n)
    dmax: jax.Array         # (E, n)
    done: jax.Array         # (E,) episode ends at this step
    live: jax.Array         # (E,) the step belongs to the rollout's first episode
    logged_return: jax.Array  # (E, n) wrapper's returned_episode_returns (0 without a logging wrapper)


def _set_sparsity(state: Any, sparsity: jax.Array) -> Any:
    """Set the traced sparsity inside a (possibly wrapped) env state."""
    if isinstance(state, MAPFState):
        return state.replace(sparsity=sparsity)
    return state.replace(env_state=_set_sparsity(state.env_state, sparsity))


def kendall_tau(a: jax.Array, b: jax.Array) -> jax.Array:
    """Kendall's τ-a between two score vectors (P,), O(P^2); 0 when either is constant."""
    sa = jnp.sign(a[:, None] - a[None, :])
    sb = jnp.sign(b[:, None] - b[None, :])
    p = a.shape[0]
    return (sa * sb).sum() / (p * (p - 1))


def make_train(env: MAPFEnv, cfg: TrainConfig, wrapper: Callable[[Any], Any] | None = None):
    """Build ``(init, chunk, evaluate)`` for one method.

    - ``init(key, ent_coefs (S,), sparsity () or (S,))`` -> train state ``{"it": (), "seeds": per-run pytree}``
      with S vmapped runs (one per entry of ``ent_coefs``; sparsity per run, traced);
    - ``chunk(state)`` -> (state, metrics) runs ``cfg.iters_per_chunk`` iterations then a held-out evaluation;
      metrics leaves have shape (iters, S) or (S,) (evaluation, drift);
    - ``evaluate(params, key, sparsity)`` -> dict(isr, csr, sum_of_costs) on held-out tasks.
    """
    wenv = wrapper(env) if wrapper is not None else env
    n, H, D = env.num_agents, env.horizon, env.obs_dim
    E = cfg.num_envs
    method = cfg.method
    is_arms = method in ARMS_METHODS
    net = ActorCritic(NUM_ACTIONS, cfg.hidden, centralised=cfg.learner == "mappo")
    rnet = RewardNet(cfg.hidden)
    tx = optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), optax.adam(cfg.lr, eps=1e-5))
    rtx = optax.adam(cfg.reward_lr)
    reward_step = make_reward_step(rnet.apply, rtx, cfg.gamma, cfg.reward_l2, cfg.reward_pairs)
    agents = list(wenv.agents)
    disc = cfg.gamma ** jnp.arange(H, dtype=jnp.float32)
    heldout = (np.arange(env.num_train, env.num_tasks) if env.num_tasks > env.num_train
               else np.arange(env.num_train))
    eval_tasks = jnp.asarray(heldout[np.arange(cfg.eval_envs) % len(heldout)])

    # -- rollout ---------------------------------------------------------------------------------------------
    def rollout(params, key, sparsity, policy_fn=None):
        """E whole episodes: Transition with leaves (H, E, ...).

        Without a wrapper the env's array API is stepped directly: no per-step auto-reset (steps after an
        env's first ``done`` are masked anyway, so computing a reset observation at every step was wasted) and
        no per-agent dicts. With a wrapper the JaxMARL dict interface is used, auto-reset included; on the
        steps that count both paths produce the same transitions from the same key.
        """
        key, k_reset = jax.random.split(key)
        reset_keys = jax.random.split(k_reset, E)
        if wrapper is None:
            obs, st = jax.vmap(env.reset_arrays, (0, None))(reset_keys, sparsity)
        else:
            obs, st = jax.vmap(wenv.reset)(reset_keys)
            st = jax.vmap(_set_sparsity, (0, None))(st, sparsity)
            obs = jnp.stack([obs[a] for a in agents], 1)

        def env_step(st, action, k_env):
            """-> next obs (E, n, D) to act on, next state, info with (E, n) leaves, done (E,)."""
            if wrapper is None:
                nobs, nst, reward, done, info = jax.vmap(env.step_arrays)(st, action)
                return nobs, nst, dict(info, next_obs=nobs, sparse_reward=reward), done
            act = {a: action[:, i] for i, a in enumerate(agents)}
            nobs, nst, _, dones, info = jax.vmap(wenv.step)(jax.random.split(k_env, E), st, act)
            return jnp.stack([nobs[a] for a in agents], 1), nst, info, dones["__all__"]

        def step(carry, k):
            obs, st, over = carry
            k_act, k_env = jax.random.split(k)
            logits, value = net.apply(params, obs)
            if policy_fn is None:
                action = jax.random.categorical(k_act, logits)
            else:
                action = policy_fn(obs, k_act)
            logp = jnp.take_along_axis(jax.nn.log_softmax(logits), action[..., None], -1)[..., 0]
            nobs, nst, info, done = env_step(st, action, k_env)
            tr = Transition(obs=obs, action=action, logp=logp, value=value, sparse=info["sparse_reward"],
                            next_obs=info["next_obs"], alive=info["alive"], arrived=info["arrived"],
                            dist_before=info["dist_before"], dist_after=info["dist_after"], dmax=info["dmax"],
                            done=done, live=~over,
                            logged_return=info.get("returned_episode_returns", jnp.zeros((E, n))))
            return (nobs, nst, over | done), tr

        _, traj = jax.lax.scan(step, (obs, st, jnp.zeros((E,), bool)), jax.random.split(key, H))
        return traj

    # -- rewards for the policy -------------------------------------------------------------------------------
    def policy_rewards(traj: Transition, rparams, r_stats, use_shaping):
        live = traj.live[..., None]
        sparse = traj.sparse * live
        alive = traj.alive & live
        info = {}
        if method == "sparse":
            r = sparse
        elif method == "pbrs":
            terminal = traj.arrived | traj.done[..., None]
            r = sparse + pbrs_term(traj.dist_before, traj.dist_after, traj.dmax, alive, terminal, cfg.gamma)
        elif method == "bonus":
            r = sparse + bonus_term(traj.dist_before, traj.dist_after, alive, cfg.bonus)
        else:
            if method in POTENTIAL_METHODS:
                # F = γ Φ(o') − Φ(o), Φ = r̂_θ(o)/σ̂ on the agent's observation, 0 at its terminal (arrival,
                # timeout): telescopes to −Φ(o_0), so best-response and Nash sets are those of the sparse game
                # for any θ. σ̂ is the running RMS of Φ itself, so Φ spans about [−1, 1] like the BFS potential
                # of ``pbrs`` (normalising F instead made the dense term drown the sparse reward).
                terminal = traj.arrived | traj.done[..., None]
                raw = rnet.apply(rparams, traj.obs) * alive
            else:  # per-step forms: r̂_θ on the post-step observation
                terminal = None
                raw = rnet.apply(rparams, traj.next_obs) * alive
            m, c = r_stats
            sq = (raw ** 2).sum() / jnp.maximum(alive.sum(), 1)
            m = cfg.std_decay * m + (1 - cfg.std_decay) * sq
            c = cfg.std_decay * c + (1 - cfg.std_decay)
            r_stats = (m, c)
            rn = jax.lax.stop_gradient(raw / jnp.sqrt(m / c + 1e-8))
            shaped, term = learned_reward(method, sparse, rn, alive, terminal, cfg.gamma, cfg.beta)
            r = jnp.where(use_shaping, shaped, sparse)
            info = {"rhat_mean": (raw.sum() / jnp.maximum(alive.sum(), 1)), "rhat_rms": jnp.sqrt(m / c),
                    "shaping_mean": term.sum() / jnp.maximum(alive.sum(), 1)}
        return r, r_stats, info

    def gae(rewards, values, dones):
        def body(carry, x):
            adv_next, v_next = carry
            r, v, d = x
            delta = r + cfg.gamma * v_next * (1 - d) - v
            adv = delta + cfg.gamma * cfg.gae_lambda * (1 - d) * adv_next
            return (adv, v), adv

        z = jnp.zeros_like(values[0])
        _, adv = jax.lax.scan(body, (z, z), (rewards, values, dones), reverse=True)
        return adv, adv + values

    # -- PPO update --------------------------------------------------------------------------------------------
    def ppo_loss(params, batch, ent_coef):
        obs, action, logp_old, v_old, adv, ret, pi_mask, v_mask = batch
        logits, value = net.apply(params, obs)
        logp_all = jax.nn.log_softmax(logits)
        logp = jnp.take_along_axis(logp_all, action[..., None], -1)[..., 0]
        wp = pi_mask.astype(jnp.float32)
        wv = v_mask.astype(jnp.float32)
        npi = jnp.maximum(wp.sum(), 1.0)
        nv = jnp.maximum(wv.sum(), 1.0)
        a_mean = (adv * wp).sum() / npi
        a_std = jnp.sqrt((((adv - a_mean) ** 2) * wp).sum() / npi + 1e-8)
        adv_n = (adv - a_mean) / a_std
        ratio = jnp.exp(logp - logp_old)
        pg = -jnp.minimum(ratio * adv_n, jnp.clip(ratio, 1 - cfg.clip_eps, 1 + cfg.clip_eps) * adv_n)
        pg = (pg * wp).sum() / npi
        v_clip = v_old + jnp.clip(value - v_old, -cfg.clip_eps, cfg.clip_eps)
        vl = 0.5 * jnp.maximum((value - ret) ** 2, (v_clip - ret) ** 2)
        vl = (vl * wv).sum() / nv
        ent = -(jnp.exp(logp_all) * logp_all).sum(-1)
        ent = (ent * wp).sum() / npi
        return pg + cfg.vf_coef * vl - ent_coef * ent, (pg, vl, ent)

    def ppo_update(params, opt_state, key, traj, adv, ret, ent_coef):
        live = jnp.broadcast_to(traj.live[..., None], traj.alive.shape)
        pi_mask = traj.alive & live
        data = (traj.obs, traj.action, traj.logp, traj.value, adv, ret, pi_mask, live)
        # (H, E, ...) -> (E, H, ...): minibatches are sets of whole episodes
        data = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), data)
        mb = E // cfg.num_minibatches

        def epoch(carry, k):
            params, opt_state = carry
            perm = jax.random.permutation(k, E)
            shuffled = jax.tree.map(lambda x: x[perm].reshape((cfg.num_minibatches, mb) + x.shape[1:]), data)

            def minibatch(carry, batch):
                params, opt_state = carry
                (loss, aux), grads = jax.value_and_grad(ppo_loss, has_aux=True)(params, batch, ent_coef)
                updates, opt_state = tx.update(grads, opt_state, params)
                return (optax.apply_updates(params, updates), opt_state), (loss, *aux)

            (params, opt_state), losses = jax.lax.scan(minibatch, (params, opt_state), shuffled)
            return (params, opt_state), losses

        (params, opt_state), losses = jax.lax.scan(epoch, (params, opt_state),
                                                   jax.random.split(key, cfg.update_epochs))
        return params, opt_state, jax.tree.map(jnp.mean, losses)

    # -- ARMS buffer and reward learning -------------------------------------------------------------------------
    def trajectories(traj: Transition):
        """Per-agent trajectories: obs (E*n, H, D), mask (E*n, H), discounted sparse label (E*n,)."""
        live = traj.live[..., None]
        mask = (traj.alive & live).astype(jnp.float32)          # (H, E, n)
        label = (traj.sparse * live * disc[:, None, None]).sum(0)  # (E, n)
        obs = jnp.transpose(traj.next_obs, (1, 2, 0, 3)).reshape(E * n, H, D)
        return obs, jnp.transpose(mask, (1, 2, 0)).reshape(E * n, H), label.reshape(E * n)

    def push(buf, obs, mask, y):
        idx = (buf["ptr"] + jnp.arange(obs.shape[0])) % cfg.buffer_size
        return {"obs": buf["obs"].at[idx].set(obs), "mask": buf["mask"].at[idx].set(mask),
                "y": buf["y"].at[idx].set(y), "valid": buf["valid"].at[idx].set(True),
                "ptr": (buf["ptr"] + obs.shape[0]) % cfg.buffer_size}

    def train_reward(rparams, ropt, key, buf):
        def body(carry, k):
            p, o = carry
            p, o, loss = reward_step(p, o, k, buf["obs"], buf["mask"], buf["y"], buf["valid"])
            return (p, o), loss

        (rparams, ropt), losses = jax.lax.scan(body, (rparams, ropt), jax.random.split(key, cfg.reward_steps))
        return rparams, ropt, losses.mean()

    # -- one iteration for one seed --------------------------------------------------------------------------------
    def iteration(seed_state, it):
        s = seed_state
        sparsity = s["sparsity"]
        key, k_roll, k_upd, k_rew = jax.random.split(s["key"], 4)
        traj = rollout(s["params"], k_roll, sparsity)
        use_shaping = it >= cfg.warmup_iters
        rewards, r_stats, rinfo = policy_rewards(traj, s.get("rparams"), s["r_stats"], use_shaping)
        dones = jnp.broadcast_to(traj.done[..., None], rewards.shape).astype(jnp.float32)
        adv, ret = gae(rewards, traj.value, dones)
        params, opt_state, (loss, pg, vl, ent) = ppo_update(s["params"], s["opt_state"], k_upd, traj, adv, ret,
                                                           s["ent_coef"])
        out = dict(s, key=key, params=params, opt_state=opt_state, r_stats=r_stats)
        final_arrived = (traj.arrived * traj.live[..., None]).max(0)  # (E, n): arrived within the episode
        live = traj.live[..., None]
        metrics = {
            "train_isr": final_arrived.mean(),
            "train_csr": final_arrived.all(-1).mean(),
            "sparse_return": (traj.sparse * live).sum(0).mean(),
            "policy_loss": pg, "value_loss": vl, "entropy": ent,
        }
        if wrapper is not None:
            # a logging wrapper's episode return must equal the episode's summed sparse reward
            at_end = (traj.done & traj.live)[..., None]
            metrics["logged_return_gap"] = jnp.abs((traj.logged_return * at_end).sum(0)
                                                   - (traj.sparse * live).sum(0)).max()
        if is_arms:
            obs_t, mask_t, y_t = trajectories(traj)
            buf = push(s["buf"], obs_t, mask_t, y_t)
            do_train = (it % cfg.reward_every == 0)
            if method == "arms-frozen":
                do_train = do_train & (it < cfg.warmup_iters)
            rparams, ropt, rloss = jax.lax.cond(
                do_train, train_reward, lambda p, o, k, b: (p, o, jnp.float32(jnp.nan)),
                s["rparams"], s["ropt"], k_rew, buf)
            out.update(buf=buf, rparams=rparams, ropt=ropt)
            metrics.update(reward_loss=rloss, **rinfo)
        return out, metrics

    # -- evaluation on held-out tasks -------------------------------------------------------------------------------
    def evaluate(params, key, sparsity):
        """Held-out ISR, CSR and mean sum of costs (steps until each agent's arrival, H if never)."""
        obs, st = jax.vmap(env.reset_to, (0, None))(eval_tasks, sparsity)

        def step(carry, k):
            obs, st, cost = carry
            logits, _ = net.apply(params, obs)
            action = jax.random.categorical(k, logits)
            cost = cost + (~st.arrived).astype(jnp.float32)
            obs, st, _, _, _ = jax.vmap(env.step_arrays)(st, action)
            return (obs, st, cost), None

        init = (obs, st, jnp.zeros(st.arrived.shape, jnp.float32))
        (_, st, cost), _ = jax.lax.scan(step, init, jax.random.split(key, H))
        return {"isr": st.arrived.mean(), "csr": st.arrived.all(-1).mean(), "sum_of_costs": cost.sum(-1).mean()}

    # -- init and chunk ------------------------------------------------------------------------------------------------
    def init_seed(key, ent_coef, sparsity):
        k_net, k_rnet, k_probe, key = jax.random.split(key, 4)
        dummy = jnp.zeros((1, n, D))
        params = net.init(k_net, dummy)
        s = {"key": key, "params": params, "opt_state": tx.init(params), "ent_coef": jnp.float32(ent_coef),
             "sparsity": jnp.asarray(sparsity, jnp.int32),
             "r_stats": (jnp.float32(0.0), jnp.float32(0.0))}
        if is_arms:
            rparams = rnet.init(k_rnet, dummy)
            probe = trajectories(rollout(params, k_probe, sparsity))
            s.update(rparams=rparams, ropt=rtx.init(rparams),
                     buf={"obs": jnp.zeros((cfg.buffer_size, H, D)), "mask": jnp.zeros((cfg.buffer_size, H)),
                          "y": jnp.zeros((cfg.buffer_size,)), "valid": jnp.zeros((cfg.buffer_size,), bool),
                          "ptr": jnp.int32(0)},
                     probe_obs=probe[0][:NUM_PROBES], probe_mask=probe[1][:NUM_PROBES])
            s["probe_prev"] = trajectory_returns(rnet.apply, rparams, s["probe_obs"], s["probe_mask"], cfg.gamma)
        return s

    def init(key, ent_coefs, sparsity):
        ent_coefs = jnp.asarray(ent_coefs, jnp.float32)
        sparsity = jnp.broadcast_to(jnp.asarray(sparsity, jnp.int32), ent_coefs.shape)
        seeds = jax.vmap(init_seed)(jax.random.split(key, ent_coefs.shape[0]), ent_coefs, sparsity)
        return {"it": jnp.int32(0), "seeds": seeds}

    def chunk(state):
        def body(carry, _):
            it, seeds = carry
            seeds, metrics = jax.vmap(iteration, (0, None))(seeds, it)
            return (it + 1, seeds), metrics

        (it, seeds), metrics = jax.lax.scan(body, (state["it"], state["seeds"]), None, length=cfg.iters_per_chunk)

        def eval_seed(s):
            k_eval, key = jax.random.split(s["key"])
            ev = evaluate(s["params"], k_eval, s["sparsity"])
            s = dict(s, key=key)
            if is_arms:
                g = trajectory_returns(rnet.apply, s["rparams"], s["probe_obs"], s["probe_mask"], cfg.gamma)
                ev["reward_drift"] = 1.0 - kendall_tau(g, s["probe_prev"])
                s["probe_prev"] = g
            return s, ev

        seeds, ev = jax.vmap(eval_seed)(seeds)
        metrics.update({f"heldout_{k}": v for k, v in ev.items()})
        return {"it": it, "seeds": seeds}, metrics

    return init, chunk, evaluate, rollout


def num_iterations(cfg: TrainConfig, num_agents: int, horizon: int) -> int:
    """Iterations that fit the per-run agent-step budget (at least one chunk)."""
    per_iter = cfg.num_envs * num_agents * horizon
    return max(cfg.iters_per_chunk, (cfg.total_agent_steps // per_iter) // cfg.iters_per_chunk * cfg.iters_per_chunk)


def sparsity_index(name: str) -> int:
    return SPARSITY.index(name)
