"""`quietrl prefrl ...`: run one learner, the regret study, or the quick reproduction (thin: parse, call, print)."""

from __future__ import annotations

import json
import time

import click

from quietrl.core.config import set_option
from quietrl.core.errors import UserError


@click.group(name="prefrl")
def cli():
    """Kernel MDPs learned from one preference bit per episode (arXiv 2605.23650)."""


def _config(algo, overrides):
    from quietrl.core.config import apply_overrides
    from quietrl.prefrl.types import LearnerConfig

    return apply_overrides(LearnerConfig(algo=algo), list(overrides))


@cli.command("run")
@click.option("--algo", default="ucb", show_default=True, help="uniform|greedy|ucb|ucb_centred|perturbed|maxinfo|oracle_ucb")
@click.option("--env", "env_name", default="chain", show_default=True,
              help="bumps1d|bumps2d|chain, or module:factory returning a GriddedMDP (a user MDP).")
@click.option("--episodes", default=1000, show_default=True, type=int)
@click.option("--horizon", default=None, type=int, help="Override the env's horizon H.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--json", "json_path", default=None, type=click.Path(dir_okay=False), help="Write per-episode results here.")
@set_option
def run_cmd(algo, env_name, episodes, horizon, seed, json_path, overrides):
    """Run one learner and print its cumulative regret, slope and time per episode."""
    from quietrl.prefrl.envs import make_env
    from quietrl.prefrl.learners import run_learner
    from quietrl.prefrl.regret import fit_slope, local_slope
    from quietrl.prefrl.types import ALGOS

    if algo not in ALGOS:
        raise UserError(f"--algo: unknown '{algo}'; valid: {', '.join(ALGOS)}")
    if episodes <= 0:
        raise UserError(f"--episodes must be a positive integer, got {episodes}")
    env = make_env(env_name, horizon)
    cfg = _config(algo, overrides)
    t0 = time.perf_counter()
    r = run_learner(env, cfg, episodes, seed)
    wall = time.perf_counter() - t0
    C = r.cumulative_regret
    click.echo(f"{algo} on {env.name} (H={env.horizon}, V*={r.vstar:.4f}), N={episodes}, seed={seed}")
    click.echo(f"cumulative regret (both policies): {C[-1]:.2f}")
    if episodes >= 5:
        click.echo(f"slope on [0.2N, N]: {fit_slope(C):.3f}   local slope: {local_slope(C):.3f}")
    click.echo(f"seconds per episode: {r.seconds.mean():.4f}   wall: {wall:.1f} s")
    if json_path:
        with open(json_path, "w") as f:
            json.dump({"algo": algo, "env": env.name, "seed": seed, "vstar": r.vstar, "v1": r.v1.tolist(),
                       "v2": r.v2.tolist(), "labels": r.labels.tolist(), "seconds": r.seconds.tolist()}, f)


@cli.command("regret")
@click.option("--env", "envs", multiple=True, default=("chain", "bumps1d"), show_default=True)
@click.option("--algos", default="uniform,greedy,ucb,perturbed,oracle_ucb", show_default=True)
@click.option("--episodes", default=None, type=int, help="Default: 10000 on chain, 3000 on bumps1d (the issue's N).")
@click.option("--seeds", default=5, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int)
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Run directory (default: new one).")
@set_option
def regret_cmd(envs, algos, episodes, seeds, workers, out, overrides):
    """The regret study: per algorithm cumulative regret, slope with bootstrap CI, s/episode; figures."""
    from quietrl.core.config import apply_overrides
    from quietrl.core.runs import RunDir
    from quietrl.core.sweep import make_executor
    from quietrl.prefrl.envs import ENV_NAMES
    from quietrl.prefrl.experiment import SUB, StudySpec, _stage_study
    from quietrl.prefrl.types import ALGOS, LearnerConfig

    algo_list = tuple(a.strip() for a in algos.split(",") if a.strip())
    for a in algo_list:
        if a not in ALGOS:
            raise UserError(f"--algos: unknown '{a}'; valid: {', '.join(ALGOS)}")
    for e in envs:
        if e not in ENV_NAMES and ":" not in e:
            raise UserError(f"--env: unknown '{e}'; valid: {', '.join(ENV_NAMES)} or module:factory")
    if seeds < 1 or workers < 1 or (episodes is not None and episodes < 5):
        raise UserError("--seeds and --workers must be >= 1 and --episodes >= 5")
    cfg = apply_overrides(LearnerConfig(), list(overrides))  # validates the overrides once, up front
    ov = tuple((o.split("=", 1)[0], getattr(cfg, o.split("=", 1)[0])) for o in overrides)
    run = RunDir.create(out, {"command": "prefrl regret", "envs": list(envs), "algos": list(algo_list),
                              "episodes": episodes, "seeds": seeds, "overrides": list(overrides)}, seed=0)
    executor = make_executor("local", max_workers=workers) if workers > 1 else None
    t0 = time.perf_counter()
    for e in envs:
        n = episodes or {"chain": 10_000, "bumps1d": 3000}.get(e, 1000)
        spec = StudySpec(e, algo_list, n, tuple(range(seeds)), ov)
        stage = run.stage(sub=SUB, experiment=spec.stage_name, seed=0)
        if stage.done:
            click.echo(f"{spec.stage_name}: already done")
            continue
        with stage.running():
            table = _stage_study(stage, spec, executor, 0)
        from quietrl.prefrl.experiment import acceptance, format_table

        click.echo(f"\n{e}, N={n}, {seeds} seeds")
        click.echo(format_table(table))
        click.echo(json.dumps(acceptance(table)))
    click.echo(f"\nwall time: {time.perf_counter() - t0:.1f} s   run dir: {run.path}")


@cli.command("study")
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Run directory (resumed if it exists).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int)
def study_cmd(out, seed, workers):
    """The complete pre-registered study (issue 8): main runs, maxinfo, ablations; resumable."""
    from quietrl.core.sweep import make_executor
    from quietrl.prefrl.experiment import reproduce

    if workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    from quietrl.core.runs import RunDir

    run = _open_or_create(out, seed, "prefrl study") if out else RunDir.create(None, {"command": "prefrl study"}, seed)
    t0 = time.perf_counter()
    reproduce(run, quick=False, seed=seed, executor=make_executor("local", max_workers=workers) if workers > 1 else None)
    _print_tables(run)
    click.echo(f"\nwall time: {time.perf_counter() - t0:.1f} s   run dir: {run.path}")


def _print_tables(run):
    for st in run.stages(SUB_NAME):
        s = st.summary() or {}
        if "text" in s.get("extra", {}):
            click.echo(f"\n{st.experiment}\n{s['extra']['text']}\n{json.dumps(s['extra'].get('acceptance', {}))}")


@cli.command("quick")
@click.option("--out", default=None, type=click.Path(file_okay=False))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int)
def quick_cmd(out, seed, workers):
    """The quick reproduction (<= 3 minutes on 2 cores)."""
    from quietrl.core.runs import RunDir
    from quietrl.core.sweep import make_executor
    from quietrl.prefrl.experiment import reproduce

    if workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    run = RunDir.create(out, {"command": "prefrl quick"}, seed=seed) if out is None else _open_or_create(out, seed)
    t0 = time.perf_counter()
    reproduce(run, quick=True, seed=seed, executor=make_executor("local", max_workers=workers) if workers > 1 else None)
    _print_tables(run)
    click.echo(f"\nwall time: {time.perf_counter() - t0:.1f} s   run dir: {run.path}")


SUB_NAME = "prefrl"


def _open_or_create(out, seed, command="prefrl quick"):
    from pathlib import Path

    from quietrl.core.runs import RunDir

    if (Path(out) / "config.json").exists():
        return RunDir.open(out)
    return RunDir.create(out, {"command": command}, seed=seed)
