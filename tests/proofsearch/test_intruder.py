"""The intruder in normal form: KU construction, intruder fresh names, deconstruction of sent messages,
chains from message variables (pending, then solved), forbidden and impossible chains, merged KU goals."""

from __future__ import annotations

from quietrl.proofsearch import Method, apply, initial_system, methods, parse_theory
from quietrl.proofsearch.constraints import ku_exhaustive
from quietrl.proofsearch.prover import FOUND_TRACE, INCOMPLETE, VERIFIED, prove_all
from quietrl.proofsearch.replay import holds, replay

SECRECY = 'lemma secret: "All m #i. Secret(m) @ i ==> not (Ex #j. K(m) @ j)"\nend'


def _theory(body: str):
    return parse_theory("theory I begin\nbuiltins: symmetric-encryption\n" + body + "\n" + SECRECY)


def _after_simplify(th):
    return apply(initial_system(th, th.lemmas[0]), Method("simplify"))[0][1]


def test_deconstruction_needs_the_key_and_is_exhaustive():
    th = _theory("rule A: [ Fr(~m), Fr(~k) ] --[ Secret(~m) ]-> [ Out(senc(~m, ~k)) ]")
    assert ku_exhaustive(th)
    st = _after_simplify(th)
    (goal,) = [m for m in methods(st) if m.goal.text.startswith("!KU( ~m")]
    cases = apply(st, goal)
    # fresh dies (~m is A's fresh name, DG4); the only case decrypts A's message and needs KU(~k).
    assert [n for n, _ in cases] == ["A"]
    assert any(g.text.startswith("!KU( ~k") for g in cases[0][1].goals)
    (r,) = prove_all(th, max_steps=60)
    assert r.verdict == VERIFIED


def test_leaked_key_gives_a_replayed_attack():
    th = _theory("rule A: [ Fr(~m), Fr(~k) ] --[ Secret(~m) ]-> [ Out(senc(~m, ~k)), Out(~k) ]")
    (r,) = prove_all(th, max_steps=60)
    assert r.verdict == FOUND_TRACE
    assert replay(th, list(r.trace)).ok and not holds(th, list(r.trace), th.lemmas[0].formula)


def test_chain_from_a_message_variable_is_resolved_by_source_saturation():
    th = _theory("rule A: [ Fr(~m) ] --[ Secret(~m) ]-> [ St(<~m, 'c'>) ]\n"
                 "rule B: [ St(x) ] --> [ Out(x) ]")
    st = _after_simplify(th)
    (goal,) = [m for m in methods(st) if m.goal.text.startswith("!KU( ~m")]
    # Raw cases: x is ~m itself (its St premise then has no producer) and a chain from x. Saturating the
    # source solves B's St premise, which binds x and lets the chain (d_0_fst) end at ~m: one case.
    ((name, case),) = apply(st, goal)
    assert name == "B"
    assert not case.constraints.pending_chains() and not any(g.kind == "chain" for g in case.goals)
    assert [inst.name for _, inst in case.constraints.nodes].count("A") == 1
    # With --open-chains 0 the saturation may not solve the chain: it stays an offered goal.
    st0 = _after_simplify_limits(th, open_chains=0)
    ((_, case0),) = apply(st0, goal)
    (chain,) = [m for m in methods(case0) if m.goal.kind == "chain"]
    assert methods(case0)[0] == chain  # chains rank first
    assert [n for n, _ in apply(case0, chain)] == ["d_0_fst"]
    (r,) = prove_all(th, max_steps=100)
    assert r.verdict == FOUND_TRACE and replay(th, list(r.trace)).ok


def _after_simplify_limits(th, **limits):
    return apply(initial_system(th, th.lemmas[0], **limits), Method("simplify"))[0][1]


def _contradictions(tree) -> list[str]:
    """The notes of the contradiction leaves of a proof tree, depth first."""
    found = [tree.note] if tree.leaf == "contradiction" else []
    for _, child in tree.cases:
        found += _contradictions(child)
    return found


def test_impossible_chain_and_verified_secrecy_through_state():
    # The state holds a hash: a chain from x to ~m cannot deconstruct h(~m).
    th = parse_theory("theory H begin\nbuiltins: hashing\n"
                      "rule A: [ Fr(~m) ] --[ Secret(~m) ]-> [ St(h(~m)) ]\n"
                      "rule B: [ St(x) ] --> [ Out(x) ]\n" + SECRECY)
    (r,) = prove_all(th, max_steps=100)
    assert r.verdict == VERIFIED
    # The state holds a public constant: once St( x ) is solved, the chain from x starts at the atom 'c', which
    # is not ~m, so the case closes as an impossible chain. Without source saturation the premise is a proof
    # step of its own and the contradiction shows as a leaf (saturated sources drop the case silently).
    th = parse_theory("theory C begin\n"
                      "rule A: [ Fr(~m) ] --[ Secret(~m) ]-> [ St('c') ]\n"
                      "rule B: [ St(x) ] --> [ Out(x) ]\n" + SECRECY)
    (r,) = prove_all(th, max_steps=100, saturation=0)
    assert r.verdict == VERIFIED
    assert _contradictions(r.tree) == ["impossible chain"]
    ((case_b, step),) = r.tree.cases[0][1].cases
    assert case_b == "B" and step.method == "solve( St( x ) ▶₀ #vr )" and [n for n, _ in step.cases] == ["A"]


def test_echo_of_a_known_message_gives_no_chain():
    # B echoes what it receives: deconstructing a message the intruder sent yields nothing new.
    th = _theory("rule A: [ Fr(~m) ] --[ Secret(~m) ]-> [ ]\nrule B: [ In(x) ] --> [ Out(x) ]")
    (r,) = prove_all(th, max_steps=60)
    assert r.verdict == VERIFIED


def test_intruder_fresh_names_and_merged_ku_goals():
    th = parse_theory("theory F begin\nrule R: [ In(~n) ] --[ Got(~n) ]-> [ ]\n"
                      'lemma e: exists-trace "Ex n #i. Got(n) @ i"\nend')
    (r,) = prove_all(th, max_steps=40)
    assert r.verdict == VERIFIED
    assert [s.rule for s in r.trace] == ["fresh", "R"] and replay(th, list(r.trace)).ok
    # Two receipts of one term need one KU time point (merged goals).
    th2 = parse_theory("theory G begin\nbuiltins: hashing\nrule R: [ In(h(x)), In(h(x)) ] --[ Got(x) ]-> [ ]\n"
                       'lemma l: "All x #i. Got(x) @ i ==> F"\nend')
    st = _after_simplify(th2)
    (goal,) = st.goals
    assert goal.text.startswith("!KU( h(x) ) @ #vk")


def test_s_ranking_prefers_fresh_variables_and_delays_probably_constructible_ku():
    from quietrl.proofsearch.system import Goal, _rank
    goals = (Goal("action", "!KU( h($A) ) @ #vk"), Goal("action", "!KU( aenc(<'1', ~n>, pk(~k)) ) @ #vk.1"),
             Goal("action", "!KU( ~n ) @ #vk.2"), Goal("premise", "St( x ) ▶₀ #i"),
             Goal("disjunction", "(#i < #j)  ∥ (#j < #i)"))
    assert [g.text for g in _rank(goals, "s")] == [
        "(#i < #j)  ∥ (#j < #i)", "St( x ) ▶₀ #i", "!KU( ~n ) @ #vk.2",
        "!KU( aenc(<'1', ~n>, pk(~k)) ) @ #vk.1", "!KU( h($A) ) @ #vk"]
    assert _rank(goals, "C") == list(goals)


def test_earlier_sources_lemmas_are_assumed_and_must_be_established():
    from quietrl.proofsearch.system import assumed_lemmas
    th = parse_theory("""theory S begin
rule A: [ Fr(~n) ] --[ Made(~n) ]-> [ St(~n) ]
rule B: [ St(n) ] --[ Used(n) ]-> [ ]
lemma src [sources]: "All n #i. Used(n) @ i ==> Ex #j. Made(n) @ j & j < i"
lemma bad [sources]: "All n #i. Made(n) @ i ==> F"
lemma later: "All n #i. Used(n) @ i ==> Ex #j. Made(n) @ j"
end""")
    assert [x.name for x in assumed_lemmas(th, th.lemma("later"))] == ["src", "bad"]
    assert assumed_lemmas(th, th.lemma("bad")) == []  # a sources lemma assumes no other sources lemma
    src, bad, later = prove_all(th, max_steps=60)
    assert src.verdict == VERIFIED and bad.verdict == FOUND_TRACE
    # 'later' closes at once from the false 'bad' lemma: that verdict may not count, and no other verdict is
    # known (its closure rests on 'bad'), so it is incomplete, naming only the lemma that is not established.
    assert later.verdict == INCOMPLETE and later.trace == ()
    assert later.reason == "closed only by assuming unestablished bad"
