"""The resumable benchmark runner: the equal execution budget, per-record resume, the CPU safety stop,
medians over seeds and two worker processes through the core sweep executor."""

from __future__ import annotations

import json
import time

import pytest

from quietrl.core.errors import ConfigError
from quietrl.proofsearch import example_path
from quietrl.proofsearch.evaluate import (
    BenchJob,
    EvalConfig,
    _cpu_limited,
    _CPULimit,
    lemma_budget,
    load_records,
    median_records,
    record_path,
    run_job,
    run_jobs,
    summarise,
)
from quietrl.proofsearch.mcts import MCTSConfig

SMALL = MCTSConfig(searches=2, proofs=1)


def cfg(**kw) -> EvalConfig:
    base = dict(arms=("s", "c", "mcts"), budget="executions", exec_factor=3.0, exec_min=40, max_steps=200,
                max_cpu_s=60.0, mcts=SMALL)
    return EvalConfig(**{**base, **kw})


def test_execution_budget_rule_known_answers():
    c = cfg()
    assert lemma_budget({"proved": True, "size": 5, "wall_s": 1.0}, c) == (60.0, 40)       # floor
    assert lemma_budget({"proved": True, "size": 31, "wall_s": 1.0}, c) == (60.0, 93)      # 3 x size
    # a found trace: the cut proof is short, the methods s executed to find it count
    assert lemma_budget({"proved": True, "size": 9, "executions": 85, "wall_s": 1.0}, c) == (60.0, 255)
    assert lemma_budget({"proved": True, "size": 31, "executions": 20, "wall_s": 1.0}, c) == (60.0, 93)
    assert lemma_budget({"proved": False, "size": None, "wall_s": 9.0}, c) == (60.0, 200)  # what s exhausted
    # the CPU safety stop: 10 x the CPU seconds of s where that is more (s slow), never for a failed s
    assert lemma_budget({"proved": True, "size": 31, "cpu_s": 23.0, "wall_s": 30.0}, c) == (230.0, 93)
    assert lemma_budget({"proved": True, "size": 31, "cpu_s": 2.0, "wall_s": 3.0}, c) == (60.0, 93)
    assert lemma_budget({"proved": False, "size": None, "cpu_s": 59.0, "wall_s": 60.0}, c) == (60.0, 200)
    assert lemma_budget({"proved": True, "size": 31, "cpu_s": 23.0, "wall_s": 30.0},
                        cfg(max_cpu_s=None)) == (None, 93)
    t = EvalConfig(budget="time", min_budget_s=60.0)
    assert lemma_budget({"proved": True, "size": 5, "wall_s": 7.0}, t) == (70.0, None)
    assert lemma_budget({"proved": True, "size": 5, "wall_s": 1.0}, t) == (60.0, None)
    with pytest.raises(ConfigError, match="budget"):
        EvalConfig(budget="steps")
    with pytest.raises(ConfigError, match="max_cpu_s"):
        EvalConfig(max_cpu_s=0)
    for bad in (-0.1, float("nan")):
        with pytest.raises(ConfigError, match="net_rank_lambda"):
            EvalConfig(net_rank_lambda=bad)
        with pytest.raises(ConfigError, match="net_scout_rank_lambda"):
            EvalConfig(net_scout_rank_lambda=bad)
    with pytest.raises(ConfigError, match="seed"):
        BenchJob("mcts", "x.spthy", "out", c, seeds=(0, 1))
    with pytest.raises(ConfigError, match="kind"):
        BenchJob("nope", "x.spthy", "out", c)


def _spin(start: float, seconds: float = 5.0) -> str:
    while time.process_time() - start < seconds:
        pass
    return "finished"


def _assert_stopped_early(fn) -> None:
    t0 = time.process_time()
    with pytest.raises(_CPULimit):
        _cpu_limited(fn, 0.3)
    assert time.process_time() - t0 < 2.0


def test_network_arms_take_the_net_rank_weights():
    from quietrl.proofsearch.evaluate import _net_mcts

    base = MCTSConfig(rank_lambda=0.5)
    got = _net_mcts(base, EvalConfig(net_rank_lambda=0.3, net_scout_rank_lambda=0.7))
    assert (got.rank_lambda, got.scout_rank_lambda) == (0.3, 0.7)
    got = _net_mcts(base, EvalConfig(net_rank_lambda=0.3, net_scout_rank_lambda=None))
    assert (got.rank_lambda, got.scout_rank_lambda) == (0.3, None)
    assert _net_mcts(base, EvalConfig()).scout_rank_lambda == 0.5  # the default: the first proof led by the rank


def test_cpu_limit_interrupts_a_busy_call_and_lets_a_short_one_finish():
    _assert_stopped_early(lambda: _spin(time.process_time()))
    assert _cpu_limited(lambda: 7, 0.3) == 7
    time.sleep(0.05)  # the timer is off again: no stray SIGPROF after the call
    assert _cpu_limited(lambda: 8, None) == 8


def test_jobs_write_one_record_per_lemma_arm_seed_and_resume(tmp_path):
    path = str(example_path("client_server"))
    c = cfg()
    greedy = BenchJob("greedy", path, str(tmp_path), c, seeds=(0, 1))
    mcts = BenchJob("mcts", path, str(tmp_path), c, seeds=(0,), lemmas=("key_secret", "setup_reachable"))
    with pytest.raises(ConfigError, match="no s record"):
        run_job(mcts)  # the budgets come from s: the greedy job runs first
    assert run_job(greedy)["ran"] == 3
    first = run_job(mcts)
    assert first["ran"] == 2 and first["done"] == 0
    recs = load_records(tmp_path)
    assert sorted({(r["arm"], r["seed"]) for r in recs}) == [("c", 0), ("c", 1), ("mcts", 0), ("s", 0), ("s", 1)]
    by = {(r["lemma"], r["arm"], r["seed"]): r for r in recs}
    for lem in ("key_secret", "setup_reachable"):
        s, m = by[(lem, "s", 0)], by[(lem, "mcts", 0)]
        assert s["proved"] and m["proved"] and m["size"] <= s["size"]
        # the budget is checked between simulations; one expansion executes up to expand_top_n methods
        assert m["budget_exec"] == max(3 * s["size"], 40) and m["executions"] <= m["budget_exec"] + SMALL.expand_top_n
        assert by[(lem, "c", 0)]["budget_exec"] == m["budget_exec"]  # equal budget across arms
    # resume: nothing left to do; then one record lost (or torn by a crash) is redone alone
    again = run_job(mcts)
    assert again["ran"] == 0 and again["done"] == 2
    lost = record_path(tmp_path, path, "setup_reachable", "mcts", 0)
    lost.write_text("{torn")
    redo = run_job(mcts)
    assert redo["ran"] == 1 and redo["done"] == 1
    assert json.loads(lost.read_text())["proved"]
    assert run_job(greedy)["ran"] == 0


def test_arms_take_the_cpu_stop_from_the_s_record(tmp_path):
    path = str(example_path("client_server"))
    c = cfg()
    run_job(BenchJob("greedy", path, str(tmp_path), c, seeds=(0,), lemmas=("key_secret",)))
    sp = record_path(tmp_path, path, "key_secret", "s", 0)
    s = json.loads(sp.read_text())
    assert s["proved"] and s["budget_s"] == 60.0
    sp.write_text(json.dumps(dict(s, cpu_s=30.0)))  # as if s had been slow: 10 x 30 CPU-s
    run_job(BenchJob("mcts", path, str(tmp_path), c, seeds=(0,), lemmas=("key_secret",)))
    assert json.loads(record_path(tmp_path, path, "key_secret", "mcts", 0).read_text())["budget_s"] == 300.0


def test_median_over_seeds_and_summary_with_missing_s():
    def r(arm, seed, size, first=None):
        return {"theory": "T", "lemma": "a", "arm": arm, "seed": seed, "proved": size is not None, "size": size,
                "executions_to_first_proof": first, "wall_s": float(seed + 1), "verdict": "verified"}

    recs = [r("mcts", 0, 10, 4), r("mcts", 1, None), r("mcts", 2, 14, 8),
            r("s", 0, 20), r("s", 1, 20), r("s", 2, 20)]
    med = {m["arm"]: m for m in median_records(recs)}
    assert med["mcts"]["proved"] and med["mcts"]["proved_seeds"] == 2 and med["mcts"]["seeds"] == 3
    assert med["mcts"]["size"] == 12 and med["mcts"]["executions_to_first_proof"] == 6 and med["mcts"]["wall_s"] == 2.0
    one = median_records([r("mcts", 0, 10), r("mcts", 1, None), r("mcts", 2, None)])[0]
    assert not one["proved"] and one["size"] is None
    # a partial run: a record whose s is not there yet is left out of the ratios, not a crash
    summ = summarise([r("mcts", 0, 10), r("s", 0, 20), dict(r("mcts", 0, 10), lemma="b")])
    assert summ["arms"]["mcts"]["size_ratio_vs_s"] == pytest.approx(0.5)


def test_two_worker_processes_through_the_sweep_executor(tmp_path):
    c = cfg(arms=("s", "c"))
    jobs = [BenchJob("greedy", str(example_path(n)), str(tmp_path), c, seeds=(0,))
            for n in ("client_server", "hard_destructor")]
    out = run_jobs(jobs, workers=2)
    assert [o["theory"] for o in out] == [j.theory_path for j in jobs] and all(o["ran"] >= 2 for o in out)
    recs = load_records(tmp_path)
    assert {r["theory"] for r in recs} == {"ClientServer", "HardDestructor"}
    # the same jobs in this process find every record and run nothing
    assert all(o["ran"] == 0 for o in run_jobs(jobs, workers=1))


@pytest.mark.slow
def test_leave_one_family_out_starts_from_the_pretrained_ranker_and_resumes(tmp_path):
    import pickle

    from quietrl.proofsearch.evaluate import _pretrain_path

    c = cfg(arms=("s", "mcts", "mcts_net", "oracle_net"), pretrain_exec=30)
    held, other = str(example_path("client_server")), str(example_path("hard_destructor"))
    run_job(BenchJob("greedy", held, str(tmp_path), c))
    lofo = BenchJob("net", held, str(tmp_path), c, fold="own_a", pretrain=(other,), lemmas=("key_secret",))
    with pytest.raises(ConfigError, match="pretrain"):
        run_job(lofo)  # its ranker must exist first
    pre = run_job(BenchJob("pretrain", "", str(tmp_path), c, fold="own_a", pretrain=(other,)))
    assert pre["ran"] == 2
    state = pickle.loads(_pretrain_path(str(tmp_path), "own_a", 0).read_bytes())
    assert state["buffer"].added > 0  # it learnt from the other family's subproofs
    assert run_job(lofo)["ran"] == 1
    by = {r["arm"]: r for r in load_records(tmp_path) if r["lemma"] == "key_secret"}
    assert {"mcts_lofo", "oracle_lofo"} <= set(by) and by["mcts_lofo"]["proved"]
    assert run_job(lofo)["ran"] == 0


def test_cpu_limit_survives_a_swallowed_raise():
    # Python ignores an exception raised inside some callbacks (JAX's GC callback did it in a benchmark
    # run); the timer must fire again rather than let the call run unbounded.
    def swallows_first():
        t = time.process_time()
        try:
            _spin(t)
        except _CPULimit:
            pass
        return _spin(t)

    _assert_stopped_early(swallows_first)
    time.sleep(0.05)
    assert _cpu_limited(lambda: 9, 0.3) == 9
