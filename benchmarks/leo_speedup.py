"""LEO vs explicit all-goals relabelling: update time per K, baseline efficiency, full-loop SPS ratio.

Setup (issue 4): one-hot Craftax-Classic-sized observations (D = 1562, A = 17; synthetic goal masks),
the 4x1024 trunk, the baseline's input [observation, goal mask], a batch of 512 transitions,
minibatch 256, one epoch; both updates jitted scans; compile excluded, median of --repeats calls.
The ratios are measured in this run; nothing is hard-coded.

    python benchmarks/leo_speedup.py                      # the issue's K list (long on 2 CPU cores)
    python benchmarks/leo_speedup.py --ks 8,16,32 --trunk 256x2 --loop-envs 32
    python benchmarks/leo_speedup.py --ks 136,512 --extrapolate-from 8,24 --loop-envs 0

--extrapolate-from N1,N2 times the baseline cut to N1 and N2 minibatches per epoch and extrapolates
linearly to the full count (its scan of identical steps is linear in the count); rows marked "extrap".
Use it where one full baseline update takes too long on a shared machine (1024x4 at K >= 136).
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import jax


def main() -> None:
    from quietrl.leo.speedup import SpeedupSetup, loop_sps, time_updates

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ks", default="8,16,32,64,128,136,256,512")
    ap.add_argument("--trunk", default="1024x4")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--minibatch", type=int, default=256)
    ap.add_argument("--loop-envs", type=int, default=64, help="envs for the gridworld full-loop SPS ratio (0: skip)")
    ap.add_argument("--extrapolate-from", default=None,
                    help="comma-separated minibatch counts: time the baseline cut to each, extrapolate to full")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args()

    setup = SpeedupSetup(trunk=args.trunk, batch=args.batch, minibatch=args.minibatch)
    print(f"# jax {jax.__version__} on {jax.devices()[0].platform} ({platform.processor() or platform.machine()}), "
          f"D={setup.obs_dim} A={setup.num_actions} trunk={setup.trunk} B={setup.batch} mb={setup.minibatch} "
          f"epochs={setup.epochs} seed={args.seed}", flush=True)
    print("# times: median wall seconds (LEO interleaved with the baseline); cpu: the same ratios from process "
          "CPU time, steadier on a shared machine", flush=True)
    print(f"{'K':>5} {'LEO s':>9} {'relabel s':>10} {'ratio':>8} {'cpu ratio':>9} {'model':>7} {'PQN s':>8} "
          f"{'per-pair/PQN':>12} {'cpu':>5} {'LEO+pass s':>10} {'ratio':>7} {'baseline':>8}", flush=True)
    cuts = tuple(int(x) for x in args.extrapolate_from.split(",")) if args.extrapolate_from else None
    rows = []
    for k in [int(x) for x in args.ks.split(",")]:
        t0 = time.perf_counter()
        r = time_updates(setup, k, repeats=args.repeats, seed=args.seed, relabel_minibatches=cuts)
        r["wall_s"] = time.perf_counter() - t0
        rows.append(r)
        print(f"{k:>5} {r['leo_s']:>9.4f} {r['relabel_s']:>10.3f} {r['ratio']:>7.1f}x {r['ratio_cpu']:>8.1f}x "
              f"{r['model']:>6.1f}x {r['pqn_s']:>8.4f} {r['per_pair_over_per_transition']:>12.2f} "
              f"{r['per_pair_over_per_transition_cpu']:>5.2f} {r['leo_target_pass_s']:>10.4f} "
              f"{r['ratio_with_target_pass']:>6.1f}x "
              f"{('extrap>=' if r['relabel_lower_bound'] else 'extrap') if r['relabel_extrapolated'] else 'full':>8}",
              flush=True)
        if r["relabel_extrapolated"]:
            pts = ", ".join(f"{n} mb: {w:.2f} s wall / {c:.2f} s cpu" for n, w, c in r["relabel_points"])
            print(f"#   K={k}: baseline cut to {pts}; full = {r['relabel_minibatches']} mb"
                  + ("; the fit fell below the dearest cut: its time is used, a lower bound ('extrap>=')"
                     if r["relabel_lower_bound"] else ""), flush=True)
    out = {"setup": {"trunk": setup.trunk, "batch": setup.batch, "minibatch": setup.minibatch,
                     "obs_dim": setup.obs_dim, "num_actions": setup.num_actions,
                     "platform": jax.devices()[0].platform}, "updates": rows}
    if args.loop_envs > 0:
        from quietrl.leo.train import default_config  # needs gymnax

        # Gridworld 16x16 at wall 0.3 (K = 174), LEO's rollout settings for both learners.
        common = dict(map_size=16, wall_density=0.3, num_envs=args.loop_envs, num_steps=32,
                      updates_per_chunk=1, total_timesteps=args.loop_envs * 32 * 2)
        loop = loop_sps(default_config("leo", **common), default_config("relabel_all", **common))
        out["loop"] = loop
        print(f"gridworld 16x16 (K=174) full loop, {args.loop_envs} envs x 32 steps: LEO {loop['leo_sps']:.0f} SPS, "
              f"relabel {loop['relabel_sps']:.1f} SPS, ratio {loop['sps_ratio']:.1f}x", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
