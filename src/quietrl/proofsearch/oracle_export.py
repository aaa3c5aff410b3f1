"""Export the learnt ranker as an oracle for tamarin-prover (``--heuristic=O --oraclename=PATH``).

``export_oracle(learner, directory)`` writes:

- ``directory/oracle``: an executable, standard-library-only Python script. Tamarin runs it once per step
  with the lemma name as ``argv[1]`` and the open goals on stdin (``N: <goal>``, spec section 11). It forwards
  the goals to a local ranker process over 127.0.0.1 (starting that process on the first call, guarded by
  a lock file) and prints the goal indices in the ranker's order. Lines it cannot parse are ignored; on
  any failure (no ranker, a timeout, bad input) it prints nothing and exits 0, so Tamarin keeps its own
  order.
- ``directory/model/``: the ranker's parameters (``params.msgpack``) and configuration (``config.json``).

The ranker process (``python -m quietrl.proofsearch.oracle_export serve DIR``) loads the model, listens on
a port the OS picks, records it in ``directory/ranker.port`` (and its process id in ``directory/ranker.pid``)
and stops after ``idle_s`` seconds without a request, removing the port, pid and lock files. Its protocol is
one JSON line each way: ``{"lemma", "goals": [...]}`` -> ``{"order": [...]}``.

Time: the engine gives an oracle call ``Oracle.timeout_s`` (120 s) and aborts the proof past it. The script
waits at most ``start_wait_s`` for a ranker to answer (the first call starts it: a JAX import, ~10 s) and
gives one request at most ``ask_timeout_s`` in all, so it ends within about ``start_wait_s + ask_timeout_s``
(60 + 20 s by default; at most ``MAX_TOTAL_S`` = 100 s), leaving room for Python's own start on a loaded
machine: a slow ranker makes it print nothing, never makes the engine give up.
"""

from __future__ import annotations

import json
import os
import socket
import socketserver
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

from quietrl.core.errors import ConfigError, UserError

# the script's worst case (start_wait_s + ask_timeout_s) stays this far below the engine's 120 s oracle timeout
MAX_TOTAL_S = 100.0

SCRIPT = r'''#!{python}
# quietrl proofsearch oracle (generated; standard library only). Forwards Tamarin's goal list to a local
# ranker process and prints its order; on any failure prints nothing and exits 0 (Tamarin keeps its order).
import json, os, socket, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
PORT_FILE = os.path.join(HERE, "ranker.port")
LOCK_FILE = os.path.join(HERE, "ranker.lock")
PYTHON = {python!r}
PYTHONPATH = {pythonpath!r}
# Time limits. The engine kills an oracle call after 120 s (Oracle.timeout_s) and then aborts the proof, so
# this script must give up well before: new requests are tried for START_WAIT_S (the first call starts the
# ranker), and one request gets ASK_TIMEOUT_S in all; the script ends within START_WAIT_S + ASK_TIMEOUT_S
# (<= 100 s, checked at export) plus Python's start.
START_WAIT_S = {start_wait_s!r}
ASK_TIMEOUT_S = {ask_timeout_s!r}
IDLE_S = {idle_s!r}


def ask(port, payload, until):
    """The ranker's order, or an exception; gives up at time.time() == until (connect, send and receive)."""
    def left():
        t = until - time.time()
        if t <= 0:
            raise TimeoutError("no answer in time")
        return t
    with socket.create_connection(("127.0.0.1", port), timeout=left()) as s:
        s.settimeout(left())
        s.sendall((json.dumps(payload) + "\n").encode("utf-8"))
        buf = b""
        while not buf.endswith(b"\n"):
            s.settimeout(left())
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return json.loads(buf.decode("utf-8"))["order"]


def port():
    try:
        with open(PORT_FILE) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def start():
    try:
        fd = os.open(LOCK_FILE, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        os.close(fd)
    except FileExistsError:
        try:
            if time.time() - os.path.getmtime(LOCK_FILE) < START_WAIT_S:
                return  # another call is starting the ranker
            os.utime(LOCK_FILE)  # a stale lock (that start failed): try again
        except OSError:
            return  # the lock went away meanwhile: the next pass starts one
    env = dict(os.environ)
    env["PYTHONPATH"] = PYTHONPATH + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    subprocess.Popen([PYTHON, "-m", "quietrl.proofsearch.oracle_export", "serve", HERE, "--idle", str(IDLE_S)],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     env=env, start_new_session=True)


def main():
    lemma = sys.argv[1] if len(sys.argv) > 1 else ""
    goals = []
    for line in sys.stdin.buffer.read().decode("utf-8", "replace").splitlines():
        head, sep, goal = line.partition(":")
        if sep and head.strip().isdigit():
            goals.append(goal.strip())
    if len(goals) < 2:
        return
    payload = {{"lemma": lemma, "goals": goals}}
    t0 = time.time()
    deadline = t0 + START_WAIT_S          # no new request after this
    hard = deadline + ASK_TIMEOUT_S       # nor any waiting at all
    started = False
    while True:
        p = port()
        if p is not None:
            try:
                order = ask(p, payload, min(time.time() + ASK_TIMEOUT_S, hard))
                break
            except (OSError, ValueError, KeyError, TypeError):
                pass
        # start a ranker on the first pass, and again if the one that was running has stopped meanwhile (it
        # removes the lock file when it stops idle; one that failed to start leaves it, so is not retried)
        if not started or (p is None and not os.path.exists(LOCK_FILE)):
            start()
            started = True
        if time.time() > deadline:
            return
        time.sleep(0.2)
    seen = set()
    out = []
    for i in order:
        if isinstance(i, int) and 0 <= i < len(goals) and i not in seen:
            seen.add(i)
            out.append(str(i))
    sys.stdout.write("\n".join(out) + ("\n" if out else ""))


try:
    main()
except BaseException:  # noqa: any failure must leave Tamarin's order alone
    pass
sys.exit(0)
'''


def export_oracle(learner, directory: str | Path, idle_s: float = 300.0, start_wait_s: float = 60.0,
                  ask_timeout_s: float = 20.0) -> Path:
    """Write the oracle script and the model to ``directory``; the script's path.

    ``idle_s``: the ranker process stops after this many seconds without a request. ``start_wait_s``: how
    long a call waits for a ranker to answer (the first call starts one); ``ask_timeout_s``: the most one
    request may take. Their sum, the script's worst case, must be at most ``MAX_TOTAL_S`` (100 s), below the
    engine's 120 s oracle timeout.
    """
    for name, v in (("idle_s", idle_s), ("start_wait_s", start_wait_s), ("ask_timeout_s", ask_timeout_s)):
        if not v > 0:
            raise ConfigError(f"export_oracle: {name} must be > 0, got {v}")
    if start_wait_s + ask_timeout_s > MAX_TOTAL_S:
        raise ConfigError(f"export_oracle: start_wait_s + ask_timeout_s = {start_wait_s + ask_timeout_s:g} s "
                          f"exceeds {MAX_TOTAL_S:g} s; the engine aborts an oracle call after 120 s")
    from flax import serialization

    from quietrl.core.config import to_dict
    from quietrl.core.io import atomic_write_bytes, atomic_write_text

    d = Path(directory)
    (d / "model").mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(d / "model" / "params.msgpack", serialization.to_bytes(learner.params))
    atomic_write_text(d / "model" / "config.json", json.dumps({"net": to_dict(learner.net),
                                                                   "rank_prior": learner.cfg.rank_prior,
                                                                   "tie_goalless": learner.cfg.tie_goalless},
                                                                  indent=1))
    pkg_root = str(Path(__file__).resolve().parents[2])  # the directory holding the quietrl package
    script = d / "oracle"
    atomic_write_text(script, SCRIPT.format(python=sys.executable, pythonpath=pkg_root, idle_s=float(idle_s),
                                            start_wait_s=float(start_wait_s), ask_timeout_s=float(ask_timeout_s)))
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    for stale in ("ranker.port", "ranker.pid", "ranker.lock"):
        (d / stale).unlink(missing_ok=True)
    return script


def load_learner(directory: str | Path):
    """The exported ranker as a :class:`~quietrl.proofsearch.expert.Learner` (for inference)."""
    from flax import serialization

    from quietrl.core.config import from_dict
    from quietrl.proofsearch.expert import ExpertConfig, Learner
    from quietrl.proofsearch.networks import NetConfig, init_params

    d = Path(directory) / "model"
    try:
        cfg = json.loads((d / "config.json").read_text())
        net = from_dict(NetConfig, cfg["net"])
        # an export from before tie_goalless ranked simplify and induction by the policy
        expert = ExpertConfig(rank_prior=float(cfg.get("rank_prior", 0.0)),
                              tie_goalless=bool(cfg.get("tie_goalless", False)))
        params = serialization.from_bytes(init_params(net), (d / "params.msgpack").read_bytes())
    except (OSError, ValueError, KeyError, TypeError, UserError) as e:
        raise UserError(f"{d}: not an exported ranker ({e})") from None
    return Learner(net, expert, params=params)


def rank(learner, goals: list[str]) -> list[int]:
    """Goal indices, best first, by the ranker's scores (:meth:`Learner.rank_logits`; goal texts as an oracle
    receives them, in the order of Tamarin's heuristic)."""
    import numpy as np

    if not goals:
        return []
    scores = learner.rank_logits([f"solve( {g} )" for g in goals])
    return [int(i) for i in np.argsort(-scores, kind="stable")]


def serve(directory: str | Path, idle_s: float = 300.0) -> None:
    """Run the ranker process for an exported oracle until ``idle_s`` seconds pass without a request."""
    d = Path(directory)
    learner = load_learner(d)
    rank(learner, ["x", "y"])  # compile before announcing the port
    last = [time.monotonic()]
    lock = threading.Lock()

    class Handler(socketserver.StreamRequestHandler):
        timeout = 30  # seconds per read or write: a stalled client does not hold a thread for ever

        def handle(self) -> None:
            last[0] = time.monotonic()
            try:
                req = json.loads(self.rfile.readline().decode("utf-8"))
                goals = [str(g) for g in req.get("goals", [])]
                with lock:
                    order = rank(learner, goals)
            except Exception:  # noqa: BLE001 - a bad request gets an empty order, the server lives on
                order = []
            self.wfile.write((json.dumps({"order": order}) + "\n").encode("utf-8"))
            last[0] = time.monotonic()

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    with Server(("127.0.0.1", 0), Handler) as srv:
        port_file, pid_file = d / "ranker.port", d / "ranker.pid"
        for path, text in ((pid_file, str(os.getpid())), (port_file, str(srv.server_address[1]))):
            tmp = path.with_name(f"{path.name}.{os.getpid()}")
            tmp.write_text(text)
            os.replace(tmp, path)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        try:
            while time.monotonic() - last[0] < idle_s:
                time.sleep(min(0.5, idle_s / 4))
        finally:
            _unlink_if(port_file, str(srv.server_address[1]))  # first: no new caller finds a closing port
            srv.shutdown()
            _unlink_if(pid_file, str(os.getpid()))
            (d / "ranker.lock").unlink(missing_ok=True)  # last: a later call may start a new ranker


def _unlink_if(path: Path, text: str) -> None:
    """Remove ``path`` if it still holds ``text`` (not a file that another ranker process wrote since)."""
    try:
        if path.read_text().strip() == text:
            path.unlink(missing_ok=True)
    except OSError:
        pass


def start_ranker(directory: str | Path, idle_s: float = 300.0, wait_s: float = 300.0) -> subprocess.Popen:
    """Start the ranker process for ``directory`` and wait until it listens (for tests and warm starts)."""
    d = Path(directory)
    env = dict(os.environ)
    pkg_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = pkg_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    (d / "ranker.lock").write_text("")
    proc = subprocess.Popen([sys.executable, "-m", "quietrl.proofsearch.oracle_export", "serve", str(d),
                             "--idle", str(idle_s)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if (d / "ranker.port").exists():
            try:
                port = int((d / "ranker.port").read_text())
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
                return proc
            except (OSError, ValueError):
                pass
        if proc.poll() is not None:
            raise UserError(f"ranker process exited: {proc.stderr.read().decode()[-500:]}")
        time.sleep(0.2)
    proc.kill()
    raise UserError(f"ranker for {d} did not start within {wait_s:g} s")


def _main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "serve":
        idle = float(argv[argv.index("--idle") + 1]) if "--idle" in argv else 300.0
        serve(argv[1], idle)
        return 0
    print("usage: python -m quietrl.proofsearch.oracle_export serve DIR [--idle S]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
