"""The study's bookkeeping: intervals over seeds, the per-method table, config checks, resume guard."""

import numpy as np
import pytest

from quietrl.core.errors import ConfigError
from quietrl.core.runs import RunDir
from quietrl.leo.experiment import StudyConfig, _interval, method_config, summarise


def test_interval_is_a_95_percent_t_interval():
    mean, ci = _interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 / np.sqrt(3)  # t_{0.975, 2} * s / sqrt(n), s = 1
    assert mean == pytest.approx(2.0)
    assert ci == pytest.approx((2.0 - half, 2.0 + half))
    assert _interval([0.4]) == (0.4, None)


def _result(algo, lr, seed, live, test):
    return dict(algo=algo, lr=lr, seed=seed, k=4, test=test, live=live, seen=1.0, sps=10.0, steps=[1, 2],
                sr=[live / 2, live], per_goal_live=[live] * 4, per_goal_test=[1, 0, 1, 0])


def test_summary_groups_seeds_per_method_and_lr(tmp_path):
    run = RunDir.create(tmp_path / "run", {"t": 1}, 0)
    stage = run.stage(sub="leo", experiment="gridworld_summary", seed=0)
    results = [_result("leo", 1e-3, s, live, test) for s, live, test in ((0, 0.5, 0.4), (1, 0.7, 0.6))]
    results += [_result("pqn", 1e-3, 0, 0.9, 0.8), _result("pqn", 2e-4, 0, 0.2, 0.1)]
    with stage.running():
        table = summarise(stage, results, "test", "gridworld", cite=False)
    by = {(t["algo"], t["lr"]): t for t in table}
    assert set(by) == {("leo", 1e-3), ("pqn", 1e-3), ("pqn", 2e-4)}
    assert by[("leo", 1e-3)]["live"] == pytest.approx(0.6) and by[("leo", 1e-3)]["seeds"] == [0, 1]
    assert by[("leo", 1e-3)]["live_ci"] is not None and by[("pqn", 1e-3)]["live_ci"] is None
    assert (stage.figures_dir / "success_vs_steps.png").exists()
    # LEO - PQN compares each method at its best learning rate: 0.5 - 0.8.
    import json

    rows = json.loads((stage.path / "summary.json").read_text())["rows"]
    diff = [r for r in rows if r["quantity"].startswith("greedy test LEO - PQN")]
    assert diff and diff[0]["ours"] == pytest.approx(-0.3)


def test_study_config_checks_algos_and_lrs():
    with pytest.raises(ConfigError, match="algos"):
        StudyConfig(algos=("leo", "sac"))
    with pytest.raises(ConfigError, match="lrs"):
        StudyConfig(lrs=())


def test_full_study_configs_are_valid_for_every_method():
    study = StudyConfig.full()
    assert study.lrs == (2e-4, 1e-3) and study.num_seeds == 3 and study.total_timesteps == 2_000_000
    for algo in study.algos:
        for env in ("gridworld", "craftax-classic"):
            cfg = method_config(study, algo, 2e-4, env)
            assert cfg.lr == 2e-4 and cfg.num_chunks >= 1 and cfg.trunk == "256x2"
    assert method_config(study, "leo", 1e-3, "craftax-classic").num_envs == 64


def test_compare_refuses_a_run_dir_of_another_config(tmp_path, capsys):
    from quietrl.cli import main

    RunDir.create(tmp_path / "r", {"leo_compare": {"algos": ["leo"]}}, 0)
    with pytest.raises(SystemExit) as e:
        main(["leo", "compare", "--out", str(tmp_path / "r")])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "holds a run of another config" in err and "\n" not in err
