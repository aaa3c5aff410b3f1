"""Time to target: does Precise reach the best prior sampler's reward sooner? (issue 5 benchmark)

T = 500 GRPO iterations at K = 10 (fixed), 5 seeds, all arms at equal NFE (same compiled program).
R* = best seed-averaged, smoothed (5 evaluations) ODE-evaluation reward of flow_grpo 0.7, cps 0.7 and
dance_grpo 0.3 (MixGRPO reported, not in R*). Prints the saving 1 - t_Precise(R*)/T and the stricter ratio
t_best_prior(R*)/t_Precise(R*) in iterations and seconds, with bootstrap intervals (seeds resampled,
R* and times recomputed per resample), and the cost-parity ratio: the median over >= 20 interleaved
single iterations of Precise's time over Flow-GRPO's.

Seed s means the same pretrained model, rollout noises and evaluation noises in every arm, so the arms are
paired by seed: besides the per-arm (unpaired) bootstrap the script prints the paired one (seeds resampled
jointly) and the paired per-seed difference t_best_prior(R*) - t_Precise(R*) with its interval, the
design that can separate the two samplers when the unpaired interval cannot.
GRPO runs go through quietrl.core.sweep (``--executor local`` runs one process per (arm, seed),
``--executor none`` runs them in this process with one compile for all arms).

    PYTHONPATH=src python benchmarks/precise_time_to_target.py [--seeds 5] [--iterations 500] [--executor local]
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import jax
import numpy as np

from quietrl.precise import analysis
from quietrl.core.sweep import make_executor
from quietrl.precise.experiment import quick_config, run_jobs
from quietrl.precise.flow import pretrain
from quietrl.precise.grpo import make_arm, make_trainer

ARMS = ("flow_grpo", "cps", "dance_grpo", "mixgrpo", "precise")
BASELINES = ["flow_grpo", "cps", "dance_grpo"]


def cost_parity(flow_cfg, grpo_cfg, params, reps: int = 30) -> tuple[float, float, float]:
    """One Precise and one Flow-GRPO iteration, interleaved; returns (median per-round time ratio,
    median Precise seconds, median Flow-GRPO seconds)."""
    cfg = dataclasses.replace(grpo_cfg, iterations=reps, eval_every=1)
    trainer = make_trainer(flow_cfg, cfg)
    arms = {a: make_arm(a, cfg) for a in ("precise", "flow_grpo")}
    key = jax.random.PRNGKey(0)
    state = {a: trainer.init_state(params) for a in arms}
    compiled = trainer.compiled_chunk(state["precise"], arms["precise"], params, key)
    times = {a: [] for a in arms}
    for i in range(reps + 2):
        for a in (("precise", "flow_grpo") if i % 2 else ("flow_grpo", "precise")):
            t0 = time.perf_counter()
            new, _ = compiled(state[a], arms[a], params, key)
            jax.block_until_ready(new)
            if i >= 2:  # first two rounds warm caches
                times[a].append(time.perf_counter() - t0)
            state[a] = new
    tp, tf = float(np.median(times["precise"])), float(np.median(times["flow_grpo"]))
    # per-round ratios (the two arms of a round run back to back) cancel slow drifts of a shared machine's
    # load that a ratio of medians keeps; both are printed
    per_round = float(np.median(np.array(times["precise"]) / np.array(times["flow_grpo"])))
    return per_round, tp, tf


def fmt(v, pct=False):
    if v is None:
        return "not reached"
    return f"{100 * v:.1f}%" if pct else f"{v:.3f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--iterations", type=int, default=500)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--lr", type=float, default=None,
                    help="GRPO lr (default: GRPOConfig's, the setting under which every arm learns)")
    ap.add_argument("--executor", default="local", choices=("none", "local", "ray"))
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()
    study = quick_config()
    flow_cfg = study.flow
    grpo_cfg = dataclasses.replace(study.grpo, iterations=args.iterations, num_steps=10,
                                   lr=args.lr if args.lr is not None else study.grpo.lr)
    t0 = time.perf_counter()
    params = pretrain(flow_cfg, seed=0)
    print(f"pretraining: {time.perf_counter() - t0:.1f} s ({flow_cfg.steps} CFM steps)")

    ratio, tp, tf = cost_parity(flow_cfg, grpo_cfg, params)
    print(f"cost parity (30 interleaved rounds): median precise {1e3 * tp:.2f} ms, flow_grpo {1e3 * tf:.2f} ms "
          f"(ratio of medians {tp / tf:.3f}); median per-round ratio {ratio:.3f} (target <= 1.05)")

    host = jax.device_get(params)
    items = [{"run": None, "flow": flow_cfg, "grpo": grpo_cfg, "arm": a, "eta": None, "seed": s, "params": host}
             for s in range(args.seeds) for a in ARMS]  # seed-major: arms run side by side under one load
    pool = None if args.executor == "none" else make_executor(args.executor, args.workers)
    t0 = time.perf_counter()
    values = run_jobs(items, pool, desc="time-to-target runs")
    print(f"GRPO runs: {len(items)} in {time.perf_counter() - t0:.0f} s (executor {args.executor})")
    curves, times, sde = {}, {}, {}
    iters = None
    for arm_name in ARMS:
        runs = [v for it, v in zip(items, values) if it["arm"] == arm_name]
        iters = np.array([r["iteration"] for r in runs[0]], float)
        curves[arm_name] = np.array([[r["eval_ode_reward"] for r in run] for run in runs])
        sde[arm_name] = np.array([[r["eval_sde_reward"] for r in run] for run in runs])
        times[arm_name] = np.array([[r["train_s"] for r in run] for run in runs])
        m, h = analysis.mean_ci(curves[arm_name][:, -1])
        sm = analysis.smooth(curves[arm_name].mean(0)).max()
        print(f"{arm_name:10s} final ODE-eval reward {m:+.4f} +- {h:.4f}  best smoothed {sm:+.4f}  "
              f"initial {curves[arm_name][:, 0].mean():+.4f}  SDE-eval final {sde[arm_name][:, -1].mean():+.4f}  "
              f"train s {times[arm_name][:, -1].mean():.1f}")

    res = analysis.time_to_target(curves, times, iters, BASELINES)
    boot = analysis.bootstrap_time_to_target(curves, times, iters, BASELINES, num=args.bootstrap)
    paired = analysis.bootstrap_time_to_target(curves, times, iters, BASELINES, num=args.bootstrap, paired=True)
    diff = analysis.paired_reach_difference(curves, iters, BASELINES, num=args.bootstrap)
    print(f"config: T={args.iterations}, K=10, seeds={args.seeds}, lr={grpo_cfg.lr} (annealed), "
          f"LoRA rank {grpo_cfg.lora_rank}, "
          f"{grpo_cfg.prompt_repeats * 8}x{grpo_cfg.group_size} trajectories/iteration")
    print(f"R* = {res['r_star']:+.4f} (best prior: {res['best_baseline']})"
          + ("  DEGENERATE: no baseline improved on its start" if res["degenerate"] else ""))
    for a in ARMS:
        print(f"  {a:10s} reaches R* at iteration {res['reach_iters'][a] if res['reach_iters'][a] is not None else 'not reached'}"
              f", seconds {fmt(res['reach_s'][a])}")
    for key, pct in (("saving_iters", True), ("saving_s", True), ("ratio_iters", False), ("ratio_s", False)):
        lo, hi, frac = boot[key]
        plo, phi, pfrac = paired[key]
        print(f"{key:13s} {fmt(res[key], pct)}   bootstrap 95% [{fmt(lo, pct)}, {fmt(hi, pct)}] "
              f"(defined in {100 * frac:.0f}% of resamples)   paired [{fmt(plo, pct)}, {fmt(phi, pct)}] "
              f"({100 * pfrac:.0f}%)")
    print(f"paired per-seed t_{diff['best_baseline']}(R*) - t_precise(R*): {diff['mean_diff']:+.1f} iterations, "
          f"95% [{diff['ci'][0]:+.1f}, {diff['ci'][1]:+.1f}]; precise first in {diff['method_first']}/"
          f"{diff['seeds']} seeds, ties {diff['ties']} (never reached counts as T + 10)")
    print(f"  per seed: precise {diff['t_method']}  {diff['best_baseline']} {diff['t_best']}")
    print("paper: 13.1-53.2% less wall-clock training time (arXiv:2605.23522, abstract); target >= 13.1%")


if __name__ == "__main__":
    main()
