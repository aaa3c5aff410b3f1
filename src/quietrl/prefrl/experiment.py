"""The regret study and the quick reproduction, written through quietrl.core's RunDir API.

Stages (each skipped when already done, so a rerun resumes; inside an unfinished stage every finished run
is kept in its checkpoints/runs folder and not rerun):
  exact_values   V*, "stay" and uniform values by exact DP; Fig. 0 reward and V* over bumps1d's grid.
  regret_chain   learners on `chain` (delta kernel), seeds, regret curves, slopes, table.
  regret_bumps1d learners on `bumps1d` (SE 0.1), same outputs, learned vs true reward, chosen policies.
  ablation_*     (full study only) beta scale / theory beta, kernel, temperature on bumps1d at N = 1000.
Acceptance constants (fixed before the runs, issue 8): ucb upper 95 % CI of the slope < 0.9; uniform
1.00 +- 0.02; ucb cumulative regret <= 3x oracle_ucb. The paper reports no experiments, so no row carries
a paper figure; the spec's prototype numbers are stored under ``extra`` as context only.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from quietrl.core.summary import Row
from quietrl.prefrl.envs import make_env
from quietrl.prefrl.learners import run_learner
from quietrl.prefrl.regret import local_slope, slope_summary, window_means
from quietrl.prefrl.types import LearnerConfig, RunResult

__all__ = ["StudySpec", "run_job", "run_study", "save_result", "load_result", "study_table", "reproduce", "plot_regret", "QUICK", "FULL"]

SUB = "prefrl"
ACCEPT_UCB_SLOPE_UPPER = 0.9
ACCEPT_UNIFORM_TOL = 0.02
ACCEPT_ORACLE_FACTOR = 3.0


@dataclasses.dataclass(frozen=True)
class StudySpec:
    """One environment's study: algorithms x seeds at N episodes, with config overrides."""

    env: str
    algos: tuple[str, ...]
    episodes: int
    seeds: tuple[int, ...]
    overrides: tuple[tuple[str, Any], ...] = ()
    name: str = ""

    @property
    def stage_name(self) -> str:
        return self.name or f"regret_{self.env}"


_MAIN_ALGOS = ("uniform", "greedy", "ucb", "perturbed", "oracle_ucb")
QUICK = (
    StudySpec("chain", _MAIN_ALGOS, 1000, (0, 1, 2)),
    StudySpec("bumps1d", _MAIN_ALGOS, 500, (0, 1, 2)),
)
FULL = (
    StudySpec("chain", _MAIN_ALGOS, 10_000, (0, 1, 2, 3, 4)),
    StudySpec("bumps1d", _MAIN_ALGOS, 3000, (0, 1, 2, 3, 4)),
    StudySpec("chain", ("maxinfo",), 1000, (0, 1, 2), name="maxinfo_chain"),
    StudySpec("bumps1d", ("maxinfo",), 1000, (0, 1, 2), name="maxinfo_bumps1d"),
    StudySpec("bumps1d", ("ucb",), 1000, (0, 1, 2), name="ablation_base"),
) + tuple(
    StudySpec("bumps1d", ("ucb",), 1000, (0, 1, 2), (("beta_scale", b),), name=f"ablation_beta{b}")
    for b in (0.5, 2.0)
) + (
    StudySpec("bumps1d", ("ucb",), 1000, (0, 1, 2), (("beta_mode", "theory"),), name="ablation_beta_theory"),
) + tuple(
    StudySpec("bumps1d", ("ucb",), 1000, (0, 1, 2), (("kernel", k),), name=f"ablation_kernel_{k}")
    for k in ("matern52", "matern32")
) + tuple(
    StudySpec("bumps1d", ("ucb",), 1000, (0, 1, 2), (("temperature", c),), name=f"ablation_temp{c}")
    for c in (0.5, 2.0)
)


def run_job(item: tuple) -> RunResult:
    """Module-level (picklable) job: (env, algo, episodes, seed, overrides[, cache path]) -> RunResult.
    With a cache path the finished run is also written there (atomically), so that an interrupted study
    resumes run by run instead of stage by stage."""
    env_name, algo, episodes, seed, overrides = item[:5]
    cfg = LearnerConfig(algo=algo, **dict(overrides))
    result = run_learner(make_env(env_name), cfg, episodes, seed)
    if len(item) > 5 and item[5] is not None:
        save_result(result, item[5])
    return result


_RESULT_ARRAYS = ("v1", "v2", "labels", "seconds", "states1", "states2")


def save_result(r: RunResult, path) -> None:
    """One run's arrays and identity as an .npz file, written atomically."""
    import io as _io

    from quietrl.core.io import atomic_write_bytes

    buf = _io.BytesIO()
    extra = {} if r.reward_hat is None else {"reward_hat": r.reward_hat}
    np.savez_compressed(buf, algo=r.algo, env=r.env, seed=r.seed, vstar=r.vstar,
                        **{k: getattr(r, k) for k in _RESULT_ARRAYS}, **extra)
    atomic_write_bytes(path, buf.getvalue())


def load_result(path) -> RunResult:
    """Inverse of save_result."""
    with np.load(path) as z:
        return RunResult(str(z["algo"]), str(z["env"]), int(z["seed"]), float(z["vstar"]),
                         *(z[k] for k in _RESULT_ARRAYS), reward_hat=z["reward_hat"] if "reward_hat" in z else None)


def run_study(spec: StudySpec, executor=None, seed_offset: int = 0, cache_dir=None) -> dict[str, list[RunResult]]:
    """All (algo, seed) runs of a study, through ``executor.map`` when given (else in this process).

    ``cache_dir``: finished runs are stored there and reused (a key per env, algo, N, seed, overrides)."""
    from pathlib import Path

    items = [(spec.env, a, spec.episodes, s + seed_offset, spec.overrides) for a in spec.algos for s in spec.seeds]
    cached: dict[int, RunResult] = {}
    if cache_dir is not None:
        cache_dir = Path(cache_dir)
        cache_dir.mkdir(parents=True, exist_ok=True)
        keyed = []
        for i, it in enumerate(items):
            ov = "".join(f"_{k}={v}" for k, v in it[4])
            path = cache_dir / f"{it[0]}_{it[1]}_N{it[2]}_seed{it[3]}{ov}.npz"
            if path.exists():
                cached[i] = load_result(path)
            keyed.append(it + (str(path),))
        items = keyed
    todo = [i for i in range(len(items)) if i not in cached]
    if executor is None:
        fresh = [run_job(items[i]) for i in todo]
    else:
        fresh = []
        for r in executor.map(run_job, [items[i] for i in todo]):
            if not r.ok:
                raise RuntimeError(f"prefrl job {r.item} failed: {r.error}")
            fresh.append(r.value)
    cached.update(zip(todo, fresh))
    values = [cached[i] for i in range(len(items))]
    out: dict[str, list[RunResult]] = {a: [] for a in spec.algos}
    for v in values:
        out[v.algo].append(v)
    return out


def study_table(results: dict[str, list[RunResult]]) -> dict[str, dict[str, Any]]:
    """Per algorithm: cumulative regret (mean, s.e.), slope (mean, CI, per seed), local slope, s/episode,
    windowed per-episode regret, and the cumulative regret of each policy separately."""
    table = {}
    for algo, runs in results.items():
        C = np.stack([r.cumulative_regret for r in runs])
        final = C[:, -1]
        sl = slope_summary(C)
        table[algo] = {
            "cum_regret": float(final.mean()),
            "cum_regret_se": float(final.std(ddof=1) / np.sqrt(len(final))) if len(final) > 1 else 0.0,
            "cum_regret_pi1": float(np.mean([np.sum(r.vstar - r.v1) for r in runs])),
            "cum_regret_pi2": float(np.mean([np.sum(r.vstar - r.v2) for r in runs])),
            "slope": sl.mean,
            "slope_ci": list(sl.ci),
            "slope_per_seed": list(sl.per_seed),
            "local_slope": float(np.mean([local_slope(c) for c in C])),
            "windows": window_means(np.mean([r.regret for r in runs], 0)).tolist(),
            "s_per_episode": float(np.mean([r.seconds.mean() for r in runs])),
            "episodes": int(C.shape[1]),
            "seeds": [r.seed for r in runs],
        }
    return table


def format_table(table: dict[str, dict[str, Any]]) -> str:
    """Plain-text table: algo, cumulative regret (both policies) +- s.e., each policy's share, slope [CI],
    local slope, s/episode (the learner's time per episode, exact evaluation excluded)."""
    lines = [f"{'algo':<12}{'cum.regret':>16}{'pi1':>9}{'pi2':>9}{'slope':>8}{'95% CI':>18}{'local':>8}{'s/ep':>9}"]
    for a, t in table.items():
        lo, hi = t["slope_ci"]
        lines.append(
            f"{a:<12}{t['cum_regret']:>10.1f} ±{t['cum_regret_se']:<5.1f}{t['cum_regret_pi1']:>9.1f}"
            f"{t['cum_regret_pi2']:>9.1f}{t['slope']:>8.3f}"
            f"{f'[{lo:.3f}, {hi:.3f}]':>18}{t['local_slope']:>8.3f}{t['s_per_episode']:>9.4f}"
        )
    return "\n".join(lines)


def acceptance(table: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The issue's pre-registered checks, where the algorithms needed are present."""
    out: dict[str, Any] = {}
    if "ucb" in table:
        out["ucb_slope_upper_ci_lt_0.9"] = table["ucb"]["slope_ci"][1] < ACCEPT_UCB_SLOPE_UPPER
    if "uniform" in table:
        out["uniform_slope_1.00_pm_0.02"] = abs(table["uniform"]["slope"] - 1.0) <= ACCEPT_UNIFORM_TOL
    if "ucb" in table and "oracle_ucb" in table:
        ratio = table["ucb"]["cum_regret"] / max(table["oracle_ucb"]["cum_regret"], 1e-12)
        out["ucb_over_oracle_ratio"] = ratio
        out["ucb_le_3x_oracle"] = ratio <= ACCEPT_ORACLE_FACTOR
    return out


# ----------------------------------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------------------------------


def plot_regret(results: dict[str, list[RunResult]], table: dict[str, dict[str, Any]], title: str):
    """Cumulative regret vs episodes, log-log, mean with 95 % normal band over seeds, slope in the legend."""
    from quietrl.core.plotting import band, mean_ci, new_figure

    fig, ax = new_figure(size=(5.5, 3.8))
    for algo, runs in results.items():
        C = np.stack([r.cumulative_regret for r in runs])
        n = np.arange(1, C.shape[1] + 1)
        m, lo, hi = mean_ci(C)
        band(ax, n, m, np.maximum(lo, 1e-3), hi, label=f"{algo} (slope {table[algo]['slope']:.2f})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("episode n")
    ax.set_ylabel("cumulative regret (both policies)")
    ax.set_title(title)
    ax.legend()
    return fig


def plot_reward(env, results: dict[str, list[RunResult]]):
    """Learned vs true reward over the grid, both centred by their grid means (the gauge)."""
    from quietrl.core.plotting import new_figure

    A = env.num_actions
    fig, ax = new_figure(size=(5.5, 3.8))
    true = env.r - env.r.mean()
    x = env.state_coords[:, 0]
    if env.state_dim == 1:
        for a in range(A):
            ax.plot(x, true[:, a], color="k", lw=1, alpha=0.7, label="true" if a == 0 else None)
    for algo, runs in results.items():
        if runs[0].reward_hat is None:
            continue
        rh = np.mean([r.reward_hat for r in runs], 0).reshape(-1, A)
        rh = rh - rh.mean()
        if env.state_dim == 1:
            ax.plot(x, rh[:, 1 if A == 3 else 0], lw=1, label=f"{algo} (a={1 if A == 3 else 0})")
        else:
            ax.scatter(true.ravel(), rh.ravel(), s=3, label=algo)
    ax.set_xlabel("state" if env.state_dim == 1 else "true reward (centred)")
    ax.set_ylabel("reward minus grid mean")
    ax.legend()
    return fig


def plot_policies(env, results: dict[str, list[RunResult]], windows: int = 5):
    """State visitation of pi1 (solid) and pi2 (dashed) per episode window, seed 0 of each preference learner."""
    from quietrl.core.plotting import new_figure

    algos = [a for a in results if a not in ("uniform",)]
    fig, axes = new_figure(1, max(len(algos), 1), size=(3.2, 2.8))
    axes = np.atleast_1d(axes).ravel()
    coord = env.state_coords[:, 0]
    for ax, algo in zip(axes, algos):
        r = results[algo][0]
        for w, (i1, i2) in enumerate(zip(np.array_split(r.states1, windows), np.array_split(r.states2, windows))):
            col = f"C{w}"
            ax.plot(np.arange(i1.shape[1]), coord[i1].mean(0), color=col, label=f"window {w + 1}")
            ax.plot(np.arange(i2.shape[1]), coord[i2].mean(0), color=col, ls="--")
        ax.set_title(algo)
        ax.set_xlabel("step h")
    axes[0].set_ylabel("mean state coordinate")
    axes[0].legend(fontsize=6)
    fig.suptitle("mean visited state per episode window (solid: policy 1, dashed: policy 2; seed 0)", fontsize=8)
    return fig


def plot_exact(env):
    """Fig. 0: reward r(s, a) and V*_1 over bumps1d's grid."""
    from quietrl.core.plotting import new_figure

    fig, ax = new_figure(size=(5.5, 3.5))
    x = env.state_coords[:, 0]
    for a in range(env.num_actions):
        ax.plot(x, env.r[:, a], label=f"r(s, a={a - 1:+d})")
    V = np.zeros(env.num_states)
    for _ in range(env.horizon):
        V = (env.r + env.P @ V).max(1)
    ax.plot(x, V / env.horizon, "k--", label="V*_1(s) / H")
    ax.axvline(x[env.s1], color="grey", lw=0.8)
    ax.set_xlabel("state s")
    ax.legend()
    return fig


# ----------------------------------------------------------------------------------------------------
# Reproduction
# ----------------------------------------------------------------------------------------------------

_PROTO = {  # spec §6/§9 prototype values: context for the reader, not the paper's
    "bumps1d": {"vstar": 3.221, "stay": 1.277, "uniform": 0.82},
    "chain": {"vstar": 2.160},
}


def _stage_exact(stage) -> None:
    rows, extra = [], {}
    for name in ("bumps1d", "chain"):
        env = make_env(name)
        v, _ = env.optimal()
        extra[name] = {"vstar": v, "uniform": env.uniform_value(), "spec_prototype": _PROTO[name]}
        rows.append(Row(f"{name}: V*_1(s1) by exact DP", round(v, 4)))
        rows.append(Row(f"{name}: uniform-policy value", round(env.uniform_value(), 4)))
        if name == "bumps1d":
            stay = env.evaluate(np.ones((env.horizon, env.num_states), dtype=np.int64))
            extra[name]["stay"] = stay
            rows.append(Row("bumps1d: 'stay' policy value", round(stay, 4)))
            stage.save_figure(plot_exact(env), "fig0_bumps1d_reward_vstar")
    stage.write_summary(rows, extra)


def _stage_study(stage, spec: StudySpec, executor, seed: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    # finished runs go to the stage's checkpoint folder, which a resumed stage keeps
    results = run_study(spec, executor, seed_offset=seed, cache_dir=stage.checkpoint_dir / "runs")
    wall = time.perf_counter() - t0
    table = study_table(results)
    acc = acceptance(table)
    for algo, runs in results.items():
        for r in runs:
            stage.log_metrics({"algo": algo, "seed": r.seed, "cum_regret": float(r.cumulative_regret[-1]),
                               "s_per_episode": float(r.seconds.mean())})
    np.savez_compressed(
        stage.path / "curves.npz",
        **{f"{a}_cumregret": np.stack([r.cumulative_regret for r in rs]) for a, rs in results.items()},
    )
    env = make_env(spec.env)
    stage.save_figure(plot_regret(results, table, f"{spec.env}, N = {spec.episodes}"), "regret_loglog")
    if any(rs[0].reward_hat is not None for rs in results.values()):
        stage.save_figure(plot_reward(env, results), "reward_learned_vs_true")
        stage.save_figure(plot_policies(env, results), "chosen_policies")
    rows = []
    for algo, t in table.items():
        rows.append(Row(f"{spec.stage_name} {algo}: cumulative regret (N={spec.episodes})", round(t["cum_regret"], 2),
                        ci=(t["cum_regret"] - 1.96 * t["cum_regret_se"], t["cum_regret"] + 1.96 * t["cum_regret_se"])))
        rows.append(Row(f"{spec.stage_name} {algo}: log-log regret slope on [0.2N, N]", round(t["slope"], 3),
                        ci=tuple(t["slope_ci"])))
    for k, v in acc.items():
        rows.append(Row(f"{spec.stage_name}: {k}", v if isinstance(v, bool) else round(v, 3)))
    stage.write_summary(rows, {"table": table, "acceptance": acc, "wall_s": wall, "spec": dataclasses.asdict(spec),
                               "text": format_table(table)})
    stage.run.log(f"prefrl {spec.stage_name} ({wall:.0f} s)\n" + format_table(table))
    return table


def reproduce(run_dir, quick: bool, seed: int, executor) -> None:
    """Quick (<= 3 min on 2 cores): exact values; chain N=1000 and bumps1d N=500, 5 algorithms x 3 seeds.
    Full: the issue's study (chain N=1e4, bumps1d N=3000, 5 seeds; maxinfo; ablations at N=1000)."""
    stage = run_dir.stage(sub=SUB, experiment="exact_values", seed=seed)
    if not stage.done:
        with stage.running():
            _stage_exact(stage)
    for spec in QUICK if quick else FULL:
        stage = run_dir.stage(sub=SUB, experiment=spec.stage_name, seed=seed)
        if stage.done:
            continue
        with stage.running():
            _stage_study(stage, spec, executor, seed)
    if not quick:
        stage = run_dir.stage(sub=SUB, experiment="ablation_summary", seed=seed)
        if not stage.done:
            with stage.running():
                _stage_ablation_summary(stage, run_dir, seed)


def _stage_ablation_summary(stage, run_dir, seed: int) -> None:
    """Fig. 4-6 in one panel: ucb's slope (95 % CI) and cumulative regret per ablation setting, N = 1000."""
    from quietrl.core.plotting import new_figure

    names = [s.stage_name for s in FULL if s.stage_name.startswith("ablation_")]
    labels, slopes, lo, hi, regrets, rows = [], [], [], [], [], []
    for name in names:
        summ = run_dir.stage(sub=SUB, experiment=name, seed=seed).summary() or {}
        t = summ.get("extra", {}).get("table", {}).get("ucb")
        if t is None:
            continue
        labels.append(name.removeprefix("ablation_"))
        slopes.append(t["slope"])
        lo.append(t["slope"] - t["slope_ci"][0])
        hi.append(t["slope_ci"][1] - t["slope"])
        regrets.append(t["cum_regret"])
        rows.append(Row(f"ablation {labels[-1]}: ucb slope (N={t['episodes']})", round(t["slope"], 3),
                        ci=tuple(t["slope_ci"])))
    fig, axes = new_figure(1, 2, size=(4.5, 3.2))
    a1, a2 = np.asarray(axes).ravel()
    x = np.arange(len(labels))
    a1.errorbar(x, slopes, yerr=[lo, hi], fmt="o")
    a1.set_xticks(x, labels, rotation=60, fontsize=7)
    a1.set_ylabel("log-log regret slope (95 % CI)")
    a2.bar(x, regrets)
    a2.set_xticks(x, labels, rotation=60, fontsize=7)
    a2.set_ylabel("cumulative regret, N = 1000")
    stage.save_figure(fig, "ablations")
    stage.write_summary(rows, {"labels": labels})
