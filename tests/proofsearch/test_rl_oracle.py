"""The exported oracle: Tamarin's I/O contract, driven through the engine's `O` hook."""

from __future__ import annotations

import os
import subprocess

import pytest

from quietrl.proofsearch import example_path, parse_file
from quietrl.proofsearch.evaluate import RankerOracle
from quietrl.proofsearch.expert import Learner
from quietrl.proofsearch.oracle import Oracle
from quietrl.proofsearch.oracle_export import export_oracle, load_learner, rank, start_ranker
from quietrl.proofsearch.prover import prove, script


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    learner = Learner()
    d = tmp_path_factory.mktemp("oracle")
    path = export_oracle(learner, d, idle_s=120, start_wait_s=5)
    proc = start_ranker(d, idle_s=120)
    yield learner, d, path
    proc.terminate()
    proc.wait(timeout=30)


def test_script_is_stdlib_only_and_executable(exported):
    _, _, path = exported
    text = path.read_text()
    assert text.startswith("#!") and os.access(path, os.X_OK)
    imports = {w for line in text.splitlines() if line.startswith("import ") for w in line[7:].split(", ")}
    assert imports <= {"json", "os", "socket", "subprocess", "sys", "time"}


def test_oracle_io_contract(exported):
    learner, _, path = exported
    goals = ["!KU( h(~k) ) @ #vk", "Client_1( S, k ) ▶₀ #i", "(#i < #j)  ∥ (#j < #i)"]
    stdin = "".join(f"{i}: {g}\n" for i, g in enumerate(goals)) + "garbage line ∀∀\n"
    out = subprocess.run([str(path), "some_lemma"], input=stdin.encode(), capture_output=True, timeout=120)
    assert out.returncode == 0
    got = [int(x) for x in out.stdout.decode().split()]
    assert got == rank(learner, goals) and sorted(got) == [0, 1, 2]
    empty = subprocess.run([str(path), "x"], input=b"", capture_output=True, timeout=60)
    assert empty.returncode == 0 and empty.stdout == b""


def test_exported_oracle_gives_the_in_process_proof(exported):
    learner, _, path = exported
    theory = parse_file(example_path("client_server"))
    lem = theory.lemma("key_secret")
    inproc = prove(theory, lem, 200, "O", oracle=RankerOracle(learner))
    external = prove(theory, lem, 200, "O", oracle=Oracle(str(path)))
    assert script(external.tree) == script(inproc.tree)
    assert external.verdict == inproc.verdict and external.steps == inproc.steps


def test_failing_oracle_prints_nothing_and_exits_zero(exported, tmp_path):
    learner = exported[0]
    path = export_oracle(learner, tmp_path, idle_s=5, start_wait_s=2)
    (tmp_path / "model" / "params.msgpack").write_bytes(b"corrupt")  # the ranker cannot start
    out = subprocess.run([str(path), "lemma"], input=b"0: a\n1: b\n", capture_output=True, timeout=60)
    assert out.returncode == 0 and out.stdout == b""
    with pytest.raises(Exception):
        load_learner(tmp_path)


def test_export_keeps_the_rank_prior(tmp_path):
    from quietrl.proofsearch.expert import ExpertConfig
    from quietrl.proofsearch.networks import NetConfig

    learner = Learner(NetConfig(), ExpertConfig(rank_prior=0.5))
    export_oracle(learner, tmp_path, idle_s=5, start_wait_s=2)
    loaded = load_learner(tmp_path)
    assert loaded.cfg.rank_prior == 0.5
    goals = ["!KU( ~k ) @ #vk", "Client_1( S, k ) ▶₀ #i", "(#i < #j)  ∥  (#j < #i)"]
    assert rank(loaded, goals) == rank(learner, goals)
    assert not loaded.cfg.tie_goalless  # the default, kept
    export_oracle(Learner(NetConfig(), ExpertConfig(tie_goalless=True)), tmp_path, idle_s=5, start_wait_s=2)
    assert load_learner(tmp_path).cfg.tie_goalless
