"""`quietrl arms ...`: train one method, check equilibrium sets, detect oscillation, compare methods (thin)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from quietrl.core.config import set_option
from quietrl.core.errors import UserError



def _check_run_options(method: str, sparsity: str, seeds: int, agent_steps: int) -> None:
    """One-line UserError for an unknown --method/--sparsity or a non-positive --seeds/--agent-steps."""
    from quietrl.arms.types import METHODS, SPARSITY

    if method not in METHODS:
        raise UserError(f"--method: unknown '{method}'; valid: {', '.join(METHODS)}")
    if sparsity not in SPARSITY:
        raise UserError(f"--sparsity: unknown '{sparsity}'; valid: {', '.join(SPARSITY)}")
    if seeds < 1 or agent_steps < 1:
        raise UserError("--seeds and --agent-steps must be positive")

@click.group(name="arms")
def cli():
    """ARMS: learned trajectory-ranking shaping for sparse-reward MAPF, checked against exact Nash sets
    (arXiv 2605.23562)."""


@cli.command("train")
@click.option("--method", default="arms", show_default=True,
              help="sparse|bonus|pbrs|arms|arms-replace|arms-add|arms-frozen")
@click.option("--sparsity", default="S0", show_default=True, help="S0|S1|S2")
@click.option("--agents", default=2, show_default=True, type=int)
@click.option("--grid", default=8, show_default=True, type=int)
@click.option("--seeds", default=2, show_default=True, type=int, help="Vmapped seeds.")
@click.option("--agent-steps", default=200_000, show_default=True, type=int, help="Per-run budget.")
@click.option("--map", "map_path", default=None, type=click.Path(dir_okay=False),
              help="Train and evaluate on one map: plain text or MovingAI .map (with --scen).")
@click.option("--scen", default=None, type=click.Path(dir_okay=False), help="MovingAI .scen for --map.")
@click.option("--horizon", default=None, type=int, help="Episode length (default 32; set it for loaded maps).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Run directory (default: new one).")
@set_option
def train_cmd(method, sparsity, agents, grid, seeds, agent_steps, map_path, scen, horizon, seed, out, overrides):
    """Train IPPO (parameter sharing) with one shaping method; print held-out success per chunk."""
    from quietrl.arms.env import MAPFEnv, make_env
    from quietrl.arms.experiment import SUB, train_runs
    from quietrl.arms.maps import load_map_file
    from quietrl.arms.types import SPARSITY, EnvConfig, TrainConfig
    from quietrl.core.config import apply_overrides
    from quietrl.core.runs import RunDir
    from quietrl.core.summary import Row

    _check_run_options(method, sparsity, seeds, agent_steps)
    cfg = apply_overrides(TrainConfig(method=method, total_agent_steps=agent_steps), list(overrides))
    if map_path is not None:
        bank = load_map_file(map_path, agents, seed=seed, scen=scen)
        env = MAPFEnv(bank, horizon or 4 * sum(bank.obstacles.shape[1:]), sparsity=sparsity)
        env_desc = {"map": str(map_path), "scen": scen, "horizon": env.horizon}
    else:
        ecfg = EnvConfig(grid_size=grid, num_agents=agents, horizon=horizon or 32, map_seed=seed, sparsity=sparsity)
        env = make_env(ecfg)
        env_desc = {"grid": grid, "horizon": ecfg.horizon}
    run = RunDir.create(out, {"command": "arms train", "method": method, "sparsity": sparsity, "agents": agents,
                              "seeds": seeds, **env_desc, "train": dict(vars(cfg))}, seed)
    stage = run.stage(sub=SUB, experiment=f"train_{method}", seed=seed)
    with stage.running():
        res = train_runs(env, cfg, [SPARSITY.index(sparsity)] * seeds, [cfg.ent_coef] * seeds, seed, stage)
        for steps, isr in zip(res["agent_steps"], res["heldout_isr"]):
            click.echo(f"agent-steps {int(steps):>9d}  held-out ISR " + " ".join(f"{v:.3f}" for v in isr))
        final = res["heldout_isr"][-1]
        stage.write_summary([Row(f"held-out ISR at budget [{method}, {sparsity}, n={agents}]",
                                 float(final.mean()))])
    click.echo(f"run directory: {run.path}")


@cli.command("equilibria")
@click.option("--game", default="swap", show_default=True, help="swap|crossing|matrix")
@click.option("--rule", default="follow", show_default=True, help="follow|block_occupied")
@click.option("--horizon", default=None, type=int, help="Default 4 (swap) or 3 (crossing).")
@click.option("--gamma", default=0.9, show_default=True, type=float)
@click.option("--learned", is_flag=True,
              help="Also fit the MAPF reward net with the ranking loss on random profiles and compare it used as "
                   "a per-step reward (replace, add) and as a potential.")
@click.option("--json", "json_path", default=None, type=click.Path(dir_okay=False), help="Write the rows here.")
def equilibria_cmd(game, rule, horizon, gamma, learned, json_path):
    """Exact pure Nash sets under each shaping (grid games) or pure + mixed NE (matrix games)."""
    from quietrl.arms.equilibria import (classic_games, crossing_game, grid_game_table, mixed_nash,
                                         pure_nash_matrix, strictly_mixed, swap_game)
    from quietrl.arms.types import COLLISION_RULES

    if rule not in COLLISION_RULES:
        raise UserError(f"--rule: unknown '{rule}'; valid: {', '.join(COLLISION_RULES)}")
    if not 0 < gamma <= 1:
        raise UserError(f"--gamma must be in (0, 1], got {gamma}")
    if game == "matrix":
        rows = []
        for name, g in classic_games().items():
            mixed = [(x.round(4).tolist(), y.round(4).tolist()) for x, y in strictly_mixed(mixed_nash(g))]
            rows.append({"game": name, "pure": pure_nash_matrix(g), "mixed": mixed})
            click.echo(f"{name:26s} pure {pure_nash_matrix(g)}  mixed {mixed}")
    elif game in ("swap", "crossing"):
        h = horizon or (4 if game == "swap" else 3)
        if not 1 <= h <= (6 if game == "swap" else 3):
            raise UserError(f"--horizon {h} is too large for exact enumeration of the {game} game")
        g = swap_game(h, gamma) if game == "swap" else crossing_game(h, gamma)
        fns = None
        if learned:
            from quietrl.arms.experiment import train_swap_reward

            fns = {"learned r̂": train_swap_reward(g, rule, num_profiles=min(4096, g.num_plans() ** g.num_agents),
                                                  steps=400)[0]}
        rows = grid_game_table(g, rule, learned=fns, learned_rule=rule)
        click.echo(f"{g.name} game, H={h}, γ={gamma}, rule={rule}")
        click.echo(f"{'payoff':24s} {'#NE':>7s} {'Jaccard':>8s}  verdict      outcome classes (arrival steps)")
        for r in rows:
            verdict = "identical" if r["identical"] else ("subset" if r["sound"] else "NEW NE")
            click.echo(f"{r['payoff']:24s} {r['num_ne']:7d} {r['jaccard']:8.3f}  {verdict:11s}  {r['classes']}")
    else:
        raise UserError(f"--game: unknown '{game}'; valid: swap, crossing, matrix")
    if json_path:
        Path(json_path).write_text(json.dumps(rows, indent=1, default=str))


def _read_curve(path: str, key: str | None) -> list[list[float]]:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{path}: no such file")
    text = p.read_text()
    if p.suffix == ".jsonl":
        if key is None:
            raise UserError(f"{path}: give --key, the metric to read from each line")
        curves: list = []
        for k, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                raise UserError(f"{path}:{k}: not a JSON line") from None
            if key in rec:
                v = rec[key]
                curves.append(v if isinstance(v, list) else [v])
        if not curves:
            raise UserError(f"{path}: no line has the key {key!r}")
        if isinstance(curves[0][0], list):  # per-iteration lists per line: concatenate
            curves = [row for c in curves for row in c]
        return [list(col) for col in zip(*curves)]
    try:
        return [[float(x) for x in text.replace(",", " ").split()]]
    except ValueError:
        raise UserError(f"{path}: expected numbers separated by spaces, commas or newlines") from None


@cli.command("oscillation")
@click.argument("curve", required=False)
@click.option("--key", default=None, help="Metric name when CURVE is a metrics.jsonl (e.g. heldout_isr).")
@click.option("--demo", is_flag=True, help="Run on a noisy sinusoid and on AR(1) noise instead.")
@click.option("--surrogates", default=500, show_default=True, type=int)
@click.option("--seed", default=0, show_default=True, type=int)
def oscillation_cmd(curve, key, demo, surrogates, seed):
    """Spectral-peak oscillation detector (AR(1) surrogates) on a training curve."""
    import numpy as np

    from quietrl.arms.oscillation import detect

    if demo:
        rng = np.random.default_rng(seed)
        k = np.arange(64)
        e = np.zeros(64)
        for i in range(1, 64):
            e[i] = 0.8 * e[i - 1] + 0.08 * rng.normal()
        curves = {"noisy sinusoid": 0.5 + 0.2 * np.sin(2 * np.pi * k / 8) + 0.05 * rng.normal(size=64),
                  "AR(1) noise": 0.5 + e}
    elif curve is None:
        raise UserError("give a CURVE file (numbers, or a metrics.jsonl with --key) or --demo")
    else:
        curves = {f"{curve}[{i}]": np.array(c) for i, c in enumerate(_read_curve(curve, key))}
    for name, x in curves.items():
        r = detect(x, num_surrogates=surrogates, seed=seed)
        click.echo(f"{name}: {'FLAGGED' if r.flagged else 'not flagged'}  ρ={r.rho:.3f} (95% {r.threshold:.3f}, "
                   f"p={r.p_value:.3f})  A={r.amplitude:.3f}  period={r.peak_period:.1f}  "
                   f"collapses={r.collapses} recoveries={r.recoveries}")


def _executor(name: str | None, workers: int | None):
    """A core sweep executor by name, or None (``none``: everything in this process)."""
    if name in (None, "none"):
        return None
    from quietrl.core.sweep import make_executor

    return make_executor(name, max_workers=workers)


EXECUTOR_HELP = "local|ray|none: send one job per training program through quietrl.core.sweep (none: in-process)."


@cli.command("compare")
@click.option("--quick", is_flag=True, help="The reduced study (8x8, n=2, S0/S2, sparse/pbrs/arms, 2 seeds).")
@click.option("--extended", is_flag=True, help="Add n=8 and S1.")
@click.option("--executor", default="none", show_default=True, help=EXECUTOR_HELP)
@click.option("--workers", default=None, type=int, help="Parallel jobs (default: one per core).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Run directory (default: new one).")
@click.option("--equilibria-full/--equilibria-quick", "equilibria_full", default=True, show_default=True,
              help="Equilibrium stage with the label-noise sweep and the crossing game, or swap game only.")
@set_option
def compare_cmd(quick, extended, executor, workers, seed, out, equilibria_full, overrides):
    """The whole study in one run directory: the equilibrium table (stage ``equilibria``), methods x sparsity x
    agents x map size on held-out maps and generalisation splits with the validity gate and the
    sample-efficiency table (``compare``, table in ``compare/seed<k>/sample_efficiency.md``), then the
    oscillation check. ``--out`` of an unfinished run resumes it (finished stages and jobs are kept).
    ``--set`` overrides a study field, e.g. ``--set grids=5 --set agent_steps=20000`` for a tiny run."""
    import dataclasses

    from quietrl.arms.experiment import SUB, StudyConfig, run_study
    from quietrl.core.config import apply_overrides
    from quietrl.core.runs import RunDir

    if quick and extended:
        raise UserError("--quick and --extended exclude each other")
    study = apply_overrides(StudyConfig.quick() if quick else StudyConfig.full(extended), list(overrides))
    pool = _executor(executor, workers)
    if out is not None and (Path(out) / "config.json").exists():
        run = RunDir.open(out)
    else:
        run = RunDir.create(out, {"command": "arms compare", "study": dataclasses.asdict(study)}, seed)
    rows = run_study(run, study, seed, executor=pool, quick_equilibria=quick or not equilibria_full)
    for row in rows:
        click.echo(f"{row.quantity}: {row.ours}" + (f"  CI {row.ci[0]:.3f}..{row.ci[1]:.3f}" if row.ci else ""))
    table = run.stage(sub=SUB, experiment="compare", seed=seed).path / "sample_efficiency.md"
    if table.exists():
        click.echo(table.read_text())
    click.echo(f"run directory: {run.path}")


@cli.command("sweep")
@click.option("--method", default="arms", show_default=True)
@click.option("--sparsity", default="S2", show_default=True)
@click.option("--agents", default=2, show_default=True, type=int)
@click.option("--grid", default=8, show_default=True, type=int)
@click.option("--seeds", default=10, show_default=True, type=int)
@click.option("--envs", default=32, show_default=True, type=int, help="Parallel envs per run.")
@click.option("--agent-steps", default=400_000, show_default=True, type=int, help="Per-run budget.")
@click.option("--executor", default="none", show_default=True, help=EXECUTOR_HELP)
@click.option("--workers", default=None, type=int, help="Parallel jobs (default: one per core).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Run directory (default: new one).")
def sweep_cmd(method, sparsity, agents, grid, seeds, envs, agent_steps, executor, workers, seed, out):
    """Exploration sweep (E5): c_ent in {0, .01, .013, .02, .05} x seeds; oscillation flags and final ISR."""
    from quietrl.arms.experiment import SUB, exploration_sweep
    from quietrl.arms.types import EnvConfig, TrainConfig
    from quietrl.core.runs import RunDir

    _check_run_options(method, sparsity, seeds, agent_steps)
    EnvConfig(grid_size=grid, num_agents=agents)  # validates (ConfigError: exit 2)
    TrainConfig(num_envs=envs)
    pool = _executor(executor, workers)
    run = RunDir.create(out, {"command": "arms sweep", "method": method, "sparsity": sparsity, "agents": agents,
                              "grid": grid, "seeds": seeds, "agent_steps": agent_steps}, seed)
    st = run.stage(sub=SUB, experiment="exploration_sweep", seed=seed)
    with st.running():
        rows = exploration_sweep(st, method, sparsity, agents, grid=grid, seeds=seeds, agent_steps=agent_steps,
                                 seed=seed, executor=pool, num_envs=envs)
        st.write_summary(rows)
    for row in rows:
        click.echo(f"{row.quantity}: {row.ours}")
    click.echo(f"run directory: {run.path}")
