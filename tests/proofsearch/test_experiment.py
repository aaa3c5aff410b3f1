"""The quick reproduction: parser-slice stage written through the RunDir API, resumable, honest rows."""

from __future__ import annotations

import json

from quietrl.core.runs import RunDir
from quietrl.proofsearch.examples import example_names
from quietrl.proofsearch.experiment import reproduce


def test_quick_reproduce_writes_and_resumes(tmp_path):
    run = RunDir.create(tmp_path / "run", {"quick": True}, seed=0)
    reproduce(run, quick=True, seed=0, executor=None)
    stage = run.stage(sub="proofsearch", experiment="parser_slice", seed=0)
    assert stage.done
    metrics = stage.read_metrics()
    assert sorted(m["theory"] for m in metrics) == example_names()
    assert all(m["lemmas"] >= 1 and m["parse_s"] > 0 for m in metrics)
    rows = {r.quantity: r for r in stage.rows()}
    assert rows["parser slice: example theories parsed"].ours == len(example_names())
    verdicts = rows["lemma verdicts"]
    assert verdicts.ours.startswith("see the solver_slice") and verdicts.source.startswith("arXiv:2605.23643")
    assert not verdicts.comparable
    before = (stage.path / "summary.json").read_text()
    reproduce(run, quick=True, seed=0, executor=None)  # resume: the done stage is skipped
    assert (stage.path / "summary.json").read_text() == before
    assert json.loads(before)["extra"]["slice"].startswith("A")
    solver = run.stage(sub="proofsearch", experiment="solver_slice", seed=0)
    assert solver.done
    recs = solver.read_metrics()
    assert {r["verdict"] for r in recs} <= {"verified", "falsified - found trace", "falsified - no trace found",
                                            "analysis incomplete"}
    # The counter-loop mutant's attack is found and replayed; no original model is ever falsified.
    assert any(r["theory"] == "mutant_counter_loop_reuse_after_retire" and r["verdict"] == "falsified - found trace"
               for r in recs)
    assert not any(not r["theory"].startswith("mutant_") and r["verdict"].startswith("falsified") for r in recs)


def test_solver_study_stops_a_lemma_at_its_cpu_limit(monkeypatch):
    # hard_session_counter's lemmas need induction: s unfolds the loop without end, each step dearer than
    # the last; the full slice's CPU stop reports them incomplete instead of spinning on
    import quietrl.proofsearch.experiment as experiment

    monkeypatch.setattr(experiment, "example_names", lambda: ["hard_session_counter"])
    recs = experiment.solver_study(max_steps=100_000, cpu_s=0.5)
    assert [r["lemma"] for r in recs] == ["sent_after_open", "no_send_after_close"]
    assert all(r["verdict"] == "analysis incomplete" and r["reason"] == "stopped at 0.5 CPU-s" for r in recs)
