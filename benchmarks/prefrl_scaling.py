"""prefrl scaling benchmark (issue 8 targets), every ratio against a baseline measured in the same run.

1. Exact reward model at n = 1e3, 3e3, 1e4 episodes (bumps1d grid, |Z| = 303, H = 8):
   - episode update: one row append to the Cholesky factor of K^D + lam I, log-det update, cached widths
     for every grid state-action (O(n^2 + n|Z|));
   - from-scratch refactorisation of the same model (Gram, Cholesky, widths: O(n^3)) = the baseline;
   - dual refit: one Newton step with PCG (O(n^2) per CG iteration);
   - planning: optimistic DP with both bonuses in the true model (independent of n).
   Targets: update at 1e4 <= 0.2 s and >= 50x faster than the refactorisation.
2. Logistic refit of the Nyström (primal) reward model at n = 1e4 on bumps2d (m = 180), 3 iterations:
   textbook Newton (fresh Hessian each iteration, the first slice's refit) vs lagged Newton and L-BFGS,
   NumPy vs jitted JAX backends.
3. Planning a (optimistic, plug-in) pair: jitted JAX ``plan_linear`` vs the same DP in NumPy, per env.
4. `ucb` with Nyström features on each environment: seconds per episode of the learner and of the exact
   policy evaluation over a short run, the refit cost at n = 1e4, and a projected 1e4-episode run time
   (target <= 10 min). A measured full run: ``quietrl prefrl run --algo ucb --env bumps2d --episodes 10000``.
5. (--parts 5) the full study's time projected from a measured fraction (see project_study).

Usage: python benchmarks/prefrl_scaling.py [--sizes 1000,3000,10000] [--episodes 200] [--seed 0]
Single-threaded BLAS (threadpoolctl) so the numbers are per core.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np
import scipy.linalg as sla
from threadpoolctl import threadpool_limits

from quietrl.prefrl.envs import make_env
from quietrl.prefrl.estimators import ExactRewardModel, PreferenceRewardModel
from quietrl.prefrl.features import phi_dot
from quietrl.prefrl.kernels import state_action_kernel
from quietrl.prefrl.learners import make_learner, run_learner
from quietrl.prefrl.logistic import fit_logistic
from quietrl.prefrl.planning import argmax_random_ties, plan, plan_linear
from quietrl.prefrl.types import LearnerConfig


def _episodes(env, n, rng):
    H, S, A = env.horizon, env.num_states, env.num_actions
    z1 = np.empty((n, H), dtype=np.int64)
    z2 = np.empty((n, H), dtype=np.int64)
    for i in range(n):
        z1[i] = env.rollout(rng.integers(0, A, (H, S)), rng).z(A)
        z2[i] = env.rollout(rng.integers(0, A, (H, S)), rng).z(A)
    return z1, z2, rng.integers(0, 2, n)


def _best(fn, repeats=3):
    ts = []
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return min(ts), out


def bench_exact(sizes, seed):
    env = make_env("bumps1d")
    k = state_action_kernel("se", 0.1, 1)
    Kzz = k(env.features)
    rng = np.random.default_rng(seed)
    nmax = max(sizes)
    z1, z2, lab = _episodes(env, nmax + 5, rng)
    print(f"1. exact reward model on bumps1d (|Z| = {Kzz.shape[0]}, H = {env.horizon})")
    print("(wall s; the update's CPU s of this process in brackets: the better idle estimate on a loaded machine)")
    print(f"{'n':>7} {'update s':>10} {'[CPU s]':>9} {'refactor s':>11} {'speed-up':>9} {'dual refit s (CG its)':>22} "
          f"{'plan s':>8}")
    rows = []
    for n in sizes:
        t0, c0 = time.perf_counter(), time.process_time()
        model = ExactRewardModel.from_batch(Kzz, z1[:n], z2[:n], lab[:n], capacity=n + 8)
        t_scratch = time.perf_counter() - t0  # Gram + Cholesky + widths from scratch at n
        c_scratch = time.process_time() - c0
        ups, cps = [], []
        for j in range(3):
            t0, c0 = time.perf_counter(), time.process_time()
            model.add(z1[n + j], z2[n + j], int(lab[n + j]))
            model.widths()
            ups.append(time.perf_counter() - t0)
            cps.append(time.process_time() - c0)
        t_up, c_up = min(ups), min(cps)
        t0 = time.perf_counter()
        info = model.refit(newton_steps=1, cg_tol=1e-6, cg_max=100)
        t_refit = time.perf_counter() - t0
        widths, r = model.widths(), model.reward()
        pr = np.random.default_rng(0)
        t_plan, _ = _best(lambda: plan(env.horizon, env.num_states, env.num_actions, r,
                                       lambda v: (env.P @ v).ravel(), pr, reward_bonus=widths,
                                       transition_bonus=widths, beta_r=1.0, beta_P=1.0))
        print(f"{n:>7} {t_up:>10.4f} {c_up:>9.4f} {t_scratch:>11.3f} {t_scratch / t_up:>8.0f}x "
              f"{t_refit:>14.3f} ({info['cg']:>3}) {t_plan:>8.4f}")
        rows.append((n, t_up, t_scratch, c_up, c_scratch))
        del model
    n, t_up, t_scratch, c_up, c_scratch = rows[-1]
    print(f"target at n = {n}: update {t_up:.3f} s wall, {c_up:.3f} s CPU (<= 0.2: {t_up <= 0.2} wall, "
          f"{c_up <= 0.2} CPU), {t_scratch / t_up:.0f}x faster than refactorisation wall, {c_scratch / c_up:.0f}x CPU "
          f"(>= 50: {t_scratch / t_up >= 50})")
    if len(rows) > 1:
        ns = np.log([r[0] for r in rows])
        for name, col in (("update", 1), ("refactor", 2)):
            print(f"log-log cost slope of {name}: {np.polyfit(ns, np.log([r[col] for r in rows]), 1)[0]:.2f}")


def bench_refit(seed, n=10_000):
    env = make_env("bumps2d")
    learner = make_learner(env, LearnerConfig(algo="ucb"), np.random.default_rng(seed))
    Phi = learner.Phi
    rng = np.random.default_rng(seed + 1)
    idx = rng.integers(0, Phi.shape[0], (n, 2, env.horizon))
    X = Phi[idx[:, 0]].sum(1) - Phi[idx[:, 1]].sum(1)
    o = rng.integers(0, 2, n).astype(float)
    pm = PreferenceRewardModel(Phi, capacity=16384)
    pm.add_batch(X, o)
    pm.refit(max_iter=30, tol=1e-9)  # the optimum at n - 1 episodes' worth of data: the warm start
    theta0, L = pm.theta.copy(), pm._hess
    pm.add(X[-1] + 0.1, 1)  # one new episode
    args = (pm.X, pm.o, pm.c, pm.lam, pm.rho, pm.phibar, theta0, 3, 0.0)
    print(f"\n2. logistic refit on bumps2d features at n = {pm.n} (m = {Phi.shape[1]}), 3 iterations, warm start")
    base, _ = _best(lambda: fit_logistic(*args, n=pm.n), 2)
    print(f"{'textbook Newton, NumPy (baseline)':<40}{base:>9.4f} s")
    with jax.enable_x64(True):
        Xd, od = jax.numpy.asarray(pm.X), jax.numpy.asarray(pm.o)  # device copies made once, as a jax model would
    for label, kw, data in (
        ("lagged Newton, NumPy (default)", dict(hessian=L), (pm.X, pm.o)),
        ("L-BFGS, NumPy", dict(solver="lbfgs"), (pm.X, pm.o)),
        ("textbook Newton, JAX", dict(backend="jax"), (Xd, od)),
        ("lagged Newton, JAX", dict(hessian=L, backend="jax"), (Xd, od)),
        ("L-BFGS, JAX", dict(solver="lbfgs", backend="jax"), (Xd, od)),
    ):
        a = data + args[2:]
        fit_logistic(*a, n=pm.n, **kw)  # compile / warm up
        t, _ = _best(lambda: fit_logistic(*a, n=pm.n, **kw), 2)
        print(f"{label:<40}{t:>9.4f} s   {base / t:>5.1f}x vs baseline")


def _plan_numpy(R, rb, cr, tw, ct, learner, rng):
    """The DP of plan_linear in NumPy (same inputs, same Phi products), the baseline for the JAX version."""
    H = learner.H
    S, A = learner.S, learner.A
    k = R.shape[0]
    LA, PhiTC = learner.trans.A.L, learner.trans.PhiTC
    V = np.zeros((k, S))
    for h in range(H - 1, -1, -1):
        q = R + cr[:, None] * rb[None] + ((H - 1 - h) * ct)[:, None] * tw[None]
        if h < H - 1:
            w = sla.cho_solve((LA, True), PhiTC @ V.T, check_finite=False)
            q = q + phi_dot(learner.Phi, w, learner.Phi_S).T
        Q = q.reshape(k, S, A)
        for i in range(k):
            a = argmax_random_ties(Q[i], rng)
            V[i] = Q[i][np.arange(S), a]


def bench_plan(seed):
    print("\n3. planning an (optimistic, plug-in) pair after 50 episodes: jitted JAX vs NumPy (min of 15)")
    for name in ("chain", "bumps1d", "bumps2d"):
        env = make_env(name)
        rng = np.random.default_rng(seed)
        L = make_learner(env, LearnerConfig(algo="ucb"), rng)
        for _ in range(50):
            p = rng.integers(0, env.num_actions, (env.horizon, env.num_states))
            L.update(env.rollout(p, rng), env.rollout(p, rng), int(rng.random() < 0.5))
        rm = L.reward_model
        R = np.stack([rm.reward(), rm.reward()])
        rb, tw = rm.widths(), L.trans.widths()
        cr, ct = np.array([1.0, 0.0]), np.array([1.0, 0.0])
        run_jax = lambda: plan_linear(R, rb, cr, tw, ct, L._plan_F, L.trans.PhiTC, L.trans.A.L, rng, env.horizon,
                                      blocked=L._blocked)
        run_jax()
        tj, _ = _best(run_jax, 15)
        tn, _ = _best(lambda: _plan_numpy(R, rb, cr, tw, ct, L, rng), 15)
        print(f"{name:>8}: JAX {tj * 1e3:7.2f} ms   NumPy {tn * 1e3:7.2f} ms   ({tn / tj:.1f}x)")


def bench_ucb(episodes, seed, n_refit=10_000):
    print(f"\n4. ucb with Nyström features: {episodes}-episode run per env (seed {seed}), refit cost at n = {n_refit}")
    print("(wall s on this machine; CPU s of this process in brackets: on a loaded machine the CPU time is the better")
    print(" estimate of the wall time on an idle one)")
    print(f"{'env':>8} {'m':>5} {'learner s/ep':>13} {'eval s/ep':>10} {'refit@1e4 s':>12} {'projected 1e4-episode run':>27}")
    for name in ("chain", "bumps1d", "bumps2d"):
        env = make_env(name)
        cfg = LearnerConfig(algo="ucb")
        t0, c0 = time.perf_counter(), time.process_time()
        res = run_learner(env, cfg, episodes, seed)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        # skip the first 10 episodes: they hold the one-off jit compiles
        per_ep = res.seconds[10:].mean()
        eval_ep = max(wall - res.seconds.sum(), 0.0) / episodes  # exact V^pi1, V^pi2 and bookkeeping
        learner = make_learner(env, cfg, np.random.default_rng(seed))
        Phi = learner.Phi
        rng = np.random.default_rng(seed + 1)
        idx = rng.integers(0, Phi.shape[0], (n_refit, 2, env.horizon))
        X = Phi[idx[:, 0]].sum(1) - Phi[idx[:, 1]].sum(1)
        rm = learner.reward_model
        rm.add_batch(X, rng.integers(0, 2, n_refit).astype(float))
        c1 = time.process_time()
        t_fresh, _ = _best(lambda: rm.refit(max_iter=cfg.newton_iters, tol=0.0), 1)  # first call: fresh Hessian
        c_fresh = time.process_time() - c1
        rm.add(X[0], 1)
        c1 = time.process_time()
        t_refit, _ = _best(lambda: rm.refit(max_iter=cfg.newton_iters, tol=0.0), 2)  # lagged
        c_refit = (time.process_time() - c1) / 2
        # refit cost grows linearly in n: the mean over a run is half the cost at N, paid every refit_every
        # episodes; fresh-Hessian refits happen each time n grows by hessian_refresh (a geometric series)
        n_fresh = 1.0 / (1.0 - 1.0 / cfg.hessian_refresh)
        projected = 10_000 * (per_ep + eval_ep) + (10_000 / cfg.refit_every) * 0.5 * t_refit + n_fresh * t_fresh
        # CPU version: the run's CPU per episode (compiles included) and the refits' CPU
        projected_cpu = 10_000 * cpu / episodes + (10_000 / cfg.refit_every) * 0.5 * c_refit + n_fresh * c_fresh
        print(f"{name:>8} {Phi.shape[1]:>5} {per_ep:>13.4f} {eval_ep:>10.4f} {t_refit:>12.3f} "
              f"{projected / 60:>12.1f} min [{projected_cpu / 60:.1f} min CPU] "
              f"({'<=' if projected_cpu <= 600 else '>'} 10)")


def project_study(episodes, seed):
    """Projected full-study time (experiment.FULL) from a measured fraction: each distinct configuration runs
    ``episodes`` episodes (one seed) for its CPU seconds per episode; the refit part, which grows linearly in
    n, is added from its CPU cost measured at the configuration's N, and the one-off jit compiles once per
    run. Total CPU / 2 workers, since the study's process pool keeps both cores busy (the parallel part is
    ~all of it); process start-up and imports (~1-2 s per run) are not included."""
    import jax

    from quietrl.prefrl.experiment import FULL

    print(f"\n5. full study (experiment.FULL) projected from {episodes}-episode runs of each configuration, seed {seed}")
    total, seen = 0.0, {}
    for spec in FULL:
        for algo in spec.algos:
            key = (spec.env, algo, spec.overrides, spec.episodes)
            if key not in seen:
                jax.clear_caches()  # so that each configuration pays its compiles, as a fresh process would
                env = make_env(spec.env)
                cfg = LearnerConfig(algo=algo, **dict(spec.overrides))
                # a cold 20-episode run pays the jit compiles (every study run is a fresh process and pays
                # them once); a warm run then gives the per-episode rate
                c0 = time.process_time()
                run_learner(env, cfg, 20, seed)
                cold = time.process_time() - c0
                c0 = time.process_time()
                run_learner(env, cfg, episodes, seed + 1)
                per_ep = (time.process_time() - c0) / episodes
                compile_s = max(cold - 20 * per_ep, 0.0)
                refit = 0.0
                if algo != "uniform":
                    learner = make_learner(env, cfg, np.random.default_rng(seed))
                    rm = learner.reward_model if algo != "oracle_ucb" else None
                    if rm is not None:
                        rng = np.random.default_rng(seed + 1)
                        N = spec.episodes
                        idx = rng.integers(0, learner.Phi.shape[0], (N, 2, env.horizon))
                        rm.add_batch(learner.Phi[idx[:, 0]].sum(1) - learner.Phi[idx[:, 1]].sum(1),
                                     rng.integers(0, 2, N).astype(float))
                        rm.refit(max_iter=cfg.newton_iters, tol=0.0)
                        rm.add(learner.Phi[idx[0, 0]].sum(0), 1)
                        c0 = time.process_time()
                        rm.refit(max_iter=cfg.newton_iters, tol=0.0)
                        refit = time.process_time() - c0
                # per run: N episodes at the measured rate + refits every refit_every, half the cost at N on average
                seen[key] = compile_s + spec.episodes * per_ep + (spec.episodes / cfg.refit_every) * 0.5 * refit
            cost = seen[key] * len(spec.seeds)
            total += cost
            print(f"{spec.stage_name:<24}{algo:<12}N={spec.episodes:<6} x{len(spec.seeds)} seeds: {cost / 60:6.1f} CPU min")
    print(f"projected full study: {total / 60:.1f} CPU min, ~{total / 120:.1f} min wall on 2 cores (target <= 60)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,3000,10000")
    ap.add_argument("--episodes", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--parts", default="1,2,3,4", help="comma list of 1-5 (5: the full-study projection)")
    ap.add_argument("--study-episodes", type=int, default=100)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    parts = set(args.parts.split(","))
    t0 = time.perf_counter()
    with threadpool_limits(1):
        if "1" in parts:
            bench_exact(sizes, args.seed)
        if "2" in parts:
            bench_refit(args.seed)
        if "3" in parts:
            bench_plan(args.seed)
        if "4" in parts:
            bench_ucb(args.episodes, args.seed)
        if "5" in parts:
            project_study(args.study_episodes, args.seed)
    print(f"\nwall time {time.perf_counter() - t0:.0f} s (seed {args.seed})")


if __name__ == "__main__":
    main()
