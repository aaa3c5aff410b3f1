"""Benchmark for issue 9: greedy s / c, MCTS, MCTS + learnt ranker and the ranker as an oracle, per lemma at
an equal budget (max(10 x time of s, min-budget) seconds), on shared acceptance theories and our own hard
models; median over seeds. Prints the per-lemma table and the ratios of the issue's targets, all measured
in this run:

- geometric-mean proof size of MCTS + net / s on lemmas where s needs >= 30 steps (target <= 0.7);
- executions to the first proof, MCTS + net / MCTS (target < 1);
- lemmas proved that s does not prove within the same budget (target > 0 on our own models);
- lemmas s proves that MCTS + net (no fallback) does not (acceptance: 0).

Usage: python benchmarks/proofsearch_rl.py [--seeds 3] [--min-budget 60] [--quick] [--out DIR]
(default: about 90 minutes on 2 cores; --quick: our small models, 1 seed, short budgets).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

from quietrl.proofsearch import example_path, parse_file
from quietrl.proofsearch.evaluate import EvalConfig, evaluate_theory, summarise, table
from quietrl.proofsearch.mcts import MCTSConfig

SHARED = Path(os.environ.get("QUIETRL_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared")) / "protocols"

OWN = ["hard_destructor", "hard_key_update", "hard_hash_chain", "client_server", "signed_key_exchange"]
SHARED_SET = ["Tutorial.spthy", "loops/Minimal_Loop_Example.spthy", "loops/Minimal_Crypto_API.spthy",
              "loops/Minimal_Typing_Example.spthy", "loops/Minimal_KeyRenegotiation.spthy"]


def median_records(records: list[dict]) -> list[dict]:
    """One record per (theory, lemma, arm): proved by the majority of seeds, median size and counts."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["theory"], r["lemma"], r["arm"]), []).append(r)
    out = []
    for (t, lem, arm), rs in groups.items():
        proved = [r for r in rs if r["proved"]]
        ok = len(proved) * 2 > len(rs)
        firsts = [r["executions_to_first_proof"] for r in proved if r["executions_to_first_proof"] is not None]
        out.append({"theory": t, "lemma": lem, "arm": arm, "seed": 0, "proved": ok,
                    "verdict": proved[0]["verdict"] if ok else "analysis incomplete",
                    "size": statistics.median(r["size"] for r in proved) if ok else None,
                    "executions_to_first_proof": statistics.median(firsts) if ok and firsts else None,
                    "wall_s": statistics.median(r["wall_s"] for r in rs)})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--min-budget", type=float, default=60.0)
    ap.add_argument("--quick", action="store_true", help="own small models, 1 seed, 8 s budget floor")
    ap.add_argument("--out", default=None, help="write records.jsonl and summary.json here")
    ap.add_argument("--lofo", action="store_true",
                    help="leave-one-theory-out: the ranker starts from training on the other theories")
    args = ap.parse_args(argv)
    if args.quick:
        args.seeds, args.min_budget = 1, 8.0
        problems = [(parse_file(example_path("hard_destructor")), None),
                    (parse_file(example_path("client_server")), None)]
        mcts = MCTSConfig(max_executions=200, searches=3, proofs=2)
    else:
        problems = [(parse_file(example_path(n)), None) for n in OWN]
        problems += [(parse_file(SHARED / p), None) for p in SHARED_SET if (SHARED / p).is_file()]
        mcts = MCTSConfig(max_executions=5000, searches=20, proofs=5)
    cfg = EvalConfig(min_budget_s=args.min_budget, mcts=mcts)
    print(f"# proofsearch RL benchmark: seeds 0..{args.seeds - 1}, budget max(10 x s, {args.min_budget:g} s), "
          f"{len(problems)} theories (machine may be shared: compare ratios, not absolute times)", flush=True)
    t0 = time.perf_counter()
    records = []
    for seed in range(args.seeds):
        for theory, lemmas in problems:
            learner = None
            if args.lofo:
                from quietrl.proofsearch.expert import Learner, train_on

                others = [(t, lem.name) for t, _ in problems if t is not theory for lem in t.lemmas]
                learner = Learner(cfg.net, cfg.expert)
                learner.warmup()
                train_on(others, dataclasses.replace(mcts, rank_lambda=cfg.net_rank_lambda, max_executions=
                                                     min(mcts.max_executions, 300)), learner, seed)
            records += evaluate_theory(theory, cfg, seed, lemmas, learner=learner,
                                       log=lambda r: print(f"  seed {r['seed']} {r['theory']}/{r['lemma']} "
                                                           f"{r['arm']}: {r['verdict']} size={r['size']} "
                                                           f"first={r['executions_to_first_proof']} "
                                                           f"{r['wall_s']:.1f}s", flush=True))
    med = median_records(records)
    print(table(med))
    summ = summarise(med)
    print(json.dumps(summ, indent=1))
    a = summ["arms"]
    own = {parse_file(example_path(n)).name for n in OWN}
    extra_own = sum(1 for r in med if r["arm"] == "mcts_net" and r["proved"] and r["theory"] in own
                    and not next(x for x in med if x["arm"] == "s" and x["theory"] == r["theory"]
                                 and x["lemma"] == r["lemma"])["proved"])
    print("targets (median over seeds):")
    print(f"  size MCTS+net / s on lemmas where s needs >= 30 steps: {a['mcts_net']['size_ratio_vs_s_long']} "
          f"({a['mcts_net']['long_lemmas']} lemmas; target <= 0.7)")
    print(f"  executions to first proof MCTS+net / MCTS: {summ.get('first_proof_executions_net_vs_mcts')} (target < 1)")
    print(f"  own-model lemmas MCTS+net proves and s does not: {extra_own} (target > 0)")
    print(f"  lemmas s proves and MCTS+net does not: {a['mcts_net']['missing_vs_s']} (acceptance: 0)")
    print(f"  ranker as oracle, size / s: {a.get('oracle_net', {}).get('size_ratio_vs_s')}")
    print(f"wall time: {time.perf_counter() - t0:.0f} s")
    if args.out:
        d = Path(args.out)
        d.mkdir(parents=True, exist_ok=True)
        (d / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        (d / "summary.json").write_text(json.dumps(summ, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
