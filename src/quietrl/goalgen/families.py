"""The pipeline suite: families A-G of training pipelines over the 12 training objects.

A  single stage, single goal (all 12).
B  single goal + one distractor (24: a third each sharing the goal's colour, its shape, or nothing).
C  two stages g1 -> g2 (48: both orders of 12 pairs sharing one feature and of 12 sharing none).
D  two stages with a distractor in one of them (16).
E  three stages (12; the longer pipeline type held out in the 2-stage -> 3-stage split).
F  two stages sharing no feature, stage 1 given {10, 15, 25, 50}% of the budget (12 x 4 = 48): the
   early-goal ("first 15% of training") claim.
G  one stage with two goals joined by ``_or_`` (12).
"""

from __future__ import annotations

import itertools

import numpy as np

from .types import TRAIN_OBJECTS, GameObject, Pipeline, Stage

FAMILIES: tuple[str, ...] = ("A", "B", "C", "D", "E", "F", "G")
F_SHARES: tuple[float, ...] = (0.10, 0.15, 0.25, 0.50)


def _pairs_by_shared(n_shared: int) -> list[tuple[GameObject, GameObject]]:
    return [(a, b) for a, b in itertools.combinations(TRAIN_OBJECTS, 2)
            if a.shared_features(b) == n_shared]


def _pick(rng: np.random.Generator, items: list, n: int) -> list:
    idx = rng.choice(len(items), size=min(n, len(items)), replace=False)
    return [items[i] for i in sorted(idx)]


def generate_families(seed: int = 0, families: tuple[str, ...] = FAMILIES,
                      scale: float = 1.0) -> list[Pipeline]:
    """Build the pipeline suite. ``scale`` < 1 keeps that fraction of each family (at least one pipeline)
    for quick runs. Deterministic in ``seed``; pipeline names are unique."""
    rng = np.random.default_rng(seed)
    n = lambda k: max(1, int(round(k * scale)))  # noqa: E731
    out: dict[str, list[Pipeline]] = {f: [] for f in FAMILIES}
    objs = list(TRAIN_OBJECTS)

    out["A"] = [Pipeline((Stage((g,)),), "A") for g in objs]

    for g in objs:
        share_c = [d for d in objs if d != g and d.colour == g.colour]
        share_s = [d for d in objs if d != g and d.shape == g.shape]
        share_0 = [d for d in objs if g.shared_features(d) == 0]
        # Two distractors per goal, strata rotating so each stratum gets a third of the 24.
        strata = [share_c, share_s, share_0]
        k = objs.index(g)
        for pool in (strata[k % 3], strata[(k + 1) % 3]):
            d = pool[rng.integers(len(pool))]
            out["B"].append(Pipeline((Stage((g,), (d,)),), "B"))

    for n_shared in (1, 0):
        for a, b in _pick(rng, _pairs_by_shared(n_shared), 12):
            out["C"].append(Pipeline((Stage((a,)), Stage((b,))), "C"))
            out["C"].append(Pipeline((Stage((b,)), Stage((a,))), "C"))

    for i, (a, b) in enumerate(_pick(rng, _pairs_by_shared(1) + _pairs_by_shared(0), 16)):
        pool = [d for d in objs if d not in (a, b)]
        d = pool[rng.integers(len(pool))]
        stages = (Stage((a,), (d,)), Stage((b,))) if i % 2 == 0 else (Stage((a,)), Stage((b,), (d,)))
        out["D"].append(Pipeline(stages, "D"))

    triples = [t for t in itertools.permutations(objs, 3)]
    for t in _pick(rng, triples, 12):
        out["E"].append(Pipeline(tuple(Stage((g,)) for g in t), "E"))

    for a, b in _pick(rng, _pairs_by_shared(0), 12):
        if rng.random() < 0.5:
            a, b = b, a
        for share in F_SHARES:
            out["F"].append(Pipeline((Stage((a,), (), share), Stage((b,))), "F"))

    for a, b in _pick(rng, list(itertools.combinations(objs, 2)), 12):
        out["G"].append(Pipeline((Stage((a, b)),), "G"))

    result: list[Pipeline] = []
    for f in families:
        if f not in out:
            raise ValueError(f"unknown family {f!r}")
        fam = out[f]
        if scale < 1.0:
            fam = _pick(rng, fam, n(len(fam)))
        result.extend(fam)
    names = [p.name for p in result]
    assert len(set(names)) == len(names), "pipeline names must be unique"
    return result
