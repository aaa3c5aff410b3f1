"""The LEO study: LEO vs the baselines on the gridworld and Craftax-Classic, and the update-time speed-up.

`reproduce(run_dir, quick, seed, executor)` and `quietrl leo compare` write, under `<run>/leo/`:
- `gridworld-<algo>-lr<lr>/seed<k>`: one training run (12x12 gridworld, wall 0.2, K = 108): metrics per
  chunk, greedy all-goals test at the end, summary rows. One stage per run, so an interrupted study
  resumes run by run (and a run from its last chunk).
- `gridworld_summary/seed<k>`: the table over seeds (mean and 95% t-interval) per method and learning
  rate, success-vs-steps curves with intervals over seeds.
- `craftax_classic-<algo>-lr<lr>/seed<k>` and `craftax_classic_summary/seed<k>`: the Craftax-Classic
  smoke runs (K = 136) and a per-goal success heatmap.
- `speedup/seed<k>`: one LEO update vs one explicit all-goals relabelling update at several K, with the
  cost model's line (log-log figure), summary rows.
Done stages are skipped. The executor is unused: each run is one jitted program that uses both cores.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from quietrl.core.config import require
from quietrl.core.summary import Row

SUB = "leo"
ARXIV = "arXiv:2605.23551"
# Paper-scale reference numbers, cited (never compared as equal settings): speed-up from the abstract,
# success rates read from the authors' README figure (Craftax-Classic, 1e9 steps, 4x1024 trunk, 2 seeds).
PAPER_SPEEDUP = ">250x"
PAPER_CLASSIC_SR_1E9 = {"leo": 0.612, "pqn": 0.480, "pqn_her": 0.673, "ppo": 0.787, "dual_leo_pqn": 0.752,
                        "dual_leo_ppo": 0.810}
FIG_SOURCE = f"{ARXIV} code README figure craftax_results.png (read off the plot)"
FULL_ALGOS = ("leo", "pqn", "pqn_her", "ppo", "dual_leo_ppo")


@dataclass(frozen=True)
class StudyConfig:
    """What the study runs. `quick()` is the <= 3 minute reproduction, `full()` the issue's comparison."""

    algos: tuple[str, ...] = ("leo", "pqn", "pqn_her")
    num_seeds: int = 1
    lrs: tuple[float, ...] = (1e-3,)  # the same grid for every method
    map_size: int = 12
    wall_density: float = 0.2
    total_timesteps: int = 500_000
    num_envs: int = 256
    trunk: str = "256x2"
    speedup_ks: tuple[int, ...] = (8, 64, 174)
    speedup_fields: tuple[int, ...] = (16, 16)  # gridworld-sized one-hot input (row, col)
    speedup_trunk: str = "256x2"
    speedup_batch: int = 512
    speedup_minibatch: int = 256
    speedup_repeats: int = 3
    craftax_algos: tuple[str, ...] = ("leo",)
    craftax_lrs: tuple[float, ...] = (1e-3,)
    craftax_timesteps: int = 50_000  # Craftax-Classic smoke runs (0: skip)
    craftax_envs: int = 64
    craftax_test: bool = True  # greedy all-goals test after each Craftax-Classic run (136 envs x 512 steps)

    def __post_init__(self):
        from .train import ALGOS

        for name in ("algos", "craftax_algos"):
            bad = [a for a in getattr(self, name) if a not in ALGOS]
            require(not bad, name, f"unknown algo {bad[0] if bad else ''!r}; choose from {', '.join(ALGOS)}")
        require(len(self.algos) >= 1, "algos", "needs at least one algo")
        require(self.num_seeds >= 1, "num_seeds", "must be >= 1")
        require(len(self.lrs) >= 1 and min(self.lrs) > 0, "lrs", "needs learning rates > 0")
        require(len(self.craftax_lrs) >= 1 and min(self.craftax_lrs) > 0, "craftax_lrs", "needs learning rates > 0")
        require(self.craftax_timesteps >= 0, "craftax_timesteps", "must be >= 0")

    @classmethod
    def quick(cls) -> "StudyConfig":
        # The Craftax greedy test (and its compile) would not fit in the 3 minutes: live success only. A
        # short Craftax smoke run and one timing repeat keep the quick run under 3 minutes (idle, 2 cores).
        return cls(craftax_test=False, total_timesteps=350_000, craftax_timesteps=25_000, speedup_repeats=1)

    @classmethod
    def full(cls) -> "StudyConfig":
        # The comparison: every method on the lr grid {2e-4, 1e-3}, 3 seeds, 2M gridworld steps;
        # Craftax-Classic 0.5M steps, 1 seed (one lr per method keeps it inside the time budget).
        return cls(algos=FULL_ALGOS, num_seeds=3, lrs=(2e-4, 1e-3), total_timesteps=2_000_000,
                   speedup_ks=(8, 16, 32, 64, 128, 174, 256, 512), craftax_algos=FULL_ALGOS,
                   craftax_timesteps=500_000)


def method_config(study: StudyConfig, algo: str, lr: float, env: str = "gridworld"):
    """The TrainConfig of one run of the study (per-algorithm defaults, shared env, lr, trunk)."""
    from .train import default_config

    if env == "gridworld":
        upc = {"pqn": 100, "pqn_her": 100, "ppo": 5, "dual_leo_ppo": 5}.get(algo, 10)
        return default_config(algo, "gridworld", map_size=study.map_size, wall_density=study.wall_density,
                              total_timesteps=study.total_timesteps, num_envs=study.num_envs, lr=lr,
                              trunk=study.trunk, updates_per_chunk=upc)
    upc = {"pqn": 50, "pqn_her": 50, "ppo": 2, "dual_leo_ppo": 2}.get(algo, 5)
    # PQN's 2-step rollouts give only 2 x num_envs transitions per update: minibatches shrink with them.
    extra = dict(minibatch_size=study.craftax_envs // 2) if algo in ("pqn", "pqn_her") else {}
    return default_config(algo, env, num_envs=study.craftax_envs, trunk=study.trunk, lr=lr,
                          total_timesteps=study.craftax_timesteps, updates_per_chunk=upc, **extra)


def run_name(env: str, algo: str, lr: float) -> str:
    return f"{env}-{algo}-lr{lr:g}"


def run_method(stage, cfg, seed: int, greedy_test: bool = True) -> dict[str, Any]:
    """Train one config into its own stage; greedy all-goals test (unless skipped: test None); summary rows."""
    from .train import train
    from .types import success_rate

    state, trainer = train(cfg, seed, stage=stage, name=cfg.algo, desc=f"leo {cfg.algo} {cfg.env} lr {cfg.lr:g}")
    got = np.asarray(trainer.greedy_test(state.params, jax.random.PRNGKey(seed + 1000), state.aux_params)) \
        if greedy_test else None
    curve = [m for m in stage.read_metrics() if m.get("series") == cfg.algo]
    sps = float(np.median([m["sps"] for m in curve[1:]] or [curve[-1]["sps"]]))
    res = dict(algo=cfg.algo, lr=cfg.lr, seed=seed, k=trainer.genv.num_goals,
               test=None if got is None else float(got.mean()),
               live=curve[-1]["live_success"], seen=curve[-1]["goals_seen"], sps=sps,
               steps=[m["env_steps"] for m in curve], sr=[m["live_success"] for m in curve],
               per_goal_live=np.asarray(success_rate(state.tracker.succ, state.tracker.fail)).tolist(),
               per_goal_test=None if got is None else got.astype(int).tolist())
    setting = f"{trainer.genv.name}, K={res['k']}, {cfg.total_timesteps} steps, lr {cfg.lr:g}, {cfg.trunk}, seed {seed}"
    rows = [Row(f"{cfg.algo}: live success rate (all goals), {setting}", res["live"]),
            Row(f"{cfg.algo}: goals seen (fraction of K)", res["seen"]),
            Row(f"{cfg.algo}: env steps per second (median chunk)", sps)]
    if got is not None:
        rows.insert(1, Row(f"{cfg.algo}: greedy test, fraction of goals reached from reset", res["test"]))
    stage.write_summary(rows, extra={"result": res})
    return res


def _interval(xs: list[float]) -> tuple[float, tuple[float, float] | None]:
    """Mean and 95% t-interval over seeds (None for one seed)."""
    x = np.asarray(xs, float)
    if len(x) < 2:
        return float(x.mean()), None
    from scipy import stats

    h = float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))
    return float(x.mean()), (float(x.mean() - h), float(x.mean() + h))


def summarise(stage, results: list[dict], title: str, env: str, cite: bool) -> list[dict]:
    """Table over seeds per (algo, lr) and the success-vs-steps figure with intervals; returns table rows."""
    from quietrl.core.plotting import new_figure

    groups: dict[tuple[str, float], list[dict]] = {}
    for r in results:
        groups.setdefault((r["algo"], r["lr"]), []).append(r)
    rows, table = [], []
    fig, ax = new_figure(size=(6.0, 4.0))
    for (algo, lr), rs in groups.items():
        live, live_ci = _interval([r["live"] for r in rs])
        tested = all(r["test"] is not None for r in rs)
        test, test_ci = _interval([r["test"] for r in rs]) if tested else (None, None)
        n = min(len(r["sr"]) for r in rs)
        sr = np.array([r["sr"][:n] for r in rs])
        steps = rs[0]["steps"][:n]
        label = f"{algo} lr {lr:g}" + (f" (test {test:.2f})" if tested else "")
        line, = ax.plot(steps, sr.mean(0), label=label)
        if len(rs) > 1:
            ax.fill_between(steps, sr.min(0), sr.max(0), alpha=0.2, color=line.get_color())
        setting = f"{title}, lr {lr:g}, {len(rs)} seed(s)"
        paper = PAPER_CLASSIC_SR_1E9.get(algo) if cite else None
        rows.append(Row(f"{algo}: live success rate (all goals), {setting}", live, ci=live_ci, paper=paper,
                        source=FIG_SOURCE if paper is not None else "",
                        paper_setting="Craftax-Classic, 1e9 steps, 4x1024 trunk" if paper is not None else ""))
        if tested:
            rows.append(Row(f"{algo}: greedy test (fraction of goals reached from reset), {setting}", test,
                            ci=test_ci))
        table.append(dict(algo=algo, lr=lr, seeds=[r["seed"] for r in rs], live=live, live_ci=live_ci, test=test,
                          test_ci=test_ci, seen=float(np.mean([r["seen"] for r in rs])),
                          sps=float(np.median([r["sps"] for r in rs]))))
    ax.set_xlabel("env steps")
    ax.set_ylabel("live success rate (mean over all goals)")
    ax.set_title(f"{title} (band: min-max over seeds)", fontsize=8)
    ax.legend(fontsize=6)
    stage.save_figure(fig, "success_vs_steps")
    if env == "craftax-classic":
        leo = [r for r in results if r["algo"] == "leo"] or results
        sr = np.asarray(leo[0]["per_goal_live"])
        fig, ax = new_figure(size=(8.0, 3.0))
        im = ax.imshow(sr.reshape(8, -1), vmin=0, vmax=1, cmap="viridis", aspect="auto")
        ax.set_title(f"Craftax-Classic live success per goal, {leo[0]['algo']} (row-major in listing order: "
                     "items, tools, blocks, mobs)", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax)
        stage.save_figure(fig, "per_goal_success")
    best = {}
    for t in (t for t in table if t["test"] is not None):
        if t["algo"] not in best or t["test"] > best[t["algo"]]["test"]:
            best[t["algo"]] = t
    if "leo" in best and "pqn" in best:
        rows.append(Row("greedy test LEO - PQN, each at its best lr (positive = LEO better)",
                        best["leo"]["test"] - best["pqn"]["test"]))
    stage.write_summary(rows, extra={"table": table})
    return table


def _stage_result(stage) -> dict:
    """The result dict a done run stage wrote into its summary.json."""
    import json

    return json.loads((stage.path / "summary.json").read_text(encoding="utf-8"))["extra"]["result"]


def _run_env(run_dir, study: StudyConfig, seed: int, env: str) -> list[dict]:
    """Every (algo, lr, seed) run of one env, each in its own stage, then the summary stage."""
    algos, lrs = (study.algos, study.lrs) if env == "gridworld" else (study.craftax_algos, study.craftax_lrs)
    seeds = [seed + i for i in range(study.num_seeds)] if env == "gridworld" else [seed]
    results = []
    for s in seeds:
        for algo in algos:
            for lr in lrs:
                stage = run_dir.stage(sub=SUB, experiment=run_name(env.replace("-", "_"), algo, lr), seed=s)
                if not stage.done:
                    with stage.running():
                        run_method(stage, method_config(study, algo, lr, env), s,
                                   greedy_test=env == "gridworld" or study.craftax_test)
                results.append(_stage_result(stage))
    summary = run_dir.stage(sub=SUB, experiment=f"{env.replace('-', '_')}_summary", seed=seed)
    if not summary.done:
        with summary.running():
            if env == "gridworld":
                title = f"gridworld {study.map_size}x{study.map_size} wall {study.wall_density}, " \
                        f"K={results[0]['k']}, {study.total_timesteps} steps, {study.trunk}"
            else:
                title = f"Craftax-Classic K={results[0]['k']}, {study.craftax_timesteps} steps, " \
                        f"{study.craftax_envs} envs, {study.trunk}"
            summarise(summary, results, title, env, cite=env == "craftax-classic")
    return results


def run_speedup(stage, study: StudyConfig, seed: int) -> list[dict]:
    """Time LEO vs explicit relabelling at each K of the study; figure with the cost model; rows."""
    from .speedup import SpeedupSetup, flop_model, time_updates

    setup = SpeedupSetup(fields=study.speedup_fields, num_actions=4, trunk=study.speedup_trunk,
                         batch=study.speedup_batch, minibatch=study.speedup_minibatch)
    out = []
    for k in study.speedup_ks:
        r = time_updates(setup, k, repeats=study.speedup_repeats, seed=seed, with_pqn=False,
                         with_target_pass=False)
        stage.log_metrics({"series": "speedup", **r})
        out.append(r)
    from quietrl.core.plotting import new_figure

    fig, ax = new_figure()
    ks = np.array([r["k"] for r in out])
    ax.loglog(ks, [r["ratio"] for r in out], "o-", label="measured (relabel / LEO update time)")
    grid = np.unique(np.geomspace(max(1, ks.min()), ks.max(), 50).astype(int))
    ax.loglog(grid, [flop_model(setup, int(k)) for k in grid], "--", label="cost model (multiply-adds)")
    ax.set_xlabel("number of goals K")
    ax.set_ylabel("speed-up of LEO")
    ax.set_title(f"D={setup.obs_dim}, A=4, {setup.trunk}, B={setup.batch}, mb={setup.minibatch}")
    ax.legend()
    stage.save_figure(fig, "speedup_vs_k")
    rows = [Row(f"update-time speed-up LEO vs all-goals relabelling, K={r['k']} ({setup.trunk}, "
                f"D={setup.obs_dim}, B={setup.batch}, mb={setup.minibatch}, CPU)", r["ratio"],
                paper=PAPER_SPEEDUP if r["k"] == max(study.speedup_ks) else None,
                paper_setting="unreported (probably GPU, Craftax)" if r["k"] == max(study.speedup_ks) else "",
                source=f"{ARXIV}, abstract" if r["k"] == max(study.speedup_ks) else "")
            for r in out]
    rows += [Row(f"update-CPU-time speed-up at K={r['k']} (steadier on a shared machine)", r["ratio_cpu"])
             for r in out]
    rows += [Row(f"cost-model speed-up at K={r['k']}", r["model"]) for r in out]
    stage.write_summary(rows, extra={"setup": dataclasses.asdict(setup), "updates": out})
    return out


def run_study(run_dir, study: StudyConfig, seed: int) -> None:
    """Gridworld comparison, speed-up curve, Craftax-Classic smoke runs; resumable stage by stage."""
    _run_env(run_dir, study, seed, "gridworld")
    speed = run_dir.stage(sub=SUB, experiment="speedup", seed=seed)
    if study.speedup_ks and not speed.done:
        with speed.running():
            run_speedup(speed, study, seed)
    if study.craftax_timesteps > 0:
        _run_env(run_dir, study, seed, "craftax-classic")


def reproduce(run_dir, quick: bool, seed: int, executor=None) -> None:
    """Run the LEO study into `run_dir` (a core RunDir); done stages are skipped, training resumes.

    quick=True: LEO, PQN and PQN+HER on the 12x12 gridworld at 0.35M steps (lr 1e-3, one seed), the
    speed-up at K in {8, 64, 174}, and a 25k-step LEO smoke run on Craftax-Classic.
    quick=False: `StudyConfig.full()`, the issue's comparison.
    """
    del executor
    run_study(run_dir, StudyConfig.quick() if quick else StudyConfig.full(), seed)
