"""Conformance of quietrl.proofsearch against tamarin-prover 1.11.0 on ../shared/protocols.

Measures what exists today: every shared theory parses; every row of ``reference_results.tsv`` names a
parsed lemma of the same kind; the in-process parse time per theory (median of --repeats); and, per lemma,
the verdict, proof size and in-process time (parse + prove) of the solver within --max-steps (lemmas it
cannot settle within the budget end "analysis incomplete"). Time ratios use
``tamarin_wall_s`` (whole process, another machine: indicative only), over correct verdicts only.
``--check`` exits 1 on a parse or lemma-table mismatch, or when a lemma of the acceptance set (the
--auto-sources rows are reported only) gets a verdict other than Tamarin's, stays incomplete within the
budget, has a proof that the proof checker rejects, or a trace that the replayer refuses or that does not
settle the lemma.

Modes (``--mode``): ``verdicts`` (above, the default, what ``--check`` judges), ``guided`` (*guided replay*:
for every lemma with a proof in ../shared/protocols/proofs/, follow Tamarin's printed goal at every step and
report per lemma how many of Tamarin's steps agree: the same goal is offered, the same case names come out,
and every leaf closes for the same reason; with the first divergence), ``unguided`` (our greedy ``s`` proof
beside Tamarin's, step for step: the chosen goal, the case names and the closing reasons; with the first
divergence), or ``all``.

Usage: python benchmarks/proofsearch_conformance.py [--shared DIR] [--repeats N] [--max-steps N] [--check]
       [--mode verdicts|guided|unguided|all] [--only SUBSTRING] [--acceptance-only] [--no-timing]
"""

from __future__ import annotations

import argparse
import csv
import math
import re
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

from quietrl.core.errors import UserError
from quietrl.proofsearch import parse_file
from quietrl.proofsearch import terms as T
from quietrl.proofsearch.prover import INCOMPLETE, prove_all
from quietrl.proofsearch.types import EXISTS_TRACE
from quietrl.proofsearch.variants import rule_variants

DEFAULT_SHARED = Path(__file__).resolve().parents[2] / "shared"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the ../shared folder")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-steps", type=int, default=400,
                    help="solver step budget per lemma (KAS2_original's proof needs 315 steps)")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 on a parse failure, a lemma-table mismatch, a wrong verdict, an acceptance lemma "
                         "left incomplete, or a proof that fails the checker or a trace the replayer refuses")
    ap.add_argument("--mode", choices=["verdicts", "guided", "unguided", "all"], default="verdicts")
    ap.add_argument("--only", default="", help="only theories whose path contains this text")
    ap.add_argument("--acceptance-only", action="store_true",
                    help="skip the --auto-sources theories (reported only; --check never judges them)")
    ap.add_argument("--no-timing", action="store_true",
                    help="do not re-prove each settled lemma alone to time it (halves the run; CI uses it)")
    args = ap.parse_args(argv)
    root = args.shared / "protocols"
    if args.mode in ("guided", "unguided", "all"):
        if args.mode in ("guided", "all"):
            guided_table(root, args.only, args.max_steps)
        if args.mode in ("unguided", "all"):
            unguided_table(root, args.only, args.max_steps)
        if args.mode != "all":
            return 0
    tsv = root / "reference_results.tsv"
    if not tsv.is_file():
        print(f"error: {tsv} not found", file=sys.stderr)
        return 2
    rows = list(csv.DictReader(open(tsv, encoding="utf-8"), delimiter="\t"))
    if args.only:
        rows = [r for r in rows if args.only in r["theory"]]
    if args.acceptance_only:
        rows = [r for r in rows if r["flags"] != "--auto-sources"]
    by_theory: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_theory[r["theory"]].append(r)

    problems: list[str] = []
    ratios: list[float] = []
    verdicts: list = []
    print(f"{'theory':52s} {'lemmas':>6s} {'rules':>5s} {'vars':>5s} {'parse_ms':>9s} {'tam_min_s':>9s} "
          f"{'ratio':>7s}  verdicts")
    for theory, trows in by_theory.items():
        path = root / theory
        times = []
        try:
            for _ in range(max(1, args.repeats)):
                t0 = time.perf_counter()
                th = parse_file(path)
                times.append(time.perf_counter() - t0)
        except UserError as e:
            problems.append(f"{theory}: parse failed: {e}")
            print(f"{theory:52s} PARSE FAILED: {e}")
            continue
        R = T.RewriteSystem(th.signature.equations)
        n_var = sum(len(rule_variants(r, th.signature, R)) for r in th.rules)
        for r in trows:
            if r["lemma"] == "AUTO_typing":  # generated by --auto-sources (a later increment)
                continue
            lem = th.lemma(r["lemma"])
            if lem is None:
                problems.append(f"{theory}: lemma {r['lemma']} not found")
            elif lem.trace_quantifier != r["kind"]:
                problems.append(f"{theory}: lemma {r['lemma']} is {lem.trace_quantifier}, TSV says {r['kind']}")
        parse_s = statistics.median(times)
        tam_min = min(float(r["tamarin_wall_s"]) for r in trows)
        ratio = parse_s / tam_min
        ratios.append(ratio)
        t0 = time.perf_counter()
        results = {r.lemma: r for r in prove_all(th, max_steps=args.max_steps)}
        prove_s = time.perf_counter() - t0
        settled = [r for r in results.values() if r.verdict != INCOMPLETE]
        print(f"{theory:52s} {len(th.lemmas):6d} {len(th.rules):5d} {n_var:5d} {parse_s * 1e3:9.1f} "
              f"{tam_min:9.3f} {ratio:7.3f}  {len(settled)}/{len(results)} settled in {prove_s:.2f}s")
        for row in trows:
            r = results.get(row["lemma"])
            if r is None:
                continue
            acceptance = row["flags"] != "--auto-sources"
            if acceptance:
                problems += [f"{theory}: {row['lemma']}: {p}" for p in _confirm(th, r, args.max_steps)]
            lemma_s = None
            # time this lemma alone: parse + prove (its helpers included)
            if r.verdict != INCOMPLETE and not args.no_timing:
                t1 = time.perf_counter()
                prove_all(parse_file(path), [row["lemma"]], max_steps=args.max_steps)
                lemma_s = time.perf_counter() - t1
            verdicts.append((theory, row, r, acceptance, lemma_s))
    gm = math.exp(sum(math.log(r) for r in ratios) / len(ratios)) if ratios else float("nan")
    print(f"\n{'theory':40s} {'lemma':32s} {'tamarin':24s} {'ours':26s} {'steps':>9s} {'ours_s':>7s} "
          f"{'tam_s':>6s}")
    same = wrong = 0
    time_ratios = []
    for theory, row, r, acceptance, lemma_s in verdicts:
        if r.verdict == INCOMPLETE:
            continue
        ok = r.verdict == row["result"]
        same += ok
        if not ok:
            wrong += 1
            if acceptance:
                problems.append(f"{theory}: {row['lemma']}: ours {r.verdict}, Tamarin {row['result']}")
        if ok and lemma_s is not None:
            time_ratios.append(lemma_s / float(row["tamarin_wall_s"]))
        ours_s = f"{lemma_s:7.3f}" if lemma_s is not None else f"{'-':>7s}"
        print(f"{theory:40s} {row['lemma']:32s} {row['result']:24s} {r.verdict:26s} "
              f"{r.steps:4d}/{row['steps']:>4s} {ours_s} {float(row['tamarin_wall_s']):6.3f}")
    print(f"\ntheories parsed: {len(ratios)}/{len(by_theory)}; TSV rows: {len(rows)}; lemmas with a verdict: "
          f"{same + wrong} (same as Tamarin: {same}, different: {wrong}); others 'analysis incomplete' "
          f"(budget {args.max_steps} steps)")
    if time_ratios:
        gmt = math.exp(sum(math.log(x) for x in time_ratios) / len(time_ratios))
        print(f"geometric mean of in-process time (parse + prove) / tamarin_wall_s over correct verdicts: "
              f"{gmt:.3f} (n={len(time_ratios)}; reference timed on another machine)")
    print(f"geometric mean of parse time / Tamarin's fastest lemma (whole process, other machine): {gm:.3f}")
    for p in problems:
        print(f"PROBLEM: {p}")
    if args.check and problems:
        return 1
    return 0


def _confirm(theory, r, budget: int) -> list[str]:
    """What is wrong with a result of the acceptance set: incomplete within ``budget`` steps (the issue wants
    Tamarin's verdict on every lemma), a closed proof the proof checker rejects, a trace the replayer refuses
    or on which the lemma's formula does not evaluate as the verdict says."""
    from quietrl.proofsearch.proofcheck import check_proof
    from quietrl.proofsearch.replay import holds, replay

    if r.verdict == INCOMPLETE:
        return [f"analysis incomplete within {budget} steps ({r.reason or 'budget'})"]
    rep = check_proof(theory, r.lemma, r.tree)
    out = [f"proof checker: {p}" for p in rep.problems[:3]]
    if r.trace:
        lem = theory.lemma(r.lemma)
        if not replay(theory, list(r.trace)).ok:
            out.append("the trace replayer refuses the found trace")
        elif holds(theory, list(r.trace), lem.formula) != (lem.trace_quantifier == EXISTS_TRACE):
            out.append("the lemma's formula does not evaluate on the trace as the verdict says")
    return out


# ---------------------------------------------------------------- step-by-step comparison with Tamarin


def tamarin_proofs(root: Path, only: str = "") -> list[tuple[Path, str, str]]:
    """(theory file, lemma name, proof script text) for every lemma proof in ``root/proofs``."""
    from quietrl.proofsearch.proofcheck import analyzed_proofs

    out = []
    for analyzed in sorted((root / "proofs").rglob("*_analyzed.spthy")):
        rel = analyzed.relative_to(root / "proofs")
        theory = root / rel.parent / rel.name.replace("_analyzed.spthy", ".spthy")
        if only and only not in str(rel):
            continue
        for name, body in analyzed_proofs(analyzed.read_text(encoding="utf-8")):
            out.append((theory, name, body))
    return out


def _match_method(text: str, offered: list):
    """Our offered method for Tamarin's step ``text``: exact text, else equal after mapping index suffixes,
    else equal without them, else equal after renaming variables by first occurrence (ties: our ranking
    order)."""
    from quietrl.proofsearch.render import normalise_goal

    def unsuffixed(t: str) -> str:  # index suffixes dropped: Tamarin's ~nc is our ~nc.1, not our ~ns
        return re.sub(r"\.\d+", "", " ".join(t.split()))

    for key in (lambda t: " ".join(t.split()), lambda t: normalise_goal(t, rename=False), unsuffixed,
                normalise_goal):
        want = key(text)
        for m in offered:
            if key(m.text()) == want:
                return m
    return None


def _has_solved(node) -> bool:
    return node.leaf == "solved" or any(_has_solved(c) for _, c in node.cases)


def _leaf_of(state) -> str:
    if state.status == "contradictory":
        return f"contradiction /* {state.constraints.contradiction} */"
    return "SOLVED" if state.status == "solved" else "open"


def guided_replay(theory, lemma, tam, budget: int) -> tuple[int, int, str]:
    """Follow Tamarin's proof ``tam`` (a ScriptNode): (agreeing steps, Tamarin's steps, first divergence)."""
    from quietrl.proofsearch.system import apply, initial_system, methods

    agree = 0
    first = ""
    steps = [0]

    def note(path, what):
        nonlocal first
        if not first:
            first = f"{'/'.join(p or '·' for p in path) or 'root'}: {what}"

    def walk(state, node, path):
        nonlocal agree
        if node.method is None:
            want = ("SOLVED" if node.leaf == "solved" else f"contradiction /* {node.note} */"
                    if node.leaf == "contradiction" else "sorry")
            got = _leaf_of(state)
            if got == want:
                agree += 1
            else:
                note(path, f"Tamarin closes with {want}, ours is {got}")
            return
        if steps[0] >= budget:
            note(path, f"step budget {budget} exhausted")
            return
        offered = methods(state)
        m = _match_method(node.method, offered)
        if m is None:
            note(path, f"{node.method} not offered ({_leaf_of(state)}; ours first: "
                       f"{offered[0].text() if offered else 'none'})")
            return
        steps[0] += 1
        try:
            cases = dict(apply(state, m))
        except NotImplementedError as e:
            note(path, f"{node.method} does not execute: {e}")
            return
        theirs = [n for n, _ in node.cases if n or len(node.cases) > 1]
        ours = [n for n in cases if n or len(cases) > 1]
        # A proof that found a trace is printed cut to its path: its steps show only the case followed.
        if sorted(theirs) == sorted(ours) or (cut and set(theirs) <= set(ours)):
            agree += 1
        else:
            note(path, f"{node.method}: cases ours {sorted(ours)} vs Tamarin {sorted(theirs)}")
        for name, child in node.cases:
            if name in cases:
                walk(cases[name], child, path + (name,))

    cut = _has_solved(tam)
    walk(initial_system(theory, lemma, "s"), tam, ())
    return agree, tam.size(), first


def _tree_diff(ours, tam, path=()) -> str:
    """First difference between our proof tree (ProofNode) and Tamarin's (ScriptNode), '' if none."""
    from quietrl.proofsearch.render import normalise_goal

    where = "/".join(p or "·" for p in path) or "root"
    if (ours.method is None) != (tam.method is None):
        got = ours.method or f"{ours.leaf} {ours.note}".strip()
        want = tam.method or f"{tam.leaf} {tam.note}".strip()
        return f"{where}: ours {got}, Tamarin {want}"
    if ours.method is None:
        if ours.leaf != tam.leaf or (tam.leaf == "contradiction" and ours.note != tam.note):
            return f"{where}: ours {ours.leaf} /* {ours.note} */, Tamarin {tam.leaf} /* {tam.note} */"
        return ""
    if normalise_goal(ours.method) != normalise_goal(tam.method):  # variables renamed by first occurrence
        return f"{where}: ours {ours.method}, Tamarin {tam.method}"
    a, b = [n for n, _ in ours.cases], [n for n, _ in tam.cases]
    if sorted(a) != sorted(b):
        return f"{where}: {tam.method}: cases ours {sorted(a)} vs Tamarin {sorted(b)}"
    theirs = dict(tam.cases)
    for name, child in ours.cases:
        d = _tree_diff(child, theirs[name], path + (name,))
        if d:
            return d
    return ""


def _readable_proofs(root: Path, only: str):
    """(rel, theory, lemma, Tamarin's parsed proof) for each proof in proofs/; a line for each one skipped."""
    from quietrl.proofsearch.proofcheck import ScriptError, parse_script

    for path, name, text in tamarin_proofs(root, only):
        theory = parse_file(path)
        lemma = theory.lemma(name)
        rel = str(path.relative_to(root))
        if lemma is None:
            print(f"{rel:44s} {name:34s} {'-':>11s}  not in the theory (generated by --auto-sources)")
            continue
        try:
            tam = parse_script(text)
        except ScriptError as e:
            print(f"{rel:44s} {name:34s} {'-':>11s}  Tamarin's proof unreadable: {e}")
            continue
        yield rel, theory, lemma, tam


def guided_table(root: Path, only: str, budget: int) -> None:
    print(f"guided replay (follow Tamarin's goal at every step; step budget {budget} per lemma)")
    print(f"{'theory':44s} {'lemma':34s} {'agree':>11s}  first divergence")
    total = full = 0
    for rel, theory, lemma, tam in _readable_proofs(root, only):
        name = lemma.name
        t0 = time.perf_counter()
        agree, size, first = guided_replay(theory, lemma, tam, budget)
        if "auto-sources" not in rel:  # the spore theories are reported only
            total += 1
            full += not first
        print(f"{rel:44s} {name:34s} {agree:5d}/{size:<5d}  {first or 'all steps agree'} "
              f"({time.perf_counter() - t0:.1f}s)", flush=True)
    print(f"guided replay: {full}/{total} lemmas outside auto-sources agree at every step (case names and "
          f"closing reasons)\n")


def unguided_table(root: Path, only: str, budget: int) -> None:
    from quietrl.proofsearch.prover import prove

    print(f"unguided s (our greedy proof beside Tamarin's; step budget {budget} per lemma)")
    print(f"{'theory':44s} {'lemma':34s} {'steps':>11s}  first divergence")
    total = same = 0
    for rel, theory, lemma, tam in _readable_proofs(root, only):
        name = lemma.name
        t0 = time.perf_counter()
        r = prove(theory, lemma, budget, "s")
        diff = _tree_diff(r.tree, tam)
        if "auto-sources" not in rel:
            total += 1
            same += not diff
        print(f"{rel:44s} {name:34s} {r.steps:5d}/{tam.size():<5d}  {diff or 'step for step'} "
              f"({time.perf_counter() - t0:.1f}s)", flush=True)
    print(f"unguided s: {same}/{total} lemmas outside auto-sources follow Tamarin's proof step for step\n")


if __name__ == "__main__":
    sys.exit(main())
