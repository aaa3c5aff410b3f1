"""Guards that keep verdicts sound: trace candidates the replayer refuses or that do not settle the lemma are
rejected, the contradictions ``forbidden chain`` and ``node #j after last node #i`` on hand-made systems, and
the CLI note for a proof closed only by assuming an unestablished earlier lemma."""

from __future__ import annotations

import dataclasses

from click.testing import CliRunner

import quietrl.proofsearch.prover as prover
from quietrl.proofsearch import parse_theory
from quietrl.proofsearch.cli import cli
from quietrl.proofsearch.constraints import ActionGoal, ChainGoal, Constraints, RuleInstance, simplify
from quietrl.proofsearch.prover import FOUND_TRACE, INCOMPLETE, confirm_trace, prove
from quietrl.proofsearch.replay import ReplayResult
from quietrl.proofsearch.system import System, theory_fingerprint
from quietrl.proofsearch.types import Fact, Sort, Var

# ---------------------------------------------------------------- confirm_trace rejects bad candidates

USE = parse_theory("""theory Use begin
rule A: [ Fr(~n) ] --[ Made(~n) ]-> [ St(~n) ]
rule B: [ St(n) ] --[ Used(n) ]-> [ ]
lemma never_used: "All n #i. Used(n) @ i ==> F"
lemma some_use: exists-trace "Ex n #i. Used(n) @ i"
end""")

N = Var("n", 0, Sort.FRESH)
I, J = Var("i", 0, Sort.NODE), Var("j", 0, Sort.NODE)
MAKE = RuleInstance("A", (Fact("Fr", (N,)),), (Fact("Made", (N,)),), (Fact("St", (N,)),))
TAKE = RuleInstance("B", (Fact("St", (N,)),), (Fact("Used", (N,)),), ())


def _candidate(nodes, edges=()) -> System:
    """A solved system (no goals) holding the given nodes: a trace candidate as the prover meets one."""
    cs = Constraints(nodes=tuple(nodes), edges=tuple(edges))
    return System(theory_fingerprint(USE), "never_used", (), (), constraints=cs, simplified=True, at_root=False,
                  theory=USE)


def test_a_genuine_candidate_is_confirmed():
    """Control for the rejections below: A then B, linked by the St edge, replays and violates never_used."""
    why, trace = confirm_trace(USE, USE.lemma("never_used"), _candidate([(J, MAKE), (I, TAKE)], [((J, 0), (I, 0))]))
    assert why == "" and [s.rule for s in trace] == ["A", "B"]


def test_a_candidate_the_replayer_refuses_is_rejected():
    """B alone consumes an St fact nobody produced: the replayer refuses it, although the trace would violate
    never_used and satisfy some_use, so only the replayer guard stands between it and a verdict."""
    lone_use = _candidate([(I, TAKE)])
    for name in ("never_used", "some_use"):
        why, trace = confirm_trace(USE, USE.lemma(name), lone_use)
        assert trace is None and why.startswith("trace candidate rejected by the replayer:"), why


def test_a_candidate_that_does_not_settle_the_lemma_is_rejected():
    """A alone replays fine but uses nothing: it neither violates never_used nor satisfies some_use."""
    made_only = _candidate([(J, MAKE)])
    assert confirm_trace(USE, USE.lemma("never_used"), made_only) == (
        "trace candidate does not violate the lemma", None)
    assert confirm_trace(USE, USE.lemma("some_use"), made_only) == ("trace candidate does not satisfy the lemma", None)


LEAK = parse_theory("""theory Leak begin
rule A: [ Fr(~m) ] --[ Secret(~m) ]-> [ Out(~m) ]
lemma secret: "All m #i. Secret(m) @ i ==> not (Ex #j. K(m) @ j)"
end""")


def test_prove_reports_no_found_trace_when_the_candidate_is_rejected(monkeypatch):
    """The leaked secret is a found trace; with the replayer refusing it, or with the candidate read as the
    empty trace (which does not violate the lemma), the verdict is incomplete and carries no trace."""
    assert prove(LEAK, LEAK.lemmas[0], 40).verdict == FOUND_TRACE
    with monkeypatch.context() as m:
        m.setattr(prover, "replay", lambda theory, trace: ReplayResult(False, "refused for the test"))
        r = prove(LEAK, LEAK.lemmas[0], 40)
    assert r.verdict == INCOMPLETE and r.trace == ()
    assert r.reason == "trace candidate rejected by the replayer: refused for the test"
    with monkeypatch.context() as m:
        m.setattr(prover, "trace_of", lambda theory, cs: [])
        r = prove(LEAK, LEAK.lemmas[0], 40)
    assert r.verdict == INCOMPLETE and r.trace == ()
    assert r.reason == "trace candidate does not violate the lemma"


# ---------------------------------------------------------------- contradictions on hand-made systems

ECHO = parse_theory("""theory Echo begin
rule Fwd: [ In(x) ] --> [ Out(x) ]
end""")

X, M = Var("x"), Var("m", 0, Sort.FRESH)
S, VK, VK1 = Var("s", 0, Sort.NODE), Var("vk", 0, Sort.NODE), Var("vk", 1, Sort.NODE)
FWD = RuleInstance("Fwd", (Fact("In", (X,)),), (), (Fact("Out", (X,)),))


def _chain_system(ku_before_result: bool) -> Constraints:
    """Fwd at #s sends x; an open chain deconstructs x towards ~m for !KU( ~m ) @ #vk, and x itself is known
    to the intruder at #vk.1, before #vk or after it."""
    chain = ChainGoal(S, 0, X, M, VK)
    known = ActionGoal(VK1, Fact("KU", (X,)))
    less = ((S, VK), (VK1, VK)) if ku_before_result else ((S, VK), (VK, VK1))
    return Constraints(nodes=((S, FWD),), less=less, goals=((chain, 0, False), (known, 1, False)), next_age=2)


def test_forbidden_chain_closes_a_chain_from_a_variable_the_intruder_already_knew():
    """Normal form: deconstructing x yields nothing new when KU(x) precedes the chain's result."""
    assert simplify(ECHO, _chain_system(ku_before_result=True)).contradiction == "forbidden chain"
    # Known only after the result is needed: the chain may still be useful, no contradiction.
    assert simplify(ECHO, _chain_system(ku_before_result=False)).contradiction is None


ORDERED = parse_theory("""theory Ordered begin
rule R1: [ ] --[ A() ]-> [ ]
rule R2: [ ] --[ B() ]-> [ ]
end""")

R1 = RuleInstance("R1", (), (Fact("A", ()),), ())
R2 = RuleInstance("R2", (), (Fact("B", ()),), ())


def test_node_after_the_last_node_is_a_contradiction():
    """#i < #j with last(#i) cannot be a trace; the same order with last(#j) can."""
    cs = Constraints(nodes=((I, R1), (J, R2)), less=((I, J),), last=I)
    assert simplify(ORDERED, cs).contradiction == "node #j after last node #i"
    assert simplify(ORDERED, dataclasses.replace(cs, last=J)).contradiction is None


# ---------------------------------------------------------------- CLI: a proof that rests on an unestablished lemma

ASSUMING = """theory S begin
rule A: [ Fr(~n) ] --[ Made(~n) ]-> [ St(~n) ]
rule B: [ St(n) ] --[ Used(n) ]-> [ ]
lemma src [sources]: "All n #i. Used(n) @ i ==> Ex #j. Made(n) @ j & j < i"
lemma bad [sources]: "All n #i. Made(n) @ i ==> F"
lemma later: "All n #i. Used(n) @ i ==> Ex #j. Made(n) @ j"
end
"""


def test_cli_notes_a_proof_closed_only_by_assuming_an_unestablished_lemma(tmp_path):
    """'later' closes at once from the false [sources] lemma 'bad': the CLI says so and reports it incomplete."""
    path = tmp_path / "assuming.spthy"
    path.write_text(ASSUMING, encoding="utf-8")
    r = CliRunner().invoke(cli, ["prove", str(path), "--max-steps", "60"], catch_exceptions=True)
    assert r.exit_code == 0, r.output
    assert "note: later: closed only by assuming unestablished bad" in r.output
    assert "  later (all-traces): analysis incomplete (" in r.output
    assert "  bad (all-traces): falsified - found trace (" in r.output
