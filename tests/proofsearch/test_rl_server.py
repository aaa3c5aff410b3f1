"""The HTTP/JSON server: round trip of the stateless API, tokens, bounds and bad input."""

from __future__ import annotations

import json
import urllib.request

import pytest

from quietrl.core.errors import ConfigError
from quietrl.proofsearch import example_path, parse_file
from quietrl.proofsearch.prover import prove
from quietrl.proofsearch.server import ProofClient, ProofServer, RemoteError, ServerConfig, greedy_walk


@pytest.fixture(scope="module")
def theories():
    return {"client_server": parse_file(example_path("client_server")),
            "signed_key_exchange": parse_file(example_path("signed_key_exchange"))}


@pytest.fixture(scope="module")
def server(theories):
    with ProofServer(theories, ServerConfig(max_body=4096, max_simulations=50, max_executions=60)) as srv:
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
    for path, body, status, words in cases:
        got, msg = _raw(server.url, path, json.dumps(body).encode())
        assert got == status and words in msg["error"], (path, got, msg)
    got, msg = _raw(server.url, "/initial", b"{not json")
    assert got == 400 and "malformed JSON" in msg["error"]
    got, msg = _raw(server.url, "/initial", b"[1, 2]")
    assert got == 400
    got, msg = _raw(server.url, "/initial", b"x" * 5000)
    assert got == 413 and "exceeds" in msg["error"]
    root = client.initial("client_server", "key_secret")  # still serving
    cases = client.apply("client_server", root["key"], 0)
    assert [c["name"] for c in cases] == [""]
    with pytest.raises(RemoteError) as e:
        client.apply("client_server", root["key"], 99)
    assert e.value.status == 422


def test_token_required_for_remote_binds_and_checked(theories):
    with pytest.raises(ConfigError, match="token"):
        ServerConfig(host="0.0.0.0")
    with ProofServer(theories, ServerConfig(token="s3cret-token")) as srv:
        got, msg = _raw(srv.url, "/initial", json.dumps({"theory": "client_server", "lemma": "key_secret"}).encode())
        assert got == 401 and "token" in msg["error"]
        got, _ = _raw(srv.url, "/initial", b"{}", {"Authorization": "Bearer wrong-token"})
        assert got == 401
        with pytest.raises(RemoteError) as e:
            ProofClient(srv.url).health()
        assert e.value.status == 401
        assert ProofClient(srv.url, "s3cret-token").initial("client_server", "key_secret")["methods"]
