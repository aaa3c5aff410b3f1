"""The ARMS study: exact equilibrium sets, method comparison on held-out maps, oscillation check.

``reproduce(run_dir, quick, seed, executor)`` writes three stages through quietrl.core's RunDir API:
- ``equilibria``: the swap game's pure Nash sets under both collision rules and each hand-made shaping, the
  learned r̂ (the MAPF RewardNet on env observations, trained with the ranking loss on swap-game
  trajectories) as a per-step reward (replace / add: can change the set) and as a potential (ARMS's default
  form: the set is identical by construction), and the classic matrix games (E1/E2);
- ``compare``: IPPO with each method at several sparsity levels, vmapped seeds, held-out success vs agent-steps,
  agent-steps to 50% / 80% held-out ISR (censored when never reached) (E3/E4);
- ``oscillation``: the detector on each run's per-iteration training success, ARMS vs the sparse control (E5,
  without the exploration sweep in the quick version).
The paper publishes no numbers, so no row carries a paper constant.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from quietrl.arms.types import SPARSITY, EnvConfig, TrainConfig
from quietrl.core.errors import ConfigError
from quietrl.core.io import atomic_write_text
from quietrl.core.summary import Row

SUB = "arms"
PAPER = "arXiv:2605.23562 (abstract only; no numbers published)"


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """Settings of one comparison study (``compare``); ``quick`` picks the reduced one."""

    methods: tuple[str, ...]
    sparsities: tuple[str, ...]
    agents: tuple[int, ...]
    grids: tuple[int, ...]
    seeds: int
    agent_steps: int  # per run
    num_envs: int
    horizon: int
    iters_per_chunk: int
    splits: bool = True  # evaluate the generalisation splits (seed, structured, density, size) at the end
    render_all: bool = True  # a rendered held-out episode per method (else only for the last job)

    def __post_init__(self) -> None:
        from quietrl.arms.types import METHODS

        for m in self.methods:
            if m not in METHODS:
                raise ConfigError(f"methods: unknown method {m!r}; choose from {', '.join(METHODS)}")
        for sp in self.sparsities:
            if sp not in SPARSITY:
                raise ConfigError(f"sparsities: unknown {sp!r}; choose from {', '.join(SPARSITY)}")
        for f in ("seeds", "agent_steps", "num_envs", "horizon", "iters_per_chunk"):
            if getattr(self, f) < 1:
                raise ConfigError(f"{f}: must be >= 1, got {getattr(self, f)}")
        if not (self.methods and self.sparsities and self.agents and self.grids):
            raise ConfigError("methods, sparsities, agents and grids must each name at least one value")

    @staticmethod
    def quick() -> "StudyConfig":
        return StudyConfig(methods=("sparse", "pbrs", "arms"), sparsities=("S0", "S2"), agents=(2,), grids=(8,),
                           seeds=2, agent_steps=32 * 2 * 32 * 80, num_envs=32, horizon=32, iters_per_chunk=10,
                           splits=False, render_all=False)  # both cost compiles the 3-minute budget lacks

    @staticmethod
    def full(extended: bool = False) -> "StudyConfig":
        return StudyConfig(methods=("sparse", "bonus", "pbrs", "arms", "arms-replace", "arms-add", "arms-frozen"),
                           sparsities=("S0", "S1", "S2") if extended else ("S0", "S2"),
                           agents=(2, 4, 8) if extended else (2, 4), grids=(8, 12), seeds=5,
                           # 500k agent-steps per run: the six-method study at 600k took 5,500 CPU-s; these
                           # 28 jobs at 500k took 59 min 45 s (6,570 CPU-s; jobs 3.1-4.8 min each: ~45 s compile,
                           # 10-12 s per 10-iteration chunk, ~50 s of split evaluation and rendering). Sparse
                           # IPPO passes the gate (80% held-out ISR at S0, n=2, 8x8) by ~123k agent-steps
                           agent_steps=500_000, num_envs=64, horizon=32, iters_per_chunk=10)


# --------------------------------------------------------------------------------------------------------
# E1/E2: equilibria
# --------------------------------------------------------------------------------------------------------
def train_swap_reward(game, rule: str = "block_occupied", num_profiles: int = 4096, steps: int = 400,
                      seed: int = 0, label_noise: float = 0.0, radius: int = 2):
    """Fit the MAPF RewardNet with the ranking loss on trajectories of uniformly drawn swap-game profiles.

    Returns ``reward_fn(obs (K, D)) -> (K,)`` and the strict-pair accuracy of Ĝ vs the sparse labels.
    """
    import jax
    import jax.numpy as jnp

    from quietrl.arms.equilibria import joint_profiles, post_step_observations, simulate, sparse_returns
    from quietrl.arms.networks import RewardNet
    from quietrl.arms.reward_model import fit_ranking, trajectory_returns

    rng = np.random.default_rng(seed)
    profiles = joint_profiles(game)
    pick = profiles[rng.choice(len(profiles), num_profiles, replace=False)]
    traj = simulate(game, pick, rule)
    obs_u, inv, mask = post_step_observations(game, traj, radius)
    n, H = game.num_agents, game.horizon
    obs = obs_u[inv]  # (P, H, n, D)
    obs = np.transpose(obs, (0, 2, 1, 3)).reshape(num_profiles * n, H, -1)
    mask = np.transpose(mask, (0, 2, 1)).reshape(num_profiles * n, H).astype(np.float32)
    y = sparse_returns(game, traj).reshape(-1).astype(np.float32)
    if label_noise > 0:  # replace a fraction of labels by random ones from the label set
        flip = rng.random(len(y)) < label_noise
        y = np.where(flip, rng.choice(np.unique(y), len(y)), y)
    net = RewardNet(64)
    params = net.init(jax.random.PRNGKey(seed), jnp.zeros((1, obs.shape[-1])))
    params, _ = fit_ranking(jax.random.PRNGKey(seed + 1), net.apply, params, jnp.asarray(obs), jnp.asarray(mask),
                            jnp.asarray(y), game.gamma, steps=steps, lr=3e-3, l2=1e-5, num_pairs=512)
    g = np.asarray(trajectory_returns(net.apply, params, jnp.asarray(obs), jnp.asarray(mask), game.gamma))
    y_true = sparse_returns(game, traj).reshape(-1)
    i, j = rng.integers(0, len(g), (2, 20000))
    strict = y_true[i] != y_true[j]
    acc = float((np.sign(g[i] - g[j]) == np.sign(y_true[i] - y_true[j]))[strict].mean())
    apply = jax.jit(net.apply)
    return (lambda o: np.asarray(apply(params, jnp.asarray(o)))), acc


def run_equilibria(stage, seed: int, quick: bool) -> None:
    """Stage E1/E2: equilibrium-set table for the swap game and the classic matrix games."""
    from quietrl.arms.equilibria import (classic_games, grid_game_table, mixed_nash, pure_nash_matrix,
                                         strictly_mixed, swap_game)

    game = swap_game(horizon=4, gamma=0.9)
    t0 = time.perf_counter()
    reward_fn, acc = train_swap_reward(game, seed=seed, steps=200 if quick else 1000, num_profiles=2048 if quick else 8192)
    noisy_fn, acc_noisy = train_swap_reward(game, seed=seed, steps=200 if quick else 1000, num_profiles=2048 if quick else 8192, label_noise=0.4)
    rows_all = grid_game_table(game, "follow")
    learned = {"arms r̂": reward_fn, "arms r̂ 40% noise": noisy_fn}
    if not quick:  # label-noise sweep (E1)
        for noise in (0.1, 0.2):
            learned[f"arms r̂ {int(noise * 100)}% noise"] = train_swap_reward(
                game, seed=seed, steps=1000, num_profiles=8192, label_noise=noise)[0]
    block = grid_game_table(game, "block_occupied", learned=learned)
    rows_all += block[:6] + block[7:]  # block[6] repeats the sparse reference row
    for r in rows_all:
        stage.log_metrics({"table": "swap", **{k: v for k, v in r.items() if k not in ("classes_ref",)}})
    rows = []
    for r in rows_all:
        q = f"swap H=4 γ=0.9 [{r['rule']}] {r['payoff']}"
        rows.append(Row(f"{q}: #pure NE", r["num_ne"], paper_setting="none published", source=""))
        if r["payoff"] != "sparse":
            verdict = "identical" if r["identical"] else ("subset" if r["sound"] else "new NE added")
            rows.append(Row(f"{q}: vs sparse", f"{verdict}; Jaccard {r['jaccard']:.3f}; new classes {r['new_classes']}"))
        if "c2_kept_p0" in r:
            rows.append(Row(f"{q}: opponent strategies with own-strategy order kept (p0 / p1)",
                            f"{r['c2_kept_p0']:.3f} / {r['c2_kept_p1']:.3f}"))
    if not quick:  # the 3-agent crossing (125^3 profiles, ~1.5 GB while enumerating): hand-made shapings only
        from quietrl.arms.equilibria import crossing_game

        cross = crossing_game(horizon=3, gamma=0.9)
        for r in grid_game_table(cross, "block_occupied"):
            stage.log_metrics({"table": "crossing", **{k: v for k, v in r.items() if k not in ("classes_ref",)}})
            q = f"crossing H=3 γ=0.9 [block_occupied] {r['payoff']}"
            rows.append(Row(f"{q}: #pure NE", r["num_ne"], paper_setting="none published", source=""))
            if r["payoff"] != "sparse":
                verdict = "identical" if r["identical"] else ("subset" if r["sound"] else "new NE added")
                rows.append(Row(f"{q}: vs sparse", f"{verdict}; Jaccard {r['jaccard']:.3f}"))
    rows.append(Row("swap: learned r̂ strict-pair accuracy (clean labels)", round(acc, 4)))
    rows.append(Row("swap: learned r̂ strict-pair accuracy (40% label noise)", round(acc_noisy, 4)))
    for name, g in classic_games().items():
        mixed = [(x.round(4).tolist(), y.round(4).tolist()) for x, y in strictly_mixed(mixed_nash(g))]
        rows.append(Row(f"{name}: pure NE", str(pure_nash_matrix(g))))
        rows.append(Row(f"{name}: mixed NE (nashpy)", str(mixed)))
    _equilibria_figure(stage, rows_all)
    stage.write_summary(rows, extra={"seconds": time.perf_counter() - t0})


def _equilibria_figure(stage, rows_all) -> None:
    from quietrl.core.plotting import new_figure

    fig, ax = new_figure(1, 1, size=(7.5, 3.8))
    labels = [f"[{r['rule'][:6]}] {r['payoff']}" for r in rows_all]
    vals = [max(r["num_ne"], 0.8) for r in rows_all]
    colors = ["C2" if r["identical"] else ("C0" if r["sound"] else "C3") for r in rows_all]
    ax.barh(range(len(vals)), vals, color=colors)
    ax.set_xscale("log")
    ax.set_yticks(range(len(vals)))
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    for k, r in enumerate(rows_all):
        ax.text(vals[k], k, f" {r['num_ne']}  J={r['jaccard']:.3f}", va="center", fontsize=6)
    ax.set_xlabel("# pure Nash equilibria (green: identical set, blue: subset, red: new NE)")
    ax.set_title("Swap game (H=4, γ=0.9): pure Nash sets under each payoff")
    stage.save_figure(fig, "equilibrium_table")


# --------------------------------------------------------------------------------------------------------
# E3/E4: method comparison
# --------------------------------------------------------------------------------------------------------
def train_runs(env, cfg: TrainConfig, sparsities: list[int], ent_coefs: list[float], seed: int, stage=None,
               name: str = "train", checkpoint: bool = True) -> dict[str, np.ndarray]:
    """Train len(sparsities) vmapped runs of one method; returns per-chunk curves.

    Output arrays: ``agent_steps`` (C,), ``heldout_isr``/``heldout_csr`` (C, R), ``train_isr_iter`` (C*I, R).
    """
    import jax
    import jax.numpy as jnp

    from quietrl.arms.ppo import make_train, num_iterations
    from quietrl.core.train import run_chunks

    init, chunk, _, _ = make_train(env, cfg)
    iters = num_iterations(cfg, env.num_agents, env.horizon)
    num_chunks = iters // cfg.iters_per_chunk
    per_chunk = cfg.iters_per_chunk * cfg.num_envs * env.num_agents * env.horizon
    state0 = init(jax.random.PRNGKey(seed), jnp.asarray(ent_coefs, jnp.float32), jnp.asarray(sparsities))

    kept: list[dict] = []  # without a stage the curves are collected here

    def metrics_fn(c, state, m):
        out = {"agent_steps": c * per_chunk}
        for k, v in m.items():
            v = np.asarray(v)
            if k.startswith("heldout") or k == "train_isr":
                out[k] = v.tolist()
            else:  # all-NaN (e.g. a loss no step of the chunk defines) is recorded as NaN, without a warning
                out[k] = float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
        kept.append(out)
        return out

    final = run_chunks(stage, state0, jax.jit(chunk), num_chunks, kind=f"arms-ippo-{cfg.method}",
               config={**dataclasses.asdict(cfg), "sparsities": list(sparsities), "ent": list(ent_coefs)},
               metrics_fn=metrics_fn, desc=f"{cfg.method}", name=name, checkpoint=checkpoint and stage is not None)
    lines = [m for m in stage.read_metrics() if m.get("series") == name] if stage is not None else kept
    return {
        "agent_steps": np.array([m["agent_steps"] for m in lines]),
        "heldout_isr": np.array([m["heldout_isr"] for m in lines]),
        "heldout_csr": np.array([m["heldout_csr"] for m in lines]),
        "train_isr_iter": np.concatenate([np.array(m["train_isr"]) for m in lines]) if lines else np.zeros((0,)),
        "params0": jax.tree.map(lambda x: np.asarray(x[0]), final["seeds"]["params"]),
        "params": jax.tree.map(np.asarray, final["seeds"]["params"]),
        "sparsity": np.asarray(final["seeds"]["sparsity"]),
    }


def evaluate_splits(ecfg: EnvConfig, cfg: TrainConfig, params, sparsity: np.ndarray, seed: int) -> dict:
    """Held-out ISR / CSR / sum of costs (each (R,) over the R vmapped runs) on every generalisation split of
    :func:`quietrl.arms.env.make_heldout_envs`; ``params`` has a leading run axis.

    Splits whose maps share a shape are stacked into one env and evaluated by one compiled program (per-task
    results, then cut by split), so a job compiles one evaluation per map size, not one per split.
    """
    import jax
    import jax.numpy as jnp

    from quietrl.arms.env import MAPFEnv, make_heldout_envs
    from quietrl.arms.maps import concat_banks
    from quietrl.arms.networks import ActorCritic

    net = ActorCritic(5, cfg.hidden, centralised=cfg.learner == "mappo")
    envs = make_heldout_envs(ecfg)
    groups: dict[tuple, list[str]] = {}
    for name, env in envs.items():
        groups.setdefault((env.map_shape, env.horizon), []).append(name)
    out = {}
    for (_, horizon), names in groups.items():
        banks = [envs[k].bank for k in names]
        env = MAPFEnv(concat_banks(*banks), horizon, ecfg.obs_radius, ecfg.collision, ecfg.sparsity, num_train=0)
        tasks = jnp.arange(env.num_tasks)

        def run(p, key, sp):
            """One run on every task: arrived (K, n), steps until arrival (K, n)."""
            obs, st = jax.vmap(env.reset_to, (0, None))(tasks, sp)

            def step(carry, k):
                obs, st, cost = carry
                action = jax.random.categorical(k, net.apply(p, obs)[0])
                cost = cost + (~st.arrived).astype(jnp.float32)
                obs, st, _, _, _ = jax.vmap(env.step_arrays)(st, action)
                return (obs, st, cost), None

            init = (obs, st, jnp.zeros(st.arrived.shape, jnp.float32))
            (_, st, cost), _ = jax.lax.scan(step, init, jax.random.split(key, env.horizon))
            return st.arrived, cost

        keys = jax.random.split(jax.random.PRNGKey(seed + 7), len(sparsity))
        arrived, cost = jax.jit(jax.vmap(run))(params, keys, jnp.asarray(sparsity))
        arrived, cost = np.asarray(arrived), np.asarray(cost)  # (R, K, n)
        start = 0
        for name, bank in zip(names, banks):
            sl = slice(start, start + bank.num_tasks)
            start += bank.num_tasks
            out[name] = {"isr": arrived[:, sl].mean((1, 2)).tolist(), "csr": arrived[:, sl].all(-1).mean(1).tolist(),
                         "sum_of_costs": cost[:, sl].sum(-1).mean(1).tolist()}
    return out


def train_job(item: dict) -> dict:
    """One method's vmapped runs (sparsities x seeds, or entropy coefficients x seeds) as a sweep job; module
    level, so the core executors can pickle it.

    item: ``env`` (EnvConfig), ``train`` (TrainConfig), ``sparsities`` and ``ent_coefs`` (one entry per run),
    ``seed``, ``splits`` (evaluate the generalisation splits at the end), ``run`` (a run-directory path) and
    ``experiment`` (its stage name). The stage is trained if not done (resume-safe: chunks are checkpointed)
    and the job's results are returned from its summary, so a finished job is never rerun. Returns lists:
    agent_steps (C,), heldout_isr / heldout_csr (C, R), train_isr_iter (C*I, R), splits {name: {isr, csr,
    sum_of_costs: (R,)}}.
    """
    from quietrl.arms.env import make_env
    from quietrl.core.runs import RunDir

    st = RunDir.open(item["run"]).stage(sub=SUB, experiment=item["experiment"], seed=item["seed"])
    if not st.done:
        with st.running():
            env = make_env(item["env"])
            cfg = item["train"]
            out = train_runs(env, cfg, item["sparsities"], item["ent_coefs"], item["seed"], st, name="train")
            splits = (evaluate_splits(item["env"], cfg, out["params"], out["sparsity"], item["seed"])
                      if item.get("splits") else {})
            if item.get("render", True):
                render_stage_episode(st, env, out["params0"], f"{item['experiment']}, held-out task",
                                     centralised=cfg.learner == "mappo")
            res = {"agent_steps": out["agent_steps"].tolist(), "heldout_isr": out["heldout_isr"].tolist(),
                   "heldout_csr": out["heldout_csr"].tolist(), "train_isr_iter": out["train_isr_iter"].tolist(),
                   "splits": splits}
            st.write_summary([Row(f"held-out ISR at budget [{item['experiment']}] (mean over runs)",
                                  round(float(np.mean(out["heldout_isr"][-1])), 4))], extra={"result": res})
    return st.summary()["extra"]["result"]


def run_jobs(items: list[dict], executor=None, desc: str = "arms runs") -> list[dict]:
    """:func:`train_job` for every item, in order: in this process when ``executor`` is None or there is one
    item, else through the core sweep executor (one process per job). A failed job raises RuntimeError."""
    if executor is None or len(items) <= 1:
        return [train_job(it) for it in items]
    from quietrl.core.sweep import run_sweep

    results = run_sweep(train_job, items, executor, desc=desc)
    failed = [r for r in results if not r.ok]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(items)} ARMS training jobs failed; first: "
                           f"{failed[0].item['experiment']}: {failed[0].error}")
    return [r.value for r in results]


def _as_arrays(res: dict) -> dict:
    return {"agent_steps": np.asarray(res["agent_steps"]), "heldout_isr": np.asarray(res["heldout_isr"]),
            "heldout_csr": np.asarray(res["heldout_csr"]), "train_isr_iter": np.asarray(res["train_isr_iter"]),
            "splits": res.get("splits", {})}


def steps_to(curve_steps: np.ndarray, isr: np.ndarray, level: float) -> float | None:
    """First agent-step count where held-out ISR >= level (None = censored: never within the budget)."""
    hit = np.nonzero(isr >= level)[0]
    return float(curve_steps[hit[0]]) if len(hit) else None


def _run_path(stage):
    """The run directory of a stage (<run>/<sub>/<experiment>/seed<k>/)."""
    return stage.path.parents[2]


def compare_items(run_path, study: StudyConfig, seed: int) -> tuple[list[tuple], list[dict]]:
    """The study's :func:`train_job` items, one per (grid, n, method), with (key, grid, n, method) labels."""
    sp_idx = [SPARSITY.index(s) for s in study.sparsities]
    sps = [s for s in sp_idx for _ in range(study.seeds)]
    keys, items = [], []
    for grid in study.grids:
        for n in study.agents:
            ecfg = EnvConfig(grid_size=grid, num_agents=n, horizon=study.horizon, map_seed=seed)
            for method in study.methods:
                cfg = TrainConfig(method=method, num_envs=study.num_envs, total_agent_steps=study.agent_steps,
                                  iters_per_chunk=study.iters_per_chunk)
                key = f"G{grid}_n{n}_{method}"
                keys.append((key, grid, n, method))
                items.append({"env": ecfg, "train": cfg, "sparsities": sps, "ent_coefs": [cfg.ent_coef] * len(sps),
                              "seed": seed, "splits": study.splits, "run": str(run_path),
                              "experiment": f"compare-{key}", "render": study.render_all})
    items[-1]["render"] = True  # at least one rendered held-out episode
    return keys, items


def run_compare(stage, study: StudyConfig, seed: int, results: dict | None = None, executor=None) -> dict:
    """Stage E3/E4: every (grid, n, method) is one job (its own stage ``compare-G<g>_n<n>_<method>``) training
    its sparsities x seeds in one vmapped program, then evaluated on the generalisation splits; jobs go
    through ``executor`` when one is given (see :func:`run_jobs`)."""
    from quietrl.arms.astar import reference_success
    from quietrl.arms.env import HELDOUT_SPLITS, make_env, make_heldout_envs

    results = {} if results is None else results
    rows = []
    for grid in study.grids:
        for n in study.agents:
            ecfg = EnvConfig(grid_size=grid, num_agents=n, horizon=study.horizon, map_seed=seed)
            env = make_env(ecfg)
            ref = reference_success(env, np.arange(env.num_train, env.num_tasks))
            rows.append(Row(f"prioritised A* reference held-out ISR [{grid}x{grid}, n={n}] (not a bound)",
                            round(ref["isr"], 4)))
            rows.append(Row(f"prioritised A* reference held-out CSR [{grid}x{grid}, n={n}]", round(ref["csr"], 4)))
            if study.splits:
                for split, senv in make_heldout_envs(ecfg).items():  # A* on the generalisation splits
                    r = reference_success(senv, np.arange(senv.num_tasks))
                    rows.append(Row(f"prioritised A* reference ISR / CSR, split '{split}' [{grid}x{grid}, n={n}]",
                                    f"{r['isr']:.3f} / {r['csr']:.3f}"))
    keys, items = compare_items(_run_path(stage), study, seed)
    # Costliest jobs first (larger maps, learned-reward methods), so the last worker to finish waits least;
    # results are read back in the study's order.
    order = sorted(range(len(items)), key=lambda i: (-keys[i][1], not keys[i][3].startswith("arms"), i))
    done = dict(zip(order, run_jobs([items[i] for i in order], executor, desc="arms compare")))
    for i, (key, grid, n, method) in enumerate(keys):
        res = done[i]
        out = results[key] = _as_arrays(res)
        for si, sname in enumerate(study.sparsities):
            cols = slice(si * study.seeds, (si + 1) * study.seeds)
            isr = out["heldout_isr"][:, cols]
            final = isr[-1]
            lo, hi = _ci(final)
            setting = f"{grid}x{grid}, n={n}, {sname}, {method}"
            rows.append(Row(f"held-out ISR at budget [{setting}]", round(float(final.mean()), 4), ci=(lo, hi),
                            paper_setting="none published"))
            for level in (0.5, 0.8):
                hits = [steps_to(out["agent_steps"], isr[:, k], level) for k in range(isr.shape[1])]
                txt = ", ".join("censored" if h is None else f"{int(h)}" for h in hits)
                rows.append(Row(f"agent-steps to {int(level * 100)}% held-out ISR [{setting}] per seed", txt))
            for split in HELDOUT_SPLITS:
                if split in out["splits"]:
                    v = np.asarray(out["splits"][split]["isr"])[cols]
                    c = np.asarray(out["splits"][split]["csr"])[cols]
                    rows.append(Row(f"held-out split '{split}' ISR [{setting}]", round(float(v.mean()), 4),
                                    ci=_ci(v)))
                    rows.append(Row(f"held-out split '{split}' CSR [{setting}]", round(float(c.mean()), 4)))
    table = sample_efficiency_table(results, study)
    atomic_write_text(stage.path / "sample_efficiency.md", table)
    gate = results.get(f"G{study.grids[0]}_n2_sparse")
    if gate is not None and "S0" in study.sparsities:
        si = study.sparsities.index("S0")
        isr = float(gate["heldout_isr"][-1, si * study.seeds:(si + 1) * study.seeds].mean())
        rows.append(Row(f"validity gate: sparse IPPO held-out ISR at S0, n=2, {study.grids[0]}x{study.grids[0]} >= 0.8",
                        f"{'pass' if isr >= 0.8 else 'FAIL'} ({isr:.3f})"))
    _compare_figure(stage, study, results)
    stage.write_summary(rows, extra={"study": dataclasses.asdict(study),
                                     "episodes": "figures/episode.png in each compare-<key> stage"})
    return results


def sample_efficiency_table(results: dict, study: StudyConfig) -> str:
    """Markdown table: per (grid, n, sparsity) row and method column, the median over seeds of the agent-steps
    to 50% / 80% held-out ISR and the number of censored seeds (never reached within the budget), then the
    final held-out ISR (mean over seeds). A median over partly censored seeds is taken with censored = +inf
    ("> budget" when more than half are censored)."""
    def med(hits: list[float | None]) -> str:
        v = np.sort([np.inf if h is None else h for h in hits])
        m = v[(len(v) - 1) // 2]  # lower median: defined while at most half are censored
        cens = sum(h is None for h in hits)
        txt = "> budget" if not np.isfinite(m) else f"{m / 1e3:.0f}k"
        return txt + (f" ({cens} cens.)" if cens else "")

    head = "| grid | n | sparsity | " + " | ".join(study.methods) + " |"
    lines = [f"Agent-steps to 50% / 80% held-out ISR (median over {study.seeds} seeds; censored = never within "
             f"{study.agent_steps:,} agent-steps per run) and final held-out ISR.", "", head,
             "|" + "---|" * (3 + len(study.methods))]
    for g in study.grids:
        for n in study.agents:
            for si, sname in enumerate(study.sparsities):
                cells = []
                for method in study.methods:
                    out = results.get(f"G{g}_n{n}_{method}")
                    if out is None or not len(out["agent_steps"]):
                        cells.append("–")
                        continue
                    isr = out["heldout_isr"][:, si * study.seeds:(si + 1) * study.seeds]
                    lv = [med([steps_to(out["agent_steps"], isr[:, k], lev) for k in range(isr.shape[1])])
                          for lev in (0.5, 0.8)]
                    cells.append(f"{lv[0]} / {lv[1]}; {isr[-1].mean():.2f}")
                lines.append(f"| {g}x{g} | {n} | {sname} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _ci(x: np.ndarray) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean over seeds."""
    x = np.asarray(x, float)
    if len(x) < 2:
        return float(x.mean()), float(x.mean())
    rng = np.random.default_rng(0)
    means = rng.choice(x, (2000, len(x))).mean(1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def _compare_figure(stage, study: StudyConfig, results: dict) -> None:
    from quietrl.core.plotting import band, mean_ci, new_figure

    from matplotlib.ticker import FuncFormatter

    panels = [(g, n, s) for g in study.grids for n in study.agents for s in study.sparsities]
    ncols = min(4, len(panels))  # the full study has 8 panels: two rows stay readable
    nrows = -(-len(panels) // ncols)
    fig, axes = new_figure(nrows, ncols, size=(3.6, 3.0))
    axes = np.atleast_1d(axes).ravel()
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    for ax, (g, n, s) in zip(axes, panels):
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:g}k"))
        si = study.sparsities.index(s)
        for k, method in enumerate(study.methods):
            out = results.get(f"G{g}_n{n}_{method}")
            if out is None or not len(out["agent_steps"]):
                continue
            isr = out["heldout_isr"][:, si * study.seeds:(si + 1) * study.seeds]
            m, lo, hi = mean_ci(isr, axis=1)
            band(ax, out["agent_steps"], m, np.clip(lo, 0, 1), np.clip(hi, 0, 1), label=method, color=f"C{k}")
        ax.set_title(f"{g}x{g}, n={n}, {s}")
        ax.set_xlabel("agent-steps per run")
        ax.set_ylim(0, 1)
    for row in range(nrows):
        axes[row * ncols].set_ylabel("held-out ISR\n(mean, 95% CI over seeds)")
    axes[0].legend()
    fig.tight_layout()
    stage.save_figure(fig, "heldout_success")


# --------------------------------------------------------------------------------------------------------
# E5: oscillation
# --------------------------------------------------------------------------------------------------------
def run_oscillation(stage, results: dict, study: StudyConfig, seed: int) -> None:
    """Stage E5 (reduced): the detector on every run's per-iteration training success curve."""
    from quietrl.arms.oscillation import detect
    from quietrl.core.plotting import new_figure

    rows = []
    shown = {}
    for key, out in results.items():
        curves = out["train_isr_iter"]
        if curves.ndim != 2 or curves.shape[0] < 16:
            continue
        for si, sname in enumerate(study.sparsities):
            flags, rhos = [], []
            for k in range(si * study.seeds, (si + 1) * study.seeds):
                r = detect(curves[:, k], seed=seed + k)
                flags.append(r.flagged)
                rhos.append(r.rho)
                stage.log_metrics({"run": key, "sparsity": sname, "seed_index": k, "rho": r.rho,
                                   "threshold": r.threshold, "amplitude": r.amplitude, "flagged": r.flagged,
                                   "collapses": r.collapses, "recoveries": r.recoveries,
                                   "sign_change_rate": r.sign_change_rate})
                shown.setdefault((key, sname), r)
            rows.append(Row(f"oscillation flagged [{key}, {sname}] (seeds flagged / seeds)",
                            f"{sum(flags)}/{len(flags)}; mean ρ {np.mean(rhos):.3f}"))
    if shown:
        fig, axes = new_figure(1, min(4, len(shown)), size=(3.2, 2.8))
        axes = np.atleast_1d(axes).ravel()
        for ax, ((key, sname), r) in zip(axes, list(shown.items())[:len(axes)]):
            ax.plot(r.freqs, r.power, label="periodogram")
            ax.plot(r.freqs, r.surrogate_band, "--", label="AR(1) 95%")
            ax.set_title(f"{key} {sname}: {'flagged' if r.flagged else 'not flagged'}", fontsize=7)
            ax.set_xlabel("cycles / iteration")
        axes[0].legend()
        stage.save_figure(fig, "oscillation_spectra")
    stage.write_summary(rows, extra={"note": "exploration sweep not run in this stage"})


ENT_SWEEP = (0.0, 0.01, 0.013, 0.02, 0.05)  # 0.013 = the circulating "+30% exploration" claim, tested once


def exploration_sweep(stage, method: str = "arms", sparsity: str = "S2", agents: int = 2, grid: int = 8,
                      seeds: int = 10, agent_steps: int = 400_000, ent_coefs: tuple[float, ...] = ENT_SWEEP,
                      seed: int = 0, executor=None, num_envs: int = 32) -> list[Row]:
    """E5 sweep: entropy coefficients x seeds; oscillation flags, collapses and final held-out ISR per coefficient.

    Without an executor every coefficient x seed is one vmapped program (one job); with one, each coefficient
    is a job (its seeds vmapped) in its own stage ``sweep-c<c_ent>``. The detector reads per-iteration training
    success (the held-out curve has one point per chunk).
    """
    from quietrl.arms.oscillation import detect

    ecfg = EnvConfig(grid_size=grid, num_agents=agents, horizon=32, map_seed=seed)
    cfg = TrainConfig(method=method, num_envs=num_envs, total_agent_steps=agent_steps, iters_per_chunk=10)
    sp = SPARSITY.index(sparsity)
    base = {"env": ecfg, "train": cfg, "seed": seed, "splits": False, "run": str(_run_path(stage))}
    if executor is None:
        ents = [c for c in ent_coefs for _ in range(seeds)]
        res = _as_arrays(run_jobs([dict(base, sparsities=[sp] * len(ents), ent_coefs=ents,
                                        experiment="sweep-all")])[0])
        per_c = [{k: (v[..., i * seeds:(i + 1) * seeds] if k != "agent_steps" and k != "splits" else v)
                  for k, v in res.items()} for i in range(len(ent_coefs))]
    else:
        items = [dict(base, sparsities=[sp] * seeds, ent_coefs=[c] * seeds, experiment=f"sweep-c{c}")
                 for c in ent_coefs]
        per_c = [_as_arrays(r) for r in run_jobs(items, executor, desc="exploration sweep")]
    rows = []
    setting = f"[{method}, {sparsity}, n={agents}, {grid}x{grid}]"
    for c, out in zip(ent_coefs, per_c):
        curves = out["train_isr_iter"]
        res = [detect(curves[:, k], seed=k) for k in range(seeds)] if curves.shape[0] >= 16 else []
        for k, r in enumerate(res):
            stage.log_metrics({"ent_coef": c, "seed_index": k, "rho": r.rho, "threshold": r.threshold,
                               "amplitude": r.amplitude, "flagged": r.flagged, "collapses": r.collapses,
                               "recoveries": r.recoveries})
        final = out["heldout_isr"][-1]
        rows.append(Row(f"c_ent={c} {setting}: oscillation flagged (seeds)",
                        f"{sum(r.flagged for r in res)}/{seeds}" if res else "curve too short (< 16 iterations)"))
        rows.append(Row(f"c_ent={c} {setting}: collapses / recoveries (sum over seeds)",
                        f"{sum(r.collapses for r in res)} / {sum(r.recoveries for r in res)}"))
        rows.append(Row(f"c_ent={c} {setting}: final held-out ISR", round(float(final.mean()), 4), ci=_ci(final)))
    return rows


def render_stage_episode(stage, env, params, title: str, centralised: bool = False) -> None:
    import jax

    from quietrl.arms.networks import ActorCritic
    from quietrl.arms.render import record_episode, render_strip

    net = ActorCritic(5, 64, centralised=centralised)

    def policy(p, obs, k):
        logits, _ = net.apply(p, obs)
        return jax.random.categorical(k, logits)

    task = env.num_train  # the first held-out task
    pos, arrived = record_episode(env, policy, params, task)
    stage.save_figure(render_strip(env, task, pos, arrived, title=title), "episode")


# --------------------------------------------------------------------------------------------------------
# Entry point for `quietrl reproduce`
# --------------------------------------------------------------------------------------------------------
def reproduce(run_dir, quick: bool, seed: int, executor=None) -> None:
    """Run the ARMS study into ``run_dir`` (a core RunDir); stages already done are skipped (resume).

    quick=True: swap-game equilibria + IPPO on 8x8, n=2, S0 and S2, {sparse, pbrs, arms}, 2 vmapped seeds, in
    this process (each method's seeds and sparsities are one vmapped program; spawning a process per method
    would recompile in each). The full study sends one job per (grid, n, method) through ``executor``.
    """
    study = StudyConfig.quick() if quick else StudyConfig.full()
    run_study(run_dir, study, seed, executor=None if quick else executor, quick_equilibria=quick)


def run_study(run_dir, study: StudyConfig, seed: int, executor=None, quick_equilibria: bool = False) -> list:
    """The stages ``equilibria`` (E1/E2 table), ``compare`` (validity gate, sample-efficiency table, held-out
    maps and splits) and ``oscillation`` into ``run_dir``, each skipped when already done (resume); returns
    the rows of all three. ``quick_equilibria`` drops the label-noise sweep and the crossing game."""
    eq = run_dir.stage(sub=SUB, experiment="equilibria", seed=seed)
    if not eq.done:
        with eq.running():
            run_equilibria(eq, seed, quick_equilibria)
    cmp_stage = run_dir.stage(sub=SUB, experiment="compare", seed=seed)
    results: dict[str, Any] = {}
    if not cmp_stage.done:
        with cmp_stage.running():
            run_compare(cmp_stage, study, seed, results, executor=executor)
    osc = run_dir.stage(sub=SUB, experiment="oscillation", seed=seed)
    if not osc.done:
        if not results:  # compare was done in an earlier attempt: rebuild curves from its metrics
            results = _results_from_jobs(run_dir.path, study, seed)
        with osc.running():
            run_oscillation(osc, results, study, seed)
    return eq.rows() + cmp_stage.rows() + osc.rows()


def _results_from_jobs(run_path, study: StudyConfig, seed: int) -> dict:
    """Curves of a finished compare stage, read back from its (done) job stages."""
    keys, items = compare_items(run_path, study, seed)
    return {k[0]: _as_arrays(train_job(it)) for k, it in zip(keys, items)}
