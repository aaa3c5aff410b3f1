"""Held-out evaluation protocol: splits grouped by pipeline, models fitted on train pipelines and scored on
test pipelines, baselines in the same table, and the few-shot curve."""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from quietrl.core.errors import UserError

from . import baselines, metrics
from .evaluate import PairTable
from .grammar import parse_pipeline
from .lpg import LPG, Examples, LPGConfig

SPLITS = ("cv4", "single_to_multi", "nodistractor_to_distractor", "two_to_three")
LPG_VARIANTS = {
    "lpg": {},
    "lpg_memoryless": {"mode": "memoryless"},
    "lpg_simultaneous": {"mode": "simultaneous"},
    "lpg_diagonal": {"saliency": "diagonal"},
}


@dataclasses.dataclass(frozen=True)
class Fold:
    name: str
    train: tuple[str, ...]   # pipeline names
    test: tuple[str, ...]


def make_folds(split: str, pipeline_names: list[str], seed: int = 42) -> list[Fold]:
    """Folds of a split, always by pipeline (a pipeline's seeds and pairs never straddle train and test).

    cv4: 4 folds of shuffled pipelines; single_to_multi: 1-stage -> multi-stage; nodistractor_to_distractor;
    two_to_three: pipelines of <= 2 stages -> 3-stage ones. `UserError` if a side is empty.
    """
    names = sorted(set(pipeline_names))
    pls = {n: parse_pipeline(n) for n in names}
    if split == "cv4":
        if len(names) < 4:
            raise UserError(f"split cv4 needs at least 4 pipelines, found {len(names)}")
        order = np.random.default_rng(seed).permutation(len(names))
        fold_of = {names[i]: k % 4 for k, i in enumerate(order)}
        folds = [Fold(f"cv4_{k}", tuple(n for n in names if fold_of[n] != k),
                      tuple(n for n in names if fold_of[n] == k)) for k in range(4)]
    else:
        rules: dict[str, Callable] = {
            "single_to_multi": lambda p: (p.n_stages == 1, p.n_stages > 1),
            "nodistractor_to_distractor": lambda p: (not p.has_distractor, p.has_distractor),
            "two_to_three": lambda p: (p.n_stages <= 2, p.n_stages == 3),
        }
        if split not in rules:
            raise UserError(f"unknown split {split!r} (valid: {', '.join(SPLITS)})")
        train = tuple(n for n in names if rules[split](pls[n])[0])
        test = tuple(n for n in names if rules[split](pls[n])[1])
        folds = [Fold(split, train, test)]
    for f in folds:
        if not f.train or not f.test:
            side = "train" if not f.train else "test"
            raise UserError(f"split {split}: fold {f.name} has an empty {side} side "
                            f"({len(names)} pipelines in the dataset)")
    return folds


def _row_names(ex: Examples) -> np.ndarray:
    return np.array([p.name for p in ex.pipelines], dtype=object)[ex.pipe].astype(str)


def run_protocol(table: PairTable, splits=SPLITS, fit_steps: int = 300, n_boot: int = 1000, seed: int = 0,
                 lpg_base: LPGConfig = LPGConfig(), variants: dict = LPG_VARIANTS,
                 few_shot_ns=(0, 2, 10, 50), few_shot_trials: int = 3, full_fits: dict | None = None,
                 batch: int = 16, on_batch=None) -> dict:
    """Every fit of the protocol in one vectorised pass (`lpg.fit_jobs`), then metrics per split.

    Splits whose folds would be empty are skipped with the reason. Returns
    {"splits": {split: {"rows": {model: {metric: {mean, lo, hi}}}, "lpg_minus_uniform_kl", "n_fits",
    "pred": {model: (N_test, 3)}, "p_obs", "groups"}}, "skipped": {split: reason},
    "few_shot": {n: [held-out KL per trial]}, "full": {name: theta}, "n_fits": int}.
    """
    valid = table.valid()
    if len(valid) == 0:
        raise UserError("dataset has no (agent, pair) rows with an episode ending at an object")
    ex = Examples.from_table(valid)
    names_row = _row_names(ex)
    all_names = sorted(set(names_row))
    jobs, meta, skipped, folds_of = [], [], {}, {}
    for split in splits:
        try:
            folds_of[split] = make_folds(split, all_names)
        except UserError as e:
            skipped[split] = str(e)
            continue
        for k, fold in enumerate(folds_of[split]):
            train = np.isin(names_row, fold.train)
            for name, over in variants.items():
                jobs.append((dataclasses.replace(lpg_base, **over), train))
                meta.append(("split", split, k, name))
    rng = np.random.default_rng(seed)
    shot_tests = {}
    for n in few_shot_ns:
        if n == 0 or n > len(all_names) - 1:
            continue
        for t in range(few_shot_trials):
            pick = rng.choice(all_names, size=n, replace=False)
            jobs.append((lpg_base, np.isin(names_row, pick)))
            meta.append(("shot", n, t, None))
            shot_tests[(n, t)] = ~np.isin(names_row, pick)
    for name, cfg in (full_fits or {}).items():
        jobs.append((cfg, np.ones(len(names_row), bool)))
        meta.append(("full", name, 0, None))
    preds, thetas = lpg_fit_jobs(ex, jobs, fit_steps, batch=batch, on_batch=on_batch)

    out = {"splits": {}, "skipped": skipped, "few_shot": {}, "full": {}, "n_fits": len(jobs)}
    by_meta = {m: j for j, m in enumerate(meta)}
    for split, folds in folds_of.items():
        pred: dict[str, list[np.ndarray]] = {}
        obs, groups = [], []
        for k, fold in enumerate(folds):
            test = np.isin(names_row, fold.test)
            train = np.isin(names_row, fold.train)
            obs.append(ex.p_obs[test])
            groups.append(names_row[test])
            for name in variants:
                pred.setdefault(name, []).append(preds[by_meta[("split", split, k, name)]][test])
            fc = baselines.FeatureCount()
            fc.fit(ex, weight=train)
            pred.setdefault("feature_count", []).append(fc.predict_examples(_subset(ex, test)))
            pred.setdefault("uniform", []).append(baselines.uniform(int(test.sum())))
        out["splits"][split] = _score(np.concatenate(obs), np.concatenate(groups),
                                      {k: np.concatenate(v) for k, v in pred.items()}, n_boot, seed)
        out["splits"][split]["n_fits"] = len(folds) * len(variants)
    if 0 in few_shot_ns:
        init = LPG(lpg_base).predict_examples(ex)
        out["few_shot"][0] = [float(np.mean(metrics.kl3(ex.p_obs, init)))]
    for (kind, n, t, _), j in by_meta.items():
        if kind == "shot":
            test = shot_tests[(n, t)]
            out["few_shot"].setdefault(n, []).append(float(np.mean(metrics.kl3(ex.p_obs[test],
                                                                               preds[j][test]))))
        elif kind == "full":
            out["full"][n] = thetas[j]
    return out


def lpg_fit_jobs(ex, jobs, fit_steps, batch, on_batch):
    from .lpg import fit_jobs
    return fit_jobs(ex, jobs, fit_steps, batch=batch, on_batch=on_batch)


def _subset(ex: Examples, mask: np.ndarray) -> Examples:
    return Examples(ex.pipelines, ex.pipe[mask], ex.obj_a[mask], ex.obj_b[mask], ex.p_obs[mask])


def _score(p_obs, grp, pred, n_boot, seed) -> dict:
    rows = {k: metrics.summarize(p_obs, v, grp, n_boot, seed) for k, v in pred.items()}
    dir_rows = [metrics.summarize(p_obs, baselines.dirichlet(len(p_obs), seed + r), grp, 200, seed)
                for r in range(10)]
    rows["dirichlet"] = {m: {s: float(np.mean([d[m][s] for d in dir_rows])) for s in ("mean", "lo", "hi")}
                         for m in metrics.METRICS}
    base = pred["lpg"] if "lpg" in pred else pred["uniform"]
    diff = metrics.paired_difference(metrics.kl3(p_obs, base), metrics.kl3(p_obs, pred["uniform"]), grp,
                                     n_boot, seed)
    return {"rows": rows, "lpg_minus_uniform_kl": diff, "pred": pred, "p_obs": p_obs, "groups": grp}


def examples_for(table: PairTable, names) -> tuple[Examples, np.ndarray]:
    """Examples of the given pipelines plus each row's agent key (pipeline/seed), for grouping."""
    mask = np.isin(np.asarray(table.pipeline, dtype=str), np.asarray(list(names), dtype=str))
    sub = table.subset(mask)
    return Examples.from_table(sub), np.char.add(np.asarray(sub.pipeline, dtype=str),
                                                 np.char.add("/", sub.seed.astype(str)))


def ceilings(table: PairTable, n_boot: int = 1000, seed: int = 0) -> dict:
    """Per-agent feature and goal ceilings, each scored on 25% of every agent's own pairs."""
    t = table.valid()
    agent = np.char.add(np.asarray(t.pipeline, dtype=str), np.char.add("/", t.seed.astype(str)))
    out = {}
    for kind in ("feature", "goal"):
        test, pred = baselines.per_agent_ceiling(agent, t.obj_a, t.obj_b, t.p_obs, kind, seed=seed)
        out[f"ceiling_{kind}"] = metrics.summarize(t.p_obs[test], pred[test],
                                                   np.asarray(t.pipeline, dtype=str)[test], n_boot, seed)
    return out
