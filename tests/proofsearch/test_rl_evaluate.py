"""The evaluation harness: summary arithmetic on known records, a small real run, the CLI, the RL stage."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from quietrl.core.errors import ConfigError
from quietrl.proofsearch import example_path, parse_file
from quietrl.proofsearch.evaluate import EvalConfig, evaluate_theory, summarise, table
from quietrl.proofsearch.mcts import MCTSConfig


def rec(lemma, arm, size, first=None):
    return {"theory": "T", "lemma": lemma, "arm": arm, "seed": 0, "proved": size is not None, "size": size,
            "executions_to_first_proof": first, "wall_s": 1.0, "verdict": "verified" if size else "analysis incomplete"}


def test_summary_ratios_known_answer():
    records = [rec("a", "s", 40), rec("a", "mcts", 20, 10), rec("a", "mcts_net", 10, 5),
               rec("b", "s", 10), rec("b", "mcts", 10, 4), rec("b", "mcts_net", 40, 8),
               rec("c", "s", None), rec("c", "mcts", None), rec("c", "mcts_net", 7, 3)]
    summ = summarise(records)
    net = summ["arms"]["mcts_net"]
    assert net["proved"] == 3 and net["extra_vs_s"] == 1 and net["missing_vs_s"] == 0
    assert net["size_ratio_vs_s"] == pytest.approx(math.sqrt(10 / 40 * 40 / 10))
    assert net["size_ratio_vs_s_long"] == pytest.approx(0.25) and net["long_lemmas"] == 1
    assert summ["size_ratio_net_vs_mcts"] == pytest.approx(math.sqrt(0.5 * 4))
    assert summ["first_proof_executions_net_vs_mcts"] == pytest.approx(math.sqrt(0.5 * 2))
    assert "T/c" in table(records) and " - " in table(records).replace("-", " - ")


def test_config_validation():
    with pytest.raises(ConfigError, match="unknown"):
        EvalConfig(arms=("s", "zz"))
    with pytest.raises(ConfigError, match="include s"):
        EvalConfig(arms=("mcts",))
    with pytest.raises(ConfigError, match="mcts_net"):
        EvalConfig(arms=("s", "oracle_net"))


def test_small_run_reports_only_checked_proofs():
    theory = parse_file(example_path("client_server"))
    cfg = EvalConfig(arms=("s", "c", "mcts"), min_budget_s=20.0, max_steps=200,
                     mcts=MCTSConfig(max_executions=60, searches=2, proofs=1))
    records = evaluate_theory(theory, cfg, 0, ["key_secret"])
    by = {r["arm"]: r for r in records}
    assert set(by) == {"s", "c", "mcts"}
    assert all(r["proved"] and r["check"] == "" for r in records)
    assert by["mcts"]["size"] <= by["s"]["size"]
    assert by["mcts"]["executions_to_first_proof"] >= 1


def test_greedy_arms_report_only_proofs_that_pass_the_checker(monkeypatch):
    """s and c re-check their proofs: a proof the checker rejects is not counted (not proved, no size), and the
    record says why; the MCTS arm's own check (in search_lemma) is tested in test_rl_mcts."""
    from quietrl.proofsearch import evaluate
    from quietrl.proofsearch.proofcheck import CheckReport

    monkeypatch.setattr(evaluate, "check_proof", lambda theory, lemma, tree: CheckReport(False, ["planted"]))
    theory = parse_file(example_path("client_server"))
    cfg = EvalConfig(arms=("s", "c"), min_budget_s=20.0, max_steps=200)
    for r in evaluate_theory(theory, cfg, 0, ["key_secret"]):
        assert not r["proved"] and r["size"] is None and r["verdict"] == "analysis incomplete"
        assert r["check"] == "planted"


def test_cli_evaluate_and_unknown_lemma(tmp_path):
    from quietrl.proofsearch.cli import cli

    runner = CliRunner()
    r = runner.invoke(cli, ["evaluate", str(example_path("client_server")), "--lemma", "setup_reachable",
                            "--arms", "s,mcts", "--budget", "executions", "--exec-min", "40",
                            "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "summary.json").exists() and (tmp_path / "sizes.png").exists()
    recs = [json.loads(x) for x in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert {x["budget_exec"] for x in recs} == {40} and all(x["proved"] for x in recs)
    r = runner.invoke(cli, ["evaluate", str(example_path("client_server")), "--lemma", "setup_reachable",
                            "--arms", "s", "--budget", "executions", "--exec-factor", "50", "--exec-min", "40",
                            "--out", str(tmp_path / "x50")])
    assert r.exit_code == 0, r.output
    rec = json.loads((tmp_path / "x50" / "records.jsonl").read_text().splitlines()[0])
    assert rec["budget_exec"] >= 50 * rec["size"] > 40  # the factor reaches the budget: 50 x work of s
    r = runner.invoke(cli, ["evaluate", str(example_path("client_server")), "--exec-factor", "0"])
    assert r.exit_code == 2 and "--exec-factor" in r.output
    r = runner.invoke(cli, ["evaluate", str(example_path("client_server")), "--lemma", "nope", "--arms", "s"])
    assert r.exit_code != 0 and "unknown lemma" in str(r.exception)


def test_cli_evaluate_set_overrides_mcts_config(tmp_path):
    from quietrl.core.errors import ConfigError
    from quietrl.proofsearch.cli import cli

    runner = CliRunner()
    base = ["evaluate", str(example_path("client_server")), "--lemma", "setup_reachable", "--arms", "s,mcts",
            "--budget", "executions", "--exec-min", "40"]
    r = runner.invoke(cli, base + ["--set", "searches=1", "--set", "simulations=2", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    by = {x["arm"]: x for x in map(json.loads, (tmp_path / "records.jsonl").read_text().splitlines())}
    assert by["s"]["proved"] and not by["mcts"]["proved"]  # 2 simulations cannot reach the 5-step trace
    r = runner.invoke(cli, base + ["--set", "nope=1"])
    assert isinstance(r.exception, ConfigError) and "valid keys" in str(r.exception)
    r = runner.invoke(cli, base + ["--set", "expand_top_n=0"])
    assert isinstance(r.exception, ConfigError) and "expand_top_n" in str(r.exception)


@pytest.mark.slow
def test_quick_rl_stage_writes_rows(tmp_path):
    from quietrl.core.runs import RunDir
    from quietrl.proofsearch.experiment import _rl_stage

    run = RunDir.create(tmp_path / "run", config={}, seed=0)
    _rl_stage(run, quick=True, seed=0)
    stage = run.stage(sub="proofsearch", experiment="rl_search", seed=0)
    assert stage.done
    assert len(stage.read_metrics()) == 4 * 5
