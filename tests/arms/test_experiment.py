"""The reproduction writes its stages through the RunDir API and skips finished stages on resume."""

import json

import numpy as np
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


def test_sample_efficiency_table_medians_and_censoring():
    study = experiment.StudyConfig(methods=("sparse", "arms"), sparsities=("S0",), agents=(2,), grids=(8,), seeds=3,
                                   agent_steps=4000, num_envs=8, horizon=32, iters_per_chunk=10)
    steps = np.array([1000.0, 2000.0, 3000.0, 4000.0])
    # seeds: reach 0.5 at 1k/2k/3k; 0.8 at 2k, 4k, never
    sparse = np.array([[0.5, 0.1, 0.0], [0.9, 0.6, 0.2], [0.9, 0.7, 0.5], [0.9, 0.85, 0.6]])
    never = np.zeros((4, 3))
    table = experiment.sample_efficiency_table(
        {"G8_n2_sparse": {"agent_steps": steps, "heldout_isr": sparse},
         "G8_n2_arms": {"agent_steps": steps, "heldout_isr": never}}, study)
    row = [line for line in table.splitlines() if line.startswith("| 8x8 | 2 | S0 |")][0]
    cells = [c.strip() for c in row.strip("|").split("|")][3:]
    assert cells[0] == "2k / 4k (1 cens.); 0.78"
    assert cells[1] == "> budget (3 cens.) / > budget (3 cens.); 0.00"
