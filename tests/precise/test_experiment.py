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


def test_ablation_variants_cover_the_spec():
    from quietrl.precise.experiment import ablation_variants

    specs = ablation_variants(StudyConfig())
    labels = [s[0] for s in specs]
    assert len(labels) == len(set(labels))
    assert {g.num_steps for *_, g in specs} == {6, 10, 20, 30}
    assert any(g.lam == 0 for *_, g in specs) and any(not g.rationorm for *_, g in specs)
    assert any(g.lora_rank == 0 for *_, g in specs)
    assert ("abl_precise_eta0.7", "precise", 0.7) == specs[0][:3]  # Flow-GRPO's g, solved exactly
    assert not quick_config().digits and not quick_config().ablations and StudyConfig().digits


def test_run_jobs_goes_through_the_executor_and_reports_failures():
    import pickle

    from quietrl.core.sweep import JobResult
    from quietrl.precise import experiment

    pickle.dumps(experiment.finetune_job)  # executors pickle the job function by reference

    class Recorder:
        def __init__(self, ok):
            self.ok, self.seen = ok, None

        def map(self, fn, items, desc=""):
            self.seen = (fn, list(items))
            return [JobResult(i, it, self.ok, value=i if self.ok else None, error=None if self.ok else "boom")
                    for i, it in enumerate(items)]

    items = [{"arm": "precise", "seed": 0}, {"arm": "cps", "seed": 1}]
    ex = Recorder(True)
    assert experiment.run_jobs(items, ex) == [0, 1] and ex.seen[0] is experiment.finetune_job
    with pytest.raises(RuntimeError, match="arm precise seed 0: boom"):
        experiment.run_jobs(items, Recorder(False))


@pytest.mark.slow
@pytest.mark.timeout(3600)  # about 30 compiled programs (every ablation shape): long on a loaded machine
def test_full_study_stages_tiny(tmp_path):
    """Every stage of the full run (digits study and ablations included) on tiny configs, then resume."""
    from quietrl.precise.types import digits_flow_config

    cfg = apply_study_overrides(StudyConfig(), [
        "flow.steps=200", "flow.chunk=100", "grpo.iterations=10", "grpo.eval_noises=4", "seeds=1",
        "arms=flow_grpo,precise", "s3_steps=4", "s3_samples=500", "s1_steps=4", "digits_seeds=1",
        "digits_arms=cps,precise", "digits_grpo.iterations=10", "digits_grpo.eval_noises=4",
        "ablation_iterations=10", "ablation_seeds=1"])
    import dataclasses
    cfg = dataclasses.replace(cfg, digits_flow=digits_flow_config(steps=200, hidden=64, depth=2))
    run = RunDir.create(tmp_path / "run", {"full": True}, seed=0)
    from quietrl.precise.experiment import run_study

    run_study(run, cfg, seed=0)
    base = tmp_path / "run" / "precise"
    for stage in ("digits_pretrain", "digits_compare", "ablations", "compare"):
        assert json.loads((base / stage / "seed0" / "summary.json").read_text())["status"] == "done", stage
    assert "abl_lam0_precise" in (base / "ablations" / "seed0" / "tables.md").read_text()
    rows = json.loads((base / "digits_compare" / "seed0" / "summary.json").read_text())["rows"]
    assert any("SVM accuracy after GRPO" in r["quantity"] for r in rows)
    t0 = time.perf_counter()
    run_study(RunDir.open(tmp_path / "run"), cfg, seed=0)  # every stage done: nothing reruns
    assert time.perf_counter() - t0 < 60
