"""The proof checker: replays trees and scripts, accepts the prover's proofs, rejects altered ones."""

from __future__ import annotations

import pytest

from quietrl.proofsearch import example_path, parse_file
from quietrl.proofsearch.proofcheck import ScriptError, check_proof, check_script, parse_script
from quietrl.proofsearch.prover import VERIFIED, prove, script


@pytest.fixture(scope="module")
def tutorial(shared_dir):
    return parse_file(shared_dir / "protocols" / "Tutorial.spthy")


@pytest.fixture(scope="module")
def proofs(tutorial):
    return {lem.name: prove(tutorial, lem, 300) for lem in tutorial.lemmas}


def test_every_tutorial_proof_checks_as_tree_and_as_script(tutorial, proofs):
    for name, r in proofs.items():
        assert r.verdict == VERIFIED, (name, r.reason)
        tree = check_proof(tutorial, name, r.tree)
        assert tree.ok, (name, tree.problems)
        text = check_script(tutorial, name, script(r.tree))
        assert text.ok, (name, text.problems)
        assert text.steps == tree.steps > 0
        assert parse_script(script(r.tree)).size() == r.steps


def test_found_trace_is_confirmed(tutorial, proofs):
    r = check_proof(tutorial, "Client_session_key_honest_setup", proofs["Client_session_key_honest_setup"].tree)
    assert r.ok and r.trace_found


def _first_contradiction_line(text: str) -> int:
    return next(i for i, line in enumerate(text.splitlines()) if "by contradiction" in line)


def test_wrong_closing_reason_is_reported(tutorial, proofs):
    lines = script(proofs["Client_auth"].tree).splitlines()
    i = _first_contradiction_line("\n".join(lines))
    old = lines[i]
    lines[i] = old[:old.index("/*")] + "/* cyclic */" if "cyclic" not in old else old.replace("cyclic", "from formulas")
    r = check_script(tutorial, "Client_auth", "\n".join(lines))
    assert not r.ok and any("contradiction /*" in p for p in r.problems)


def test_missing_case_is_reported(tutorial, proofs):
    text = script(proofs["Client_auth"].tree)
    lines = text.splitlines()
    # Drop the last case of the first multi-case step: from its "next" to just before its "qed".
    nxt = next(i for i, line in enumerate(lines) if line.strip() == "next")
    indent = len(lines[nxt]) - len(lines[nxt].lstrip())
    end = next(i for i in range(nxt, len(lines)) if lines[i] == " " * indent + "qed")
    cut = lines[:nxt] + lines[end:]
    r = check_script(tutorial, "Client_auth", "\n".join(cut))
    assert not r.ok and any("unproved" in p for p in r.problems)


def test_unknown_case_and_unoffered_step_are_reported(tutorial, proofs):
    text = script(proofs["Client_auth"].tree)
    r = check_script(tutorial, "Client_auth", text.replace("case ", "case Bogus", 1))
    assert not r.ok and any("no case 'Bogus" in p for p in r.problems)
    lines = text.splitlines()
    j = next(i for i, line in enumerate(lines) if line.strip().startswith("solve("))
    lines[j] = lines[j][:lines[j].index("solve(")] + "solve( Nope( x ) ▶₀ #i )"
    r = check_script(tutorial, "Client_auth", "\n".join(lines))
    assert not r.ok and any("not offered" in p for p in r.problems)


def test_sorry_leaf_is_a_problem(tutorial):
    r = check_script(tutorial, "Client_auth", "simplify\nby sorry /* left open */")
    assert not r.ok and any("sorry" in p for p in r.problems)


def test_bogus_solved_is_rejected(tutorial):
    r = check_script(tutorial, "Client_auth", "simplify\nSOLVED // trace found")
    assert not r.ok and any("SOLVED but the system is open" in p for p in r.problems)


@pytest.mark.parametrize("text, where", [
    ("simplify\nsolve( A( x ) ▶₀ #i )\n  case X\n  by contradiction /* cyclic */\n", "missing 'qed'"),
    ("simplify\nsolve( A ▶₀ #i )\n  case X\n  SOLVED\nfoo\n", "line 5"),
    ("", "empty proof script"),
    ("simplify\n  case X\n", "line 2"),
])
def test_malformed_scripts(text, where):
    with pytest.raises(ScriptError, match=where):
        parse_script(text)


def test_parses_tamarin_layout_with_header_and_wrapped_goals():
    text = ('lemma L:\n  all-traces\n  "All x #i. A(x) @ i ==> F"\n/*\nguarded formula characterizing\n*/\n'
            "simplify\nsolve( Very_long( <x,\n      y> ) ▶₀ #i )\n"
            "  case R_0\n  solve( (∃ #j. (A( x ) @ #j)\n      ∧\n      (B( x ) @ #j))  ∥\n   (C( x ) @ #i) )\n"
            "    case case_1\n    by contradiction /* cyclic */\n  qed\nnext\n  case R_1\n  by contradiction /* cyclic */\n"
            "next\n  case R_2\n  SOLVED // trace found\nqed\n")
    tree = parse_script(text)
    assert tree.method == "simplify" and tree.size() == 6
    step = tree.cases[0][1]
    disj = step.cases[0][1]
    assert disj.method == "solve( (∃ #j. (A( x ) @ #j) ∧ (B( x ) @ #j)) ∥ (C( x ) @ #i) )"
    assert step.method == "solve( Very_long( <x, y> ) ▶₀ #i )"
    assert [n for n, _ in step.cases] == ["R_0", "R_1", "R_2"]
    assert step.cases[1][1].note == "cyclic" and step.cases[2][1].leaf == "solved"


def test_example_model_proofs_check():
    th = parse_file(example_path("client_server"))
    for lem in th.lemmas:
        r = prove(th, lem, 300)
        if r.verdict != "analysis incomplete":
            assert check_proof(th, lem, r.tree).ok, lem.name


def test_every_tamarin_proof_parses_with_the_reference_size(shared_dir):
    """Known answers: each proof in proofs/ parses, and its size equals the TSV's step count."""
    import csv

    from quietrl.proofsearch.proofcheck import analyzed_proofs

    root = shared_dir / "protocols"
    steps = {(r["theory"], r["lemma"]): int(r["steps"])
             for r in csv.DictReader(open(root / "reference_results.tsv", encoding="utf-8"), delimiter="\t")}
    seen = 0
    for analyzed in sorted((root / "proofs").rglob("*_analyzed.spthy")):
        rel = analyzed.relative_to(root / "proofs")
        theory = str(rel.parent / rel.name.replace("_analyzed.spthy", ".spthy"))
        for lemma, text in analyzed_proofs(analyzed.read_text(encoding="utf-8")):
            tree = parse_script(text)
            assert tree.size() == steps[(theory.removeprefix("./"), lemma)], (theory, lemma)
            seen += 1
    assert seen >= 42
