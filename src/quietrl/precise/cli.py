"""`quietrl precise ...`: consistency tables, pretraining, GRPO fine-tuning, the comparison (thin CLI)."""
from __future__ import annotations

from pathlib import Path

import click

from quietrl.core.config import set_option
from quietrl.core.errors import UserError


@click.group(name="precise")
def cli():
    """Precise: SDE-consistent stochastic sampling for GRPO on flow-matching models (arXiv 2605.23522)."""


def _parse_ks(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UserError(f"--steps: expected a comma list of integers, got {text!r}") from None
    if not ks or any(k < 1 for k in ks):
        raise UserError(f"--steps: every K must be >= 1, got {text!r}")
    return ks


@cli.command("consistency")
@click.option("--steps", default="6,10,20,50,200", show_default=True, help="K values (comma list).")
@click.option("--samples", default=20_000, show_default=True, type=int, help="Samples per S3 cell.")
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Also write a run directory.")
@click.option("--seed", default=0, show_default=True, type=int)
def consistency_cmd(steps, samples, out, seed):
    """Print the S1/S2/S3 tables (model-free and exact-posterior-mean mixtures)."""
    from quietrl.core.runs import RunDir
    from quietrl.precise.experiment import SUB, StudyConfig, quick_config, run_consistency

    ks = _parse_ks(steps)
    if samples < 100:
        raise UserError(f"--samples must be >= 100, got {samples}")
    cfg = StudyConfig(flow=quick_config().flow, s3_steps=ks, s1_steps=ks, s3_samples=samples)
    run = RunDir.create(out, {"command": "precise consistency", "steps": list(ks), "samples": samples}, seed)
    st = run.stage(SUB, "consistency", seed)
    with st.running():
        run_consistency(st, cfg)
    click.echo((st.path / "tables.md").read_text())
    click.echo(f"run directory: {run.path}")


@cli.command("pretrain")
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Run directory (default: new).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--quick", is_flag=True, help="The quick reproduction's budget (<= 60 s).")
@click.option("--task", default="mixture2d", show_default=True, type=click.Choice(["mixture2d", "digits"]),
              help="2-D prompt-conditioned mixture or class-conditioned 8x8 digits.")
@set_option
def pretrain_cmd(out, seed, quick, task, overrides):
    """Train a prompt-conditioned flow model (conditional flow matching); --set FlowConfig fields."""
    from quietrl.core.config import apply_overrides
    from quietrl.core.runs import RunDir
    from quietrl.precise.experiment import (
        SUB, StudyConfig, quick_config, run_digits_pretrain, run_pretrain)

    if task == "digits":
        base = StudyConfig().digits_flow
    else:
        base = quick_config().flow if quick else StudyConfig().flow
    cfg = apply_overrides(base, list(overrides))
    run = RunDir.create(out, {"command": "precise pretrain", "flow": cfg.__dict__}, seed)
    st = run.stage(SUB, "pretrain", seed)
    with st.running():
        (run_digits_pretrain if cfg.task == "digits" else run_pretrain)(st, cfg, seed)
    for row in st.rows():
        click.echo(f"{row.quantity}: {row.ours:.4f}")
    click.echo(f"checkpoint: {st.checkpoint_dir / 'pretrain'}")


def _find_checkpoint(path: str, seed: int) -> Path:
    p = Path(path)
    for cand in (p, p / "pretrain", p / "precise" / "pretrain" / f"seed{seed}" / "checkpoints" / "pretrain"):
        if (cand / "meta.json").exists():
            return cand
    raise UserError(f"--init {path}: no precise pretrain checkpoint found (expected a run directory or a "
                    f"checkpoint directory with meta.json)")


@cli.command("finetune")
@click.option("--sampler", required=True, help="ode|flow_grpo|dance_grpo|cps|mixgrpo|precise|dance_precise")
@click.option("--eta", default=None, type=float, help="Noise level (default: the sampler's).")
@click.option("--steps", "num_steps", default=10, show_default=True, type=int, help="K (NFE per sample).")
@click.option("--iterations", default=100, show_default=True, type=int)
@click.option("--init", "init", required=True, help="Run directory or checkpoint of `precise pretrain`.")
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Run directory (default: new).")
@click.option("--seed", default=0, show_default=True, type=int)
@set_option
def finetune_cmd(sampler, eta, num_steps, iterations, init, out, seed, overrides):
    """GRPO fine-tuning with SAMPLER as the policy; prints reward before/after and seconds."""
    import dataclasses

    from quietrl.core.checkpoint import read_meta
    from quietrl.core.config import apply_overrides
    from quietrl.core.errors import CheckpointMismatch
    from quietrl.core.runs import RunDir
    from quietrl.precise.experiment import SUB, finetune_records, run_finetune
    from quietrl.precise.flow import KIND as FLOW_KIND
    from quietrl.precise.grpo import make_trainer
    from quietrl.precise.samplers import check_sampler, resolve_eta
    from quietrl.precise.types import FlowConfig, GRPOConfig

    check_sampler(sampler)
    resolve_eta(sampler, eta)
    if num_steps < 1:
        raise UserError(f"--steps (K) must be >= 1, got {num_steps}")
    if iterations < 10 or iterations % 10:
        raise UserError(f"--iterations must be a positive multiple of 10, got {iterations}")
    ckpt = _find_checkpoint(init, seed)
    meta = read_meta(ckpt)
    if meta.get("kind") != FLOW_KIND:
        raise CheckpointMismatch(f"{ckpt}: checkpoint is of model kind {meta.get('kind')!r}, expected {FLOW_KIND!r}")
    flow_dict = dict(meta["config"])
    pre_seed = flow_dict.pop("seed", seed)
    fields = {f.name for f in dataclasses.fields(FlowConfig)}
    missing, unknown = sorted(fields - set(flow_dict)), sorted(set(flow_dict) - fields)
    if missing or unknown:  # written by another version of FlowConfig (e.g. before `task` existed)
        raise CheckpointMismatch(
            f"{ckpt}: pretrain checkpoint of another format (config "
            + (f"lacks {', '.join(missing)}" if missing else f"has unknown {', '.join(unknown)}")
            + "); re-run `quietrl precise pretrain`")
    flow_cfg = FlowConfig(**flow_dict)
    cfg = apply_overrides(GRPOConfig(sampler=sampler, eta=eta, num_steps=num_steps, iterations=iterations),
                          list(overrides))
    from quietrl.precise.experiment import load_pretrained_from

    params = load_pretrained_from(ckpt, flow_cfg, pre_seed)
    run = RunDir.create(out, {"command": "precise finetune", "grpo": dataclasses.asdict(cfg),
                              "init": str(ckpt)}, seed)
    st = run.stage(SUB, f"finetune_{sampler}", seed)
    with st.running():
        run_finetune(st, make_trainer(flow_cfg, cfg), params, sampler, seed, cfg.eta)
    recs = finetune_records(st)
    for tag in ("eval_ode_reward", "eval_sde_reward", "eval_ode_q", "eval_ode_pref"):
        click.echo(f"{tag}: {recs[0][tag]:.4f} -> {recs[-1][tag]:.4f}")
    click.echo(f"training seconds: {recs[-1]['train_s']:.2f}  run directory: {run.path}")


@cli.command("compare")
@click.option("--quick", is_flag=True, help="The reduced reproduction (<= 3 minutes on 2 cores).")
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Run directory (default: new).")
@click.option("--resume", default=None, type=click.Path(file_okay=False), help="Continue this run.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--executor", default="none", show_default=True, type=click.Choice(["none", "local", "ray"]),
              help="Where GRPO runs go: none = this process (one compile for all arms), local = a process "
                   "per run, ray = Ray tasks.")
@click.option("--workers", default=None, type=click.IntRange(min=1), help="Parallel jobs (default: cores).")
@click.option("--ray-address", default=None, help="Ray cluster address (--executor ray).")
@set_option
def compare_cmd(quick, out, resume, seed, executor, workers, ray_address, overrides):
    """All samplers with the same seeds and noises: consistency tables, pretraining, GRPO, figures.

    --set takes StudyConfig fields (arms, seeds, s3_steps, digits, ablations, ...) and flow.KEY /
    grpo.KEY / digits_flow.KEY / digits_grpo.KEY for its parts.
    """
    from quietrl.core.runs import RunDir
    from quietrl.core.sweep import make_executor
    from quietrl.precise.experiment import SUB, StudyConfig, apply_study_overrides, quick_config, run_study

    cfg = apply_study_overrides(quick_config() if quick else StudyConfig(), list(overrides))
    pool = None if executor == "none" else make_executor(executor, workers, ray_address)
    run = RunDir.open(resume) if resume else RunDir.create(
        out, {"command": "precise compare", "quick": quick, "overrides": list(overrides)}, seed)
    run_study(run, cfg, seed, pool)
    st = run.stage(SUB, "compare", seed)
    for row in st.rows():
        ci = f" [{row.ci[0]:.3g}, {row.ci[1]:.3g}]" if row.ci else ""
        paper = f"   (paper: {row.paper})" if row.paper is not None else ""
        ours = f"{row.ours:.4g}" if isinstance(row.ours, float) else row.ours
        click.echo(f"{row.quantity}: {ours}{ci}{paper}")
    click.echo(f"run directory: {run.path}")
