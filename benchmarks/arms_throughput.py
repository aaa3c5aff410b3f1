"""ARMS MAPF throughput: agent-steps/s of the vectorised rollout and of rollout + IPPO update, against a
jitted single-env ``step`` and jitted policy driven from a Python loop, measured in one run. The previous
rollout path (JaxMARL dict interface with a per-step auto-reset, selected by passing an identity wrapper) is
timed beside the current one (env array API, no auto-reset). Rollout + update is also reported per
CPU-second (process time, all threads) and as GFLOP/s against an analytic count of the MLP's work, next to
what a plain matmul + tanh chain of the first layers' shapes reaches on the same machine: on a shared
machine, wall-clock rates drift with the other processes' load, CPU-time rates much less.

Setting (issue 7): 8x8 maps, n = 4 agents, radius 2, 256 envs, 2x64 MLP, IPPO 4 epochs x 4 minibatches,
rollout = horizon = 64. Targets: rollout >= 100x the Python loop; rollout + update >= 300k agent-steps/s.

    python benchmarks/arms_throughput.py [--envs 256] [--iters 4] [--method sparse]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from quietrl.arms.env import make_env
from quietrl.arms.networks import ActorCritic
from quietrl.arms.ppo import make_train
from quietrl.arms.types import EnvConfig, TrainConfig


def timed(fn, *args, repeats: int = 3, cpu: bool = False):
    """Best wall time (and, with ``cpu``, best process CPU time over all threads) of ``fn(*args)``."""
    out = jax.block_until_ready(fn(*args))  # compile + warm up
    best, best_cpu = np.inf, np.inf
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        out = jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t)
        best_cpu = min(best_cpu, time.process_time() - c)
    return ((best, best_cpu) if cpu else best), out


def mlp_flops(obs_dim: int, hidden: int, actions: int) -> float:
    """FLOPs of one forward pass of the IPPO actor + critic on one agent-step (multiply-add = 2 FLOPs)."""
    actor = obs_dim * hidden + hidden * hidden + hidden * actions
    critic = obs_dim * hidden + hidden * hidden + hidden
    return 2.0 * (actor + critic)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--envs", type=int, default=256)
    ap.add_argument("--agents", type=int, default=4)
    ap.add_argument("--horizon", type=int, default=64)
    ap.add_argument("--iters", type=int, default=4, help="IPPO iterations per timed chunk")
    ap.add_argument("--method", default="sparse")
    ap.add_argument("--loop-steps", type=int, default=2000)
    args = ap.parse_args()

    env = make_env(EnvConfig(grid_size=8, num_agents=args.agents, obs_radius=2, horizon=args.horizon,
                             num_train_tasks=256, num_heldout_tasks=16))
    cfg = TrainConfig(method=args.method, num_envs=args.envs, hidden=64, update_epochs=4, num_minibatches=4,
                      iters_per_chunk=args.iters, eval_envs=16)
    init, chunk, _, rollout = make_train(env, cfg)
    state = init(jax.random.PRNGKey(0), jnp.array([0.01]), 0)
    params = jax.tree.map(lambda x: x[0], state["seeds"]["params"])
    n, H, E = env.num_agents, env.horizon, args.envs

    # 1. vectorised rollout only: current path and the previous (dict + auto-reset) path
    # (interleaved, best of 6 each: on a shared machine sequential timings drift with the load)
    _, old_chunk, _, old_rollout = make_train(env, cfg, wrapper=lambda e: e)
    rolls = {"current": jax.jit(rollout), "previous": jax.jit(old_rollout)}
    best = {k: timed(f, params, jax.random.PRNGKey(1), jnp.int32(0), repeats=1)[0] for k, f in rolls.items()}
    for i in range(5):
        for k, f in rolls.items():
            best[k] = min(best[k], timed(f, params, jax.random.PRNGKey(2 + i), jnp.int32(0), repeats=1)[0])
    roll_sps, old_roll_sps = E * n * H / best["current"], E * n * H / best["previous"]

    # 2. rollout + IPPO update (whole chunks, held-out evaluation included)
    chunk_j = jax.jit(chunk)
    t0 = time.perf_counter()
    state, _ = chunk_j(state)
    jax.block_until_ready(state)
    compile_s = time.perf_counter() - t0
    (t_chunk, c_chunk), _ = timed(chunk_j, state, repeats=2, cpu=True)
    train_sps = args.iters * E * n * H / t_chunk
    train_cpu_sps = args.iters * E * n * H / c_chunk
    old_chunk_j = jax.jit(old_chunk)
    t_old_chunk, _ = timed(old_chunk_j, state, repeats=2)
    old_train_sps = args.iters * E * n * H / t_old_chunk

    # 2b. the MLP's work: per iteration one forward pass per agent-step (rollout) and, per epoch, one forward +
    # backward (~3 forward passes' FLOPs) per agent-step (update); a matmul + tanh chain of the first layers'
    # shapes (one minibatch of agent-steps) measures what XLA's CPU matmuls reach on this machine
    net = ActorCritic(5, 64)
    flop_step = mlp_flops(env.obs_dim, 64, 5) * (1 + 3 * cfg.update_epochs)
    m = E * H * n // cfg.num_minibatches
    x = jnp.ones((m, env.obs_dim))
    w1, w2 = jnp.full((env.obs_dim, 64), 0.01), jnp.full((64, 64), 0.01)
    (_, c_mm), _ = timed(jax.jit(lambda x, a, b: jnp.tanh(jnp.tanh(x @ a) @ b)), x, w1, w2, repeats=5, cpu=True)
    mm_gflops_cpu = 2.0 * m * (env.obs_dim * 64 + 64 * 64) / c_mm / 1e9

    # 3. baseline: one env, jitted step and jitted policy, Python loop
    policy = jax.jit(lambda p, o, k: jax.random.categorical(k, net.apply(p, o)[0]))
    step = jax.jit(env.step_arrays)
    reset = jax.jit(env.reset_arrays)
    key = jax.random.PRNGKey(2)
    obs, st = reset(key)
    a = policy(params, obs, key)
    jax.block_until_ready(step(st, a))
    keys = jax.random.split(key, args.loop_steps)
    t = time.perf_counter()
    for k in keys:
        a = policy(params, obs, k)
        obs, st, r, done, _ = step(st, a)
        if bool(done):
            obs, st = reset(k)
    jax.block_until_ready(obs)
    loop_sps = n * args.loop_steps / (time.perf_counter() - t)

    print(f"setting: 8x8, n={n}, r=2, {E} envs, horizon {H}, 2x64 MLP, IPPO 4x4, method {args.method}, "
          f"{jax.device_count()} {jax.devices()[0].platform} device(s)")
    print(f"python-loop baseline (1 env, jitted step + policy): {loop_sps:12,.0f} agent-steps/s")
    print(f"vectorised rollout only:                            {roll_sps:12,.0f} agent-steps/s  "
          f"({roll_sps / loop_sps:6.1f}x baseline; target >= 100x)")
    print(f"  previous rollout path (dict API + auto-reset):    {old_roll_sps:12,.0f} agent-steps/s  "
          f"(current / previous = {roll_sps / old_roll_sps:.2f}x)")
    print(f"rollout + IPPO update ({args.iters} iterations/chunk):           {train_sps:12,.0f} agent-steps/s  "
          f"({train_sps / loop_sps:6.1f}x baseline; target >= 300,000 agent-steps/s)")
    print(f"  previous path:                                    {old_train_sps:12,.0f} agent-steps/s  "
          f"(current / previous = {train_sps / old_train_sps:.2f}x)")
    print(f"  per CPU-second (process time, all threads):      {train_cpu_sps:12,.0f} agent-steps/CPU-s")
    print(f"MLP work: {flop_step / 1e3:.0f} kFLOP per agent-step (actor + critic, 1 fwd + {cfg.update_epochs} x fwd+bwd); "
          f"300k agent-steps/s needs {300e3 * flop_step / 1e9:.0f} GFLOP/s")
    print(f"  rollout + update does {train_sps * flop_step / 1e9:.1f} GFLOP/s wall, "
          f"{train_cpu_sps * flop_step / 1e9:.1f} GFLOP per CPU-s; a bare matmul + tanh chain "
          f"({m}x{env.obs_dim} @ {env.obs_dim}x64 @ 64x64) reaches {mm_gflops_cpu:.1f} GFLOP per CPU-s")
    print(f"chunk compile + first run: {compile_s:.1f} s")


if __name__ == "__main__":
    main()
