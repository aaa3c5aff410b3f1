"""The quick reproduction end to end (slow: about 2-3 minutes on 2 cores) and its resume."""
import json
import time

import jax
import pytest

from quietrl.core.runs import RunDir
from quietrl.precise.experiment import StudyConfig, apply_study_overrides, quick_config, reproduce


def test_quick_config_matches_issue():
    cfg = quick_config()
    assert cfg.arms == ("flow_grpo", "cps", "dance_grpo", "precise")
    assert cfg.seeds == 2 and cfg.grpo.iterations == 100 and cfg.grpo.num_steps == 10


def test_study_overrides_reach_parts():
    cfg = apply_study_overrides(StudyConfig(), ["seeds=1", "grpo.lr=1e-4", "flow.steps=1000", "flow.chunk=500"])
    assert cfg.seeds == 1 and cfg.grpo.lr == 1e-4 and cfg.flow.steps == 1000


@pytest.mark.slow
def test_quick_reproduction_and_resume(tmp_path):
    run = RunDir.create(tmp_path / "run", {"quick": True}, seed=0)
    t0 = time.perf_counter()
    reproduce(run, quick=True, seed=0, executor=None)
    wall = time.perf_counter() - t0
    assert wall < 240  # the budget is 3 minutes on an unloaded 2-core machine
    assert not jax.config.jax_enable_x64
    cmp = tmp_path / "run" / "precise" / "compare" / "seed0"
    rows = json.loads((cmp / "summary.json").read_text())["rows"]
    assert any(r["quantity"].startswith("saving") for r in rows)
    assert (cmp / "figures" / "reward_curves.png").exists()
    t0 = time.perf_counter()
    reproduce(RunDir.open(tmp_path / "run"), quick=True, seed=0, executor=None)  # every stage done
    assert time.perf_counter() - t0 < 30
