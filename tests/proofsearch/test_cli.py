"""CLI: parse, goals and examples commands; bad input ends as a one-line UserError (exit 2 in quietrl)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from quietrl.core.errors import UserError
from quietrl.proofsearch.cli import cli
from quietrl.proofsearch.examples import example_path


def run(*args):
    return CliRunner().invoke(cli, list(map(str, args)), catch_exceptions=True)


def test_group_name_and_commands():
    assert cli.name == "proofsearch"
    assert {"parse", "goals", "examples"} <= set(cli.commands)


def test_parse_summary(protocols):
    r = run("parse", protocols / "Tutorial.spthy")
    assert r.exit_code == 0, r.output
    assert "theory Tutorial" in r.output
    assert "Serv_1  (3 variants)" in r.output
    assert "Client_session_key_honest_setup (exists-trace)" in r.output


def test_parse_json_on_example():
    r = run("parse", example_path("nspk"), "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["theory"] == "NSPK_quietrl"
    assert [lem["name"] for lem in data["lemmas"]] == ["responder_nonce_secret", "run_possible"]


def test_goals_shows_formula_and_methods(protocols):
    r = run("goals", protocols / "Tutorial.spthy", "--lemma", "Client_auth")
    assert r.exit_code == 0, r.output
    assert "∃ S k #i. (SessKeyC( S, k ) @ #i)" in r.output
    assert "0: simplify" in r.output and "1: induction" in r.output


def test_goals_unknown_lemma_is_a_user_error():
    r = run("goals", example_path("nspk"), "--lemma", "nope")
    assert isinstance(r.exception, UserError)
    msg = str(r.exception)
    assert "unknown lemma 'nope'" in msg and "responder_nonce_secret" in msg and "\n" not in msg


def test_parse_error_is_a_user_error(tmp_path):
    bad = tmp_path / "bad.spthy"
    bad.write_text("theory B begin\nbuiltins: diffie-hellman\nend\n")
    r = run("parse", bad)
    assert isinstance(r.exception, UserError)
    assert str(r.exception).startswith(f"{bad}:2:11: unsupported builtin 'diffie-hellman'")


def test_quietrl_main_exits_2_with_one_line(tmp_path, capsys):
    main = pytest.importorskip("quietrl.cli").main
    bad = tmp_path / "bad.spthy"
    bad.write_text("theory B begin\nrule A: [ Fr(~k) ] --> [ St(~k) ]\nrule B: [ St(k, k) ] --> [ ]\nend\n")
    with pytest.raises(SystemExit) as ei:
        main(["proofsearch", "parse", str(bad)])
    assert ei.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {bad}:3:11: fact St used with arity 2 here and arity 1 at 2:26"


def test_examples_command():
    r = run("examples")
    assert r.exit_code == 0
    assert "client_server" in r.output and "mutant_nslpk_no_responder_id" in r.output


def test_goals_output_is_independent_of_hash_seed():
    """Determinism: the same output under different PYTHONHASHSEED values."""
    import os
    import subprocess
    import sys

    code = ("from quietrl.proofsearch.cli import cli; "
            f"cli(['goals', {str(example_path('nslpk'))!r}, '--lemma', 'responder_nonce_secret', '--simplify'])")
    outs = []
    for seed in ("1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
        assert r.returncode == 0, r.stderr
        outs.append(r.stdout)
    assert outs[0] == outs[1] and "goals:" in outs[0]
