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


# ---------------------------------------------------------------- prove: heuristics, limits, oracle, output


def test_prove_summary_in_tamarins_shape_with_script(protocols):
    r = run("prove", protocols / "Tutorial.spthy", "--lemma", "Client_session_key_honest_setup", "--script")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    i = lines.index("summary of summaries:")
    assert lines[i - 1] == "=" * 78 and lines[-1] == "=" * 78
    assert lines[i + 2] == f"analyzed: {protocols / 'Tutorial.spthy'}"
    assert "  Client_session_key_honest_setup (exists-trace): verified (" in r.output
    assert "SOLVED // trace found" in r.output and "  simplify" in r.output
    assert "trace for Client_session_key_honest_setup (replayed and checked):" in r.output


@pytest.mark.parametrize("h", ["s", "S", "c", "C"])
def test_prove_every_heuristic_and_limits(protocols, h):
    r = run("prove", protocols / "Tutorial.spthy", "--lemma", "Client_auth", "--heuristic", h,
            "--open-chains", 10, "--saturation", 5)
    assert r.exit_code == 0, r.output
    assert "Client_auth (all-traces): verified (" in r.output


def test_prove_bound_puts_sorry_at_depth(protocols):
    r = run("prove", protocols / "Tutorial.spthy", "--lemma", "Client_auth", "--bound", 2, "--script")
    assert r.exit_code == 0, r.output
    assert "by sorry /* bound 2 hit */" in r.output
    assert "Client_auth (all-traces): analysis incomplete (" in r.output


def test_prove_bad_options_are_usage_errors(protocols):
    for args in (["--bound", "-1"], ["--open-chains", "-2"], ["--heuristic", "x"]):
        r = run("prove", protocols / "Tutorial.spthy", *args)
        assert r.exit_code == 2, (args, r.output)
    r = run("prove", protocols / "Tutorial.spthy", "--oracle", protocols / "Tutorial.spthy")
    assert isinstance(r.exception, UserError) and "only heuristics o and O" in str(r.exception)


def test_prove_with_oracle_option(protocols, tmp_path):
    import sys

    oracle = tmp_path / "ora"
    oracle.write_text(f"#!{sys.executable}\nimport sys\nsys.stdin.read()\n")
    oracle.chmod(0o755)
    r = run("prove", protocols / "Tutorial.spthy", "--lemma", "Client_auth", "--heuristic", "o", "--oracle", oracle)
    assert r.exit_code == 0, r.output
    assert "Client_auth (all-traces): verified (" in r.output
    r = run("prove", protocols / "Tutorial.spthy", "--lemma", "Client_auth", "--heuristic", "O",
            "--oracle", tmp_path / "missing")
    assert isinstance(r.exception, UserError) and "no such file" in str(r.exception)


LEAK = """theory Leak begin
rule Send: [ Fr(~k) ] --[ Secret(~k) ]-> [ Out(~k) ]
lemma secret: "All k #i. Secret(k) @ i ==> not (Ex #j. K(k) @ j)"
lemma other: "All k #i. Secret(k) @ i ==> not (Ex #j. K(k) @ j)"
end
"""


def test_prove_writes_dot_for_found_traces(tmp_path):
    theory = tmp_path / "Leak.spthy"
    theory.write_text(LEAK)
    r = run("prove", theory, "--dot", tmp_path, "--max-steps", 100)
    assert r.exit_code == 0, r.output
    dots = sorted(p.name for p in tmp_path.glob("*.dot"))
    traces = [line for line in r.output.splitlines() if line.startswith("trace for ")]
    assert dots == ["other.dot", "secret.dot"] and len(traces) == 2
    assert "secret (all-traces): falsified - found trace (" in r.output
    assert (tmp_path / dots[0]).read_text().startswith("digraph")


def test_prove_output_is_independent_of_hash_seed(protocols):
    """Determinism: the same proofs and traces under different PYTHONHASHSEED values."""
    import os
    import subprocess
    import sys

    code = ("import re, sys; from quietrl.proofsearch.cli import cli\n"
            "try:\n"
            f"    cli(['prove', {str(protocols / 'Tutorial.spthy')!r}, '--script'])\n"
            "except SystemExit:\n    pass\n")
    outs = []
    for seed in ("0", "4242"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stderr
        outs.append("\n".join(line for line in r.stdout.splitlines() if "processing time" not in line))
    assert outs[0] == outs[1] and "summary of summaries" in outs[0]


def test_prove_check_proofs_flag(protocols):
    r = run("prove", protocols / "Tutorial.spthy", "--lemma", "Client_auth", "--check-proofs")
    assert r.exit_code == 0, r.output
    assert "proof check: Client_auth: ok" in r.output


def test_lemma_heuristic_attribute_is_used_unless_overridden(tmp_path):
    from quietrl.proofsearch import parse_theory
    from quietrl.proofsearch.prover import resolve_heuristic

    th = parse_theory('theory H begin\nheuristic: C\nrule R: [ Fr(~k) ] --[ A(~k) ]-> [ ]\n'
                      'lemma a [heuristic=c]: "All k #i. A(k) @ i ==> F"\nlemma b: "All k #i. A(k) @ i ==> F"\nend')
    a, b = th.lemmas
    assert (resolve_heuristic(th, a), resolve_heuristic(th, b), resolve_heuristic(th, a, "S")) == ("c", "C", "S")
    th2 = parse_theory('theory H begin\nrule R: [ Fr(~k) ] --[ A(~k) ]-> [ ]\n'
                       'lemma a [heuristic=z]: "All k #i. A(k) @ i ==> F"\nend')
    with pytest.raises(UserError, match="heuristic 'z' is not supported"):
        resolve_heuristic(th2, th2.lemmas[0])
