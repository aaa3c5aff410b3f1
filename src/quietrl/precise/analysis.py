"""Time-to-target and curve statistics over seeds (spec section 6, Report item 3). Pure NumPy."""
from __future__ import annotations

import numpy as np


def smooth(curve: np.ndarray, window: int = 5) -> np.ndarray:
    """Trailing moving average over the last ``window`` evaluations (fewer at the start); (..., E)."""
    c = np.cumsum(np.asarray(curve, np.float64), axis=-1)
    out = np.empty_like(c)
    e = c.shape[-1]
    for i in range(e):
        lo = i - window
        out[..., i] = (c[..., i] - (c[..., lo] if lo >= 0 else 0.0)) / (i - max(lo, -1))
    return out


def first_reach(curve: np.ndarray, target: float) -> int | None:
    """Index of the first evaluation where ``curve`` (E,) >= target, or None."""
    hit = np.nonzero(np.asarray(curve) >= target)[0]
    return int(hit[0]) if hit.size else None


def time_to_target(curves: dict[str, np.ndarray], times: dict[str, np.ndarray], iterations: np.ndarray,
                   baselines: list[str], method: str = "precise", window: int = 5) -> dict:
    """R*, the times each arm first reaches it, the paper's saving and the stricter ratio.

    Args:
      curves: arm -> (seeds, E) evaluation rewards at ``iterations`` (E,).
      times: arm -> (seeds, E) training seconds at those evaluations.
      baselines: arms whose best smoothed seed-mean defines R*.
    Returns dict with r_star, best_baseline, per-arm reach iteration/seconds (None = not reached),
    saving_iters = 1 - t_P/T, saving_s = 1 - s_P/S_T (S_T = the method's seconds at T),
    ratio_iters = t_best/t_P and ratio_s.
    """
    sm = {a: smooth(np.mean(c, 0), window) for a, c in curves.items()}
    best = max(baselines, key=lambda a: sm[a].max())
    r_star = float(sm[best].max())
    reach, reach_s = {}, {}
    for a in curves:
        i = first_reach(sm[a], r_star - 1e-12)
        reach[a] = None if i is None else int(iterations[i])
        reach_s[a] = None if i is None else float(np.mean(times[a], 0)[i])
    total_it = float(iterations[-1])
    total_s = float(np.mean(times[method], 0)[-1])
    # every arm starts from the same model and evaluation noises, so if no baseline ever rose above its
    # starting value, R* is hit "at iteration 0" by everyone: time to target is then undefined, not 100%
    degenerate = int(np.argmax(sm[best])) == 0
    out = {"r_star": r_star, "best_baseline": best, "reach_iters": reach, "reach_s": reach_s,
           "saving_iters": None, "saving_s": None, "ratio_iters": None, "ratio_s": None,
           "degenerate": degenerate}
    tp, sp = reach[method], reach_s[method]
    if degenerate:
        return out
    if tp is not None and tp > 0:
        out["saving_iters"] = 1 - tp / total_it
        out["saving_s"] = 1 - sp / total_s if total_s > 0 else None
        out["ratio_iters"] = reach[best] / tp if reach[best] is not None else None
        out["ratio_s"] = reach_s[best] / sp if reach_s[best] is not None and sp > 0 else None
    elif tp == 0:
        out["saving_iters"], out["saving_s"] = 1.0, 1.0
    return out


def bootstrap_time_to_target(curves, times, iterations, baselines, method="precise", num: int = 1000,
                             seed: int = 0, window: int = 5, paired: bool = False) -> dict:
    """Percentile 95% intervals of saving/ratio, resampling seeds and recomputing R* each time.

    ``paired=False`` resamples each arm's seeds independently. ``paired=True`` draws one set of seed
    indices for all arms: in this study seed s means the same pretrained model, the same rollout noises
    and the same evaluation noises in every arm, so arms are paired by seed, and resampling the pairs
    keeps the shared part of their variation out of the comparison (needs equal seed counts).
    Returns {key: (lo, hi, fraction_defined)} for saving_iters, saving_s, ratio_iters, ratio_s; a
    resample where Precise never reaches R* counts as saving 0 (ratio undefined, excluded); one where no
    baseline improves on its start (degenerate R*) is excluded from every interval.
    """
    rng = np.random.default_rng(seed)
    keys = ("saving_iters", "saving_s", "ratio_iters", "ratio_s")
    vals = {k: [] for k in keys}
    sizes = {c.shape[0] for c in curves.values()}
    if paired and len(sizes) != 1:
        raise ValueError(f"paired bootstrap needs the same number of seeds in every arm, got {sorted(sizes)}")
    for _ in range(num):
        cs, ts = {}, {}
        shared = rng.integers(0, max(sizes), max(sizes)) if paired else None
        for a in curves:
            idx = shared if paired else rng.integers(0, curves[a].shape[0], curves[a].shape[0])
            cs[a], ts[a] = curves[a][idx], times[a][idx]
        r = time_to_target(cs, ts, iterations, baselines, method, window)
        if r["degenerate"]:
            for k in keys:
                vals[k].append(np.nan)
            continue
        for k in keys:
            v = r[k]
            if v is None and k.startswith("saving"):
                v = 0.0
            vals[k].append(np.nan if v is None else v)
    out = {}
    for k in keys:
        a = np.asarray(vals[k], float)
        ok = a[np.isfinite(a)]
        out[k] = ((float(np.percentile(ok, 2.5)), float(np.percentile(ok, 97.5)), ok.size / num)
                  if ok.size else (float("nan"), float("nan"), 0.0))
    return out


def mean_ci(x: np.ndarray, axis: int = 0):
    """Mean and 95% normal interval half-width (1.96 SE) over ``axis`` (SE = 0 for one seed)."""
    x = np.asarray(x, np.float64)
    m = x.mean(axis)
    n = x.shape[axis]
    se = x.std(axis, ddof=1) / np.sqrt(n) if n > 1 else np.zeros_like(m)
    return m, 1.96 * se


def paired_reach_difference(curves, iterations, baselines, method="precise", num: int = 2000, seed: int = 0,
                            window: int = 5) -> dict:
    """Per-seed time to the common target, Precise against the best prior sampler, paired by seed.

    R* is fixed from the full data (as :func:`time_to_target`); for each seed s the smoothed curves of
    Precise and of the best baseline give the first iteration reaching R* (T + one evaluation interval
    if never: a censored, conservative value). Returns the mean per-seed difference
    t_best(s) - t_P(s) in iterations with a paired percentile bootstrap 95% interval, the number of seeds
    where Precise is first, and the per-seed times. A positive interval separates the samplers.
    """
    sm = {a: smooth(np.mean(c, 0), window) for a, c in curves.items()}
    best = max(baselines, key=lambda a: sm[a].max())
    r_star = float(sm[best].max())
    it = np.asarray(iterations, float)
    never = it[-1] + (it[-1] - it[-2] if it.size > 1 else 1.0)

    def reach(curve):
        i = first_reach(smooth(curve, window), r_star - 1e-12)
        return never if i is None else float(it[i])

    tp = np.array([reach(c) for c in curves[method]])
    tb = np.array([reach(c) for c in curves[best]])
    d = tb - tp
    rng = np.random.default_rng(seed)
    boot = np.array([d[rng.integers(0, d.size, d.size)].mean() for _ in range(num)])
    return {"r_star": r_star, "best_baseline": best, "t_method": tp.tolist(), "t_best": tb.tolist(),
            "mean_diff": float(d.mean()), "ci": (float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))),
            "method_first": int(np.sum(d > 0)), "ties": int(np.sum(d == 0)), "seeds": int(d.size)}
