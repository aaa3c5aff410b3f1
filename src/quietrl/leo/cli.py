"""`quietrl leo ...`: train one learner, time the speed-up, run the comparison study."""

from __future__ import annotations

import click

from quietrl.core.config import set_option
from quietrl.core.errors import UserError


@click.group(name="leo")
def cli() -> None:
    """LEO: goal-conditioned agents that learn every goal at once (arXiv 2605.23551)."""


def _open_or_create(out: str | None, config: dict, seed: int):
    from pathlib import Path

    from quietrl.core.runs import RunDir

    if out is not None and (Path(out) / "config.json").exists():
        run = RunDir.open(out)
        if run.config.get("leo_train") != config:
            raise UserError(f"{out} holds a run of another config; choose another --out")
        return run
    return RunDir.create(out, {"leo_train": config}, seed)


@cli.command()
@click.option("--algo", default="leo", show_default=True,
              help="leo, pqn, pqn_her, relabel_all, ppo, dual_leo_pqn or dual_leo_ppo")
@click.option("--env", "env_name", default="gridworld", show_default=True,
              help="gridworld, craftax-classic or craftax")
@click.option("--num-goals", type=int, default=None, help="use the first K goals of the listing (default: all)")
@click.option("--steps", type=int, default=None, help="total env steps (default: the config's)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", default=None, help="run directory (created, or resumed if it holds this config)")
@set_option
def train(algo: str, env_name: str, num_goals: int | None, steps: int | None, seed: int, out: str | None,
          overrides: tuple[str, ...]) -> None:
    """Train one learner; checkpoints per chunk, resumable with the same --out."""
    from quietrl.core.config import apply_overrides, to_dict

    from .train import ALGOS, default_config

    if algo not in ALGOS:
        raise UserError(f"--algo: unknown algo {algo!r}; choose one of {', '.join(ALGOS)}")
    # --steps joins the --set overrides so that the config is validated once, with every change applied.
    extra = [] if steps is None else [f"total_timesteps={steps}"]
    cfg = apply_overrides(default_config(algo, env_name, num_goals=num_goals), [*extra, *overrides])
    from .train import build_env, train as run_train

    build_env(cfg)  # bad env names and K fail here, before a run directory is created
    run = _open_or_create(out, to_dict(cfg), seed)
    stage = run.stage(sub="leo", experiment=f"train-{algo}", seed=seed)
    import jax
    import numpy as np

    from quietrl.core.summary import Row

    if stage.done:
        click.echo(f"{stage.path} is already done")
        return
    with stage.running():
        state, trainer = run_train(cfg, seed, stage=stage, name=algo)
        got = np.asarray(trainer.greedy_test(state.params, jax.random.PRNGKey(seed + 1000), state.aux_params))
        last = stage.read_metrics()[-1]
        rows = [Row("live success rate (all goals)", last["live_success"]),
                Row("greedy test: fraction of goals reached from reset", float(got.mean())),
                Row("goals seen (fraction of K)", last["goals_seen"])]
        stage.write_summary(rows, extra={"per_goal_test": got.astype(int).tolist()})
    click.echo(f"{algo} on {trainer.genv.name} (K={trainer.genv.num_goals}): live success "
               f"{last['live_success']:.3f}, greedy test {got.mean():.3f}, goals seen {last['goals_seen']:.3f}, "
               f"{last['env_steps']} steps -> {run.path}")


@cli.command()
@click.option("--ks", default="8,64,174", show_default=True, help="comma-separated goal counts")
@click.option("--preset", type=click.Choice(["gridworld", "craftax-classic"]), default="gridworld",
              show_default=True, help="gridworld: one-hot (row, col), A=4; craftax-classic: D=1562, A=17")
@click.option("--trunk", default=None, help="trunk preset (default: 256x2 gridworld, 1024x4 craftax-classic)")
@click.option("--batch", type=int, default=512, show_default=True)
@click.option("--minibatch", type=int, default=256, show_default=True)
@click.option("--repeats", type=int, default=3, show_default=True)
def speedup(ks: str, preset: str, trunk: str | None, batch: int, minibatch: int, repeats: int) -> None:
    """Time one LEO update vs one explicit all-goals relabelling update per K (compile excluded)."""
    from .speedup import CLASSIC_FIELDS, SpeedupSetup, time_updates

    try:
        kk = [int(x) for x in ks.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"--ks {ks!r}: expected comma-separated integers") from None
    if not kk or min(kk) < 1:
        raise UserError(f"--ks {ks!r}: every K must be >= 1")
    if repeats < 1:
        raise UserError("--repeats must be >= 1")
    if preset == "gridworld":
        setup = SpeedupSetup(fields=(16, 16), num_actions=4, trunk=trunk or "256x2", batch=batch,
                             minibatch=minibatch)
    else:
        setup = SpeedupSetup(fields=CLASSIC_FIELDS, num_actions=17, trunk=trunk or "1024x4", batch=batch,
                             minibatch=minibatch)
    click.echo(f"{'K':>5} {'LEO s':>9} {'relabel s':>10} {'speed-up':>9} {'model':>7}")
    for k in kk:
        r = time_updates(setup, k, repeats=repeats, with_pqn=False, with_target_pass=False)
        click.echo(f"{k:>5} {r['leo_s']:>9.4f} {r['relabel_s']:>10.3f} {r['ratio']:>8.1f}x {r['model']:>6.1f}x")


def _parse_list(text: str, kind, option: str) -> tuple:
    try:
        out = tuple(kind(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise UserError(f"{option} {text!r}: expected a comma-separated list of {kind.__name__}s") from None
    if not out:
        raise UserError(f"{option} {text!r}: empty list")
    return out


@cli.command()
@click.option("--quick/--full", default=True, show_default=True,
              help="quick: LEO/PQN/PQN+HER, 0.35M steps, 1 seed, lr 1e-3; full: the issue's comparison "
                   "(LEO, PQN, PQN+HER, PPO, Dual LEO (PPO); 2M steps, 3 seeds, lr {2e-4, 1e-3})")
@click.option("--algos", default=None, help="comma-separated algos (default: the preset's)")
@click.option("--seeds", "num_seeds", type=int, default=None, help="number of seeds, from --seed on")
@click.option("--lrs", default=None, help="comma-separated learning-rate grid, the same for every method")
@click.option("--steps", type=int, default=None, help="gridworld env steps per run")
@click.option("--craftax-steps", type=int, default=None, help="Craftax-Classic env steps per run (0: skip)")
@click.option("--ks", default=None, help="comma-separated goal counts for the speed-up curve ('' to skip)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", default=None, help="run directory (a new one, or an existing leo compare run to resume)")
@set_option
def compare(quick: bool, algos: str | None, num_seeds: int | None, lrs: str | None, steps: int | None,
            craftax_steps: int | None, ks: str | None, seed: int, out: str | None,
            overrides: tuple[str, ...]) -> None:
    """LEO vs the baselines over seeds and an lr grid (gridworld, Craftax-Classic) plus the speed-up curve.

    Resumable: rerun with the same --out and options; finished runs are kept, a run cut short resumes
    from its last chunk. --set key=value overrides any StudyConfig field.
    """
    import dataclasses
    from pathlib import Path

    from quietrl.core.config import apply_overrides, to_dict
    from quietrl.core.runs import RunDir

    from .experiment import StudyConfig, run_study

    study = StudyConfig.quick() if quick else StudyConfig.full()
    change: dict = {}
    if algos is not None:
        change["algos"] = _parse_list(algos, str, "--algos")
        change["craftax_algos"] = change["algos"]
    if num_seeds is not None:
        change["num_seeds"] = num_seeds
    if lrs is not None:
        change["lrs"] = change["craftax_lrs"] = _parse_list(lrs, float, "--lrs")
    if steps is not None:
        change["total_timesteps"] = steps
    if craftax_steps is not None:
        change["craftax_timesteps"] = craftax_steps
    if ks is not None:
        change["speedup_ks"] = _parse_list(ks, int, "--ks") if ks.strip() else ()
    study = apply_overrides(dataclasses.replace(study, **change), list(overrides))
    import json

    config = {"leo_compare": json.loads(json.dumps(to_dict(study)))}  # tuples as the JSON file holds them
    if out is not None and (Path(out) / "config.json").exists():
        run = RunDir.open(out)
        if run.config.get("leo_compare") != config["leo_compare"]:
            raise UserError(f"{out} holds a run of another config; choose another --out")
    else:
        run = RunDir.create(out, config, seed)
    run_study(run, study, seed)
    click.echo(f"leo compare -> {run.path}")
