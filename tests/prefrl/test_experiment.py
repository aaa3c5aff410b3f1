import json

import numpy as np

from quietrl.core.runs import RunDir
from quietrl.prefrl import experiment
from quietrl.prefrl.experiment import StudySpec, acceptance, reproduce, run_study, study_table


def test_reproduce_tiny_writes_stages_and_resumes(tmp_path, monkeypatch):
    tiny = (StudySpec("chain", ("uniform", "ucb", "oracle_ucb"), 40, (0, 1)),)
    monkeypatch.setattr(experiment, "QUICK", tiny)
    run = RunDir.create(tmp_path / "run", {"test": 1}, seed=0)
    reproduce(run, quick=True, seed=0, executor=None)
    exact = run.stage(sub="prefrl", experiment="exact_values", seed=0)
    study = run.stage(sub="prefrl", experiment="regret_chain", seed=0)
    assert exact.done and study.done
    rows = {r.quantity: r for r in exact.rows()}
    assert rows["bumps1d: V*_1(s1) by exact DP"].ours == 3.221
    assert all(r.paper is None for r in study.rows())  # the paper reports no experiments
    summ = study.summary()
    assert set(summ["extra"]["table"]) == {"uniform", "ucb", "oracle_ucb"}
    assert (study.figures_dir / "regret_loglog.png").exists()
    assert (study.figures_dir / "reward_learned_vs_true.png").exists()
    assert len(study.read_metrics()) == 6
    # resume: done stages are skipped (the summary file is left untouched)
    before = (study.path / "summary.json").read_text()
    reproduce(run, quick=True, seed=0, executor=None)
    assert (study.path / "summary.json").read_text() == before


def test_table_and_acceptance_keys():
    res = run_study(StudySpec("chain", ("uniform", "ucb"), 30, (0, 1)))
    t = study_table(res)
    assert t["uniform"]["episodes"] == 30 and len(t["ucb"]["slope_per_seed"]) == 2
    assert np.isclose(t["uniform"]["cum_regret"], t["uniform"]["cum_regret_pi1"] + t["uniform"]["cum_regret_pi2"])
    acc = acceptance(t)
    assert set(acc) == {"ucb_slope_upper_ci_lt_0.9", "uniform_slope_1.00_pm_0.02"}
    json.dumps(t)


def test_full_path_with_ablation_summary(tmp_path, monkeypatch):
    tiny = (
        StudySpec("chain", ("ucb",), 20, (0, 1), name="ablation_base"),
        StudySpec("chain", ("ucb",), 20, (0, 1), (("beta_scale", 2.0),), name="ablation_beta2.0"),
    )
    monkeypatch.setattr(experiment, "FULL", tiny)
    run = RunDir.create(tmp_path / "run", {"test": 1}, seed=0)
    reproduce(run, quick=False, seed=0, executor=None)
    st = run.stage(sub="prefrl", experiment="ablation_summary", seed=0)
    assert st.done and (st.figures_dir / "ablations.png").exists()
    assert [r.quantity for r in st.rows()] == ["ablation base: ucb slope (N=20)", "ablation beta2.0: ucb slope (N=20)"]


def test_study_resumes_run_by_run(tmp_path, monkeypatch):
    """Finished runs are cached; a rerun computes only the missing ones and returns identical results."""
    spec = StudySpec("chain", ("uniform", "ucb"), 25, (0, 1))
    first = run_study(spec, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 4
    (tmp_path / "chain_ucb_N25_seed1.npz").unlink()  # as if interrupted before the last run finished
    calls = []
    real = experiment.run_learner

    def counting(env, cfg, episodes, seed, progress=None):
        calls.append((cfg.algo, seed))
        return real(env, cfg, episodes, seed, progress)

    monkeypatch.setattr(experiment, "run_learner", counting)
    again = run_study(spec, cache_dir=tmp_path)
    assert calls == [("ucb", 1)]
    for algo in spec.algos:
        for a, b in zip(first[algo], again[algo]):
            assert np.array_equal(a.v1, b.v1) and np.array_equal(a.states2, b.states2) and a.seed == b.seed
