"""goalgen LPG fitting checks on a study's dataset: how many Adam steps the fit needs (the study fixes S,
`StudyConfig.fit_steps`, from this check) and how many RK4 steps the integration needs (`rk4_steps`).

1. Convergence: LPG fitted on 75% of the pipelines (seeded split) for ``--max-steps`` full-batch Adam steps;
   the training loss at checkpoints, the first step after which it stays within 1% and 0.1% of its final
   value, and the held-out 3-way KL after S in ``--check-steps`` steps (one fit per S).
2. Integration: the theta fitted with the study's S and RK4 steps predicts every row with 25, 50, 100 and
   400 RK4 steps; max |dp| against 400 steps.
3. Single -> multi-stage: LPG fitted on the one-stage pipelines only, scored on the multi-stage ones with
   the model's one time unit per stage ("fixed") and with a total time of 1 split over the stages ("split"),
   next to uniform: how much of the split's error is the flow run past the time its data constrain.

    python benchmarks/goalgen_lpg_checks.py --table RUN/goalgen/study_evaluate/seed0/dataset.csv
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import numpy as np


def main() -> None:
    from quietrl.goalgen.baselines import uniform
    from quietrl.goalgen.evaluate import PairTable
    from quietrl.goalgen.experiment import StudyConfig
    from quietrl.goalgen.lpg import LPG, Examples, LPGConfig, convergence_steps, fit_jobs
    from quietrl.goalgen.metrics import kl3

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", required=True, help="dataset.csv of a goalgen study's evaluate stage")
    ap.add_argument("--max-steps", type=int, default=1000)
    ap.add_argument("--check-steps", default="100,300,1000", help="comma-separated S for the held-out check")
    ap.add_argument("--seed", type=int, default=0, help="seed of the 75/25 pipeline split")
    args = ap.parse_args()
    try:
        checks = [int(s) for s in args.check_steps.split(",")]
        table = PairTable.read_csv(args.table).valid()
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    study = StudyConfig()
    base = LPGConfig(lr=study.fit_lr, rk4_steps=study.rk4_steps)
    ex = Examples.from_table(table)
    rng = np.random.default_rng(args.seed)
    train_p = rng.permutation(len(ex.pipelines))[: int(0.75 * len(ex.pipelines))]
    train = np.isin(ex.pipe, train_p)
    print(f"table {args.table}: {len(ex.pipelines)} pipelines, {len(ex.pipe)} rows; split seed {args.seed}: "
          f"{len(train_p)} train pipelines; lr {base.lr}, {base.rk4_steps} RK4 steps per stage")

    t = time.perf_counter()
    model = LPG(base)
    losses = model.fit(dataclasses.replace(ex, pipe=ex.pipe[train], obj_a=ex.obj_a[train],
                                           obj_b=ex.obj_b[train], p_obs=ex.p_obs[train]), args.max_steps)
    marks = [s for s in (25, 50, 100, 200, 300, 500, 1000, 2000) if s <= len(losses)]
    print(f"training loss ({time.perf_counter() - t:.1f} s): "
          + ", ".join(f"step {s}: {losses[s - 1]:.5f}" for s in marks)
          + f"; within 1% of final from step {convergence_steps(losses, 1e-2)}, within 0.1% from step "
          f"{convergence_steps(losses, 1e-3)}")
    held = {}
    for s in checks:
        preds, thetas = fit_jobs(ex, [(base, train)], s)
        held[s] = (float(np.mean(kl3(ex.p_obs[~train], preds[0][~train]))), thetas[0])
        print(f"S = {s:5d}: held-out 3-way KL {held[s][0]:.5f}")
    s_ref = study.fit_steps if study.fit_steps in held else checks[-1]
    fitted = held[s_ref][1]
    ref = LPG(dataclasses.replace(base, rk4_steps=400), fitted).predict_examples(ex)
    for n in (25, 50, 100):
        p = LPG(dataclasses.replace(base, rk4_steps=n), fitted).predict_examples(ex)
        print(f"RK4 {n:3d} steps vs 400 (theta fitted with S = {s_ref}): max |dp| {np.abs(p - ref).max():.2e}, "
              f"mean {np.abs(p - ref).mean():.2e}")

    one = np.array([p.n_stages == 1 for p in ex.pipelines])[ex.pipe]
    _, thetas = fit_jobs(ex, [(base, one)], study.fit_steps)
    th = thetas[0]
    q = 1 / (1 + np.exp(-float(th["logit_q"])))
    print(f"single -> multi-stage (fit on {len(set(ex.pipe[one]))} one-stage pipelines, S = {study.fit_steps}): "
          f"q = {q:.3f}, ||S||_F = {np.linalg.norm(np.asarray(th['S'])):.2f}; held-out 3-way KL: uniform "
          f"{np.mean(kl3(ex.p_obs[~one], uniform(int((~one).sum())))):.3f}", end="")
    for mode in ("fixed", "split"):
        p = LPG(dataclasses.replace(base, stage_time=mode), th).predict_examples(ex)
        print(f", {mode} {np.mean(kl3(ex.p_obs[~one], p[~one])):.3f}", end="")
    print()


if __name__ == "__main__":
    main()
