"""The LEO study: gridworld learning curves (LEO vs commanded-goal PQN) and update-time speed-up vs K.

`reproduce(run_dir, quick, seed, executor)` writes, under `<run>/leo/`:
- `gridworld/seed<k>`: each method trained on the 12x12 gridworld (wall 0.2, K = 108); metrics per
  chunk (series = method), greedy all-goals test at the end, success-vs-steps figure, summary rows.
- `craftax_classic/seed<k>`: a LEO smoke run on Craftax-Classic (K = 136), per-goal heatmap.
- `speedup/seed<k>`: one LEO update vs one explicit all-goals relabelling update at several K, with the
  cost model's line (log-log figure), summary rows.
Stages already done are skipped; a stage interrupted mid-training resumes from its checkpoints.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from quietrl.core.summary import Row

SUB = "leo"
ARXIV = "arXiv:2605.23551"
# Paper-scale reference numbers, cited (never compared as equal settings): speed-up from the abstract,
# success rates read from the authors' README figure (Craftax-Classic, 1e9 steps, 4x1024 trunk, 2 seeds).
PAPER_SPEEDUP = ">250x"
PAPER_CLASSIC_SR_1E9 = {"leo": 0.612, "pqn": 0.480, "pqn_her": 0.673}
FIG_SOURCE = f"{ARXIV} code README figure craftax_results.png (read off the plot)"


@dataclass(frozen=True)
class StudyConfig:
    """What `reproduce` runs."""

    algos: tuple[str, ...] = ("leo", "pqn")
    map_size: int = 12
    wall_density: float = 0.2
    total_timesteps: int = 500_000
    num_envs: int = 256
    lr: float = 1e-3  # one grid point of the issue's {2e-4, 1e-3}, the same for every method
    trunk: str = "256x2"
    speedup_ks: tuple[int, ...] = (8, 64, 174)
    speedup_fields: tuple[int, ...] = (16, 16)  # gridworld-sized one-hot input (row, col)
    speedup_trunk: str = "256x2"
    speedup_batch: int = 512
    speedup_minibatch: int = 256
    speedup_repeats: int = 3
    craftax_timesteps: int = 50_000  # Craftax-Classic smoke run (0: skip)
    craftax_envs: int = 64

    @classmethod
    def quick(cls) -> "StudyConfig":
        return cls()

    @classmethod
    def full(cls) -> "StudyConfig":
        return cls(algos=("leo", "pqn", "pqn_her"), total_timesteps=2_000_000,
                   speedup_ks=(8, 16, 32, 64, 128, 174, 256, 512), craftax_timesteps=500_000)


def method_config(study: StudyConfig, algo: str):
    """The TrainConfig of one method in the study (per-algorithm defaults, shared env, lr, trunk)."""
    from .train import default_config

    upc = 10 if algo in ("leo", "relabel_all") else 100
    return default_config(algo, "gridworld", map_size=study.map_size, wall_density=study.wall_density,
                          total_timesteps=study.total_timesteps, num_envs=study.num_envs, lr=study.lr,
                          trunk=study.trunk, updates_per_chunk=upc)


def run_gridworld(stage, study: StudyConfig, seed: int) -> dict[str, Any]:
    """Train every method of the study into `stage`; write the curve figure and summary rows."""
    from .train import train

    results: dict[str, Any] = {}
    for algo in study.algos:
        cfg = method_config(study, algo)
        state, trainer = train(cfg, seed, stage=stage, name=algo, desc=f"leo {algo}")
        got = np.asarray(trainer.greedy_test(state.params, jax.random.PRNGKey(seed + 1000)))
        curve = [m for m in stage.read_metrics() if m.get("series") == algo]
        results[algo] = dict(test=float(got.mean()), live=curve[-1]["live_success"],
                             seen=curve[-1]["goals_seen"], sps=float(np.median([m["sps"] for m in curve[1:]]
                                                                                   or [curve[-1]["sps"]])),
                             steps=[m["env_steps"] for m in curve], sr=[m["live_success"] for m in curve],
                             k=trainer.genv.num_goals)
    _curve_figure(stage, results, study)
    rows = []
    k = next(iter(results.values()))["k"]
    setting = f"gridworld {study.map_size}x{study.map_size} wall {study.wall_density}, K={k}, " \
              f"{study.total_timesteps} steps, lr {study.lr}, {study.trunk}, seed {seed}"
    for algo, r in results.items():
        rows.append(Row(f"{algo}: live success rate (all goals), {setting}", r["live"],
                        paper=PAPER_CLASSIC_SR_1E9.get(algo), source=FIG_SOURCE if algo in PAPER_CLASSIC_SR_1E9 else "",
                        paper_setting="Craftax-Classic, 1e9 steps, 4x1024 trunk" if algo in PAPER_CLASSIC_SR_1E9 else ""))
        rows.append(Row(f"{algo}: greedy test, fraction of goals reached from reset", r["test"]))
        rows.append(Row(f"{algo}: goals seen (fraction of K)", r["seen"]))
        rows.append(Row(f"{algo}: env steps per second (median chunk)", r["sps"]))
    if "leo" in results and "pqn" in results:
        rows.append(Row("greedy test LEO - PQN (gridworld; positive = LEO better)",
                        results["leo"]["test"] - results["pqn"]["test"]))
    stage.write_summary(rows, extra={"study": dataclasses.asdict(study),
                                     "results": {a: {k2: v for k2, v in r.items() if k2 not in ("steps", "sr")}
                                                 for a, r in results.items()}})
    return results


def _curve_figure(stage, results, study):
    from quietrl.core.plotting import new_figure

    fig, ax = new_figure()
    for algo, r in results.items():
        ax.plot(r["steps"], r["sr"], label=f"{algo} (test {r['test']:.2f})")
    ax.set_xlabel("env steps")
    ax.set_ylabel("live success rate (mean over all goals)")
    ax.set_title(f"gridworld {study.map_size}x{study.map_size}, wall {study.wall_density}")
    ax.legend()
    stage.save_figure(fig, "success_vs_steps")


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
    rows += [Row(f"cost-model speed-up at K={r['k']}", r["model"]) for r in out]
    stage.write_summary(rows, extra={"setup": dataclasses.asdict(setup), "updates": out})
    return out


def run_craftax(stage, study: StudyConfig, seed: int) -> dict[str, Any]:
    """LEO smoke run on goal-conditioned Craftax-Classic (K = 136): live success, goals seen, SPS, heatmap."""
    from .train import default_config, train
    from .types import success_rate

    cfg = default_config("leo", "craftax-classic", num_envs=study.craftax_envs, trunk=study.trunk,
                         total_timesteps=study.craftax_timesteps, lr=study.lr, updates_per_chunk=5)
    state, trainer = train(cfg, seed, stage=stage, name="leo", desc="leo craftax-classic")
    curve = [m for m in stage.read_metrics() if m.get("series") == "leo"]
    sr = np.asarray(success_rate(state.tracker.succ, state.tracker.fail))
    from quietrl.core.plotting import new_figure

    fig, ax = new_figure(size=(8.0, 3.0))
    im = ax.imshow(sr.reshape(8, 17), vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_title("Craftax-Classic live success per goal (row-major in listing order: items, tools, "
                 "blocks, mobs)", fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.colorbar(im, ax=ax)
    stage.save_figure(fig, "per_goal_success")
    fig, ax = new_figure()
    ax.plot([m["env_steps"] for m in curve], [m["live_success"] for m in curve], label="LEO")
    ax.set_xlabel("env steps")
    ax.set_ylabel("live success rate (all 136 goals)")
    stage.save_figure(fig, "success_vs_steps")
    sps = float(np.median([m["sps"] for m in curve[1:]] or [curve[-1]["sps"]]))
    first = curve[0]["live_success"]
    rows = [Row(f"LEO Craftax-Classic live success (all goals), {cfg.total_timesteps} steps, {cfg.num_envs} envs",
                curve[-1]["live_success"], paper=0.561, source=FIG_SOURCE,
                paper_setting="Craftax-Classic at 250M steps, 4x1024 trunk"),
            Row("LEO Craftax-Classic live success after the first chunk", first),
            Row("LEO Craftax-Classic goals seen (fraction of 136)", curve[-1]["goals_seen"]),
            Row("LEO Craftax-Classic env steps per second (median chunk)", sps)]
    stage.write_summary(rows, extra={"per_goal_success": sr.tolist(), "goal_names": list(trainer.genv.goal_names)})
    return {"sr": sr, "curve": curve}


def reproduce(run_dir, quick: bool, seed: int, executor=None) -> None:
    """Run the LEO study into `run_dir` (a core RunDir); done stages are skipped, training resumes.

    quick=True: LEO vs PQN on the 12x12 gridworld at 0.5M steps, speed-up at K in {8, 64, 174}, and a
    50k-step LEO smoke run on Craftax-Classic.
    The executor is unused: each run is one jitted program that already uses both cores.
    """
    del executor
    study = StudyConfig.quick() if quick else StudyConfig.full()
    grid = run_dir.stage(sub=SUB, experiment="gridworld", seed=seed)
    if not grid.done:
        with grid.running():
            run_gridworld(grid, study, seed)
    speed = run_dir.stage(sub=SUB, experiment="speedup", seed=seed)
    if not speed.done:
        with speed.running():
            run_speedup(speed, study, seed)
    if study.craftax_timesteps > 0:
        crafter = run_dir.stage(sub=SUB, experiment="craftax_classic", seed=seed)
        if not crafter.done:
            with crafter.running():
                run_craftax(crafter, study, seed)
