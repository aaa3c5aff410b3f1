"""`quietrl goalgen ...`: train the pipeline suite, evaluate OOD pairs, fit LPG, report, quick reproduction."""

from __future__ import annotations

import json
from pathlib import Path

import click

from quietrl.core.config import set_option
from quietrl.core.errors import UserError


def _open_or_create(out, resume, config, seed):
    from quietrl.core.runs import RunDir
    if resume:
        return RunDir.open(resume)
    return RunDir.create(out, config, seed)


def _cfg(quick, overrides):
    from quietrl.core.config import to_dict

    from .experiment import config_from_overrides
    cfg = config_from_overrides(quick, list(overrides))
    return cfg, to_dict(cfg)


@click.group(name="goalgen")
def cli():
    """Goal generalisation in sequential RL and latent policy gradients (arXiv 2605.23565)."""


@cli.command("train-pipelines")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="new run directory")
@click.option("--resume", type=click.Path(file_okay=False), default=None, help="existing run to continue")
@click.option("--quick", is_flag=True, help="the reduced suite")
@click.option("--seed", type=int, default=0)
@set_option
def train_pipelines(out, resume, quick, seed, overrides):
    """Train one PPO agent per (pipeline, seed) of the suite; stages continue from previous weights."""
    from .experiment import SUB, run_training
    cfg, d = _cfg(quick, overrides)
    run = _open_or_create(out, resume, {"goalgen": d}, seed)
    stage = run.stage(SUB, "study_train", seed)
    if not stage.done:
        with stage.running():
            run_training(stage, cfg, seed)
    click.echo(f"trained: {stage.path}")


@cli.command("evaluate")
@click.option("--run", "run_path", type=click.Path(file_okay=False), required=True)
@click.option("--quick", is_flag=True)
@click.option("--seed", type=int, default=0)
@set_option
def evaluate_cmd(run_path, quick, seed, overrides):
    """Measure every agent's OOD pair preferences and write dataset.csv."""
    from quietrl.core.runs import RunDir

    from .experiment import SUB, run_evaluation
    cfg, _ = _cfg(quick, overrides)
    run = RunDir.open(run_path)
    train = run.stage(SUB, "study_train", seed)
    if not train.done:
        raise UserError(f"{train.path}: training stage not done; run train-pipelines first")
    ev = run.stage(SUB, "study_evaluate", seed)
    if not ev.done:
        with ev.running():
            run_evaluation(ev, train, cfg, seed)
    click.echo(f"dataset: {Path(ev.path) / 'dataset.csv'}")


@cli.command("fit-lpg")
@click.argument("dataset", type=click.Path(dir_okay=False))
@click.option("--split", type=click.Choice(["all", "cv4", "single_to_multi", "nodistractor_to_distractor",
                                            "two_to_three"]), default="cv4")
@click.option("--mode", type=click.Choice(["sequential", "memoryless", "simultaneous"]), default="sequential")
@click.option("--saliency", type=click.Choice(["full", "diagonal"]), default="full")
@click.option("--steps", type=int, default=300, help="full-batch Adam steps")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="write results JSON here")
def fit_lpg(dataset, split, mode, saliency, steps, out):
    """Fit LPG on a dataset CSV; 'all' fits every pipeline, a split reports held-out metrics."""
    import numpy as np

    from . import protocol
    from .evaluate import PairTable
    from .lpg import LPG, Examples, LPGConfig
    if steps < 1:
        raise UserError(f"--steps must be >= 1, got {steps}")
    table = PairTable.read_csv(dataset)
    cfg = LPGConfig(mode=mode, saliency=saliency, fit_steps=steps)
    if split == "all":
        model = LPG(cfg)
        losses = model.fit(Examples.from_table(table.valid()))
        result = {"train_kl3": losses[-1], "theta": model.params_dict()}
    else:
        res = protocol.run_protocol(table, (split,), steps, variants={"lpg": {"mode": mode, "saliency": saliency}},
                                    few_shot_ns=())
        if split in res["skipped"]:
            raise UserError(res["skipped"][split])
        r = res["splits"][split]
        result = {"split": split, "rows": r["rows"], "lpg_minus_uniform_kl": r["lpg_minus_uniform_kl"]}
    text = json.dumps(result, indent=2, default=lambda x: np.asarray(x).tolist())
    if out:
        Path(out).write_text(text)
    click.echo(text if not out else f"wrote {out}")


@cli.command("report")
@click.option("--run", "run_path", type=click.Path(file_okay=False), required=True)
def report(run_path):
    """Print the summary rows of every goalgen stage of a run."""
    from quietrl.core.runs import RunDir
    from quietrl.core.summary import format_value
    run = RunDir.open(run_path)
    stages = run.stages("goalgen")
    if not stages:
        raise UserError(f"{run_path}: no goalgen stages in this run")
    for st in stages:
        click.echo(f"== {st.name} ({'done' if st.done else 'not done'})")
        for r in st.rows():
            ci = f" [{format_value(r.ci[0])}, {format_value(r.ci[1])}]" if r.ci else ""
            paper = f"   paper: {r.paper} ({r.source})" if r.paper is not None else ""
            click.echo(f"  {r.quantity}: {format_value(r.ours)}{ci}{paper}")


@cli.command("study")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="new run directory")
@click.option("--resume", type=click.Path(file_okay=False), default=None,
              help="run directory of an interrupted study: finished stages and trained chunks are kept")
@click.option("--quick", is_flag=True, help="start from the reduced (quick) configuration")
@click.option("--seed", type=int, default=0)
@set_option
def study_cmd(out, resume, quick, seed, overrides):
    """The whole study in one command: train the pipeline suite, evaluate every OOD pair, fit LPG under
    every split, and write the summary and figures. Resumable (--resume) at chunk granularity."""
    from quietrl.core.config import from_dict

    from .experiment import StudyConfig, run_study
    if out is None and resume is None:
        raise UserError("study: give --out DIR for a new run or --resume DIR to continue one")
    if resume:
        from quietrl.core.runs import RunDir
        run = RunDir.open(resume)
        saved = run.config.get("goalgen") if isinstance(run.config, dict) else None
        if not isinstance(saved, dict) or "study" not in saved:
            raise UserError(f"{resume}: not a goalgen study run (config.json has no goalgen.study)")
        if overrides:
            raise UserError("study --resume: --set is not allowed; the run keeps the config it started with")
        cfg = from_dict(StudyConfig, saved["study"])
        seed = run.seed
    else:
        cfg, d = _cfg(quick, overrides)
        run = _open_or_create(out, None, {"goalgen": {"study": d}}, seed)
    run_study(run, cfg, seed, "study")
    click.echo(f"run: {run.path}")


@cli.command("reproduce")
@click.option("--out", type=click.Path(file_okay=False), default=None)
@click.option("--resume", type=click.Path(file_okay=False), default=None)
@click.option("--quick", is_flag=True, help="the reduced reproduction (minutes)")
@click.option("--seed", type=int, default=0)
def reproduce_cmd(out, resume, quick, seed):
    """Run the whole study (train -> evaluate -> fit) in a run directory, resuming finished stages."""
    from .experiment import reproduce
    run = _open_or_create(out, resume, {"goalgen": {"quick": quick}}, seed)
    reproduce(run, quick, seed, None)
    click.echo(f"run: {run.path}")


@cli.command("parse")
@click.argument("pipeline")
def parse_cmd(pipeline):
    """Parse a pipeline string and print its stages and PPO update budget."""
    from .grammar import parse_pipeline
    p = parse_pipeline(pipeline)
    for k, (s, n) in enumerate(zip(p.stages, p.stage_updates(40))):
        click.echo(f"stage {k + 1}: goals={[g.name for g in s.goals]} "
                   f"distractors={[d.name for d in s.distractors]} updates={n}")
