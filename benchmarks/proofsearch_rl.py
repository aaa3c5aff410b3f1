"""Benchmark for issue 9: greedy s / c, MCTS, MCTS + learnt ranker and the ranker as an oracle, per lemma at
an equal budget, on the shared acceptance set (the 17 theories of ``reference_results.tsv`` without
``--auto-sources``, as the conformance benchmark's acceptance list) and our own hard models; median of seeds.

Budget rule (``--budget``). The issue's rule, ``max(10 x time of s, 60 s)`` per lemma and arm, does not fit
90 minutes on 2 cores with our pure-Python engine: with 55 acceptance lemmas + 13 of ours, a search that does
not settle early runs to at least 60 s, so the seeded arms (mcts, mcts_net; oracle_net is greedy but bounded
by the same budget) over 3 seeds can take up to 68 x 60 s x 3 arms x 3 seeds / 2 cores = 306 min, more for
the lemmas whose s is slow (TLS session_key_secrecy: s took 23 CPU-s here, so 230 s per arm); and a
wall-clock budget shrinks with the machine's load. The default is therefore ``--budget executions``: every
arm gets ``E = max(ceil(6 x W), 300)`` engine method executions when s proves the lemma (W, the work of s:
the larger of its proof size and the methods it executed, which for a found trace include the branches
its iterative deepening tried before the cut root-to-trace path) and
``E = --max-steps`` (what s exhausted) when it does not; MCTS arms stop at ``E`` executions (cache misses of
the engine), greedy arms at ``E`` steps. It is equal across arms, independent of the machine's load, and
bounds every arm by about 6x the engine work of s (``--exec-factor``, ``--exec-min``; the issue's rule gives
10x the time of s and at least 60 s per lemma). Until session 12 the default was 3x and 150: the same code
(bce78bb) with 6x and 300, seeds 0-1, against its 3x run on the same seeds, gave MCTS + net size / s 0.686
where s needs >= 30 steps (0.849 at 3x), 4 acceptance exceptions (7) and 4430 CPU-s in the arms' records,
which fits the 90 minutes with 3 seeds. ``--max-cpu`` adds a safety stop in CPU seconds, equal for all arms
(s needs over 150 CPU-s to exhaust 2000 steps on Minimal_Loop_Example's Stop_unique): s runs
under it, the other arms under max(10 x CPU seconds of s, --max-cpu) when s proves the lemma (the issue's
factor: on KAS2 and TLS session_key_secrecy s alone takes 23-26 CPU-s). ``--budget time`` runs the
issue's rule.

Resumable: every (lemma, arm, seed) result is a JSON file under ``--out``/records, written atomically, and
the learners are checkpointed after each lemma; rerunning the same command continues where it stopped.
``--workers N`` spreads the jobs (per theory: greedy s/c once, then one job per seed for mcts and for
mcts_net + oracle_net) over N processes through ``quietrl.core.sweep``. ``--lofo`` adds the
leave-one-family-out arms (spec section 18: F1 classic, F2 Tutorial + csf12, F3 loops; our own models are a
fourth family): a ranker pretrained on the other families (``--pretrain-exec`` executions per lemma) starts
``mcts_lofo`` / ``oracle_lofo``, which keep learning online on the held-out family.

Prints per lemma the median over seeds and the ratios of the issue's targets, all measured in this run:
geometric-mean size ratio of MCTS + net vs s and vs MCTS (all lemmas both prove, and those where s needs
>= 30 steps; target <= 0.7 vs s), executions to the first proof MCTS + net / MCTS (target < 1), lemmas
proved that s does not (target > 0 on our models), and every lemma s proves that MCTS + net (no fallback)
does not (acceptance: none), with wall and CPU seconds per arm.

Usage: python benchmarks/proofsearch_rl.py [--set all|acceptance|own] [--seeds 3] [--workers 2]
       [--out DIR] [--only TEXT] [--arms s,mcts,...] [--lofo] [--quick] [--report-only]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

from quietrl.core.errors import ConfigError
from quietrl.proofsearch import example_path
from quietrl.proofsearch.evaluate import (
    ARMS,
    LONG_PROOF,
    BenchJob,
    EvalConfig,
    load_records,
    median_records,
    run_jobs,
    summarise,
    table,
)
from quietrl.proofsearch.expert import ExpertConfig
from quietrl.proofsearch.mcts import MCTSConfig

SHARED = Path(os.environ.get("QUIETRL_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared")) / "protocols"
OWN = ["hard_destructor", "hard_key_update", "hard_hash_chain", "hard_session_counter", "client_server",
       "signed_key_exchange"]
QUICK = ["hard_destructor", "client_server"]
# Spec section 18's families over the acceptance set (F4, the --auto-sources spore theories, is not in it).
FAMILIES = {"F1": ("classic/",), "F2": ("Tutorial.spthy", "csf12/"), "F3": ("loops/",)}


def acceptance_theories() -> list[Path]:
    """The shared theories of the acceptance set, in the TSV's order ([] when ../shared is absent)."""
    tsv = SHARED / "reference_results.tsv"
    if not tsv.is_file():
        return []
    rows = [r for r in csv.DictReader(open(tsv, encoding="utf-8"), delimiter="\t") if r["flags"] != "--auto-sources"]
    return [SHARED / t for t in dict.fromkeys(r["theory"] for r in rows)]


def family(path: Path) -> str:
    rel = path.relative_to(SHARED).as_posix() if SHARED in path.parents else ""
    for fam, prefixes in FAMILIES.items():
        if any(rel.startswith(p) for p in prefixes):
            return fam
    return "own"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", choices=["all", "acceptance", "own"], default="all")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2, help="worker processes (1: run in this process)")
    ap.add_argument("--out", default="runs/proofsearch_rl_bench", help="records, learners and the summary")
    ap.add_argument("--only", default="", help="only theories whose path contains this text")
    ap.add_argument("--budget", choices=["executions", "time"], default="executions")
    ap.add_argument("--exec-factor", type=float, default=6.0)
    ap.add_argument("--exec-min", type=int, default=300)
    ap.add_argument("--max-steps", type=int, default=2000, help="greedy s's step budget")
    ap.add_argument("--max-cpu", type=float, default=120.0,
                    help="CPU-seconds safety stop per lemma and arm: s's, and the other arms' floor "
                         "(they get max(10 x CPU-s of s, this) where s proves the lemma)")
    ap.add_argument("--min-budget", type=float, default=60.0, help="--budget time: the floor in seconds")
    ap.add_argument("--arms", default=",".join(ARMS),
                    help=f"comma-separated arms to run (s always; default all: {','.join(ARMS)})")
    ap.add_argument("--lofo", action="store_true", help="add the leave-one-family-out arms")
    ap.add_argument("--pretrain-exec", type=int, default=50, help="--lofo: executions per pretraining lemma")
    ap.add_argument("--fpu-floor", type=float, default=MCTSConfig.fpu_floor,
                    help="MCTS arms: floor of an untried method's Q (MCTSConfig.fpu_floor)")
    ap.add_argument("--no-fpu-floor", action="store_true", help="MCTS arms: no floor (the spec's V(s) - delta)")
    ap.add_argument("--fpu-from-start", action="store_true",
                    help="the floor in every search, not only after a lemma's first proof")
    ap.add_argument("--scout-fpu-from", type=int, default=MCTSConfig.scout_fpu_from,
                    help="MCTS arms: before a lemma's first proof, the floor from this search on "
                         "(MCTSConfig.scout_fpu_from; default: not before the first proof)")
    ap.add_argument("--scout-fpu-visits", type=int, default=MCTSConfig.scout_fpu_visits,
                    help="MCTS arms: before a lemma's first proof, the floor at nodes past this many visits "
                         "(MCTSConfig.scout_fpu_visits)")
    ap.add_argument("--no-scout-fpu-visits", action="store_true",
                    help="MCTS arms: no floor before a lemma's first proof at nodes with many visits")
    ap.add_argument("--no-improve", action="store_true",
                    help="MCTS arms: a search after the first proof stops at its re-found proof (no improve)")
    ap.add_argument("--scout-top-n", type=int, default=None,
                    help="MCTS arms: methods executed per new node before the first proof (default: as after)")
    ap.add_argument("--no-net-value", action="store_true",
                    help="MCTS + network: leaf value default_value instead of the value head (policy only)")
    ap.add_argument("--scout-no-net-value", action="store_true",
                    help="MCTS + network: leaf value default_value before the lemma's first proof, the value "
                         "head after it")
    ap.add_argument("--net-rank-lambda", type=float, default=EvalConfig.net_rank_lambda,
                    help="MCTS + network: the engine rank's weight in the prior (EvalConfig.net_rank_lambda)")
    ap.add_argument("--net-scout-rank-lambda", type=float, default=EvalConfig.net_scout_rank_lambda,
                    help="MCTS + network: the rank's weight before a lemma's first proof "
                         "(EvalConfig.net_scout_rank_lambda)")
    ap.add_argument("--no-scout-trace-dfs", action="store_true",
                    help="MCTS arms: before an exists-trace lemma's first trace, PUCT instead of depth first by "
                         "iterative deepening as s (MCTSConfig.scout_trace_dfs)")
    ap.add_argument("--no-scout-net-when-stuck", action="store_true",
                    help="MCTS + network: the network leads from a lemma's first search (by default the engine's "
                         "rank and the default leaf value lead until the first proof, as MCTS, and the network "
                         "orders the untried methods only at nodes past --scout-fpu-visits visits: "
                         "MCTSConfig.scout_net_when_stuck)")
    ap.add_argument("--scout-net-from", type=int, default=None,
                    help="MCTS + network: before a lemma's first proof the network leads from this search on "
                         "(MCTSConfig.scout_net_from; default: only at stalled nodes until the first proof)")
    ap.add_argument("--scout-net-every", type=int, default=1,
                    help="with --scout-net-from: the network leads every this many searches from there on, the "
                         "searches between follow the rank (MCTSConfig.scout_net_every)")
    ap.add_argument("--residual-policy", action="store_true",
                    help="train the ranker's policy on top of the rank prior (ExpertConfig.rank_prior = "
                         "MCTSConfig.rank_lambda): it learns the residual of the engine's ranking")
    ap.add_argument("--tie-goalless", action="store_true",
                    help="simplify and induction share the policy's mean logit, the engine's rank orders them "
                         "(ExpertConfig.tie_goalless)")
    ap.add_argument("--quick", action="store_true", help="two of our small models, 1 seed, small budgets")
    ap.add_argument("--report-only", action="store_true", help="summarise what --out holds, run nothing")
    args = ap.parse_args(argv)
    arms = tuple(dict.fromkeys(["s"] + [a.strip() for a in args.arms.split(",") if a.strip()]))
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        ap.error(f"--arms: unknown {', '.join(unknown)}; choose from {', '.join(ARMS)}")

    try:
        mcts = MCTSConfig(searches=10, proofs=3, fpu_floor=None if args.no_fpu_floor else args.fpu_floor,
                          fpu_after_first_proof=not args.fpu_from_start, improve=not args.no_improve,
                          scout_top_n=args.scout_top_n, scout_fpu_from=args.scout_fpu_from,
                          scout_fpu_visits=None if args.no_scout_fpu_visits else args.scout_fpu_visits,
                          net_value=not args.no_net_value,
                          scout_net_value=False if args.scout_no_net_value else None,
                          scout_trace_dfs=not args.no_scout_trace_dfs,
                          scout_net_when_stuck=not args.no_scout_net_when_stuck,
                          scout_net_from=args.scout_net_from, scout_net_every=args.scout_net_every)
    except ConfigError as e:
        ap.error(str(e))
    if args.quick:
        paths = [example_path(n) for n in QUICK]
        args.seeds, args.exec_factor, args.exec_min, args.max_steps = 1, 3.0, 100, 400
    else:
        paths = []
        if args.set in ("all", "acceptance"):
            paths += acceptance_theories()
        if args.set in ("all", "own"):
            paths += [example_path(n) for n in OWN]
    paths = [Path(p) for p in paths if args.only in str(p)]
    try:
        cfg = EvalConfig(arms=arms, budget=args.budget, exec_factor=args.exec_factor, exec_min=args.exec_min,
                         max_steps=args.max_steps, max_cpu_s=args.max_cpu, min_budget_s=args.min_budget, mcts=mcts,
                         pretrain_exec=args.pretrain_exec, net_rank_lambda=args.net_rank_lambda,
                         net_scout_rank_lambda=args.net_scout_rank_lambda,
                         expert=ExpertConfig(rank_prior=mcts.rank_lambda if args.residual_policy else 0.0,
                                             tie_goalless=args.tie_goalless))
    except ConfigError as e:
        ap.error(str(e))
    seeds = tuple(range(args.seeds))
    out = Path(args.out)
    print(f"# proofsearch RL benchmark: {len(paths)} theories, seeds {list(seeds)}, budget {args.budget} "
          f"(E = max(ceil({args.exec_factor:g} x work of s), {args.exec_min}); {args.max_steps} if s fails), "
          f"{args.workers} worker(s), out {out}", flush=True)
    where = "after the first proof" if mcts.fpu_after_first_proof else "every search"
    if mcts.fpu_after_first_proof and mcts.scout_fpu_from is not None:
        where += f" and from search {mcts.scout_fpu_from} on"
    if mcts.fpu_after_first_proof and mcts.scout_fpu_visits is not None:
        where += f" and at nodes past {mcts.scout_fpu_visits} visits"
    print(f"# MCTS: fpu_floor {mcts.fpu_floor} ({where}), improve {mcts.improve}, scout_top_n {mcts.scout_top_n}, "
          f"net_value {mcts.net_value} (before the first proof {mcts.scout_net_value}); rank lambda with a "
          f"network {cfg.net_rank_lambda} (before the first proof {cfg.net_scout_rank_lambda}), scout_trace_dfs "
          f"{mcts.scout_trace_dfs}, scout_net_when_stuck {mcts.scout_net_when_stuck} (network leads from search "
          f"{mcts.scout_net_from}, every {mcts.scout_net_every}); ranker rank_prior "
          f"{cfg.expert.rank_prior}, "
          f"tie_goalless {cfg.expert.tie_goalless}", flush=True)
    t0 = time.perf_counter()
    if not args.report_only:
        def log(v: dict) -> None:
            print(f"  job {v['job']:8s} {Path(v['theory']).stem:32s} seed {v.get('seed', '*')}: ran {v.get('ran')} "
                  f"(resumed {v.get('done', 0)}) in {v['wall_s']:.0f} s", flush=True)

        cache = str((out / "xla_cache").resolve())
        # several workers: long theories first (better packing), s/c of every theory before the searches;
        # one worker: theory by theory, small ones first, so that a run cut short has whole theories done
        order = sorted(paths, key=lambda p: p.stat().st_size * (-1 if args.workers > 1 else 1))
        if args.workers > 1:
            run_jobs([BenchJob("greedy", str(p), str(out), cfg, seeds) for p in order], args.workers, log)
        kinds = [k for k, arm in (("net", "mcts_net"), ("mcts", "mcts")) if arm in cfg.arms]
        jobs = [BenchJob(kind, str(p), str(out), cfg, (sd,), jax_cache=cache) for sd in seeds for p in order
                for kind in kinds]
        if args.workers <= 1:
            jobs = [j for p in order for j in [BenchJob("greedy", str(p), str(out), cfg, seeds)]
                    + [j for j in jobs if j.theory_path == str(p)]]
        if args.lofo:
            fams = {family(p) for p in paths}
            pre = [BenchJob("pretrain", "", str(out), cfg, (sd,), fold=f, jax_cache=cache,
                            pretrain=tuple(str(p) for p in paths if family(p) != f))
                   for f in sorted(fams) for sd in seeds]
            run_jobs(pre, args.workers, log)
            jobs += [BenchJob("net", str(p), str(out), cfg, (sd,), fold=family(p), jax_cache=cache,
                              pretrain=tuple(str(q) for q in paths if family(q) != family(p)))
                     for sd in seeds for p in order]
        run_jobs(jobs, args.workers, log)
    wall = time.perf_counter() - t0
    names = {}
    for p in paths:
        from quietrl.proofsearch import parse_file

        names[parse_file(p).name] = family(p)
    records = [r for r in load_records(out) if r["theory"] in names and r["seed"] in seeds]
    report(records, names, seeds, wall, args.workers)
    out.mkdir(parents=True, exist_ok=True)
    med = median_records(records)
    (out / "summary.json").write_text(json.dumps({"median": summarise(med), "per_seed": summarise(records),
                                                  "config": dataclasses.asdict(cfg)}, indent=1, default=str))
    (out / "table.txt").write_text(table(med) + "\n")
    return 0


def report(records: list[dict], families: dict[str, str], seeds: tuple[int, ...], wall: float, workers: int) -> None:
    med = median_records(records)
    print(table(med))
    summ = summarise(med)
    a = summ["arms"]

    def f(x):
        return "n/a" if x is None else f"{x:.3f}"

    print(f"\nper arm (median over {len(seeds)} seed(s); proved / lemmas, extra and missing vs s, wall / CPU s summed):")
    for arm, v in a.items():
        print(f"  {arm:11s} {v['proved']:3d}/{v['of']:<3d} extra {v['extra_vs_s']:2d} missing {v['missing_vs_s']:2d} "
              f"size/s {f(v['size_ratio_vs_s'])} (s>={LONG_PROOF}: {f(v['size_ratio_vs_s_long'])} on "
              f"{v['long_lemmas']}) first-proof exec median {v['median_executions_to_first_proof']} "
              f"wall {v['wall_s']:.0f} cpu {v['cpu_s']:.0f}")
    print("targets:")
    print(f"  size MCTS+net / s, lemmas where s needs >= {LONG_PROOF} steps: "
          f"{f(a.get('mcts_net', {}).get('size_ratio_vs_s_long'))} (target <= 0.7); all: "
          f"{f(a.get('mcts_net', {}).get('size_ratio_vs_s'))}")
    print(f"  size MCTS+net / MCTS: all {f(summ.get('size_ratio_net_vs_mcts'))}, s >= {LONG_PROOF}: "
          f"{f(summ.get('size_ratio_net_vs_mcts_long'))}")
    print(f"  executions to first proof MCTS+net / MCTS (geo-mean): {f(summ.get('first_proof_executions_net_vs_mcts'))} "
          "(target < 1)")
    by = {(r["theory"], r["lemma"], r["arm"]): r for r in med}
    for arm in ("mcts_net", "oracle_net", "mcts_lofo", "oracle_lofo"):
        if arm not in a:
            continue
        extra = [(t, lem) for (t, lem, x), r in by.items() if x == arm and r["proved"]
                 and not by.get((t, lem, "s"), {"proved": True})["proved"]]
        print(f"  lemmas {arm} proves that s does not: {len(extra)} "
              f"({', '.join(f'{t}/{lem}' for t, lem in extra) or '-'}; own models: "
              f"{sum(families.get(t) == 'own' for t, _ in extra)})")
    print("acceptance: lemmas s proves that MCTS+net (no fallback) does not, per seed:")
    exceptions, checked, not_run = 0, 0, []
    for (t, lem, x), r in sorted(by.items()):
        if x != "s" or not r["proved"]:
            continue
        runs = [sr for sr in records if sr["theory"] == t and sr["lemma"] == lem and sr["arm"] == "mcts_net"]
        if not runs:
            not_run.append(f"{t}/{lem}")
            continue
        checked += 1
        misses = [sr["seed"] for sr in runs if not sr["proved"]]
        if misses:
            exceptions += 1
            print(f"  {t}/{lem} ({families.get(t)}): s size {r['size']}, missed by seeds {misses} of {len(runs)}")
    print(f"  {exceptions} exception(s) among {checked} lemmas s proves that mcts_net ran on"
          + (f"; not run yet: {len(not_run)} ({', '.join(not_run)})" if not_run else ""))
    # s and c run once per lemma and their record is copied to every seed: count each once
    greedy_once = {(r["theory"], r["lemma"], r["arm"]): r.get("cpu_s") or 0.0
                   for r in records if r["arm"] in ("s", "c")}
    cpu = sum(greedy_once.values()) + sum(r.get("cpu_s") or 0.0 for r in records if r["arm"] not in ("s", "c"))
    print(f"wall time of this invocation: {wall:.0f} s; CPU seconds inside the arms' records (s and c once per "
          f"lemma): {cpu:.0f} "
          f"(/{workers} workers = {cpu / max(workers, 1) / 60:.1f} min; without job start-up, ranker compilation "
          "and proof re-checks; wall times are inflated when the machine is shared)")


if __name__ == "__main__":
    sys.exit(main())
