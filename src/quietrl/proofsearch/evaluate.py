"""The evaluation harness: per theory and lemma, the arms of spec section 19 at an equal budget.

Arms:
- ``s``, ``c``: the engine's greedy autoprover with that ranking (step budget ``max_steps``);
- ``mcts``: AND/OR MCTS without a network (rank prior, ``λ > 0``);
- ``mcts_net``: MCTS + the ranker learnt online on this theory (random init per theory, lemmas in file
  order, training inside the budget; no fallback to ``s``);
- ``oracle_net``: the ranker after the theory's online training, as a greedy oracle on ``s`` pre-sorting
  (the engine's ``O`` hook, in-process; :mod:`~quietrl.proofsearch.oracle_export` runs the same as a
  Tamarin oracle script).

Budget per lemma: ``max(budget_factor × time of s, min_budget_s)`` seconds of wall time, equal for every
arm (the searches stop at it; a greedy arm that runs over it counts as not proved). Every reported proof
is re-checked with the engine's proof checker (found traces with its replayer); a proof that fails the
check is reported as not proved.

Per lemma: proved, verdict, proof size (Tamarin's count; a trace's root-to-trace path), method executions
to the first proof (MCTS arms), wall time. Summary: lemmas proved per arm, geometric-mean size ratio to
``s`` where both prove (all, and lemmas where ``s`` needs >= 30 steps), lemmas proved that ``s`` does not.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from quietrl.core.errors import ConfigError
from quietrl.proofsearch.env import check_proof
from quietrl.proofsearch.expert import ExpertConfig, Learner, search_with_learning
from quietrl.proofsearch.mcts import MCTSConfig, search_lemma
from quietrl.proofsearch.networks import NetConfig
from quietrl.proofsearch.prover import INCOMPLETE, prove
from quietrl.proofsearch.types import Theory

ARMS = ("s", "c", "mcts", "mcts_net", "oracle_net")
LONG_PROOF = 30  # "lemmas where s needs >= 30 steps" (issue 9's target)


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Arms and budgets (issue 9: max(10 × time of s, 60 s) per lemma; quick runs use smaller floors)."""

    arms: tuple[str, ...] = ARMS
    budget_factor: float = 10.0
    min_budget_s: float = 60.0
    max_steps: int = 2000                 # greedy arms' step budget
    mcts: MCTSConfig = MCTSConfig(max_executions=100_000, searches=20, proofs=5)
    net_rank_lambda: float = 0.0          # the rank prior's weight with a network (paper default λ = 0)
    net: NetConfig = NetConfig()
    expert: ExpertConfig = ExpertConfig()

    def __post_init__(self) -> None:
        unknown = [a for a in self.arms if a not in ARMS]
        if unknown:
            raise ConfigError(f"EvalConfig.arms: unknown {', '.join(unknown)}; choose from {', '.join(ARMS)}")
        if "s" not in self.arms:
            raise ConfigError("EvalConfig.arms must include s (the budget and the ratios are taken from it)")
        if "oracle_net" in self.arms and "mcts_net" not in self.arms:
            raise ConfigError("EvalConfig.arms: oracle_net uses the ranker trained by mcts_net; add mcts_net")
        if self.budget_factor <= 0 or self.min_budget_s <= 0 or self.max_steps < 1:
            raise ConfigError("EvalConfig budgets must be positive")


class RankerOracle:
    """The learnt ranker behind the engine's oracle interface (``order(lemma, goal_texts)``), in-process."""

    def __init__(self, learner: Learner):
        self.learner = learner
        self.calls = 0

    def order(self, lemma: str, goal_texts: list[str]) -> list[int]:
        self.calls += 1
        if not goal_texts:
            return []
        logits, _ = self.learner.predict_texts([f"solve( {g} )" for g in goal_texts])
        return [int(i) for i in np.argsort(-logits, kind="stable")]


def _greedy(theory: Theory, lemma_name: str, heuristic: str, max_steps: int, oracle=None) -> dict[str, Any]:
    lem = theory.lemma(lemma_name)
    t0 = time.perf_counter()
    r = prove(theory, lem, max_steps, heuristic, oracle=oracle)
    wall = time.perf_counter() - t0
    ok = r.verdict != INCOMPLETE
    problems = ""
    if ok:
        rep = check_proof(theory, lem, r.tree)
        ok, problems = rep.ok, "; ".join(rep.problems[:2])
    return {"verdict": r.verdict if ok else INCOMPLETE, "proved": ok, "size": r.steps if ok else None,
            "executions": None, "executions_to_first_proof": None, "wall_s": wall, "check": problems}


def evaluate_theory(theory: Theory, cfg: EvalConfig, seed: int = 0, lemmas: list[str] | None = None,
                    log: Callable[[dict[str, Any]], None] | None = None,
                    learner: Learner | None = None) -> list[dict[str, Any]]:
    """Run every arm on every lemma (file order) of ``theory``; one record per (lemma, arm).

    The ``mcts_net`` arm starts from ``learner`` when given (leave-one-family-out: trained on other
    theories) and otherwise from a random initialisation (the paper's per-theory protocol); it keeps
    learning online either way.
    """
    names = lemmas or [lem.name for lem in theory.lemmas]
    if learner is None and "mcts_net" in cfg.arms:
        learner = Learner(cfg.net, dataclasses.replace(cfg.expert, seed=cfg.expert.seed + seed))
    if learner is not None:
        learner.warmup()  # XLA compilation is paid once here, outside the per-lemma budgets
    records = []
    for name in names:
        s = _greedy(theory, name, "s", cfg.max_steps)
        budget = max(cfg.budget_factor * s["wall_s"], cfg.min_budget_s)
        per_arm = {"s": s}
        for arm in cfg.arms:
            if arm == "s":
                continue
            if arm == "c":
                per_arm[arm] = _greedy(theory, name, "c", cfg.max_steps)
            elif arm in ("mcts", "mcts_net"):
                deadline = time.perf_counter() + budget
                if arm == "mcts":
                    r = search_lemma(theory, name, cfg.mcts, seed=seed, deadline=deadline)
                else:
                    r = search_with_learning(theory, name, learner,
                                             dataclasses.replace(cfg.mcts, rank_lambda=cfg.net_rank_lambda),
                                             seed=seed, deadline=deadline)
                per_arm[arm] = {"verdict": r.verdict, "proved": r.proved, "size": r.size,
                                "executions": r.executions, "executions_to_first_proof": r.executions_to_first_proof,
                                "wall_s": r.wall_s, "check": "; ".join(r.rejected[:1])}
            elif arm == "oracle_net":
                per_arm[arm] = _greedy(theory, name, "O", cfg.max_steps, RankerOracle(learner))
        for arm, rec in per_arm.items():
            if arm in ("c", "oracle_net") and rec["wall_s"] > budget * 1.05:
                rec = dict(rec, proved=False, verdict=INCOMPLETE, size=None, check="over the time budget")
            row = {"theory": theory.name, "lemma": name, "arm": arm, "seed": seed, "budget_s": budget, **rec}
            records.append(row)
            if log is not None:
                log(row)
    return records


def _gmean(xs: list[float]) -> float | None:
    return float(math.exp(sum(math.log(x) for x in xs) / len(xs))) if xs else None


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-arm totals and the ratios of the issue's targets (see the module docstring)."""
    by = {(r["theory"], r["lemma"], r["arm"], r["seed"]): r for r in records}
    arms = sorted({r["arm"] for r in records}, key=lambda a: ARMS.index(a))
    lemmas = sorted({(r["theory"], r["lemma"], r["seed"]) for r in records})
    out: dict[str, Any] = {"lemmas": len(lemmas), "arms": {}}
    for arm in arms:
        rows = [by.get((t, lem, arm, sd)) for t, lem, sd in lemmas]
        rows = [r for r in rows if r is not None]
        s_rows = {(r["theory"], r["lemma"], r["seed"]): by.get((r["theory"], r["lemma"], "s", r["seed"])) for r in rows}
        both = [(r["size"], s_rows[k]["size"]) for r in rows
                for k in [(r["theory"], r["lemma"], r["seed"])] if r["proved"] and s_rows[k] and s_rows[k]["proved"]]
        long = [(a, b) for a, b in both if b >= LONG_PROOF]
        extra = sum(1 for r in rows if r["proved"] and not s_rows[(r["theory"], r["lemma"], r["seed"])]["proved"])
        missing = sum(1 for r in rows if not r["proved"] and s_rows[(r["theory"], r["lemma"], r["seed"])]["proved"])
        firsts = [r["executions_to_first_proof"] for r in rows if r.get("executions_to_first_proof") is not None]
        out["arms"][arm] = {
            "proved": sum(r["proved"] for r in rows), "of": len(rows),
            "size_ratio_vs_s": _gmean([a / b for a, b in both]),
            "size_ratio_vs_s_long": _gmean([a / b for a, b in long]), "long_lemmas": len(long),
            "extra_vs_s": extra, "missing_vs_s": missing,
            "median_executions_to_first_proof": float(np.median(firsts)) if firsts else None,
            "wall_s": sum(r["wall_s"] for r in rows),
        }
    if "mcts" in arms and "mcts_net" in arms:
        pairs = [(by[(t, lem, "mcts_net", sd)]["size"], by[(t, lem, "mcts", sd)]["size"]) for t, lem, sd in lemmas
                 if (t, lem, "mcts", sd) in by and (t, lem, "mcts_net", sd) in by
                 and by[(t, lem, "mcts", sd)]["proved"] and by[(t, lem, "mcts_net", sd)]["proved"]]
        out["size_ratio_net_vs_mcts"] = _gmean([a / b for a, b in pairs])
        fe = [(by[(t, lem, "mcts_net", sd)]["executions_to_first_proof"], by[(t, lem, "mcts", sd)]["executions_to_first_proof"])
              for t, lem, sd in lemmas if (t, lem, "mcts", sd) in by and (t, lem, "mcts_net", sd) in by]
        fe = [(a, b) for a, b in fe if a is not None and b is not None]
        out["first_proof_executions_net_vs_mcts"] = _gmean([a / b for a, b in fe])
    return out


def table(records: list[dict[str, Any]]) -> str:
    """A plain-text table: one line per lemma, size (or '-') per arm."""
    arms = [a for a in ARMS if any(r["arm"] == a for r in records)]
    keys = list(dict.fromkeys((r["theory"], r["lemma"], r["seed"]) for r in records))
    by = {(r["theory"], r["lemma"], r["seed"], r["arm"]): r for r in records}
    w = max([len(f"{t}/{lem}") for t, lem, _ in keys] + [10])
    lines = [f"{'lemma':<{w}}  seed  " + "  ".join(f"{a:>10}" for a in arms)]
    for t, lem, sd in keys:
        cells = []
        for a in arms:
            r = by.get((t, lem, sd, a))
            cells.append(f"{(r['size'] if r and r['proved'] else '-')!s:>10}")
        lines.append(f"{t + '/' + lem:<{w}}  {sd:>4}  " + "  ".join(cells))
    return "\n".join(lines)


def figure(records: list[dict[str, Any]]):
    """Proof size per lemma and arm (log scale); unproved lemmas are left out of their arm."""
    from quietrl.core.plotting import new_figure

    arms = [a for a in ARMS if any(r["arm"] == a for r in records)]
    keys = list(dict.fromkeys((r["theory"], r["lemma"]) for r in records))
    fig, ax = new_figure(1, 1, size=(max(5.0, 0.5 * len(keys) + 2), 3.5))
    width = 0.8 / max(len(arms), 1)
    for j, a in enumerate(arms):
        xs, ys = [], []
        for i, (t, lem) in enumerate(keys):
            sizes = [r["size"] for r in records if r["theory"] == t and r["lemma"] == lem and r["arm"] == a and r["proved"]]
            if sizes:
                xs.append(i + j * width)
                ys.append(float(np.median(sizes)))
        ax.bar(xs, ys, width=width, label=a)
    ax.set_yscale("log")
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(keys))])
    ax.set_xticklabels([lem for _, lem in keys], rotation=60, ha="right", fontsize=6)
    ax.set_ylabel("proof size (steps)")
    ax.legend(fontsize=6)
    return fig


def load_theories(paths: list[str | Path]) -> list[Theory]:
    from quietrl.proofsearch.parser import parse_file

    return [parse_file(p) for p in paths]
