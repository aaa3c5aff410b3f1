"""Oracle heuristics o/O with Tamarin's I/O, and the recorded Tutorial oracle calls."""

from __future__ import annotations

import collections
import sys

import pytest

from quietrl.core.errors import UserError
from quietrl.proofsearch import Method, apply, initial_system, parse_file
from quietrl.proofsearch.oracle import Oracle, apply_ranking, find_oracle, goal_lines
from quietrl.proofsearch.proofcheck import check_proof
from quietrl.proofsearch.prover import INCOMPLETE, VERIFIED, prove, script
from quietrl.proofsearch.ranking import rank
from quietrl.proofsearch.render import normalise_goal_list

RECORDER = """#!{python}
import os, sys
data = sys.stdin.buffer.read().decode("utf-8")
with open({log!r}, "a", encoding="utf-8") as f:
    f.write("### lemma=" + sys.argv[1] + "\\n" + data)
{answer}
"""


def _oracle(tmp_path, name="oracle", answer="", log="log.txt"):
    p = tmp_path / name
    p.write_text(RECORDER.format(python=sys.executable, log=str(tmp_path / log), answer=answer), encoding="utf-8")
    p.chmod(0o755)
    return p


def _calls(path) -> list[tuple[str, ...]]:
    """Goal lists per call of a log in the samples' format (goal text without the ``N: `` index)."""
    calls: list[list[str]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("### lemma="):
            calls.append([])
        elif line.strip():
            calls[-1].append(line.split(": ", 1)[1])
    return [normalise_goal_list(c) for c in calls]


@pytest.fixture(scope="module")
def tutorial(shared_dir):
    return parse_file(shared_dir / "protocols" / "Tutorial.spthy")


def test_ranking_rules():
    assert apply_ranking(4, "2\n0\n") == [2, 0, 1, 3]
    assert apply_ranking(3, "") == [0, 1, 2]
    assert apply_ranking(3, "7\nfoo\n-1\n1\n1\n 2 \n") == [1, 2, 0]  # bad, out of range, repeats ignored
    assert apply_ranking(0, "0\n") == []


def test_goal_lines_format():
    assert goal_lines(["A( x ) ▶₀ #i", "!KU( <a,\n b> ) @ #vk"]) == "0: A( x ) ▶₀ #i\n1: !KU( <a, b> ) @ #vk\n"
    assert goal_lines([]) == ""


def test_recorded_tutorial_calls_match_tamarins(tutorial, tmp_path, shared_dir):
    """Acceptance: prove Client_auth with O and a recording oracle; the multiset of goal lists (variables
    renamed by first occurrence in each call) equals Tamarin's oracle_samples/Tutorial_Client_auth.txt."""
    oracle = Oracle(str(_oracle(tmp_path)))
    r = prove(tutorial, tutorial.lemma("Client_auth"), 300, "O", oracle=oracle)
    assert r.verdict == VERIFIED
    ours = collections.Counter(_calls(tmp_path / "log.txt"))
    theirs = collections.Counter(_calls(shared_dir / "protocols" / "oracle_samples" / "Tutorial_Client_auth.txt"))
    assert sum(theirs.values()) == 8 and () in theirs  # the root call (before simplify) is empty
    assert ours == theirs, (ours - theirs, theirs - ours)
    assert oracle.calls == 8


def test_o_sends_age_order_and_O_sends_s_order(tutorial, tmp_path):
    lem = tutorial.lemma("Client_auth")
    ((_, st),) = apply(initial_system(tutorial, lem), Method("simplify"))
    for h, log in (("o", "o.txt"), ("O", "O.txt")):
        prove(tutorial, lem, 3, h, oracle=Oracle(str(_oracle(tmp_path, "or_" + h, log=log))))
        second = (tmp_path / log).read_text(encoding="utf-8").split("### lemma=Client_auth\n")[2]
        want = [g.text for g in rank(st, "C" if h == "o" else "s")]
        assert second == goal_lines(want)


def test_reversing_oracle_changes_the_proof_and_never_a_wrong_verdict(tutorial, tmp_path):
    answer = "n = sum(1 for _ in data.splitlines())\nprint('\\n'.join(str(i) for i in reversed(range(n))))"
    lem = tutorial.lemma("Client_auth")
    rev = prove(tutorial, lem, 12, "O", oracle=Oracle(str(_oracle(tmp_path, answer=answer))))
    plain = prove(tutorial, lem, 300, "s")
    assert plain.verdict == VERIFIED and rev.verdict in (VERIFIED, INCOMPLETE)
    first = rev.tree.cases[0][1].method  # the first solve after simplify
    assert first != plain.tree.cases[0][1].method and first.startswith("solve( !KU( h(k) )")
    if rev.verdict == VERIFIED:
        assert check_proof(tutorial, lem, rev.tree).ok


def test_identity_oracle_with_o_gives_the_C_proof(tutorial, tmp_path):
    lem = tutorial.lemma("Client_auth")
    o = prove(tutorial, lem, 300, "o", oracle=Oracle(str(_oracle(tmp_path))))
    c = prove(tutorial, lem, 300, "C")
    assert (o.verdict, o.steps) == (c.verdict, c.steps)
    assert script(o.tree) == script(c.tree)


def test_failing_oracle_is_a_one_line_user_error(tutorial, tmp_path):
    bad = _oracle(tmp_path, "bad", answer="sys.stderr.write('boom\\n'); sys.exit(3)")
    with pytest.raises(UserError, match=r"exited with status 3 \(lemma Client_auth\): boom") as e:
        prove(tutorial, tutorial.lemma("Client_auth"), 50, "O", oracle=Oracle(str(bad)))
    assert "\n" not in str(e.value)


def test_missing_or_non_executable_oracle(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        Oracle(str(tmp_path / "nope"))
    p = tmp_path / "plain"
    p.write_text("#!/bin/sh\n")
    p.chmod(0o644)
    with pytest.raises(UserError, match="not executable"):
        Oracle(str(p))


def test_default_oracle_location(tmp_path, monkeypatch):
    theory = tmp_path / "T.spthy"
    theory.write_text("")
    (tmp_path / "T.oracle").write_text("")
    assert find_oracle(str(theory), None) == str(tmp_path / "T.oracle")
    assert find_oracle(str(theory), "given") == "given"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="needs an oracle"):
        find_oracle(str(tmp_path / "Other.spthy"), None)
