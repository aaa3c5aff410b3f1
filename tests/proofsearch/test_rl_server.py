"""The HTTP/JSON server: round trip of the stateless API, tokens, bounds and bad input."""

from __future__ import annotations

import json
import urllib.request

import pytest

from quietrl.core.errors import ConfigError
from quietrl.proofsearch import example_path, parse_file
from quietrl.proofsearch.mcts import MCTSConfig
from quietrl.proofsearch.prover import prove
from quietrl.proofsearch.server import (
    ProofClient,
    ProofServer,
    RemoteError,
    ServerConfig,
    greedy_walk,
    largest_first_search,
    simulation_schedule,
)


@pytest.fixture(scope="module")
def theories():
    return {"client_server": parse_file(example_path("client_server")),
            "signed_key_exchange": parse_file(example_path("signed_key_exchange"))}


@pytest.fixture(scope="module")
def server(theories):
    with ProofServer(theories, ServerConfig(max_body=4096, max_simulations=200, max_executions=60)) as srv:
        yield srv


def test_round_trip_matches_in_process_greedy(server, theories):
    client = ProofClient(server.url)
    assert client.health()["theories"] == ["client_server", "signed_key_exchange"]
    root = client.initial("client_server", "key_secret")
    assert root["methods"] and root["status"] == "open"
    walk = greedy_walk(client, "client_server", "key_secret")
    greedy = prove(theories["client_server"], theories["client_server"].lemma("key_secret"), 200)
    assert walk["closed"] and walk["steps"] == greedy.tree.method_count()
    # the same state by JSON instead of key
    by_json = client._call("/methods", {"theory": "client_server", "state": root["state"]})
    assert by_json["methods"] == root["methods"]


def test_search_route_returns_a_checked_proof(server):
    client = ProofClient(server.url)
    r = client.search("client_server", "setup_reachable", simulations=20, max_executions=40)
    assert r["verdict"] == "verified" and "SOLVED" in r["script"]
    assert r["simulations"] <= 200 and r["executions"] <= 40 and 1 <= r["searches"] <= 4
    assert client.check("client_server", "setup_reachable", r["script"])["ok"]


def _raw(url, path, data: bytes, headers=None):
    req = urllib.request.Request(url + path, data=data, method="POST",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_bad_requests_get_4xx_and_the_server_survives(server):
    client = ProofClient(server.url)
    other = client.initial("signed_key_exchange", "agreement")
    cases = [
        ("/initial", {"theory": "client_server", "lemma": "nope"}, 422, "unknown lemma"),
        ("/initial", {"theory": "nope", "lemma": "x"}, 404, "unknown theory"),
        ("/methods", {"theory": "client_server", "state": other["state"]}, 422, "another theory"),
        ("/methods", {"theory": "client_server", "key": other["key"]}, 422, "unknown state key"),
        ("/apply", {"theory": "client_server", "key": other["key"], "method": 0}, 422, "unknown state key"),
        ("/search", {"theory": "client_server", "lemma": "key_secret", "simulations": 10 ** 6}, 422, "cap"),
        ("/search", {"theory": "client_server", "lemma": "key_secret", "max_executions": 10 ** 6}, 422, "cap"),
        ("/nowhere", {}, 404, "unknown route"),
    ]
    search = {"theory": "client_server", "lemma": "key_secret", "simulations": 5, "max_executions": 10}
    cases += [("/search", {**search, **bad}, 422, words) for bad, words in [
        ({"seed": -1}, "seed=-1 outside"),
        ({"seed": 2 ** 64}, "outside"),
        ({"seed": 1.5}, "must be an integer"),
        ({"seed": "7"}, "must be an integer"),
        ({"seed": None}, "must be an integer"),
        ({"simulations": 0}, "simulations=0 outside"),
        ({"simulations": -3}, "outside"),
        ({"simulations": 5.0}, "must be an integer"),
        ({"simulations": True}, "must be an integer"),
        ({"max_executions": 0}, "max_executions=0 outside"),
        ({"max_executions": [10]}, "must be an integer"),
        ({"searches": 0}, "searches=0 outside"),
        ({"searches": 5}, "outside"),
        ({"simulations": 60}, "cap of 200"),  # 60 + 90 + 135 + 203 simulations in all
    ]]
    cases += [
        ("/search", {"theory": "client_server", "lemma": 3}, 422, "must be a str"),
        ("/search", {"theory": "client_server", "lemma": "nope"}, 422, "unknown lemma"),
        ("/apply", {"theory": "signed_key_exchange", "key": other["key"], "method": 1.5}, 422, "index or a method"),
    ]
    for path, body, status, words in cases:
        got, msg = _raw(server.url, path, json.dumps(body).encode())
        assert got == status and words in msg["error"], (path, got, msg)
    got, msg = _raw(server.url, "/initial", b"{not json")
    assert got == 400 and "malformed JSON" in msg["error"]
    got, msg = _raw(server.url, "/initial", b"[1, 2]")
    assert got == 400
    got, msg = _raw(server.url, "/initial", b"x" * 5000)
    assert got == 413 and "exceeds" in msg["error"]
    got, msg = _raw(server.url, "/initial", b"[" * 4000)  # nested past the parser's recursion limit
    assert got == 400 and "malformed JSON" in msg["error"]
    r = client.search("client_server", "setup_reachable", simulations=5, max_executions=20, seed=7)
    assert r["verdict"] == "verified"  # a valid search right after the bad ones
    root = client.initial("client_server", "key_secret")  # still serving
    cases = client.apply("client_server", root["key"], 0)
    assert [c["name"] for c in cases] == [""]
    with pytest.raises(RemoteError) as e:
        client.apply("client_server", root["key"], 99)
    assert e.value.status == 422


def test_token_required_for_remote_binds_and_checked(theories):
    with pytest.raises(ConfigError, match="token"):
        ServerConfig(host="0.0.0.0")
    with ProofServer(theories, ServerConfig(token="s3cret-token", max_body=4096)) as srv:
        got, msg = _raw(srv.url, "/initial", json.dumps({"theory": "client_server", "lemma": "key_secret"}).encode())
        assert got == 401 and "token" in msg["error"]
        got, _ = _raw(srv.url, "/initial", b"{}", {"Authorization": "Bearer wrong-token"})
        assert got == 401
        # the token is checked before the body is sized or read: a stranger's oversized request learns no limit
        got, msg = _raw(srv.url, "/initial", b"x" * 5000)  # small enough to sit in the socket buffers
        assert got == 401 and "token" in msg["error"]
        got, msg = _raw(srv.url, "/initial", b"x" * 5000, {"Authorization": "Bearer s3cret-token"})
        assert got == 413
        with pytest.raises(RemoteError) as e:
            ProofClient(srv.url).health()
        assert e.value.status == 401
        assert ProofClient(srv.url, "s3cret-token").initial("client_server", "key_secret")["methods"]


def test_search_budget_bounds_the_whole_request(theories):
    """max_simulations bounds the simulations of all of a request's searches together, max_executions its
    engine executions (also inside the simulation that spends the last of them)."""
    cap = 30
    first = largest_first_search(MCTSConfig(), cap)
    assert sum(simulation_schedule(MCTSConfig(simulations=first))) <= cap
    assert sum(simulation_schedule(MCTSConfig(simulations=first + 1))) > cap
    with ProofServer(theories, ServerConfig(max_simulations=cap, max_executions=25)) as srv:
        client = ProofClient(srv.url)
        r = client.search("client_server", "key_secret", simulations=first, max_executions=25)
        assert r["verdict"] == "verified" and r["simulations"] <= cap and r["executions"] <= 25
        r = client.search("client_server", "key_secret", simulations=cap, max_executions=25, searches=1)
        assert r["searches"] == 1 and r["simulations"] <= cap
        # MCTS checks its budget between simulations: here its last simulation would execute a 6th method
        r = client.search("client_server", "key_secret", simulations=first, max_executions=5)
        assert r["executions"] <= 5
        body = b'{"theory": "client_server", "lemma": "key_secret", "seed": ' + b"9" * 4400 + b"}"
        got, msg = _raw(srv.url, "/search", body)  # past Python's integer digit limit: a clear 400, no crash
        assert got == 400 and "malformed JSON" in msg["error"]
        for kwargs, words in [(dict(simulations=first + 1), f"simulations <= {first}"),
                              (dict(simulations=cap + 1, searches=1), "cap"),
                              (dict(simulations=first, max_executions=26), "cap")]:
            with pytest.raises(RemoteError) as e:
                client.search("client_server", "key_secret", **{"max_executions": 25, **kwargs})
            assert e.value.status == 422 and words in e.value.message, e.value.message


def test_default_bind_is_loopback(theories):
    from quietrl.proofsearch.cli import serve_cmd

    assert ServerConfig().host == "127.0.0.1"
    with ProofServer(theories) as srv:
        assert srv.httpd.server_address[0] == "127.0.0.1" and srv.url.startswith("http://127.0.0.1:")
        assert ProofClient(srv.url).health()["ok"]
    assert {p.name: p.default for p in serve_cmd.params}["host"] == "127.0.0.1"
    for host in ("", "0.0.0.0", "::", "192.168.1.7"):  # every interface or a non-loopback one: token needed
        with pytest.raises(ConfigError, match="token"):
            ServerConfig(host=host)
