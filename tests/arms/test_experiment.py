"""The reproduction writes its stages through the RunDir API and skips finished stages on resume."""

import json

import pytest

from quietrl.arms import experiment
from quietrl.core.runs import RunDir


@pytest.mark.slow
def test_tiny_reproduce_and_resume(tmp_path, monkeypatch):
    tiny = experiment.StudyConfig(methods=("sparse", "arms"), sparsities=("S0",), agents=(2,), grids=(5,), seeds=1,
                                  agent_steps=8 * 2 * 32 * 20, num_envs=8, horizon=32, iters_per_chunk=10)
    monkeypatch.setattr(experiment.StudyConfig, "quick", staticmethod(lambda: tiny))
    run = RunDir.create(tmp_path / "run", {"quick": True}, seed=0)
    experiment.reproduce(run, quick=True, seed=0, executor=None)
    for name in ("equilibria", "compare", "oscillation"):
        stage = run.stage(sub="arms", experiment=name, seed=0)
        assert stage.done
        rows = json.loads((stage.path / "summary.json").read_text())["rows"]
        assert rows
    eq_rows = {r["quantity"]: r["ours"] for r in run.stage(sub="arms", experiment="equilibria", seed=0).rows()
               for r in [r.to_dict()]}
    assert eq_rows["swap H=4 γ=0.9 [follow] sparse: #pure NE"] == 16036
    assert (run.stage(sub="arms", experiment="compare", seed=0).figures_dir / "heldout_success.png").exists()
    before = (run.path / "log.txt").read_text()
    experiment.reproduce(RunDir.open(run.path), quick=True, seed=0, executor=None)  # everything done: no new stage
    assert "started" not in (run.path / "log.txt").read_text()[len(before):]
