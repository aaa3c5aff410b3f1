"""The goalgen study: train the pipeline suite, measure OOD pair preferences, fit LPG under the held-out
protocol, and report the salience and persistence claims. `run_study` (CLI: `quietrl goalgen study`) and
`reproduce` run it through the RunDir API in resumable stages: train -> evaluate -> fit. Training
checkpoints every chunk of every agent group through `quietrl.core.train.run_chunks`, so an interrupted
study resumes mid-group."""

from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path

import jax
import numpy as np

from quietrl.core.config import require
from quietrl.core.errors import UserError
from quietrl.core.summary import Row

from . import protocol
from .env import GoalGridEnv
from .evaluate import PairTable, make_pair_evaluator, pair_ids, table_from_counts
from .families import FAMILIES, generate_families
from .grammar import parse_pipeline
from .lpg import LPG, LPGConfig
from .ppo import PPOConfig, make_population_trainer, population_job
from .types import ALL_OBJECTS, Pipeline

SUB = "goalgen"
PAPER = "arXiv:2605.23565"


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """The whole study. Defaults = the full CPU-scale study (spec 7); `quick_config()` = the reduced one."""

    grid: int = 6
    obs_mode: str = "glyph"
    families: tuple[str, ...] = FAMILIES
    per_family: int = 0               # 0 = whole families; k > 0 keeps k pipelines of each (quick runs)
    seeds: int = 2
    updates_per_stage: int = 40
    agents_per_group: int = 8
    chunk_updates: int = 10
    n_envs: int = 64
    n_steps: int = 32
    n_epochs: int = 4
    # PPO step size: 2e-4 lets a converged stage-1 policy still learn stage 2 (benchmarks/goalgen_stage2.py,
    # study seeds: at 1e-3 four two-stage agents ended stage 2 at 0.32-0.39, at 3e-4 at 0.41-0.73, at 2e-4 at
    # 0.94-1.0 with stage 1 still converged and single-stage, _or_ and 3-stage agents at 0.96-1.0)
    lr: float = 2e-4
    ent_coef: float = 0.01
    n_episodes: int = 32
    success_episodes: int = 256       # fresh episodes of each agent's last-stage task (training success)
    fit_steps: int = 300
    few_shot_ns: tuple[int, ...] = (0, 2, 10, 50)
    few_shot_trials: int = 3
    n_boot: int = 1000
    fit_batch: int = 16               # LPG fits vectorised together
    fit_lr: float = 0.02
    # RK4 steps per unit of stage time. The authors use 100 (dt = 0.01); on the study table a theta fitted
    # with 50 predicts within 7e-7 (max |dp|) of the same theta integrated with 100 or 400 steps.
    rk4_steps: int = 50
    family_seed: int = 0

    def __post_init__(self):
        require(self.obs_mode in ("glyph", "symbolic"), "obs_mode", "must be glyph or symbolic")
        for f in self.families:
            require(f in FAMILIES, "families", f"unknown family {f!r} (valid: {','.join(FAMILIES)})")
        for f in ("seeds", "updates_per_stage", "agents_per_group", "chunk_updates", "n_episodes", "grid",
                  "rk4_steps", "success_episodes"):
            require(getattr(self, f) >= 1, f, "must be >= 1")
        require(self.per_family >= 0 and self.fit_steps >= 0, "per_family", "must be >= 0")

    def ppo(self) -> PPOConfig:
        return PPOConfig(n_envs=self.n_envs, n_steps=self.n_steps, n_epochs=self.n_epochs, lr=self.lr,
                         ent_coef=self.ent_coef)


def quick_config() -> StudyConfig:
    """A few pipelines of every family, one seed, short stages, few episodes: minutes, not an hour."""
    # lr 1e-3: ten updates per stage are too few for the study's 2e-4 (the quick agents are under-trained anyway)
    return StudyConfig(per_family=2, seeds=1, updates_per_stage=10, n_envs=32, n_steps=32, n_epochs=4, lr=1e-3,
                       chunk_updates=10, n_episodes=8, fit_steps=30, few_shot_ns=(0, 2, 8),
                       few_shot_trials=2, n_boot=300, fit_batch=48, fit_lr=0.05, rk4_steps=25)


def study_pipelines(cfg: StudyConfig) -> list[Pipeline]:
    """The pipelines of the study. With ``per_family`` = k, the first k pipelines of each family (for F,
    k pairs with all four stage-1 shares, so the persistence curve keeps its x axis)."""
    pls = generate_families(cfg.family_seed, cfg.families)
    if not cfg.per_family:
        return pls
    out = []
    for f in cfg.families:
        fam = [p for p in pls if p.family == f]
        out.extend(fam[:cfg.per_family * (4 if f == "F" else 1)])
    return out


def _agents(cfg: StudyConfig) -> list[tuple[Pipeline, int]]:
    return [(p, s) for s in range(cfg.seeds) for p in study_pipelines(cfg)]


def _groups(cfg: StudyConfig) -> list[list[tuple[Pipeline, int]]]:
    """Agents grouped by total budget (so idle padding is rare), then cut into groups of agents_per_group."""
    agents = sorted(_agents(cfg), key=lambda ps: (sum(ps[0].stage_updates(cfg.updates_per_stage)),
                                                  ps[0].name, ps[1]))
    k = cfg.agents_per_group
    return [agents[i:i + k] for i in range(0, len(agents), k)]


def _pad_group(group, k):
    # The last group is padded with copies of its first agent so every group has one compiled shape.
    return group + [group[0]] * (k - len(group))


# ---------------------------------------------------------------------------------------------------
# Stage 1: training
# ---------------------------------------------------------------------------------------------------
TRAIN_KIND = "goalgen.population"


def _train_config(cfg: StudyConfig, seed: int, g: int, group) -> dict:
    """What a group's checkpoint must match on resume: the training settings and the group's agents
    (evaluation and fitting settings may change between attempts)."""
    return {"grid": cfg.grid, "obs_mode": cfg.obs_mode, "ppo": dataclasses.asdict(cfg.ppo()),
            "updates_per_stage": cfg.updates_per_stage, "chunk_updates": cfg.chunk_updates,
            "seed": seed, "group": g, "agents": [f"{p.name}/{s}" for p, s in group]}


@functools.lru_cache(maxsize=4)
def _env_and_trainer(grid: int, obs_mode: str, ppo: PPOConfig):
    """One environment and trainer per setting, so training, evaluation and resumed attempts in one
    process share compiled programs (each `make_population_trainer` call compiles anew)."""
    env = GoalGridEnv(grid, obs_mode)
    return env, make_population_trainer(env, ppo)


def _max_updates(cfg: StudyConfig) -> int:
    """The longest budget of the study: every group's schedule is padded to it (one compiled program)."""
    return max(sum(p.stage_updates(cfg.updates_per_stage)) for p, _ in _agents(cfg))


def _group_seeds(full, seed: int) -> list[int]:
    return [1000 * seed + 7919 * s + hash_name(p.name) for p, s in full]


def run_training(stage, cfg: StudyConfig, seed: int) -> None:
    """Train every (pipeline, seed) agent, group by group, through `core.train.run_chunks`: after every
    chunk of PPO updates the group's whole state (weights, optimiser, environments, keys, success so far)
    is checkpointed in ``checkpoints/group<g>``, so an interrupted run resumes at the chunk after its last
    checkpoint and ends as an uninterrupted one would."""
    from quietrl.core.train import run_chunks

    ppo = cfg.ppo()
    env, trainer = _env_and_trainer(cfg.grid, cfg.obs_mode, ppo)
    groups = _groups(cfg)
    t0, steps = time.perf_counter(), 0
    for g, group in enumerate(groups):
        full = _pad_group(group, cfg.agents_per_group)
        job = population_job(env, trainer, [p for p, _ in full], _group_seeds(full, seed),
                             cfg.updates_per_stage, cfg.chunk_updates, _max_updates(cfg))
        n_real = len(group)

        def report(chunk, state, m, g=g, n_real=n_real):
            act = np.asarray(m["active"])[:n_real]
            succ = np.asarray(m["success"])[:n_real]
            return {"group": g, "active_agents": int(act.any(1).sum()),
                    "success_mean": float(succ[act].mean()) if act.any() else float("nan"),
                    "env_steps": int(act.sum()) * ppo.steps_per_update}

        tg = time.perf_counter()
        state = run_chunks(stage, job.state, job.chunk_fn(trainer), job.num_chunks, TRAIN_KIND,
                           _train_config(cfg, seed, g, group), metrics_fn=report,
                           desc=f"goalgen group {g + 1}/{len(groups)}", name=f"group{g:03d}")
        success = np.asarray(state["success"])[:n_real]
        steps += int(np.isfinite(success).sum()) * ppo.steps_per_update
        print(f"goalgen train: group {g + 1}/{len(groups)} ({n_real} agents) in "
              f"{time.perf_counter() - tg:.1f} s", flush=True)
    wall = time.perf_counter() - t0
    print(f"goalgen train: {steps} env-steps of {len(_agents(cfg))} agents in {wall:.1f} s", flush=True)


def hash_name(name: str) -> int:
    """A stable (not Python-hash-randomised) integer per pipeline name, for seeding. Only the first 8 bytes
    count, so pipelines sharing that prefix (``black_cross`` and ``black_cross_then_red_diamond``) start
    from one seed: their first stages are common random numbers, identical up to the first point where the
    pipelines differ (e.g. the family-F shares branch from one stage-1 run)."""
    return int.from_bytes(name.encode()[:8].ljust(8, b"\0"), "little") % 100_003


def last_stage_success(groups, cfg: StudyConfig, seed: int) -> np.ndarray:
    """Success of every trained agent on its last stage's task: the fraction of ``cfg.success_episodes``
    fresh episodes that end on a goal, actions sampled from the final policy (as in the OOD evaluation).
    ``groups`` as `_load_groups` returns them. Shape (agents,), in `_groups` order."""
    from .env import stack_params
    from .evaluate import make_task_evaluator

    env, trainer = _env_and_trainer(cfg.grid, cfg.obs_mode, cfg.ppo())
    evaluate = make_task_evaluator(env, trainer.policy, cfg.success_episodes)
    out = []
    for g, (group, blob) in enumerate(groups):
        full = _pad_group(group, cfg.agents_per_group)
        tasks = stack_params([env.stage_params(p.stages[-1]) for p, _ in full])
        out.append(evaluate(blob["params"], tasks, jax.random.PRNGKey(20_000 * seed + g))[:len(group)])
    return np.concatenate(out)


def success_breakdown(groups, success: np.ndarray, threshold: float = 0.8) -> list[dict]:
    """Fraction of agents at >= ``threshold`` last-stage success per family: rows {family, agents,
    fraction, mean}."""
    fams = np.array([p.family for group, _ in groups for p, _ in group])
    return [{"family": f, "agents": int((fams == f).sum()),
             "fraction": float(np.mean(success[fams == f] >= threshold)),
             "mean": float(np.mean(success[fams == f]))} for f in sorted(set(fams))]


def _final_success(success: np.ndarray, last: int = 3) -> np.ndarray:
    """Mean rollout success over each agent's last ``last`` active updates. (A, U) -> (A,)."""
    out = []
    for row in success:
        act = row[np.isfinite(row)]
        out.append(act[-last:].mean() if len(act) else np.nan)
    return np.array(out)


def _load_groups(stage, cfg, seed: int):
    """[(group agents, {"params": (A, ...), "success": (A, U)})] from the training checkpoints."""
    from quietrl.core.checkpoint import has_checkpoint, load_checkpoint

    env, trainer = _env_and_trainer(cfg.grid, cfg.obs_mode, cfg.ppo())
    out = []
    for g, group in enumerate(_groups(cfg)):
        path = Path(stage.checkpoint_dir) / f"group{g:03d}"
        if not has_checkpoint(path):
            raise UserError(f"{path}: training checkpoint missing; rerun the train stage")
        full = _pad_group(group, cfg.agents_per_group)
        job = population_job(env, trainer, [p for p, _ in full], _group_seeds(full, seed),
                             cfg.updates_per_stage, cfg.chunk_updates, _max_updates(cfg))
        state, step = load_checkpoint(path, TRAIN_KIND, _train_config(cfg, seed, g, group), job.state)
        if step != job.num_chunks:
            raise UserError(f"{path}: training stopped after chunk {step} of {job.num_chunks}; "
                            "resume the train stage")
        out.append((group, {"params": state["runner"].params, "success": np.asarray(state["success"])}))
    return out


# ---------------------------------------------------------------------------------------------------
# Stage 2: OOD evaluation
# ---------------------------------------------------------------------------------------------------
def run_evaluation(stage, train_stage, cfg: StudyConfig, seed: int) -> PairTable:
    env, trainer = _env_and_trainer(cfg.grid, cfg.obs_mode, cfg.ppo())
    evaluate = make_pair_evaluator(env, trainer.policy, cfg.n_episodes)
    pairs = pair_ids()
    tables = []
    for g, (group, blob) in enumerate(_load_groups(train_stage, cfg, seed)):
        tg = time.perf_counter()
        counts = evaluate(blob["params"], pairs, jax.random.PRNGKey(10_000 * seed + g))[:len(group)]
        tables.append(table_from_counts([p for p, _ in group], [s for _, s in group], pairs, counts))
        stage.log_metrics({"group": g, "eval_wall_s": time.perf_counter() - tg,
                           "episodes": int(counts.sum())})
    table = PairTable.concat(tables)
    table.write_csv(Path(stage.path) / "dataset.csv")
    return table


# ---------------------------------------------------------------------------------------------------
# Stage 3: fitting, protocol, claims
# ---------------------------------------------------------------------------------------------------
def salience(table: PairTable) -> dict[str, float]:
    """On family A: of episodes ending at (goal colour, other shape) or (other colour, goal shape), the
    fraction ending at the colour match. Pools every such pair of every family-A agent."""
    per: dict[str, list[int]] = {}
    t = table.subset(np.asarray(table.family, dtype=str) == "A")
    for i in range(len(t)):
        name = str(t.pipeline[i])
        g = parse_pipeline(name).stages[0].goals[0]
        a, b = ALL_OBJECTS[t.obj_a[i]], ALL_OBJECTS[t.obj_b[i]]
        for x, y, nx, ny in ((a, b, t.counts[i, 0], t.counts[i, 1]), (b, a, t.counts[i, 1], t.counts[i, 0])):
            if (x.colour == g.colour and x.shape != g.shape and y.shape == g.shape and y.colour != g.colour):
                c = per.setdefault(name, [0, 0])
                c[0] += int(nx)
                c[1] += int(ny)
    n_col = sum(c[0] for c in per.values())
    total = n_col + sum(c[1] for c in per.values())
    return {"colour_fraction": n_col / total if total else float("nan"), "episodes": int(total),
            "per_pipeline": {k: c[0] / (c[0] + c[1]) if c[0] + c[1] else float("nan")
                             for k, c in sorted(per.items())}}


def persistence(table: PairTable, success_at_switch: dict[str, float], models: dict[str, LPG]) -> list[dict]:
    """Family F: P(g1) / (P(g1) + P(g2)) on the (g1, g2) pair per stage-1 share, with stage-1 rollout
    success at the switch and each model's prediction."""
    rows = []
    t = table.subset(np.asarray(table.family, dtype=str) == "F")
    names = sorted(set(np.asarray(t.pipeline, dtype=str)))
    pls = [parse_pipeline(name, "F") for name in names]
    g1s = np.array([p.stages[0].goals[0].id for p in pls], np.int32)
    g2s = np.array([p.stages[1].goals[0].id for p in pls], np.int32)
    # One prediction call per model for all pipelines (one compiled shape, not one per pipeline).
    preds = {key: model.predict(pls, np.arange(len(pls)), g1s, g2s) for key, model in models.items()}
    for i, (name, p) in enumerate(zip(names, pls)):
        g1, g2 = int(g1s[i]), int(g2s[i])
        lo, hi = min(g1, g2), max(g1, g2)
        m = (np.asarray(t.pipeline, dtype=str) == name) & (t.obj_a == lo) & (t.obj_b == hi)
        c = t.counts[m].sum(0)
        n1, n2 = (c[0], c[1]) if g1 == lo else (c[1], c[0])
        row = {"pipeline": name, "share": p.stages[0].fraction,
               "p_g1": n1 / (n1 + n2) if n1 + n2 else float("nan"),
               "stage1_success_at_switch": success_at_switch.get(name, float("nan"))}
        for key in models:
            pr = preds[key][i]
            row[key] = float(pr[0] / (pr[0] + pr[1]))
        rows.append(row)
    return rows


def _success_at_switch(groups, cfg) -> dict[str, float]:
    out: dict[str, list[float]] = {}
    for group, blob in groups:
        for i, (p, _) in enumerate(group):
            if p.family != "F":
                continue
            n1 = p.stage_updates(cfg.updates_per_stage)[0]
            out.setdefault(p.name, []).append(float(blob["success"][i, n1 - 1]))
    return {k: float(np.mean(v)) for k, v in out.items()}


def _final_success_all(groups) -> np.ndarray:
    return np.concatenate([_final_success(np.asarray(blob["success"])[:len(group)])
                           for group, blob in groups])


def run_fit(stage, train_stage, eval_stage, cfg: StudyConfig, seed: int) -> None:
    table = PairTable.read_csv(Path(eval_stage.path) / "dataset.csv")
    valid = table.valid()
    lpg_base = LPGConfig(fit_steps=cfg.fit_steps, lr=cfg.fit_lr, updates_per_stage=cfg.updates_per_stage,
                         rk4_steps=cfg.rk4_steps)
    t0 = time.perf_counter()
    prop_cfg = dataclasses.replace(lpg_base, stage_time="proportional")
    res = protocol.run_protocol(
        table, protocol.SPLITS, cfg.fit_steps, cfg.n_boot, seed, lpg_base,
        few_shot_ns=cfg.few_shot_ns, few_shot_trials=cfg.few_shot_trials,
        full_fits={"lpg_fixed": lpg_base, "lpg_proportional": prop_cfg}, batch=cfg.fit_batch,
        on_batch=lambda done, total: stage.log_metrics({"fits_done": done, "fits_total": total}))
    results, shots, n_fits = res["splits"], res["few_shot"], res["n_fits"]
    for split, why in res["skipped"].items():
        stage.log_metrics({"split": split, "skipped": why})
    for split, r in results.items():
        stage.log_metrics({"split": split, "n_fits": r["n_fits"],
                           **{f"{m}_kl3": v["kl3"]["mean"] for m, v in r["rows"].items()}})
    full = LPG(lpg_base, res["full"]["lpg_fixed"])
    prop = LPG(prop_cfg, res["full"]["lpg_proportional"])
    fit_wall = time.perf_counter() - t0
    print(f"goalgen fit phase: {n_fits} LPG fits in {fit_wall:.1f} s")
    ceil = protocol.ceilings(table, cfg.n_boot, seed)
    sal = salience(table)
    groups = _load_groups(train_stage, cfg, seed)
    pers = persistence(table, _success_at_switch(groups, cfg),
                       {"lpg_fixed": full, "lpg_proportional": prop})
    # The training stage already measured it (same episodes and key): read it rather than evaluate again;
    # a training stage written before that measure existed has none.
    kept = ((train_stage.summary() or {}).get("extra") or {}).get("last_stage_success")
    final = np.asarray(kept) if kept is not None else last_stage_success(groups, cfg, seed)
    by_family = success_breakdown(groups, final)

    rows = [
        Row("agents", len(final)),
        Row("pipelines", len(set(np.asarray(table.pipeline, dtype=str))), paper=">100 (\"over 100\")",
            source=f"{PAPER}, abstract"),
        Row("OOD pairs", len(set(zip(table.obj_a.tolist(), table.obj_b.tolist()))),
            paper=">250 (\"over 250\")", source=f"{PAPER}, abstract"),
        Row("fraction of agents >= 80% success on last stage", float(np.mean(final >= 0.8))),
        Row("valid (agent, pair) examples", len(valid)),
        Row("LPG fits in fit phase", n_fits),
        Row("fit phase wall time (s)", fit_wall),
        Row("salience: fraction choosing goal colour over goal shape (family A)", sal["colour_fraction"]),
    ]
    if "cv4" in results:
        r = results["cv4"]["rows"]
        d = results["cv4"]["lpg_minus_uniform_kl"]
        rows += [
            Row("cv4 LPG 3-way KL", r["lpg"]["kl3"]["mean"], (r["lpg"]["kl3"]["lo"], r["lpg"]["kl3"]["hi"])),
            Row("cv4 uniform 3-way KL", r["uniform"]["kl3"]["mean"]),
            Row("cv4 LPG - uniform 3-way KL", d["mean"], (d["lo"], d["hi"])),
            Row("cv4 LPG directional accuracy", r["lpg"]["dir_acc"]["mean"],
                (r["lpg"]["dir_acc"]["lo"], r["lpg"]["dir_acc"]["hi"]),
                paper="82% (seed text only; not in the paper's available text)",
                source="issue 6 seed text; unverified against " + PAPER),
        ]
    if pers:
        by_share: dict[float, list[float]] = {}
        for p in pers:
            by_share.setdefault(p["share"], []).append(p["p_g1"])
        for share, vals in sorted(by_share.items()):
            rows.append(Row(f"persistence P(g1)/(P(g1)+P(g2)), stage-1 share {share:g}",
                            float(np.nanmean(vals)),
                            paper="'first 15% of training' claim (seed text; not in the paper)" if share == 0.15
                            else None,
                            source="issue 6 seed text; unverified against " + PAPER if share == 0.15 else ""))
    extra = {
        "splits": {s: {"rows": r["rows"], "lpg_minus_uniform_kl": r["lpg_minus_uniform_kl"],
                       "n_fits": r["n_fits"]} for s, r in results.items()},
        "ceilings": ceil, "few_shot": {str(k): v for k, v in shots.items()}, "skipped": res["skipped"],
        "salience": sal, "persistence": pers, "theta": full.params_dict(),
        "saliency_SST": full.saliency().tolist(), "final_success": final.tolist(),
        "final_success_by_family": by_family,
    }
    stage.write_summary(rows, extra)
    tables = closing_tables(results, ceil, shots, res["skipped"], sal, pers, final, n_fits, fit_wall,
                            by_family)
    from quietrl.core.io import atomic_write_text
    atomic_write_text(Path(stage.path) / "tables.md", tables)
    print(f"goalgen fit: every split's table in {Path(stage.path) / 'tables.md'}", flush=True)
    _figures(stage, results, full, pers, shots, sal)


def _fmt(v: dict) -> str:
    return f"{v['mean']:.3f} [{v['lo']:.3f}, {v['hi']:.3f}]"


def closing_tables(results, ceil, shots, skipped, sal, pers, final, n_fits, fit_wall, by_family=()) -> str:
    """Markdown of every acceptance output of the fit stage: one table per split (LPG, its ablations and
    the baselines; mean with a pipeline-grouped 95% bootstrap interval), the per-agent ceilings, the
    few-shot curve, salience, persistence, and the seed text's two figures against what we measured."""
    from .metrics import METRICS
    out = [f"# goalgen study: closing tables\n\n{len(final)} agents; "
           f"{float(np.mean(final >= 0.8)):.3f} reach >= 80% success on their last stage's task "
           f"(mean success {float(np.mean(final)):.3f}; fresh episodes of that task, actions sampled as in "
           f"the OOD evaluation). {n_fits} LPG fits in {fit_wall:.1f} s.\n"]
    if by_family:
        out.append("| family | agents | >= 80% | mean success |\n|---|---|---|---|")
        out += [f"| {r['family']} | {r['agents']} | {r['fraction']:.3f} | {r['mean']:.3f} |" for r in by_family]
    for split, r in results.items():
        d = r["lpg_minus_uniform_kl"]
        out.append(f"\n## {split} ({r['n_fits']} LPG fits)\n\n| model | " + " | ".join(METRICS) + " |\n|---|"
                   + "---|" * len(METRICS))
        for m, row in r["rows"].items():
            out.append(f"| {m} | " + " | ".join(_fmt(row[k]) for k in METRICS) + " |")
        out.append(f"\nLPG - uniform 3-way KL: {_fmt(d)}")
    for split, why in skipped.items():
        out.append(f"\n## {split}: skipped ({why})")
    if ceil:
        out.append("\n## per-agent ceilings (25% of each agent's own pairs held out)\n\n| ceiling | "
                   + " | ".join(METRICS) + " |\n|---|" + "---|" * len(METRICS))
        for k, row in ceil.items():
            out.append(f"| {k} | " + " | ".join(_fmt(row[m]) for m in METRICS) + " |")
    if shots:
        out.append("\n## few-shot (LPG, held-out 3-way KL per trial)\n")
        for n in sorted(shots):
            out.append(f"- n = {n}: " + ", ".join(f"{x:.3f}" for x in shots[n]))
    out.append(f"\n## salience (family A)\n\nFraction of episodes ending at (goal colour, other shape) "
               f"rather than (other colour, goal shape): {sal['colour_fraction']:.3f} "
               f"over {sal['episodes']} episodes.")
    if "cv4" in results:
        acc = results["cv4"]["rows"]["lpg"]["dir_acc"]
        out.append(f"\n## seed-text figures, as measured\n\n- \"82% accuracy\": LPG's cv4 directional accuracy "
                   f"(threshold 0.10) is {_fmt(acc)}: "
                   + ("consistent with 0.82." if acc["lo"] <= 0.82 <= acc["hi"] else
                      "0.82 lies outside its interval (not confirmed)."))
    if pers:
        out.append("\n## persistence (family F): P(g1) / (P(g1) + P(g2)) by stage-1 share\n\n"
                   "| share | agents' P(g1) | stage-1 success at switch | LPG fixed time | "
                   "LPG proportional time |\n|---|---|---|---|---|")
        for share in sorted({p["share"] for p in pers}):
            ps = [p for p in pers if p["share"] == share]
            mean = lambda k, ps=ps: float(np.nanmean([p[k] for p in ps]))  # noqa: E731
            out.append(f"| {share:g} | {mean('p_g1'):.3f} | {mean('stage1_success_at_switch'):.3f} | "
                       f"{mean('lpg_fixed'):.3f} | {mean('lpg_proportional'):.3f} |")
        early = [p["p_g1"] for p in pers if p["share"] == 0.15]
        if early:
            out.append(f"\n- \"first 15% of training\": after a 15% stage 1, agents prefer g1 over g2 in "
                       f"{float(np.nanmean(early)):.3f} of the (g1, g2) episodes that end at either "
                       "(0 = the later goal replaced g1 entirely, 0.5 = g1 still as strong as the later goal; the "
                       "seed text's \"permanently biases all behaviour\" would need values near 0.5 or above).")
    return "\n".join(out) + "\n"


def _figures(stage, results, full: LPG, pers, shots, sal=None) -> None:
    from quietrl.core.plotting import new_figure

    from .types import FEATURE_NAMES
    if "cv4" in results:
        r = results["cv4"]
        fig, ax = new_figure(size=(4.5, 4))
        ax.scatter(r["p_obs"][:, 0], r["pred"]["lpg"][:, 0], s=3, alpha=0.3)
        ax.plot([0, 1], [0, 1], "k--", lw=0.8)
        ax.set_xlabel("observed P(a)")
        ax.set_ylabel("LPG predicted P(a) (held-out fold)")
        ax.set_title("cv4: predicted vs observed")
        stage.save_figure(fig, "pred_vs_obs")
    if results:
        models = list(next(iter(results.values()))["rows"].keys())
        fig, ax = new_figure(size=(7, 3.5))
        width = 0.8 / len(models)
        for j, m in enumerate(models):
            xs = np.arange(len(results)) + j * width
            vals = [results[s]["rows"][m]["kl3"]["mean"] for s in results]
            ax.bar(xs, vals, width, label=m)
        ax.set_xticks(np.arange(len(results)) + 0.4 - width / 2, list(results), fontsize=7)
        ax.set_ylabel("mean 3-way KL (held out)")
        ax.legend(fontsize=6)
        stage.save_figure(fig, "split_metrics")
    fig, ax = new_figure(size=(5, 4.5))
    im = ax.imshow(full.saliency(), cmap="coolwarm")
    ax.set_xticks(range(len(FEATURE_NAMES)), FEATURE_NAMES, rotation=90, fontsize=7)
    ax.set_yticks(range(len(FEATURE_NAMES)), FEATURE_NAMES, fontsize=7)
    fig.colorbar(im)
    ax.set_title("fitted saliency S S^T")
    stage.save_figure(fig, "saliency")
    if pers:
        fig, ax = new_figure()
        sh = np.array([p["share"] for p in pers])
        for key, mk in (("p_g1", "o"), ("lpg_fixed", "x"), ("lpg_proportional", "^"),
                        ("stage1_success_at_switch", ".")):
            ax.scatter(sh, [p[key] for p in pers], marker=mk, label=key)
        ax.set_xlabel("stage-1 share of budget")
        ax.set_ylabel("P(g1) / (P(g1) + P(g2))")
        ax.legend(fontsize=7)
        stage.save_figure(fig, "persistence")
    if sal and sal.get("per_pipeline"):
        fig, ax = new_figure(size=(6, 3.5))
        names = list(sal["per_pipeline"])
        ax.bar(range(len(names)), [sal["per_pipeline"][n] for n in names])
        ax.axhline(0.5, color="k", lw=0.8, ls="--")
        ax.axhline(sal["colour_fraction"], color="r", lw=0.8, label=f"pooled {sal['colour_fraction']:.2f}")
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=6)
        ax.set_ylabel("P(goal colour) vs P(goal shape)")
        ax.set_title("salience (family A): colour match over shape match")
        ax.legend(fontsize=7)
        stage.save_figure(fig, "salience")
    if shots:
        fig, ax = new_figure()
        ns = sorted(shots)
        ax.errorbar(ns, [np.mean(shots[n]) for n in ns], [np.std(shots[n]) for n in ns], marker="o")
        ax.set_xlabel("training pipelines")
        ax.set_ylabel("held-out 3-way KL")
        stage.save_figure(fig, "few_shot")


# ---------------------------------------------------------------------------------------------------
def run_study(run, cfg: StudyConfig, seed: int, experiment: str = "study") -> None:
    """Run (or resume) the three stages of the study in ``run``."""
    train = run.stage(SUB, f"{experiment}_train", seed)
    if not train.done:
        with train.running():
            run_training(train, cfg, seed)
            groups = _load_groups(train, cfg, seed)
            final = last_stage_success(groups, cfg, seed)
            rollout = _final_success_all(groups)
            train.write_summary(
                [Row("agents trained", len(final)),
                 Row("fraction of agents >= 80% success on last stage", float(np.mean(final >= 0.8))),
                 Row("mean last-stage success", float(np.mean(final))),
                 Row("fraction >= 80%, rollout success of the last 3 updates", float(np.mean(rollout >= 0.8)))],
                {"last_stage_success": final.tolist(), "rollout_success_last3": rollout.tolist(),
                 "by_family": success_breakdown(groups, final)})
    ev = run.stage(SUB, f"{experiment}_evaluate", seed)
    if not ev.done:
        with ev.running():
            table = run_evaluation(ev, train, cfg, seed)
            ev.write_summary([Row("examples", len(table)), Row("valid examples", len(table.valid()))])
    fit = run.stage(SUB, f"{experiment}_fit", seed)
    if not fit.done:
        with fit.running():
            run_fit(fit, train, ev, cfg, seed)


def reproduce(run_dir, quick: bool, seed: int, executor=None) -> None:
    """Reproduce the study in ``run_dir`` (a core RunDir). quick=True: the reduced study (minutes).
    The executor is unused: the population trains as one vectorised program."""
    del executor
    cfg = quick_config() if quick else StudyConfig()
    run_study(run_dir, cfg, seed, "quick" if quick else "study")


def config_from_overrides(quick: bool, overrides: list[str]) -> StudyConfig:
    from quietrl.core.config import apply_overrides
    cfg = quick_config() if quick else StudyConfig()
    return apply_overrides(cfg, overrides)
