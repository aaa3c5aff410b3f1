"""The precise study: consistency statistics, pretraining, GRPO per sampler, comparison and figures.

Stages (``<run>/precise/<experiment>/seed<k>/``), each skipped when already done (resume):
  consistency     S1/S2/S3 tables and the sampler-vs-exact-marginal figure (no model)
  pretrain        conditional flow matching of the 2-D prompt-conditioned mixture (checkpointed)
  finetune_<arm>  GRPO with that sampler as the policy, one stage per (arm, seed)
  compare         reward vs iterations / seconds with 95% intervals, time to target, summary rows
All arms at one K run the same compiled program (samplers are data), in this process one after another:
on 2 cores that beats a process pool, so the executor is not used.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import jax
import numpy as np

from quietrl.precise import analysis, consistency
from quietrl.core.errors import ConfigError, UserError
from quietrl.precise.flow import KIND as FLOW_KIND
from quietrl.precise.flow import init_flow_state, mode_weight_error, pretrain, sample_model, task_of
from quietrl.precise.grpo import finetune, make_arm, make_trainer
from quietrl.precise.samplers import SAMPLERS
from quietrl.precise.schedules import shifted_grid
from quietrl.precise.types import FlowConfig, GRPOConfig

SUB = "precise"
PAPER_SOURCE = "arXiv:2605.23522, abstract"
PAPER_SAVING = "13.1-53.2%"
BASELINES = ("flow_grpo", "cps", "dance_grpo")  # R* is the best of these (MixGRPO reported, not in R*)


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """The whole study; ``quick_config()`` is the <= 3 minute reduction."""

    flow: FlowConfig = FlowConfig(steps=20_000, chunk=2000)
    grpo: GRPOConfig = GRPOConfig(iterations=500)
    arms: tuple[str, ...] = ("flow_grpo", "cps", "dance_grpo", "precise", "dance_precise", "mixgrpo")
    seeds: int = 3
    s3_steps: tuple[int, ...] = (6, 10, 20, 50, 200, 1000)
    s3_samples: int = 50_000
    s1_steps: tuple[int, ...] = (6, 10, 20, 1000)

    def __post_init__(self):
        if not self.arms:
            raise ConfigError("StudyConfig.arms must name at least one sampler")
        for a in self.arms:
            if a not in SAMPLERS or a == "ode":
                raise ConfigError(f"StudyConfig.arms: {a!r} is not a trainable sampler; valid: "
                                  f"{', '.join(s for s in SAMPLERS if s != 'ode')}")
        if self.seeds < 1:
            raise ConfigError(f"StudyConfig.seeds must be >= 1, got {self.seeds}")
        if any(k < 1 for k in self.s3_steps + self.s1_steps):
            raise ConfigError("StudyConfig.s1_steps / s3_steps: every K must be >= 1")


def quick_config() -> StudyConfig:
    """Pretraining <= 60 s; flow_grpo, cps, dance_grpo, precise at K = 10; 2 seeds; 100 iterations."""
    return StudyConfig(flow=FlowConfig(steps=3000, batch_size=256, lr=2e-3, chunk=500),
                       grpo=GRPOConfig(iterations=100), arms=("flow_grpo", "cps", "dance_grpo", "precise"),
                       seeds=2, s3_steps=(10, 50, 200), s3_samples=10_000, s1_steps=(6, 10, 20))


def apply_study_overrides(cfg: StudyConfig, overrides: list[str]) -> StudyConfig:
    """``key=value`` overrides of StudyConfig fields, or of its parts as ``flow.KEY`` / ``grpo.KEY``."""
    from quietrl.core.config import apply_overrides

    parts = {"flow": [], "grpo": [], "": []}
    for o in overrides:
        head, dot, rest = o.partition(".")
        if dot and head in ("flow", "grpo") and "=" in rest:
            parts[head].append(rest)
        else:
            parts[""].append(o)
    flow = apply_overrides(cfg.flow, parts["flow"])
    grpo = apply_overrides(cfg.grpo, parts["grpo"])
    cfg = apply_overrides(cfg, parts[""]) if parts[""] else cfg
    return dataclasses.replace(cfg, flow=flow, grpo=grpo)


# ---------------------------------------------------------------------------------------------- stages


def run_consistency(stage, cfg: StudyConfig) -> dict:
    """S1, S2 (model-free) and S3 (1-D two-mode mixtures, exact posterior mean) tables and a figure."""
    from quietrl.core.plotting import new_figure
    from quietrl.core.summary import Row

    names = ("ode", "flow_grpo", "dance_grpo", "cps", "precise", "dance_precise")
    s1, s2 = [], []
    for name in names:
        for k in cfg.s1_steps:
            g = shifted_grid(k)
            nu, (b, c) = consistency.noise_ratios(name, g)
            s1.append({"sampler": name, "K": k, "nu_min": float(nu.min()) if nu.size else 1.0,
                       "nu_max": float(nu.max()) if nu.size else 1.0, "last_B": b, "last_C": c,
                       "excess_var": consistency.excess_variance(name, g)})
            try:
                rk, rs, ratio = consistency.retention(name, g)
            except UserError:  # no step of a coarse grid lies inside [0.2, 0.8]
                continue
            s2.append({"sampler": name, "K": k, "rho_K": rk, "rho_SDE": rs, "ratio": ratio})
    s3 = []
    mixtures = {0.05: consistency.Mixture.two_modes_1d(0.05), 0.3: consistency.Mixture.two_modes_1d(0.3)}
    for std, mix in mixtures.items():
        for name in ("ode", "flow_grpo", "dance_grpo", "cps", "precise"):
            for k in cfg.s3_steps:
                row = consistency.s3_row(name, shifted_grid(k), mix, n=cfg.s3_samples, seed=0, mid_points=10)
                row["mode_std"] = std
                s3.append(row)
                stage.log_metrics({"table": "S3", **row})
    for r in s1:
        stage.log_metrics({"table": "S1", **r})
    for r in s2:
        stage.log_metrics({"table": "S2", **r})
    _write_tables(stage, s1, s2, s3)

    # figure: samples of each sampler at the smallest K next to the exact marginal (narrow modes)
    mix = mixtures[0.05]
    k = min(cfg.s3_steps)
    fig, axes = new_figure(1, 5, size=(2.6, 2.4))
    xs = np.linspace(-1.6, 1.6, 400)
    dens = 0.5 * (np.exp(-(xs - 1) ** 2 / (2 * 0.05**2)) + np.exp(-(xs + 1) ** 2 / (2 * 0.05**2))) / (
        0.05 * np.sqrt(2 * np.pi))
    for ax, name in zip(axes.ravel(), ("ode", "flow_grpo", "dance_grpo", "cps", "precise")):
        x, _ = consistency.simulate_mixture(name, shifted_grid(k), mix, min(20_000, cfg.s3_samples), seed=1)
        ax.hist(x[:, 0], bins=160, range=(-1.6, 1.6), density=True, alpha=0.6, label=f"{name} K={k}")
        ax.plot(xs, dens, "k", lw=0.8, label="exact")
        ax.set_title(name)
        ax.set_yticks([])
    stage.save_figure(fig, "samples_vs_exact")

    precise_rows = [r for r in s3 if r["sampler"] == "precise" and r["mode_std"] == 0.3]
    cps_rows = [r for r in s3 if r["sampler"] == "cps" and r["mode_std"] == 0.3]
    rows = [
        Row("S1 max |nu - 1| (precise, all K)", max(abs(r["nu_max"] - 1) for r in s1 if r["sampler"] == "precise")),
        Row("S1 summed excess variance, flow_grpo 0.7, K=10 shift 3",
            next((r["excess_var"] for r in s1 if r["sampler"] == "flow_grpo" and r["K"] == 10), None)),
        Row("S2 retention ratio rho_K/rho_SDE (precise, all K)",
            float(np.mean([r["ratio"] for r in s2 if r["sampler"] == "precise"]))),
        Row(f"S3 precise 1.5 terminal W1, K={precise_rows[0]['K']} -> K={precise_rows[-1]['K']}",
            f"{precise_rows[0]['term_w1']:.4f} -> {precise_rows[-1]['term_w1']:.4f}"),
        Row(f"S3 cps 0.7 spread ratio at K={cps_rows[-1]['K']}", cps_rows[-1]["spread_ratio"]),
    ]
    stage.write_summary(rows, extra={"S1": s1, "S2": s2, "S3": s3})
    return {"S1": s1, "S2": s2, "S3": s3}


def _fmt(v):
    if isinstance(v, float):
        return "nan" if np.isnan(v) else f"{v:.4f}"
    return str(v)


def markdown_table(rows: list[dict], keys: list[str]) -> str:
    """A Markdown table of ``rows`` restricted to ``keys``."""
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(_fmt(r.get(k)) for k in keys) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _write_tables(stage, s1, s2, s3):
    from quietrl.core.io import atomic_write_text

    text = "## S1: noise ratio before the last step and last (B, C), shift-3 grid\n\n"
    text += markdown_table(s1, ["sampler", "K", "nu_min", "nu_max", "last_B", "last_C", "excess_var"])
    text += "\n## S2: retention over [0.2, 0.8] vs the continuous SDE\n\n"
    text += markdown_table(s2, ["sampler", "K", "rho_K", "rho_SDE", "ratio"])
    text += "\n## S3: 1-D two-mode mixtures with the exact posterior mean (default eta)\n\n"
    text += markdown_table(s3, ["sampler", "mode_std", "K", "term_w1", "mid_w1", "spread_ratio", "weight_err"])
    atomic_write_text(stage.path / "tables.md", text)


def flow_config_dict(cfg: FlowConfig, seed: int) -> dict:
    return {**dataclasses.asdict(cfg), "seed": seed}


def run_pretrain(stage, cfg: FlowConfig, seed: int):
    """Pretrain (or resume) the flow model; check mode weights with a K = 100 ODE; figure of samples."""
    from quietrl.core.plotting import new_figure
    from quietrl.core.summary import Row

    params = pretrain(cfg, seed, stage=stage)
    werr, q = mode_weight_error(cfg, params, n_per_prompt=1024, num_steps=100)
    stage.log_metrics({"mode_weight_error_k100": werr, "mean_q_k100": q})
    prompts = np.repeat(np.arange(cfg.num_prompts), 256)
    x = sample_model(cfg, params, prompts, 100)
    fig, ax = new_figure(size=(4, 4))
    ax.scatter(x[:, 0], x[:, 1], c=prompts, s=1, cmap="tab10")
    means = task_of(cfg).mode_means().reshape(-1, 2)
    ax.scatter(means[:, 0], means[:, 1], marker="x", c="k", s=12)
    ax.set_aspect("equal")
    ax.set_title("ODE K=100 samples per prompt")
    stage.save_figure(fig, "pretrained_samples")
    stage.write_summary([Row("pretrained mode-weight error (K=100 ODE)", werr),
                         Row("pretrained mean q (K=100 ODE)", q)])
    return params


def load_pretrained(stage, cfg: FlowConfig, seed: int):
    """Parameters from a done pretrain stage's checkpoint."""
    return load_pretrained_from(stage.checkpoint_dir / "pretrain", cfg, seed)


def load_pretrained_from(directory, cfg: FlowConfig, seed: int):
    """Parameters from a pretrain checkpoint directory; CheckpointMismatch (exit 2) if it is another model."""
    from quietrl.core.checkpoint import load_checkpoint

    target = jax.device_get(init_flow_state(cfg, seed))
    state, _ = load_checkpoint(directory, FLOW_KIND, flow_config_dict(cfg, seed), target)
    return state.params


def run_finetune(stage, trainer, params, arm_name: str, seed: int, eta: Optional[float] = None):
    """One GRPO run; metrics lines carry the evaluation records."""
    from quietrl.core.summary import Row

    arm = make_arm(arm_name, trainer.cfg, eta)
    _, records = finetune(trainer, params, arm, seed, stage=stage, name="finetune", desc=f"grpo {arm_name}")
    stage.log_metrics({"series": "eval0", **records[0]})
    recs = finetune_records(stage)
    stage.write_summary([Row(f"{arm_name} final ODE-eval reward", recs[-1]["eval_ode_reward"]),
                         Row(f"{arm_name} training seconds", recs[-1]["train_s"])])


def finetune_records(stage) -> list[dict]:
    """Evaluation records (iteration 0 first) from a finetune stage's metrics."""
    lines = stage.read_metrics()
    base = [r for r in lines if r.get("series") == "eval0"]
    chunks = [r for r in lines if r.get("series") == "finetune"]
    return base[-1:] + chunks


def run_compare(stage, cfg: StudyConfig, records: dict[str, list[list[dict]]], seed: int):
    """Curves with 95% intervals over seeds, time to target and summary rows."""
    from quietrl.core.plotting import band, new_figure
    from quietrl.core.summary import Row

    arms = list(records)
    iters = np.array([r["iteration"] for r in records[arms[0]][0]], float)
    curves = {a: np.array([[r["eval_ode_reward"] for r in run] for run in records[a]]) for a in arms}
    sde = {a: np.array([[r["eval_sde_reward"] for r in run] for run in records[a]]) for a in arms}
    times = {a: np.array([[r["train_s"] for r in run] for run in records[a]]) for a in arms}
    qs = {a: np.array([[r["eval_ode_q"] for r in run] for run in records[a]]) for a in arms}
    prefs = {a: np.array([[r["eval_ode_pref"] for r in run] for run in records[a]]) for a in arms}

    fig, axes = new_figure(1, 4, size=(3.6, 3.0))
    axes = np.asarray(axes).ravel()
    for a in arms:
        for ax, data, x in ((axes[0], curves, iters), (axes[2], sde, iters)):
            m, h = analysis.mean_ci(data[a])
            band(ax, x, m, m - h, m + h, label=a)
        m, h = analysis.mean_ci(curves[a])
        band(axes[1], np.mean(times[a], 0), m, m - h, m + h, label=a)
        mq, _ = analysis.mean_ci(qs[a])
        axes[3].plot(iters, mq, label=f"{a} q")
    axes[0].set(xlabel="iteration", ylabel="ODE-eval reward (95% CI over seeds)")
    axes[1].set(xlabel="training seconds", ylabel="ODE-eval reward")
    axes[2].set(xlabel="iteration", ylabel="SDE-eval reward (training sampler)")
    axes[3].set(xlabel="iteration", ylabel="ODE-eval q (quality term)")
    axes[0].legend()
    stage.save_figure(fig, "reward_curves")

    baselines = [a for a in BASELINES if a in arms]
    rows = []
    ttt = None
    if "precise" in arms and baselines:
        ttt = analysis.time_to_target(curves, times, iters, baselines)
        boot = analysis.bootstrap_time_to_target(curves, times, iters, baselines, num=300, seed=seed)
        for key, label in (("saving_iters", "saving 1 - t_P(R*)/T, iterations"),
                           ("saving_s", "saving 1 - t_P(R*)/T, seconds")):
            lo, hi, _ = boot[key]
            rows.append(Row(label, ttt[key] if ttt[key] is not None else "not reached", ci=(lo, hi),
                            paper=PAPER_SAVING, paper_setting="SD3.5-M / FLUX.2 Klein, PickScore/CLIP/HPS",
                            source=PAPER_SOURCE))
        for key, label in (("ratio_iters", "t_best_prior(R*)/t_P(R*), iterations"),
                           ("ratio_s", "t_best_prior(R*)/t_P(R*), seconds")):
            lo, hi, frac = boot[key]
            rows.append(Row(label, ttt[key] if ttt[key] is not None else "not reached",
                            ci=(lo, hi) if frac > 0 else None))
        rows.append(Row("R* (best prior smoothed ODE-eval reward)", ttt["r_star"]))
        ttt["bootstrap"] = {k: list(v) for k, v in boot.items()}
    for a in arms:
        m, h = analysis.mean_ci(curves[a][:, -1])
        rows.append(Row(f"{a}: final ODE-eval reward", float(m), ci=(float(m - h), float(m + h))))
        rows.append(Row(f"{a}: final ODE-eval q", float(np.mean(qs[a][:, -1]))))
        rows.append(Row(f"{a}: final ODE-eval pref", float(np.mean(prefs[a][:, -1]))))
        rows.append(Row(f"{a}: seconds per iteration", float(np.mean(times[a][:, -1]) / iters[-1])))
    stage.write_summary(rows, extra={"time_to_target": ttt, "iterations": iters.tolist()})
    return ttt


# ---------------------------------------------------------------------------------------------- study


def run_study(run, cfg: StudyConfig, seed: int) -> None:
    """All stages of the study in ``run`` (a core RunDir), skipping the ones already done."""
    st = run.stage(SUB, "consistency", seed)
    if not st.done:
        with st.running():
            run_consistency(st, cfg)

    st = run.stage(SUB, "pretrain", seed)
    if not st.done:
        with st.running():
            params = run_pretrain(st, cfg.flow, seed)
    else:
        params = load_pretrained(st, cfg.flow, seed)

    trainer = make_trainer(cfg.flow, cfg.grpo)
    records: dict[str, list[list[dict]]] = {}
    for arm in cfg.arms:
        records[arm] = []
        for s in range(seed, seed + cfg.seeds):
            st = run.stage(SUB, f"finetune_{arm}", s)
            if not st.done:
                with st.running():
                    run_finetune(st, trainer, params, arm, s)
            records[arm].append(finetune_records(st))

    st = run.stage(SUB, "compare", seed)
    if not st.done:
        with st.running():
            run_compare(st, cfg, records, seed)


def reproduce(run_dir, quick: bool, seed: int, executor=None) -> None:
    """Reproduce the study in ``run_dir`` (a core RunDir). quick=True: the <= 3 minute reduction.

    The executor is unused: every arm at one K shares one compiled program, run in this process.
    """
    del executor
    run_study(run_dir, quick_config() if quick else StudyConfig(), seed)
