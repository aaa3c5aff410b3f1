"""prefrl scaling benchmark (issue 8 targets), every ratio against a baseline measured in the same run.

1. Exact reward model at n = 1e3, 3e3, 1e4 episodes (bumps1d grid, |Z| = 303, H = 8):
   - episode update: one row append to the Cholesky factor of K^D + lam I, log-det update, cached widths
     for every grid state-action (O(n^2 + n|Z|));
   - from-scratch refactorisation of the same model (Gram, Cholesky, widths: O(n^3)) = the baseline;
   - refit: one dual Newton step with PCG (O(n^2) per CG iteration), and the primal Nyström refit (3 Newton
     steps, m = 90) for comparison;
   - planning: optimistic DP with both bonuses (independent of n in the Nyström learner).
   Targets: update at 1e4 <= 0.2 s and >= 50x faster than the refactorisation.
2. `ucb` with Nyström features, seconds per episode on each environment (measured over a short run),
   and the refit cost at n = 1e4 observations, giving a projected 1e4-episode run time (target <= 10 min).

Usage: python benchmarks/prefrl_scaling.py [--sizes 1000,3000,10000] [--episodes 300]
Single-threaded BLAS (threadpoolctl) so the numbers are per core.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from quietrl.prefrl.envs import make_env
from quietrl.prefrl.estimators import ExactRewardModel, PreferenceRewardModel
from quietrl.prefrl.features import grid_features
from quietrl.prefrl.kernels import state_action_kernel
from quietrl.prefrl.learners import make_learner, run_learner
from quietrl.prefrl.planning import plan
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


def bench_exact(sizes):
    env = make_env("bumps1d")
    k = state_action_kernel("se", 0.1, 1)
    Kzz = k(env.features)
    Phi = grid_features(env, k, 30)
    rng = np.random.default_rng(0)
    nmax = max(sizes)
    z1, z2, lab = _episodes(env, nmax + 5, rng)
    print(f"exact reward model on bumps1d (|Z| = {Kzz.shape[0]}, H = {env.horizon})")
    print(f"{'n':>7} {'update s':>10} {'refactor s':>11} {'speed-up':>9} {'dual refit s (CG its)':>22} "
          f"{'primal refit s':>15} {'plan s':>8}")
    rows = []
    for n in sizes:
        t0 = time.perf_counter()
        model = ExactRewardModel.from_batch(Kzz, z1[:n], z2[:n], lab[:n], capacity=n + 8)
        t_scratch = time.perf_counter() - t0  # Gram + Cholesky + widths from scratch at n
        ups = []
        for j in range(3):
            t0 = time.perf_counter()
            model.add(z1[n + j], z2[n + j], int(lab[n + j]))
            model.widths()
            ups.append(time.perf_counter() - t0)
        t_up = min(ups)
        t0 = time.perf_counter()
        info = model.refit(newton_steps=1, cg_tol=1e-6, cg_max=100)
        t_refit = time.perf_counter() - t0
        pm = PreferenceRewardModel(Phi)
        pm.add_batch(Phi[z1[:n]].sum(1) - Phi[z2[:n]].sum(1), lab[:n].astype(float))
        t_primal, _ = _best(lambda: pm.refit(max_iter=3, tol=0.0), 2)
        widths = pm.widths()
        r = pm.reward()
        pr = np.random.default_rng(0)
        t_plan, _ = _best(lambda: plan(env.horizon, env.num_states, env.num_actions, r,
                                       lambda v: (env.P @ v).ravel(), pr, reward_bonus=widths,
                                       transition_bonus=widths, beta_r=1.0, beta_P=1.0))
        print(f"{n:>7} {t_up:>10.4f} {t_scratch:>11.3f} {t_scratch / t_up:>8.0f}x "
              f"{t_refit:>14.3f} ({info['cg']:>3}) {t_primal:>15.4f} {t_plan:>8.4f}")
        rows.append((n, t_up, t_scratch, t_refit, t_primal, t_plan))
        del model
    n, t_up, t_scratch = rows[-1][:3]
    print(f"target at n = {n}: update {t_up:.3f} s (<= 0.2: {t_up <= 0.2}), "
          f"{t_scratch / t_up:.0f}x faster than refactorisation (>= 50: {t_scratch / t_up >= 50})")
    if len(rows) > 1:
        ns = np.log([r[0] for r in rows])
        for name, col in (("update", 1), ("refactor", 2)):
            print(f"log-log cost slope of {name}: {np.polyfit(ns, np.log([r[col] for r in rows]), 1)[0]:.2f}")


def bench_ucb(episodes, n_refit=10_000):
    print(f"\nucb with Nyström features: {episodes}-episode run per env, refit cost at n = {n_refit}")
    print(f"{'env':>8} {'m':>5} {'s/episode':>10} {'refit@1e4 s':>12} {'projected 1e4-episode run':>27}")
    for name in ("chain", "bumps1d", "bumps2d"):
        env = make_env(name)
        cfg = LearnerConfig(algo="ucb")
        t0 = time.perf_counter()
        res = run_learner(env, cfg, episodes, 0)
        per_ep = res.seconds.mean()
        learner = make_learner(env, cfg, np.random.default_rng(0))
        Phi = learner.Phi
        rng = np.random.default_rng(1)
        idx = rng.integers(0, Phi.shape[0], (n_refit, 2, env.horizon))
        X = Phi[idx[:, 0]].sum(1) - Phi[idx[:, 1]].sum(1)
        rm = learner.reward_model
        rm.add_batch(X, rng.integers(0, 2, n_refit).astype(float))
        t_refit, _ = _best(lambda: rm.refit(max_iter=cfg.newton_iters, tol=0.0), 2)
        # refit cost grows linearly in n: mean over a run = half the cost at N, paid every refit_every episodes
        projected = 10_000 * per_ep + (10_000 / cfg.refit_every) * 0.5 * t_refit
        print(f"{name:>8} {Phi.shape[1]:>5} {per_ep:>10.4f} {t_refit:>12.3f} {projected / 60:>20.1f} min "
              f"({'<=' if projected <= 600 else '>'} 10)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,3000,10000")
    ap.add_argument("--episodes", type=int, default=300)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    t0 = time.perf_counter()
    with threadpool_limits(1):
        bench_exact(sizes)
        bench_ucb(args.episodes)
    print(f"\nwall time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
