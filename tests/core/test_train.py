"""Chunked training: a stage killed mid-way and resumed ends with the same files as an uninterrupted one."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

JOB = Path(__file__).with_name("_resume_job.py")


def _run(path, kill_after):
    return subprocess.run([sys.executable, str(JOB), str(path), str(kill_after)], capture_output=True, text=True)


def _snapshot(run_dir: Path):
    stage = run_dir / "demo" / "regression" / "seed0"
    files = sorted(str(p.relative_to(stage)) for p in stage.rglob("*") if p.is_file())
    metrics = [json.loads(l) for l in (stage / "metrics.jsonl").read_text().splitlines()]
    for m in metrics:
        m.pop("wall_s", None)
    summary = json.loads((stage / "summary.json").read_text())
    summary.pop("wall_s")
    ckpt = stage / "checkpoints" / "train"
    meta = json.loads((ckpt / "meta.json").read_text())
    state = (ckpt / meta["state_file"]).read_bytes()
    return files, metrics, summary, meta["step"], state


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    d = tmp_path_factory.mktemp("full") / "run"
    r = _run(d, 0)
    assert r.returncode == 0, r.stderr
    return _snapshot(d)


@pytest.mark.parametrize("kill_after", [1, 4])
def test_killed_and_resumed_equals_uninterrupted(tmp_path, uninterrupted, kill_after):
    d = tmp_path / "run"
    r = _run(d, kill_after)
    assert r.returncode == -9, r.stderr
    stage = d / "demo" / "regression" / "seed0"
    assert not (stage / "DONE").exists()
    # a torn last line, as a kill during a write would leave it
    with open(stage / "metrics.jsonl", "a") as f:
        f.write('{"series": "train", "chu')
    r = _run(d, 0)
    assert r.returncode == 0, r.stderr
    assert _snapshot(d) == uninterrupted


def test_uninterrupted_run_learns(uninterrupted):
    files, metrics, summary, step, _ = uninterrupted
    assert step == 6
    assert {"DONE", "metrics.jsonl", "summary.json", "checkpoints/train/meta.json"} <= set(files)
    losses = [m["loss"] for m in metrics if m.get("series") == "train"]
    assert [m["chunk"] for m in metrics if m.get("series") == "train"] == [1, 2, 3, 4, 5, 6]
    assert losses[-1] < losses[0]
    assert summary["status"] == "done"
