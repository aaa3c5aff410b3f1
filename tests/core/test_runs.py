import json

import pytest

from quietrl.core.errors import UserError
from quietrl.core.runs import RunDir, _cut_to_complete_lines
from quietrl.core.summary import Row


def test_create_writes_config_versions_log(tmp_path):
    run = RunDir.create(tmp_path / "r", {"quick": True}, seed=5)
    cfg = json.loads((run.path / "config.json").read_text())
    assert cfg["seed"] == 5 and cfg["quick"] is True
    assert "jax" in json.loads((run.path / "versions.json").read_text())
    assert "run started: seed=5" in (run.path / "log.txt").read_text()
    assert RunDir.open(run.path).seed == 5


def test_create_refuses_existing_run_and_files(tmp_path):
    run = RunDir.create(tmp_path / "r", {}, seed=0)
    with pytest.raises(UserError, match="already holds a run"):
        RunDir.create(run.path, {}, seed=0)
    (tmp_path / "f").write_text("x")
    with pytest.raises(UserError, match="is a file, not a directory"):
        RunDir.create(tmp_path / "f" / "r", {}, seed=0)
    with pytest.raises(UserError, match="not a quietrl run directory"):
        RunDir.open(tmp_path)


def test_stage_lifecycle_success(tmp_path):
    run = RunDir.create(tmp_path / "r", {}, seed=0)
    st = run.stage("leo", "speed", 1)
    assert not st.done
    with st.running():
        st.log_metrics({"step": 1, "loss": 0.5})
        st.write_summary([Row("speed-up", 120.0, paper=250.0, source="arXiv:2605.23551, Fig. 1")])
    assert st.done
    s = st.summary()
    assert s["status"] == "done" and s["wall_s"] >= 0
    assert st.rows()[0].paper == 250.0
    assert st.read_metrics() == [{"step": 1, "loss": 0.5}]
    assert [x.name for x in run.stages()] == ["leo/speed/seed1"]
    with pytest.raises(RuntimeError):
        with st.running():
            pass


def test_stage_failure_is_recorded_and_rerun_cleans_partial_outputs(tmp_path):
    run = RunDir.create(tmp_path / "r", {}, seed=0)
    st = run.stage("arms", "eq", 0)
    with pytest.raises(ValueError):
        with st.running():
            st.log_metrics({"a": 1})
            (st.path / "partial.csv").write_text("half")
            raise ValueError("boom")
    s = st.summary()
    assert s["status"] == "failed" and "ValueError: boom" in s["error"]
    assert not st.done
    with st.running():
        assert not (st.path / "partial.csv").exists()
        st.log_metrics({"a": 1})  # already present: replayed, not duplicated
        st.log_metrics({"a": 2})
    assert st.read_metrics() == [{"a": 1}, {"a": 2}]


def test_cut_to_complete_lines(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text('{"a": 1}\n{"a": 2}\n{"a": 3')
    assert _cut_to_complete_lines(p) == 2
    assert p.read_text() == '{"a": 1}\n{"a": 2}\n'


def test_row_needs_source_for_paper_figure():
    with pytest.raises(ValueError, match="needs its source"):
        Row("x", 1.0, paper=2.0)
