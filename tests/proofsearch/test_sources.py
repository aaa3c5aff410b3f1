"""Sources: loop breakers, saturated source cases, raw vs refined sources, the precomputation limits."""

from __future__ import annotations

import pytest

from quietrl.proofsearch import Method, apply, example_path, initial_system, methods, parse_file, parse_theory
from quietrl.proofsearch.constraints import _theory_tools
from quietrl.proofsearch.prover import VERIFIED, prove_all
from quietrl.proofsearch.sources import SourceLimits, loop_breakers, precompute_sources, refinement_formulas
from quietrl.proofsearch.types import Sort

LOOP = """theory L begin
rule Begin: [ Fr(~n) ] --[ Begin(~n) ]-> [ Ctr(~n, 'z') ]
rule Tick:  [ Ctr(n, c) ] --[ Tick(n, c) ]-> [ Ctr(n, <c, 's'>) ]
rule Done:  [ Ctr(n, c) ] --[ Done(n, c) ]-> [ ]
lemma began: "All n c #i. Done(n, c) @ i ==> Ex #j. Begin(n) @ j & j < i"
end"""

CHAIN = """theory C begin
rule Make: [ Fr(~k) ] --> [ S(~k) ]
rule Pass: [ S(k) ] --> [ T(k) ]
rule Use:  [ T(k) ] --[ Used(k) ]-> [ ]
lemma never_used: "All k #i. Used(k) @ i ==> F"
end"""

# The intruder learns x only by decrypting with a key that needs a Leak: the sent ciphertext's partial
# deconstruction through the leaked key (a message variable until its premise is solved) dies in the source.
LEAK = """theory K begin
builtins: symmetric-encryption
rule Make:   [ Fr(x), Fr(k) ] --> [ Held(x, k), Out(senc(x, k)), Key(k) ]
rule Finish: [ Held(x, k), In(x) ] --[ Finish(x, k) ]-> [ ]
rule Leak:   [ Key(k) ] --[ Leak(k) ]-> [ Out(k) ]
lemma leak_first: "All k x #i. Finish(x, k) @ i ==> Ex #j. Leak(k) @ j & j < i"
end"""


def _simplified(th, lemma=None, **limits):
    lem = th.lemma(lemma) if lemma else th.lemmas[0]
    return apply(initial_system(th, lem, **limits), Method("simplify"))[0][1]


def test_loop_breakers_break_every_cycle_of_the_premise_graph():
    th = parse_theory(LOOP)
    # Tick's premise is produced by Begin and by Tick itself: the self-loop is broken at Tick's premise 0;
    # Done's premise is on no cycle.
    assert loop_breakers(th) == {"Tick": (0,)}
    assert loop_breakers(parse_theory(CHAIN)) == {}


def test_loop_breakers_match_tamarins_printed_ones(protocols):
    got = {name: loop_breakers(parse_file(protocols / "loops" / f"{name}.spthy"))
           for name in ("Minimal_Loop_Example", "Minimal_KeyRenegotiation", "RFID_Simple",
                        "Minimal_Create_Use_Destroy")}
    # The "// loop breaker: [0]" lines of the regression proofs in ../shared/protocols/proofs/loops/.
    assert got == {"Minimal_Loop_Example": {"Loop": (0,)},
                   "Minimal_KeyRenegotiation": {"Send": (0,), "Receive": (0,)},
                   "RFID_Simple": {"Alice": (0,)}, "Minimal_Create_Use_Destroy": {"Use": (0,)}}


def test_source_case_saturates_premises_but_not_loop_breakers():
    th = parse_theory(CHAIN)
    st = _simplified(th)
    (prem,) = [m for m in methods(st) if m.goal.kind == "premise"]
    assert prem.goal.text.startswith("T( k ) ▶₀")
    # One case, named after the rule that solved the source goal; Pass's own S premise was solved by the
    # saturation (Make placed), so no premise goal is left.
    ((name, case),) = apply(st, prem)
    assert name == "Pass"
    assert sorted(inst.name for _, inst in case.constraints.nodes) == ["Make", "Pass", "Use"]
    assert not [g for g in case.goals if g.kind == "premise"]
    # saturation=0 turns the saturation off: S stays a premise goal of the proof.
    st0 = _simplified(th, saturation=0)
    ((_, case0),) = apply(st0, [m for m in methods(st0) if m.goal.kind == "premise"][0])
    assert [g.text.split(" ▶")[0] for g in case0.goals if g.kind == "premise"] == ["S( k )"]

    th = parse_theory(LOOP)
    st = _simplified(th)
    (prem,) = [m for m in methods(st) if m.goal.kind == "premise"]
    cases = dict(apply(st, prem))
    assert sorted(cases) == ["Begin", "Tick"]
    # Tick's Ctr premise is a loop breaker: it stays a goal instead of unrolling the loop.
    assert [g.text.split(" ▶")[0] for g in cases["Tick"].goals if g.kind == "premise"] == ["Ctr( n, c.1 )"]


def test_fresh_premise_refines_a_message_variable_to_the_fresh_sort():
    th = parse_theory(LEAK)
    _, variants = _theory_tools(th)
    (make,) = variants["Make"]
    assert [a.sort for a in make.premises[0].args] == [Sort.FRESH]
    assert str(make.conclusions[1].args[0]) == "senc(~x, ~k)"


def test_partial_deconstruction_dies_inside_the_source_and_the_lemma_is_verified():
    th = parse_theory(LEAK)
    (r,) = prove_all(th, max_steps=40)
    assert r.verdict == VERIFIED

    leaves = []

    def walk(n):
        if n.leaf is not None:
            leaves.append(n.note)
        for _, c in n.cases:
            walk(c)
    walk(r.tree)
    # The Leak case whose Out(k) would have to be deconstructed further dies with the source (Tamarin
    # drops such source cases); no leaf of the proof is an impossible chain.
    assert "impossible chain" not in leaves and leaves


def test_limits_are_validated():
    with pytest.raises(ValueError, match="open_chains"):
        SourceLimits(open_chains=-1)
    with pytest.raises(ValueError, match="saturation"):
        SourceLimits(saturation=-2)
    th = parse_theory(CHAIN)
    assert initial_system(th, th.lemmas[0], open_chains=3, saturation=2).limits == SourceLimits(3, 2)


def test_refined_sources_have_no_partial_deconstructions():
    th = parse_file(example_path("mutant_nslpk_no_responder_id"))
    assert refinement_formulas(th, "types") == frozenset()  # a [sources] lemma uses raw sources
    assert len(refinement_formulas(th, "responder_nonce_secret")) == 2  # the two universals of 'types'
    raw = precompute_sources(th)
    refined = precompute_sources(th, "responder_nonce_secret")
    assert not raw.refined and refined.refined
    # The received nonces of Resp_1/Init_2 are message variables: raw sources deconstruct them partially;
    # refined by the typing lemma, every deconstruction is complete.
    assert raw.partial_deconstructions > 0
    assert refined.partial_deconstructions == 0
    assert refined.case_count("!KU( pk(x0) ) @ #i") == 2  # c_pk and Keys' Out
    assert refined.case_count("!Nope( x0 ) ▶₀ #i") is None


def test_refined_source_steps_do_not_depend_on_the_hash_seed():
    import os
    import subprocess
    import sys

    code = ("from quietrl.proofsearch import parse_file, example_path\n"
            "from quietrl.proofsearch.sources import precompute_sources\n"
            "th = parse_file(example_path('mutant_nslpk_no_responder_id'))\n"
            "s = precompute_sources(th, 'responder_nonce_secret')\n"
            "for src in s.items:\n"
            "    for name, c in src.cases:\n"
            "        print(src.goal, name, [g.text for g in c.open_goals()], c.next_age)\n")
    outs = []
    for seed in ("3", "4242"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stderr
        outs.append(r.stdout)
    assert outs[0] == outs[1] and outs[0].count("\n") >= 10
