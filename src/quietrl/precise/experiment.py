"""The precise study: consistency statistics, pretraining, GRPO per sampler, comparison and figures.

Stages (``<run>/precise/<experiment>/seed<k>/``), each skipped when already done (resume):
  consistency       S1/S2/S3 tables and the sampler-vs-exact-marginal figure (no model)
  pretrain          conditional flow matching of the 2-D prompt-conditioned mixture (checkpointed)
  finetune_<arm>    GRPO with that sampler as the policy, one stage per (arm, seed)
  compare           reward vs iterations / seconds with 95% intervals, time to target, summary rows
  digits_pretrain   (full run) the class-conditioned 8x8 digits model, per-class SVM accuracy
  finetune_digits_<arm>, digits_compare   (full run) GRPO on digits with every sampler
  finetune_abl_<variant>, ablations       (full run) the spec's ablations on the 2-D task
All arms at one config run the same compiled program (samplers are data). The quick run keeps GRPO in
this process (on 2 cores one compile beats a process pool); the full run sends GRPO runs through the
sweep executor that reproduce receives.
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
from quietrl.precise.grpo import finetune, make_arm, make_trainer, model_params
from quietrl.precise.samplers import SAMPLERS
from quietrl.precise.schedules import shifted_grid
from quietrl.precise.types import FlowConfig, GRPOConfig, digits_flow_config

SUB = "precise"
PAPER_SOURCE = "arXiv:2605.23522, abstract"
PAPER_SAVING = "13.1-53.2%"
BASELINES = ("flow_grpo", "cps", "dance_grpo")  # R* is the best of these (MixGRPO reported, not in R*)
FULL_FT_LR = 3e-5  # full-model GRPO lr (LoRA-8 uses 1e-4): full fine-tuning at 1e-4 already fell from the start


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
    # the class-conditioned 8x8 digits study (full run only)
    digits: bool = True
    digits_flow: FlowConfig = digits_flow_config(steps=4000)
    digits_grpo: GRPOConfig = GRPOConfig(iterations=200, eval_noises=32)
    digits_arms: tuple[str, ...] = ("flow_grpo", "cps", "dance_grpo", "precise", "dance_precise", "mixgrpo")
    digits_seeds: int = 2
    # ablations on the 2-D task (full run only): see ablation_variants
    ablations: bool = True
    ablation_iterations: int = 500  # T of the main comparison: at lr 1e-4 the gains build up over ~300 iterations
    ablation_seeds: int = 2

    def __post_init__(self):
        if not self.arms:
            raise ConfigError("StudyConfig.arms must name at least one sampler")
        for a in self.arms:
            if a not in SAMPLERS or a == "ode":
                raise ConfigError(f"StudyConfig.arms: {a!r} is not a trainable sampler; valid: "
                                  f"{', '.join(s for s in SAMPLERS if s != 'ode')}")
        for a in self.digits_arms:
            if a not in SAMPLERS or a == "ode":
                raise ConfigError(f"StudyConfig.digits_arms: {a!r} is not a trainable sampler")
        if self.digits_flow.task != "digits":
            raise ConfigError("StudyConfig.digits_flow.task must be 'digits'")
        for name in ("seeds", "digits_seeds", "ablation_seeds"):
            if getattr(self, name) < 1:
                raise ConfigError(f"StudyConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.ablation_iterations < self.grpo.eval_every or self.ablation_iterations % self.grpo.eval_every:
            raise ConfigError(f"StudyConfig.ablation_iterations must be a positive multiple of "
                              f"grpo.eval_every ({self.grpo.eval_every}), got {self.ablation_iterations}")
        if any(k < 1 for k in self.s3_steps + self.s1_steps):
            raise ConfigError("StudyConfig.s1_steps / s3_steps: every K must be >= 1")


def quick_config() -> StudyConfig:
    """Pretraining <= 60 s; flow_grpo, cps, dance_grpo, precise at K = 10; 2 seeds; 100 iterations."""
    return StudyConfig(flow=FlowConfig(steps=3000, batch_size=256, lr=2e-3, chunk=500),
                       grpo=GRPOConfig(iterations=100), arms=("flow_grpo", "cps", "dance_grpo", "precise"),
                       seeds=2, s3_steps=(10, 50, 200), s3_samples=10_000, s1_steps=(6, 10, 20),
                       digits=False, ablations=False)


def apply_study_overrides(cfg: StudyConfig, overrides: list[str]) -> StudyConfig:
    """``key=value`` overrides of StudyConfig fields, or of its parts as ``flow.KEY`` / ``grpo.KEY`` /
    ``digits_flow.KEY`` / ``digits_grpo.KEY``."""
    from quietrl.core.config import apply_overrides

    nested = ("flow", "grpo", "digits_flow", "digits_grpo")
    parts = {k: [] for k in nested + ("",)}
    for o in overrides:
        head, dot, rest = o.partition(".")
        if dot and head in nested and "=" in rest:
            parts[head].append(rest)
        else:
            parts[""].append(o)
    new = {k: apply_overrides(getattr(cfg, k), parts[k]) for k in nested}
    cfg = apply_overrides(cfg, parts[""]) if parts[""] else cfg
    return dataclasses.replace(cfg, **new)


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
    """One GRPO run; metrics lines carry the evaluation records. On the digits task the summary also holds
    the per-class SVM accuracy of K-step ODE samples of the fine-tuned model (the acceptance check)."""
    from quietrl.core.summary import Row

    arm = make_arm(arm_name, trainer.cfg, eta)
    state, records = finetune(trainer, params, arm, seed, stage=stage, name="finetune",
                              desc=f"grpo {arm_name}")
    stage.log_metrics({"series": "eval0", **records[0]})
    recs = finetune_records(stage)
    rows = [Row(f"{arm_name} final ODE-eval reward", recs[-1]["eval_ode_reward"]),
            Row(f"{arm_name} training seconds", recs[-1]["train_s"])]
    extra = {}
    if trainer.flow_cfg.task == "digits":
        acc = digits_accuracy(trainer.flow_cfg, model_params(params, state.params, trainer.cfg.lora_rank),
                              trainer.cfg.num_steps, seed=seed)
        rows.append(Row(f"{arm_name} min per-class SVM accuracy, K={trainer.cfg.num_steps} ODE", float(acc.min())))
        extra["class_accuracy"] = acc.tolist()
    stage.write_summary(rows, extra=extra)


def digits_accuracy(flow_cfg: FlowConfig, params, num_steps: int, per_class: int = 100, seed: int = 0):
    """Per-class fraction (10,) of K-step ODE samples that the independent SVM assigns to their class."""
    from quietrl.precise.digits import NUM_CLASSES, class_accuracy

    prompts = np.repeat(np.arange(NUM_CLASSES), per_class)
    return class_accuracy(sample_model(flow_cfg, params, prompts, num_steps, seed=50_000 + seed), prompts)


# ------------------------------------------------------------------------------------ sweeps of GRPO runs

_TRAINERS: dict = {}


def _trainer_for(flow_cfg: FlowConfig, grpo_cfg: GRPOConfig):
    """One compiled trainer per (flow, grpo) config in this process: every arm shares it."""
    key = (flow_cfg, grpo_cfg)
    if key not in _TRAINERS:
        _TRAINERS[key] = make_trainer(flow_cfg, grpo_cfg)
    return _TRAINERS[key]


def finetune_job(item: dict):
    """One GRPO run as a sweep job (module level, so executors can pickle it).

    item: flow (FlowConfig), grpo (GRPOConfig), arm (sampler name), eta (None: default), seed, params
    (host pytree of the pretrained model) and either run (a run directory path) with experiment (stage
    name), in which case the stage is run if not done and its records returned, or run = None: records
    of a run without checkpoints.
    """
    from quietrl.core.runs import RunDir

    trainer = _trainer_for(item["flow"], item["grpo"])
    if item.get("run") is None:
        arm = make_arm(item["arm"], item["grpo"], item.get("eta"))
        return finetune(trainer, item["params"], arm, item["seed"], checkpoint=False)[1]
    st = RunDir.open(item["run"]).stage(SUB, item["experiment"], item["seed"])
    if not st.done:
        with st.running():
            run_finetune(st, trainer, item["params"], item["arm"], item["seed"], item.get("eta"))
    return finetune_records(st)


def run_jobs(items: list[dict], executor=None, desc: str = "grpo runs") -> list:
    """Results of :func:`finetune_job` for every item, in order: in this process when ``executor`` is
    None (all arms share one compiled program), else through the sweep executor (one process per job
    with the local executor, so each job compiles its own program). A failed job raises RuntimeError."""
    if executor is None or len(items) <= 1:
        return [finetune_job(it) for it in items]
    from quietrl.core.sweep import run_sweep

    results = run_sweep(finetune_job, items, executor, desc=desc)
    failed = [r for r in results if not r.ok]
    if failed:
        it = failed[0].item
        raise RuntimeError(f"{len(failed)} of {len(items)} GRPO jobs failed; first: arm {it['arm']} seed "
                           f"{it['seed']}: {failed[0].error}")
    return [r.value for r in results]


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
        # arms share seeds (model, rollout and evaluation noises), so seeds are resampled as pairs
        boot = analysis.bootstrap_time_to_target(curves, times, iters, baselines, num=300, seed=seed,
                                                 paired=True)
        diff = analysis.paired_reach_difference(curves, iters, baselines, seed=seed)
        ttt["paired_reach_difference"] = diff
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
        rows.append(Row(f"per-seed t_{diff['best_baseline']}(R*) - t_precise(R*), iterations (paired)",
                        diff["mean_diff"], ci=diff["ci"]))
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


def _pretrained(run, experiment: str, flow_cfg: FlowConfig, seed: int, runner):
    st = run.stage(SUB, experiment, seed)
    if not st.done:
        with st.running():
            return runner(st, flow_cfg, seed)
    return load_pretrained(st, flow_cfg, seed)


def _sweep(run, specs, flow_cfg, params, seeds, executor, desc) -> dict[str, list[list[dict]]]:
    """GRPO runs for specs [(label, arm, eta, grpo_cfg)] x seeds, stage finetune_<label>/seed<s>; returns
    label -> per-seed records. Items are seed-major so that arms run side by side under the same load."""
    host = jax.device_get(params)
    items = [{"run": str(run.path), "experiment": f"finetune_{label}", "flow": flow_cfg, "grpo": g, "arm": arm,
              "eta": eta, "seed": s, "params": host, "label": label}
             for s in seeds for (label, arm, eta, g) in specs]
    values = run_jobs(items, executor, desc=desc)
    out: dict[str, list[list[dict]]] = {label: [] for label, *_ in specs}
    for it, recs in zip(items, values):
        out[it["label"]].append(recs)
    return out


def run_study(run, cfg: StudyConfig, seed: int, executor=None) -> None:
    """All stages of the study in ``run`` (a core RunDir), skipping the ones already done.

    GRPO runs go through ``executor`` (a quietrl.core.sweep executor) when one is given, else run in this
    process one after another (every arm at one config shares one compiled program there).
    """
    st = run.stage(SUB, "consistency", seed)
    if not st.done:
        with st.running():
            run_consistency(st, cfg)

    params = _pretrained(run, "pretrain", cfg.flow, seed, run_pretrain)
    seeds = range(seed, seed + cfg.seeds)
    records = _sweep(run, [(a, a, None, cfg.grpo) for a in cfg.arms], cfg.flow, params, seeds, executor,
                     "grpo arms")

    st = run.stage(SUB, "compare", seed)
    if not st.done:
        with st.running():
            run_compare(st, cfg, records, seed)

    if cfg.digits:
        run_digits(run, cfg, seed, executor)
    if cfg.ablations:
        run_ablations(run, cfg, params, seed, executor)


# ---------------------------------------------------------------------------------------------- digits


def run_digits_pretrain(stage, cfg: FlowConfig, seed: int):
    """Pretrain (or resume) the class-conditioned digits model; per-class SVM accuracy; sample grid."""
    from quietrl.core.plotting import new_figure
    from quietrl.core.summary import Row
    from quietrl.precise.digits import NUM_CLASSES

    params = pretrain(cfg, seed, stage=stage, desc="pretrain digits")
    rows, extra = [], {}
    for k in (10, 50):
        acc = digits_accuracy(cfg, params, k, seed=seed)
        extra[f"class_accuracy_k{k}"] = acc.tolist()
        rows.append(Row(f"pretrained digits: min per-class SVM accuracy, K={k} ODE", float(acc.min())))
        stage.log_metrics({"K": k, "min_class_accuracy": float(acc.min()), "mean_class_accuracy": float(acc.mean())})
    per = 8
    x = sample_model(cfg, params, np.repeat(np.arange(NUM_CLASSES), per), 50, seed=seed)
    fig, axes = new_figure(per, NUM_CLASSES, size=(0.6, 0.6))
    for i, ax in enumerate(np.asarray(axes).T.ravel()):
        ax.imshow(x[i].reshape(8, 8), cmap="gray_r", vmin=-1, vmax=1)
        ax.set_axis_off()
    stage.save_figure(fig, "digits_samples")
    stage.write_summary(rows, extra=extra)
    return params


def _summary_extra(stage) -> dict:
    import json

    path = stage.path / "summary.json"
    return json.loads(path.read_text()).get("extra", {}) if path.exists() else {}


def run_digits(run, cfg: StudyConfig, seed: int, executor=None) -> None:
    """The digits study: pretraining, GRPO with every sampler, curves and the per-class accuracy table."""
    from quietrl.core.plotting import band, new_figure
    from quietrl.core.summary import Row

    params = _pretrained(run, "digits_pretrain", cfg.digits_flow, seed, run_digits_pretrain)
    seeds = list(range(seed, seed + cfg.digits_seeds))
    records = _sweep(run, [(f"digits_{a}", a, None, cfg.digits_grpo) for a in cfg.digits_arms],
                     cfg.digits_flow, params, seeds, executor, "digits arms")
    st = run.stage(SUB, "digits_compare", seed)
    if st.done:
        return
    with st.running():
        pre = run.stage(SUB, "digits_pretrain", seed).rows()
        rows = [r for r in pre if "K=10" in r.quantity]
        fig, axes = new_figure(1, 3, size=(3.6, 3.0))
        axes = np.asarray(axes).ravel()
        for a in cfg.digits_arms:
            recs = records[f"digits_{a}"]
            iters = np.array([r["iteration"] for r in recs[0]], float)
            for ax, key in zip(axes, ("eval_ode_reward", "eval_sde_q", "eval_ode_pref")):
                m, h = analysis.mean_ci(np.array([[r[key] for r in run_] for run_ in recs]))
                band(ax, iters, m, m - h, m + h, label=a)
            final = np.array([run_[-1]["eval_ode_reward"] for run_ in recs])
            m, h = analysis.mean_ci(final)
            rows.append(Row(f"digits {a}: final ODE-eval reward", float(m), ci=(float(m - h), float(m + h))))
            rows.append(Row(f"digits {a}: final SDE-eval q (training sampler)",
                            float(np.mean([run_[-1]["eval_sde_q"] for run_ in recs]))))
            accs = [min(_summary_extra(run.stage(SUB, f"finetune_digits_{a}", s)).get("class_accuracy", [np.nan]))
                    for s in seeds]
            rows.append(Row(f"digits {a}: min per-class SVM accuracy after GRPO (worst seed)", float(min(accs))))
        axes[0].set(xlabel="iteration", ylabel="ODE-eval reward")
        axes[1].set(xlabel="iteration", ylabel="SDE-eval q (training sampler)")
        axes[2].set(xlabel="iteration", ylabel="ODE-eval log p(class)")
        axes[0].legend()
        st.save_figure(fig, "digits_curves")
        st.write_summary(rows)


# ---------------------------------------------------------------------------------------------- ablations


def ablation_variants(cfg: StudyConfig) -> list[tuple[str, str, Optional[float], GRPOConfig]]:
    """(label, sampler, eta, GRPOConfig) of each ablation arm on the 2-D task (spec section 6, item 5):
    schedule x discretization (Precise at Flow-GRPO's 0.7 isolates the exact solve), eta at K = 10, K in
    {6, 20, 30}, the plain ratio, the lambda = 0 negative control and full-model fine-tuning."""
    g = dataclasses.replace(cfg.grpo, iterations=cfg.ablation_iterations)
    out = [("abl_precise_eta0.7", "precise", 0.7, g)]
    out += [(f"abl_precise_eta{e:.2f}", "precise", e, g) for e in (1.0, 2**0.5, 2.0)]
    out += [(f"abl_flow_grpo_eta{e}", "flow_grpo", e, g) for e in (0.5, 1.0)]
    for k in (6, 20, 30):
        gk = dataclasses.replace(g, num_steps=k)
        out += [(f"abl_K{k}_{a}", a, None, gk) for a in ("flow_grpo", "cps", "precise")]
    plain = dataclasses.replace(g, rationorm=False, clip_eps=0.2)
    out += [(f"abl_plainratio_{a}", a, None, plain) for a in ("flow_grpo", "precise")]
    lam0 = dataclasses.replace(g, lam=0.0)
    out += [(f"abl_lam0_{a}", a, None, lam0) for a in ("flow_grpo", "cps", "precise")]
    full = dataclasses.replace(g, lora_rank=0, lr=FULL_FT_LR)
    out += [(f"abl_fullft_{a}", a, None, full) for a in ("flow_grpo", "precise")]
    return out


def run_ablations(run, cfg: StudyConfig, params, seed: int, executor=None) -> None:
    """Every ablation arm, then one table: reward gain, q and pref of the ODE evaluation, SDE-eval q."""
    from quietrl.core.io import atomic_write_text
    from quietrl.core.summary import Row

    specs = ablation_variants(cfg)
    seeds = list(range(seed, seed + cfg.ablation_seeds))
    records = _sweep(run, specs, cfg.flow, params, seeds, executor, "ablations")
    st = run.stage(SUB, "ablations", seed)
    if st.done:
        return
    with st.running():
        table, rows = [], []
        for label, arm, eta, g in specs:
            recs = records[label]
            gain = np.array([r[-1]["eval_ode_reward"] - r[0]["eval_ode_reward"] for r in recs])
            m, h = analysis.mean_ci(gain)
            row = {"variant": label, "sampler": arm, "eta": eta if eta is not None else "default",
                   "K": g.num_steps, "gain": float(m), "ci95": float(h),
                   "final_q": float(np.mean([r[-1]["eval_ode_q"] for r in recs])),
                   "final_pref": float(np.mean([r[-1]["eval_ode_pref"] for r in recs])),
                   "sde_q": float(np.mean([r[-1]["eval_sde_q"] for r in recs])),
                   "entropy": float(np.mean([r[-1]["eval_ode_mode_entropy"] for r in recs]))}
            table.append(row)
            rows.append(Row(f"ablation {label}: ODE-eval reward gain", float(m), ci=(float(m - h), float(m + h))))
        atomic_write_text(st.path / "tables.md", "## Ablations (2-D task; gain = final - initial ODE-eval "
                          f"reward, mean and 95% half-width over {len(seeds)} seeds)\n\n"
                          + markdown_table(table, list(table[0])))
        st.write_summary(rows, extra={"ablations": table})


def reproduce(run_dir, quick: bool, seed: int, executor=None) -> None:
    """Reproduce the study in ``run_dir`` (a core RunDir). quick=True: the <= 3 minute reduction.

    The quick run keeps its GRPO runs in this process (one compiled program for all arms beats four
    spawned processes that each compile on 2 cores); the full run sends them through ``executor``.
    """
    run_study(run_dir, quick_config() if quick else StudyConfig(), seed, None if quick else executor)
