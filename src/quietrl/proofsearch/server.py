"""A local HTTP/JSON server for the proof-search environment (standard library only), and its client.

Routes (JSON bodies and answers; spec section 14, after the authors' ``initialcs`` / ``executemethod`` /
``checkproof``):

``GET  /health``   ``{"ok": true, "theories": [...]}``
``POST /initial``  ``{"theory", "lemma"}`` -> the root state
``POST /methods``  ``{"theory", "key" | "state"}`` -> ``{"methods": [text, ...]}`` (ranked)
``POST /apply``    ``{"theory", "key" | "state", "method": index | text}`` -> ``{"cases": [...]}``; an empty
                   list closes the branch; each case has ``name``, ``outcome`` (closed/trace/dead/open),
                   ``key``, ``state`` (canonical JSON), ``methods``
``POST /search``   ``{"theory", "lemma", "simulations", "max_executions", "searches", "seed"}`` -> an MCTS result
                   with its checked proof script and the ``simulations``, ``executions`` and ``searches`` it used
``POST /check``    ``{"theory", "lemma", "script"}`` -> ``{"ok", "problems", "steps"}``

A state is referred to by the ``key`` the server returned (it keeps the last ``max_states`` states) or by
its canonical JSON ``state`` (rebuilt with the engine's ``canonical.state_from_json``, which rejects a
state of another theory).

Safety: the server binds 127.0.0.1 unless told otherwise; any other bind needs a shared token, which
every request must then carry as ``Authorization: Bearer <token>`` (401 without it). Bodies above
``max_body`` bytes get 413; search budgets above the server's caps get 422. Errors are JSON
``{"error": "..."}`` with a 4xx status (400 a malformed request: not JSON, not an object, a required field
missing; 404 unknown route or theory; 422 a field of the wrong type or out of range, an unknown lemma or
state); an exception inside a handler never stops the server (500 with a JSON message).

What one ``/search`` request may cost (the bound is on the whole request, not on each of its searches):
``simulations`` is the first search's simulation count and search n runs up to
``round(simulations * growth ** (n - 1))`` (``MCTSConfig.growth``, 1.5) for n = 1..``searches`` (at most
``MCTSConfig.searches``, 4); the sum of that schedule must be at most ``ServerConfig.max_simulations``
(60 with 4 searches is 60 + 90 + 135 + 203 = 488). Engine method executions during the search (the step
cache's misses, over all searches) are at most ``max_executions``, itself at most
``ServerConfig.max_executions``: a step past it is refused, even inside a simulation. Besides these, each
proof found (at most one per search) is replayed once to extract it and once to check it.
"""

from __future__ import annotations

import collections
import dataclasses
import hmac
import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from quietrl.core.errors import ConfigError, UserError
from quietrl.proofsearch.env import (
    Confirmer,
    MethodFailed,
    find_lemma,
    initial_state,
    legal_methods,
    state_from_json,
    state_key,
    state_to_json,
    step,
)
from quietrl.proofsearch.mcts import MCTSConfig, StepCache, search_lemma
from quietrl.proofsearch.types import Theory

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
MAX_SEED = 2 ** 63 - 1


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    """Bind address and per-request bounds (CPU-sized)."""

    host: str = "127.0.0.1"
    port: int = 0                   # 0: the OS picks a free port
    token: str | None = None        # required for any non-local bind
    max_body: int = 1 << 20         # bytes per request body
    max_simulations: int = 2000     # per /search request: the sum over all its searches
    max_executions: int = 2000      # engine method executions per /search request, all searches
    max_states: int = 20000         # states kept for key references

    def __post_init__(self) -> None:
        if self.host not in LOCAL_HOSTS and not self.token:
            raise ConfigError(f"ServerConfig.host={self.host!r} is not local: a shared token is required "
                              "(--token) so that only its holders can use the server")
        if self.token is not None and len(self.token) < 8:
            raise ConfigError("ServerConfig.token must have at least 8 characters")
        for name in ("max_body", "max_simulations", "max_executions", "max_states"):
            if getattr(self, name) < 1:
                raise ConfigError(f"ServerConfig.{name} must be >= 1")
        if not 0 <= self.port < 65536:
            raise ConfigError(f"ServerConfig.port must be in 0..65535, got {self.port}")


class HTTPError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def simulation_schedule(cfg: MCTSConfig) -> list[int]:
    """The most simulations each search of :func:`~quietrl.proofsearch.mcts.search_lemma` runs with ``cfg``
    (:meth:`~quietrl.proofsearch.mcts.MCTSConfig.search_simulations`)."""
    return [cfg.search_simulations(n) for n in range(1, cfg.searches + 1)]


def largest_first_search(cfg: MCTSConfig, cap: int) -> int:
    """The largest first-search simulation count whose schedule with ``cfg``'s growth and searches sums to at
    most ``cap`` (0 if even 1 does not fit)."""
    lo, hi = 0, cap  # the sum is at least the first search's count, and grows with it
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if sum(simulation_schedule(dataclasses.replace(cfg, simulations=mid))) <= cap:
            lo = mid
        else:
            hi = mid - 1
    return lo


class _Backend:
    """The theories served and the states handed out (thread-safe)."""

    def __init__(self, theories: dict[str, Theory], cfg: ServerConfig):
        self.theories, self.cfg = theories, cfg
        self.states: collections.OrderedDict[str, Any] = collections.OrderedDict()
        self.confirmers: dict[tuple[str, str], Confirmer] = {}
        self.lock = threading.Lock()

    def theory(self, body: dict) -> Theory:
        name = _field(body, "theory", str)
        if name not in self.theories:
            raise HTTPError(404, f"unknown theory {name!r}; served: {', '.join(sorted(self.theories))}")
        return self.theories[name]

    def remember(self, state) -> str:
        key = state_key(state)
        with self.lock:
            self.states[key] = state
            self.states.move_to_end(key)
            while len(self.states) > self.cfg.max_states:
                self.states.popitem(last=False)
        return key

    def state(self, theory: Theory, body: dict):
        if "key" in body:
            key = _field(body, "key", str)
            with self.lock:
                st = self.states.get(key)
            if st is None or st.theory is not theory:
                raise HTTPError(422, f"unknown state key {key!r} for theory {theory.name} (expired or never issued)")
            return st
        if "state" in body:
            text = body["state"]
            if not isinstance(text, str):
                text = json.dumps(text)
            return state_from_json(theory, text)
        raise HTTPError(400, "request needs 'key' or 'state'")

    def confirmer(self, theory: Theory, lemma: str) -> Confirmer:
        with self.lock:
            c = self.confirmers.get((theory.name, lemma))
            if c is None:
                c = self.confirmers[(theory.name, lemma)] = Confirmer(theory, find_lemma(theory, lemma))
            return c

    def describe(self, state) -> dict:
        return {"key": self.remember(state), "state": state_to_json(state), "status": state.status,
                "methods": [m.text() for m in legal_methods(state)]}

    # -- routes

    def initial(self, body: dict) -> dict:
        theory = self.theory(body)
        return self.describe(initial_state(theory, _field(body, "lemma", str)))

    def methods(self, body: dict) -> dict:
        st = self.state(self.theory(body), body)
        return {"methods": [m.text() for m in legal_methods(st)]}

    def apply(self, body: dict) -> dict:
        theory = self.theory(body)
        st = self.state(theory, body)
        offered = legal_methods(st)
        sel = body.get("method")
        if isinstance(sel, bool) or not isinstance(sel, (int, str)):
            raise HTTPError(422 if "method" in body else 400, "'method' must be an index or a method text")
        if isinstance(sel, int):
            if not 0 <= sel < len(offered):
                raise HTTPError(422, f"method index {sel} out of range: {len(offered)} methods are offered")
            method = offered[sel]
        else:
            match = [m for m in offered if m.text() == sel]
            if not match:
                raise HTTPError(422, f"method {sel!r} is not offered by this state")
            method = match[0]
        try:
            cases = step(st, method, self.confirmer(theory, st.lemma))
        except MethodFailed as e:
            raise HTTPError(422, f"method failed: {e}") from None
        return {"cases": [dict(name=c.name, outcome=c.outcome, note=c.note, **self.describe(c.state))
                          for c in cases]}

    def search(self, body: dict) -> dict:
        theory = self.theory(body)
        lemma = _field(body, "lemma", str)
        find_lemma(theory, lemma)
        base = MCTSConfig()
        cap = self.cfg.max_simulations
        sims = _int_field(body, "simulations", 60, 1, cap, "this server's cap")
        execs = _int_field(body, "max_executions", 400, 1, self.cfg.max_executions, "this server's cap")
        searches = _int_field(body, "searches", base.searches, 1, base.searches)
        seed = _int_field(body, "seed", 0, 0, MAX_SEED)
        cfg = dataclasses.replace(base, simulations=sims, max_executions=execs, searches=searches)
        schedule = simulation_schedule(cfg)
        if sum(schedule) > cap:
            raise HTTPError(422, f"simulations={sims} over {searches} searches (growth {cfg.growth:g}) may run "
                                 f"{' + '.join(map(str, schedule))} = {sum(schedule)} simulations, above this "
                                 f"server's cap of {cap} per request: ask for simulations <= "
                                 f"{largest_first_search(cfg, cap)} or fewer searches")
        r = search_lemma(theory, lemma, cfg, seed=seed, cache=StepCache(cap=execs))
        return {"lemma": lemma, "verdict": r.verdict, "size": r.size, "script": r.script(),
                "executions": r.executions, "executions_to_first_proof": r.executions_to_first_proof,
                "simulations": r.simulations, "searches": r.searches, "wall_s": r.wall_s}

    def check(self, body: dict) -> dict:
        from quietrl.proofsearch.proofcheck import check_script

        theory = self.theory(body)
        lemma = find_lemma(theory, _field(body, "lemma", str))
        rep = check_script(theory, lemma, _field(body, "script", str))
        return {"ok": rep.ok, "problems": list(rep.problems), "steps": rep.steps}


def _field(body: dict, name: str, typ: type, default: Any = ...) -> Any:
    """``body[name]`` (400 if missing without a default; 422 if not a ``typ``)."""
    if name not in body:
        if default is ...:
            raise HTTPError(400, f"request needs field {name!r}")
        return default
    v = body[name]
    if typ is int and isinstance(v, bool) or not isinstance(v, typ):
        raise HTTPError(422, f"field {name!r} must be {'an integer' if typ is int else 'a ' + typ.__name__}, "
                             f"got {type(v).__name__}")
    return v


def _int_field(body: dict, name: str, default: int, lo: int, hi: int, why: str = "") -> int:
    """An integer field in ``lo..hi`` (422 otherwise: a float, a bool or a string is not an integer)."""
    v = _field(body, name, int, default)
    if not lo <= v <= hi:
        raise HTTPError(422, f"{name}={v} outside {lo}..{hi}" + (f" ({why})" if why else ""))
    return v


def _handler(backend: _Backend):
    cfg = backend.cfg
    routes = {"/initial": backend.initial, "/methods": backend.methods, "/apply": backend.apply,
              "/search": backend.search, "/check": backend.check}

    class Handler(BaseHTTPRequestHandler):
        server_version = "quietrl-proofsearch/1"
        protocol_version = "HTTP/1.1"
        timeout = 60  # seconds per socket read or write: a client that stalls mid-request cannot hold a thread

        def log_message(self, format, *args):  # noqa: A002 - quiet: tests and sweeps call it a lot
            return

        def _send(self, status: int, payload: dict) -> None:
            data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorised(self) -> bool:
            if cfg.token is None:
                return True
            got = self.headers.get("Authorization", "")
            return hmac.compare_digest(got.encode(), f"Bearer {cfg.token}".encode())

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if not self._authorised():
                return self._send(401, {"error": "missing or wrong token (Authorization: Bearer <token>)"})
            if self.path == "/health":
                return self._send(200, {"ok": True, "theories": sorted(backend.theories)})
            return self._send(404, {"error": f"unknown route GET {self.path}"})

        def do_POST(self) -> None:  # noqa: N802
            length = self.headers.get("Content-Length")
            try:
                n = int(length) if length is not None else -1
            except ValueError:
                n = -1
            if n < 0:
                self.close_connection = True
                return self._send(411, {"error": "Content-Length required"})
            if not self._authorised():  # before the body is read or sized: a stranger learns no limits
                self.close_connection = True  # the body is not read: drop the connection after answering
                return self._send(401, {"error": "missing or wrong token (Authorization: Bearer <token>)"})
            if n > cfg.max_body:
                self.close_connection = True
                return self._send(413, {"error": f"request body of {n} bytes exceeds {cfg.max_body}"})
            try:
                raw = self.rfile.read(n)
            except OSError:  # the client stalled or went away before sending the whole body
                self.close_connection = True
                return None
            if len(raw) < n:
                self.close_connection = True
                return self._send(400, {"error": f"request body ended after {len(raw)} of {n} bytes"})
            route = routes.get(self.path)
            if route is None:
                return self._send(404, {"error": f"unknown route POST {self.path}"})
            try:
                body = json.loads(raw.decode("utf-8"))
            except (ValueError, RecursionError) as e:  # bad UTF-8 or JSON, a huge integer, deep nesting
                return self._send(400, {"error": f"malformed JSON body: {type(e).__name__}: {e}"})
            if not isinstance(body, dict):
                return self._send(400, {"error": "the JSON body must be an object"})
            try:
                return self._send(200, route(body))
            except HTTPError as e:
                return self._send(e.status, {"error": str(e)})
            except UserError as e:
                return self._send(422, {"error": str(e)})
            except Exception as e:  # noqa: BLE001 - the server must survive any request
                return self._send(500, {"error": f"internal error: {type(e).__name__}: {e}"})

    return Handler


class ProofServer:
    """A running server (a background thread); ``url`` once started. Use as a context manager."""

    def __init__(self, theories: dict[str, Theory], cfg: ServerConfig = ServerConfig()):
        if not theories:
            raise ConfigError("ProofServer needs at least one theory")
        self.cfg = cfg
        self.backend = _Backend(dict(theories), cfg)
        self.httpd = ThreadingHTTPServer((cfg.host, cfg.port), _handler(self.backend))
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{'[' + host + ']' if ':' in str(host) else host}:{port}"

    def start(self) -> "ProofServer":
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="proofsearch-server", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "ProofServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class ProofClient:
    """Client of :class:`ProofServer` (urllib). Methods return the decoded JSON; HTTP errors raise
    :class:`RemoteError` with the status and the server's message."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 600.0):
        self.url, self.token, self.timeout = url.rstrip("/"), token, timeout

    def _call(self, path: str, body: dict | None = None) -> dict:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(self.url + path, data=data, headers=headers,
                                     method="GET" if body is None else "POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as e:
            try:
                msg = json.loads(e.read().decode("utf-8")).get("error", "")
            except (ValueError, AttributeError):
                msg = str(e)
            raise RemoteError(e.code, msg) from None

    def health(self) -> dict:
        return self._call("/health")

    def initial(self, theory: str, lemma: str) -> dict:
        return self._call("/initial", {"theory": theory, "lemma": lemma})

    def methods(self, theory: str, key: str) -> list[str]:
        return self._call("/methods", {"theory": theory, "key": key})["methods"]

    def apply(self, theory: str, key: str, method: int | str) -> list[dict]:
        return self._call("/apply", {"theory": theory, "key": key, "method": method})["cases"]

    def search(self, theory: str, lemma: str, simulations: int = 60, max_executions: int = 400,
               seed: int = 0, searches: int | None = None) -> dict:
        body = {"theory": theory, "lemma": lemma, "simulations": simulations, "max_executions": max_executions,
                "seed": seed}
        if searches is not None:
            body["searches"] = searches
        return self._call("/search", body)

    def check(self, theory: str, lemma: str, script: str) -> dict:
        return self._call("/check", {"theory": theory, "lemma": lemma, "script": script})


class RemoteError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status, self.message = status, message


def remote_search(item: tuple) -> dict:
    """Sweep-executor task: ``(url, token, theory, lemma, simulations, max_executions, seed)`` -> result.

    Module-level (picklable), so ``quietrl.core.sweep`` executors can spread lemmas over server processes.
    """
    url, token, theory, lemma, sims, execs, seed = item
    return ProofClient(url, token).search(theory, lemma, sims, execs, seed)


def greedy_walk(client: ProofClient, theory: str, lemma: str, max_steps: int = 200) -> dict:
    """Prove a lemma through the server by always taking method 0 (the engine's ranking): the HTTP round
    trip of the whole API. Returns ``{"steps", "closed", "trace"}``."""
    root = client.initial(theory, lemma)
    stack, steps, trace = [root["key"]], 0, False
    while stack and steps < max_steps:
        key = stack.pop()
        steps += 1
        for case in client.apply(theory, key, 0):
            if case["outcome"] == "trace":
                return {"steps": steps, "closed": False, "trace": True}
            if case["outcome"] == "dead":
                return {"steps": steps, "closed": False, "trace": False}
            if case["outcome"] == "open":
                stack.append(case["key"])
    return {"steps": steps, "closed": not stack, "trace": trace}


__all__ = ["ServerConfig", "ProofServer", "ProofClient", "RemoteError", "remote_search", "greedy_walk"]
