import json

import numpy as np
import pytest

from quietrl.core.runs import RunDir
from quietrl.goalgen import experiment
from quietrl.goalgen.experiment import StudyConfig, _load_groups, run_training

# Two agents (a 1-stage and a 2-stage pipeline) in one group, one PPO update per chunk: 4 chunks.
TINY = StudyConfig(grid=4, obs_mode="symbolic", families=("A", "C"), per_family=1, seeds=1,
                   updates_per_stage=2, agents_per_group=2, chunk_updates=1, n_envs=8, n_steps=8, n_epochs=1,
                   success_episodes=16)


def _train(path, interrupt_after=None, monkeypatch=None):
    run = RunDir.open(path) if (path / "config.json").exists() else RunDir.create(path, {}, 0)
    stage = run.stage("goalgen", "train", 0)
    if interrupt_after is not None:
        real = experiment._env_and_trainer

        def patched(*args):
            env, t = real(*args)
            calls = {"n": 0}

            def state_chunk(*a):
                calls["n"] += 1
                if calls["n"] > interrupt_after:
                    raise KeyboardInterrupt("simulated interruption")
                return t.state_chunk(*a)
            return env, t._replace(state_chunk=state_chunk)
        monkeypatch.setattr(experiment, "_env_and_trainer", patched)
    try:
        with stage.running():
            run_training(stage, TINY, 0)
    finally:
        monkeypatch and monkeypatch.undo()
    return stage


def test_training_resumes_from_core_checkpoints(tmp_path, monkeypatch):
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "a", interrupt_after=2, monkeypatch=monkeypatch)
    ckpt = tmp_path / "a" / "goalgen" / "train" / "seed0" / "checkpoints" / "group000"
    meta = json.loads((ckpt / "meta.json").read_text())
    assert meta["kind"] == "goalgen.population" and meta["step"] == 2
    resumed = _train(tmp_path / "a")
    straight = _train(tmp_path / "b")
    assert resumed.done and straight.done
    (ga, ba), = _load_groups(resumed, TINY, 0)
    (gb, bb), = _load_groups(straight, TINY, 0)
    assert ga == gb
    np.testing.assert_array_equal(ba["success"], bb["success"])
    assert np.isfinite(ba["success"][1]).all() and np.isnan(ba["success"][0, 2:]).all()
    for x, y in zip(_leaves(ba["params"]), _leaves(bb["params"])):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=1e-7)
    # Last-stage success: one value per agent, a fraction of 16 episodes, repeatable (fixed key).
    succ = experiment.last_stage_success([(ga, ba)], TINY, 0)
    assert succ.shape == (2,) and np.all((succ >= 0) & (succ <= 1)) and np.all((succ * 16) % 1 == 0)
    np.testing.assert_array_equal(succ, experiment.last_stage_success([(gb, bb)], TINY, 0))
    rows = experiment.success_breakdown([(ga, ba)], succ)
    assert [r["family"] for r in rows] == ["A", "C"] and all(r["agents"] == 1 for r in rows)
    # The metrics log of the resumed run has one line per chunk, as the uninterrupted one.
    assert [m["chunk"] for m in resumed.read_metrics()] == [m["chunk"] for m in straight.read_metrics()] \
        == [1, 2, 3, 4]


def _leaves(tree):
    import jax
    return jax.tree.leaves(tree)


def test_changed_training_config_is_a_one_line_error(tmp_path):
    from quietrl.core.errors import UserError
    stage = _train(tmp_path / "c")
    other = StudyConfig(**{**TINY.__dict__, "updates_per_stage": 3})
    with pytest.raises(UserError, match="another config|shapes differ"):
        _load_groups(stage, other, 0)


def test_closing_tables_report_every_split_and_the_seed_figures():
    ci = {"mean": 0.7, "lo": 0.65, "hi": 0.75}
    row = {"kl3": ci, "dir_acc": ci, "brier": ci}
    results = {s: {"rows": {"lpg": row, "uniform": row}, "lpg_minus_uniform_kl": ci, "n_fits": 4}
               for s in ("cv4", "two_to_three")}
    pers = [{"share": 0.15, "p_g1": 0.2, "stage1_success_at_switch": 0.5, "lpg_fixed": 0.4,
             "lpg_proportional": 0.3}]
    text = experiment.closing_tables(results, {}, {2: [0.2]}, {}, {"colour_fraction": 0.3, "episodes": 10},
                                     pers, np.array([0.9, 0.5]), 8, 1.0)
    assert "## cv4" in text and "## two_to_three" in text and "| lpg | 0.700 [0.650, 0.750]" in text
    assert "0.82 lies outside its interval (not confirmed)" in text     # 0.82 not in [0.65, 0.75]
    assert "first 15% of training" in text and "0.500 reach >= 80%" in text
