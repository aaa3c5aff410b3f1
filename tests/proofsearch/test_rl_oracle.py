"""The exported oracle: Tamarin's I/O contract, driven through the engine's `O` hook."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time

import pytest

from quietrl.core.errors import ConfigError
from quietrl.proofsearch import example_path, parse_file
from quietrl.proofsearch.evaluate import RankerOracle
from quietrl.proofsearch.expert import Learner
from quietrl.proofsearch.oracle import Oracle
from quietrl.proofsearch.oracle_export import MAX_TOTAL_S, export_oracle, load_learner, rank, start_ranker
from quietrl.proofsearch.prover import prove, script

GOALS = ["!KU( h(~k) ) @ #vk", "Client_1( S, k ) ▶₀ #i", "(#i < #j)  ∥ (#j < #i)"]
RANKER_FILES = ("ranker.port", "ranker.pid", "ranker.lock")


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
    stdin = "".join(f"{i}: {g}\n" for i, g in enumerate(GOALS)) + "garbage line ∀∀\n"
    out = subprocess.run([str(path), "some_lemma"], input=stdin.encode(), capture_output=True, timeout=120)
    assert out.returncode == 0
    got = [int(x) for x in out.stdout.decode().split()]
    assert got == rank(learner, GOALS) and sorted(got) == [0, 1, 2]
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


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie left for a non-reaping init counts as stopped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def test_script_starts_the_ranker_and_it_stops_when_idle(exported, tmp_path):
    """No ranker running: the first call starts one (and is answered by it), the second reuses it; after
    idle_s without a request the ranker exits and removes its port, pid and lock files."""
    learner = exported[0]
    path = export_oracle(learner, tmp_path, idle_s=3)  # the idle timeout is an export setting
    stdin = "".join(f"{i}: {g}\n" for i, g in enumerate(GOALS)).encode()
    pid = None
    try:
        assert not any((tmp_path / f).exists() for f in RANKER_FILES)
        first = subprocess.run([str(path), "lemma"], input=stdin, capture_output=True, timeout=60)
        pid = int((tmp_path / "ranker.pid").read_text())
        assert first.returncode == 0 and [int(x) for x in first.stdout.split()] == rank(learner, GOALS)
        assert _alive(pid)
        second = subprocess.run([str(path), "lemma"], input=stdin, capture_output=True, timeout=60)
        assert second.returncode == 0 and second.stdout == first.stdout
        assert int((tmp_path / "ranker.pid").read_text()) == pid  # the same ranker answered
        deadline = time.monotonic() + 15  # idle_s 3 s and the ranker checks twice a second
        while time.monotonic() < deadline and (_alive(pid) or any((tmp_path / f).exists() for f in RANKER_FILES)):
            time.sleep(0.2)
        assert not _alive(pid)
        assert [f for f in RANKER_FILES if (tmp_path / f).exists()] == []
    finally:
        if pid is None and (tmp_path / "ranker.pid").exists():
            pid = int((tmp_path / "ranker.pid").read_text())
        if pid is not None and _alive(pid):
            os.kill(pid, signal.SIGTERM)


def test_script_gives_up_before_the_engine_timeout(exported, tmp_path):
    """The script's worst case (start wait + one request) stays well below the engine's oracle timeout, and
    a ranker that accepts but never answers makes it print nothing and exit 0 within that time."""
    engine_timeout = Oracle.__dataclass_fields__["timeout_s"].default
    learner = exported[0]
    text = export_oracle(learner, tmp_path).read_text()  # the defaults
    consts = {k: float(v) for k, v in re.findall(r"^(START_WAIT_S|ASK_TIMEOUT_S) = (\S+)$", text, re.M)}
    assert consts["START_WAIT_S"] + consts["ASK_TIMEOUT_S"] <= MAX_TOTAL_S <= engine_timeout - 20
    with pytest.raises(ConfigError, match="120 s"):
        export_oracle(learner, tmp_path, start_wait_s=90, ask_timeout_s=20)
    path = export_oracle(learner, tmp_path, idle_s=5, start_wait_s=1, ask_timeout_s=1)
    with socket.socket() as mute:  # connections queue in its backlog and are never answered
        mute.bind(("127.0.0.1", 0))
        mute.listen(8)
        (tmp_path / "ranker.port").write_text(str(mute.getsockname()[1]))
        # a ranker "being started" (a lock dated ahead, so that it stays fresh): the script starts none
        lock = tmp_path / "ranker.lock"
        lock.write_text("")
        os.utime(lock, (time.time() + 60, time.time() + 60))
        t0 = time.monotonic()
        out = subprocess.run([str(path), "lemma"], input=b"0: a\n1: b\n", capture_output=True, timeout=30)
        took = time.monotonic() - t0
    assert out.returncode == 0 and out.stdout == b"" and took < 1 + 1 + 3, took
    assert lock.stat().st_mtime > time.time() + 30  # not taken as stale: no ranker was started
