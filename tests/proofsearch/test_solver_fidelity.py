"""Solver fidelity: case splits and closures as Tamarin makes them (issue 3, guided replay).

Each test follows Tamarin's own proof (../shared/protocols/proofs/) to one step and checks the cases that our
solver produces there, or walks a whole small proof; the hand-made theories check the rule alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from quietrl.proofsearch import parse_file, parse_theory
from quietrl.proofsearch.constraints import _injective_tags
from quietrl.proofsearch.proofcheck import analyzed_proofs, check_proof, parse_script
from quietrl.proofsearch.render import normalise_goal
from quietrl.proofsearch.system import apply, initial_system, methods
from quietrl.proofsearch.types import Sort, Var


def _method(text: str, offered):
    """Our method for Tamarin's step ``text`` (as the conformance benchmark matches them)."""
    import re

    keys = (lambda t: " ".join(t.split()), lambda t: re.sub(r"\.\d+", "", " ".join(t.split())), normalise_goal)
    for key in keys:
        hits = [m for m in offered if key(m.text()) == key(text)]
        if hits:
            return hits[0]
    raise AssertionError(f"{text} not offered; ours: {[m.text() for m in offered]}")


def _tamarin(protocols: Path, rel: str, lemma: str):
    theory = parse_file(protocols / rel)
    analyzed = protocols / "proofs" / rel.replace(".spthy", "_analyzed.spthy")
    text = dict(analyzed_proofs(analyzed.read_text(encoding="utf-8")))[lemma]
    return theory, theory.lemma(lemma), parse_script(text)


def _cases_at(protocols: Path, rel: str, lemma: str, path: list[str]):
    """Follow Tamarin's proof of ``lemma`` along the case names ``path``; then execute Tamarin's next step:
    (our case names there, Tamarin's case names there)."""
    theory, lem, node = _tamarin(protocols, rel, lemma)
    state = initial_system(theory, lem, "s")
    for name in path + [None]:
        cases = dict(apply(state, _method(node.method, methods(state))))
        if name is None:
            return sorted(cases), sorted(n for n, _ in node.cases)
        state, node = cases[name], dict(node.cases)[name]


def _agreeing_walk(protocols: Path, rel: str, lemma: str) -> None:
    """Every step of Tamarin's proof: the same cases, and every leaf closed for the same reason."""
    theory, lem, tam = _tamarin(protocols, rel, lemma)

    def walk(state, node, where):
        if node.method is None:
            want = "solved" if node.leaf == "solved" else f"contradictory {node.note}"
            got = "solved" if state.status == "solved" else f"{state.status} {state.constraints.contradiction}"
            assert got == want, where
            return
        cases = dict(apply(state, _method(node.method, methods(state))))
        assert sorted(cases) == sorted(n for n, _ in node.cases), (where, node.method)
        for name, child in node.cases:
            walk(cases[name], child, where + [name])

    walk(initial_system(theory, lem, "s"), tam, [])


def test_refined_source_drops_the_disjunction_without_a_partial_deconstruction(protocols):
    # R_1's source for St_R_1 has no open chain: Tamarin does not split the [sources] lemma's disjunction.
    ours, theirs = _cases_at(protocols, "classic/NSPK3.spthy", "injective_agree", ["", "R_2"])
    assert ours == theirs == ["R_1"]


def test_deconstruction_to_a_message_variable_is_an_open_chain_not_a_unification(protocols):
    # I_2 sends aenc{'3', nr}: reaching nr gives an open chain (killed by the refinement), not nr := goal.
    ours, theirs = _cases_at(protocols, "classic/NSPK3.spthy", "nonce_secrecy",
                             ["", "R_2_case_1", "I_2", "Reveal_ltk"])
    assert theirs == ["I_2"] and "I_2" in ours and not any(n.startswith("I_2_case") for n in ours)


def test_variant_made_reducible_by_an_equation_dies_in_the_step(protocols):
    # S_2's Eq(verify(signature, ..), true) makes its first variant reducible: only one S_2 case (N1).
    ours, theirs = _cases_at(protocols, "classic/TLS_Handshake.spthy", "injective_agree", [""])
    assert ours == theirs == ["C_3", "S_2"]


@pytest.mark.parametrize("rel,lemma", [("classic/NSPK3.spthy", "types"),
                                       ("loops/Minimal_Typing_Example.spthy", "sources_assertion"),
                                       ("loops/Minimal_Loop_Example.spthy", "Start_before_Loop"),
                                       ("loops/JCS12_Typing_Example.spthy", "typing_assertion"),
                                       ("loops/Minimal_Loop_Example.spthy", "Stop_unique"),
                                       ("csf12/KAS1.spthy", "KAS1_key_secrecy"),
                                       ("loops/Minimal_Loop_Example.spthy", "Loop_before_Stop"),
                                       ("loops/Minimal_Create_Use_Destroy.spthy", "Destroy_charn"),
                                       ("classic/NSLPK3_untagged.spthy", "nonce_secrecy")])
def test_whole_proofs_agree_with_tamarin(protocols, rel, lemma):
    # NSPK3 types: induction, last(#i) decided by the ordering, a KU of an open chain's variable before
    # its sender closing as cyclic; the others: induction and sources on small loops. Stop_unique needs the
    # fresh ordering (the node with Fr(~n) precedes every node with ~n in a premise). KAS1: split ids
    # counted over every placed rule (splitEqs(1)), source cases that the context contradicts saturated
    # on (two Sessk_reveal leaves), and a cycle printed before "from formulas". Loop_before_Stop: the fresh
    # ordering's route (Start's single A(~n) feeds Stop, so a Loop node with ~n comes after that Stop), added
    # before the hypothesis is evaluated, closes a leaf "from formulas", not as a cycle. Destroy_charn:
    # #i = #j between time points decided by the ordering (false when #i < #j), not merged into a cycle.
    # NSLPK3_untagged: its [sources, reuse] lemma refines a source and is then instantiated afresh on the
    # source's nodes (Tamarin's removeFormulas drops the source's case splits, solved or not), so R_1's
    # source case shows the lemma's disjunction unsplit; the context's own instances and splits stay.
    _agreeing_walk(protocols, rel, lemma)


SPLIT_IDS = parse_theory("""theory SplitIds begin
builtins: asymmetric-encryption
rule A: [ Fr(~n) ] --[ Start(~n) ]-> [ Out(~n) ]
rule B: [ In(c), Fr(~k) ] --[ Got(adec(c, ~k)) ]-> [ ]
lemma l: exists-trace "Ex n m #i #j. Start(n) @ i & Got(m) @ j"
end""")


def test_split_ids_count_every_placed_protocol_rule():
    # Simplify places A (one variant: its trivial disjunction still takes split id 0), then B, whose
    # adec gives two variants: Tamarin prints that split as splitEqs(1). Solving it takes id 2.
    lem = SPLIT_IDS.lemma("l")
    (_, state), = apply(initial_system(SPLIT_IDS, lem, "s"), methods(initial_system(SPLIT_IDS, lem, "s"))[0])
    assert [m.text() for m in methods(state)] == ["solve( splitEqs(1) )"]
    for _, case in apply(state, methods(state)[0]):
        assert case.constraints.next_split == 3


def test_premise_of_a_rule_with_variants_is_one_case(protocols):
    # Resp_2's premise Resp_1(..) comes from Resp_1, whose adec gives two variants: one case, the variants
    # left to a split (Tamarin's source places the rule once), not Resp_1_case_1/2.
    ours, theirs = _cases_at(protocols, "csf12/KAS2_original.spthy", "KAS_key_secrecy", ["", "case_1", "Resp_2"])
    assert ours == theirs == ["Resp_1"]


UNIQUE = parse_theory("""theory U begin
rule A: [ Fr(~n) ] --[ Foo('a'), Bar() ]-> [ ]
lemma l: exists-trace "Ex #i. Bar() @ i & ((Ex #j. Foo('b') @ j) | (Ex #j. Foo('a') @ j))"
end""")


def test_action_that_no_rule_produces_kills_its_case_silently():
    state = initial_system(UNIQUE, UNIQUE.lemma("l"), "s")
    (_, state), = apply(state, methods(state)[0])  # simplify
    disj = next(m for m in methods(state) if m.goal.kind == "disjunction")
    # Foo('b') is the action of one rule (a unique action), which cannot make it: case_1 dies without a
    # leaf; case_2 is kept and named by its position.
    assert [name for name, _ in apply(state, disj)] == ["case_2"]


def test_injective_facts_are_the_fresh_threaded_looping_linear_facts(protocols):
    # As Tamarin's header "looping facts with injective instances" lists them: RFID's Device_Init is
    # fresh-threaded but never consumed and concluded by one rule, Artificial's St(x, k) neither.
    assert _injective_tags(parse_file(protocols / "loops" / "Minimal_Loop_Example.spthy")) == {"A"}
    assert _injective_tags(parse_file(protocols / "loops" / "RFID_Simple.spthy")) == {"Device_Alice"}
    assert _injective_tags(parse_file(protocols / "loops" / "Minimal_HashChain.spthy")) == {"Gen", "Loop"}
    assert _injective_tags(parse_file(protocols / "csf12" / "Artificial.spthy")) == frozenset()
    assert _injective_tags(parse_file(protocols / "Tutorial.spthy")) == frozenset()


VARIANTS = parse_theory("""theory V begin
builtins: symmetric-encryption
rule Key: [ Fr(~k) ] --> [ !Key(~k) ]
rule Recv: let m = sdec(c, ~k) in [ !Key(~k), In(c) ] --[ Got(m) ]-> [ ]
lemma l: "All x #i. Got(x) @ i ==> F"
end""")


def test_unique_action_of_a_rule_with_variants_is_placed_with_a_variant_split():
    # Got is the action of one rule (Recv, two variants: c irreducible under sdec, or c = senc(m, ~k)).
    # Tamarin's simplification places Recv at #i with sdec(c, ~k) abstracted by a variable z and files
    # the variants as splitEqs(0): one system, not one case per variant.
    state = initial_system(VARIANTS, VARIANTS.lemma("l"), "s")
    (name, state), = apply(state, methods(state)[0])  # simplify
    assert name == ""
    nodes = dict(state.constraints.nodes)
    (inst,) = nodes.values()
    assert inst.name == "Recv" and [a.name for a in inst.actions] == ["Got"]
    # sdec(c, ~k) was abstracted by a variable (then unified with the lemma's x): no destructor is left.
    assert isinstance(inst.actions[0].args[0], Var) and "sdec" not in str(inst)
    offered = [m.text() for m in methods(state)]
    assert "solve( splitEqs(0) )" in offered
    split = next(m for m in methods(state) if m.text() == "solve( splitEqs(0) )")
    cases = apply(state, split)
    assert [n for n, _ in cases] == ["split_case_1", "split_case_2"]
    # One case keeps z = sdec(c, ~k) for an unknown c; the other makes c = senc(z, ~k).
    premises = sorted(str(dict(c.constraints.nodes)[next(iter(nodes))].premises) for _, c in cases)
    assert sum("senc" in p for p in premises) == 1



SHARED_ACTION = parse_theory("""theory W begin
builtins: symmetric-encryption
rule Key: [ Fr(~k) ] --> [ !Key(~k) ]
rule Recv: [ !Key(~k), In(c) ] --[ Got(c), Eq(sdec(c, ~k), 'ok') ]-> [ ]
rule Other: [ In(c) ] --[ Got(c) ]-> [ ]
restriction eq: "All x y #i. Eq(x, y) @ i ==> x = y"
lemma l: "All x #i. Got(x) @ i ==> F"
end""")


def test_action_goal_places_a_rule_with_variants_once_and_restrictions_settle_its_split():
    # Got is the action of two rules, so it is a proof step (not simplification). Recv has two variants
    # (sdec(c, ~k) irreducible, or c = senc(z, ~k)): Tamarin places it once, sdec(c, ~k) abstracted by z,
    # with the variants as a split filed before the rule's premises. The restriction instance z = 'ok'
    # then leaves one variant (an irreducible sdec(c, ~k) is never 'ok'), applied at once: c = senc('ok', ~k).
    state = initial_system(SHARED_ACTION, SHARED_ACTION.lemma("l"), "s")
    (_, state), = apply(state, methods(state)[0])  # simplify
    step = next(m for m in methods(state) if m.text().startswith("solve( Got("))
    cases = dict(apply(state, step))
    assert sorted(cases) == ["Other", "Recv"]
    recv = cases["Recv"]
    assert not any("splitEqs" in m.text() for m in methods(recv))
    (inst,) = [i for _, i in recv.constraints.nodes if i.name == "Recv"]
    assert str(inst.actions[0]) == "Got( senc('ok', ~k) )"


def test_kas2_accept_is_one_case_per_rule(protocols):
    # Accept is an action of Init_2 and Resp_2, each with variants (adec of a received ciphertext):
    # Tamarin's cases are one per rule, the variants left to splitEqs goals.
    ours, theirs = _cases_at(protocols, "csf12/KAS2_original.spthy", "KAS_key_secrecy", ["", "case_1"])
    assert ours == theirs == ["Init_2", "Resp_2"]


def test_tls_server_rule_with_verify_check_keeps_one_variant(protocols):
    # S_2's Eq(verify(signature, ..), true) acts on its variant split as soon as S_2 is placed for the
    # action goal Commit: pkC = pk(x) right away, as Tamarin prints !Pk( $C, pk(x) ).
    ours, theirs = _cases_at(protocols, "classic/TLS_Handshake.spthy", "injective_agree", ["", "S_2", "S_1"])
    assert ours == theirs == ["Register_pk"]


def test_variant_split_reunified_by_a_substitution_lists_the_reducing_variant_first(protocols):
    # Init_2's split (m2 = adec(c2, ~lkI)) was filed with c2 unknown; Match then bound c2 to an aenc. Tamarin
    # re-sorts the re-unified variants: split_case_1 is the one where adec reduces (both splits here), so its
    # next goal is the KU of the key with the decrypted nonces ~m1 and ~m2 in clear.
    path = ["", "case_1", "Init_2", "Init_1", "Resp_1", "Register_pk", "Register_pk", "Init_2", "Init_1",
            "split_case_1", "split_case_1"]
    ours, theirs = _cases_at(protocols, "csf12/KAS2_original.spthy", "KAS_key_secrecy", path)
    assert "c_KDF" in ours and "c_KDF" in theirs


TOTAL = parse_theory("""theory N begin
rule R: [ Fr(~n) ] --[ A(~n) ]-> [ ]
lemma total: "All x y #i #j. A(x) @ i & A(y) @ j ==> #i < #j | #j < #i | x = y"
end""")


def test_negated_ordering_of_two_nodes_of_one_rule_splits_into_equal_or_reversed():
    from quietrl.proofsearch.prover import VERIFIED, prove

    state = initial_system(TOTAL, TOTAL.lemma("total"), "s")
    (_, state), = apply(state, methods(state)[0])  # simplify
    # ¬(#i < #j) between two R nodes (maybe one node): Tamarin's S_¬,< goal #i = #j ∨ #j < #i.
    goal = methods(state)[0]
    assert goal.text() == "solve( (#i = #j)  ∥ (#j < #i) )"
    cases = dict(apply(state, goal))
    # #i = #j makes one node of two R instances: their fresh names unify, so x = y contradicts ¬(x = y)
    # (a bare renaming of the node variables would drop one instance and leave a spurious trace).
    assert cases["case_1"].constraints.contradiction == "from formulas"
    # #j < #i against ¬(#j < #i), whose goal #j = #i ∨ #i < #j has both atoms false under #j < #i (Tamarin's
    # atom valuation decides #j = #i by the ordering too; merging the nodes would print a cycle instead)
    assert cases["case_2"].constraints.contradiction == "from formulas"
    r = prove(TOTAL, TOTAL.lemma("total"), 50, "s")
    assert r.verdict == VERIFIED and r.tree.size() == 4


def test_minimal_hashchain_settles_every_lemma_within_100_steps(protocols):
    # Needs the two behaviours above: the helper lemma's induction hypothesis yields ¬(#y < #vr) between two
    # Check nodes, and the case #y = #vr merges them (Tamarin: 48 steps; ours 78).
    from quietrl.proofsearch.prover import VERIFIED, prove_all

    theory = parse_file(protocols / "loops" / "Minimal_HashChain.spthy")
    results = prove_all(theory, max_steps=100)
    assert [(r.lemma, r.verdict) for r in results] == [(lem.name, VERIFIED) for lem in theory.lemmas]
    helper = next(r for r in results if r.lemma == "Helper_Loop_and_success")
    report = check_proof(theory, theory.lemma(helper.lemma), helper.tree)
    assert report.ok, report


def test_induction_hypothesis_lists_last_atoms_innermost_bound_first(protocols):
    # "All k #i #j. Secret(k) @ i & KU(k) @ j ==> F": Tamarin's hypothesis reads (last(#j)) ∥ (last(#i)), so
    # case_1 is last(#j). The KU time point merged with the c_senc one keeps the smaller name (#j, not
    # #vk.1), as Tamarin orients a pair of variables, and the case closes with Tamarin's reason.
    theory, lem, node = _tamarin(protocols, "loops/Minimal_KeyRenegotiation.spthy", "secrecy")
    root = initial_system(theory, lem, "s")
    step = dict(apply(root, methods(root)[0]))["non_empty_trace"]  # induction
    disj = next(m for m in methods(step) if m.goal.kind == "disjunction")
    assert disj.text() == "solve( (last(#j))  ∥ (last(#i)) )"
    assert dict(apply(step, disj))["case_1"].constraints.last == Var("j", 0, Sort.NODE)
    path = ["non_empty_trace", "case_1", "Receive", "c_senc"]
    state = root
    for name in path:
        state, node = dict(apply(state, _method(node.method, methods(state))))[name], dict(node.cases)[name]
    assert node.note == state.constraints.contradiction == "node #i after last node #j"


def test_ku_goal_on_a_protocol_node_has_no_case(protocols):
    # In case last(#i) the hypothesis identifies the KU time point with the Receive node: no intruder rule
    # fits there, so solving !KU( ~k ) @ #i leaves no case (Tamarin: "by solve( !KU( ~k ) @ #i )").
    ours, theirs = _cases_at(protocols, "loops/Minimal_KeyRenegotiation.spthy", "secrecy",
                             ["non_empty_trace", "case_2", "Receive", "Send"])
    assert ours == theirs == []


ORDER = parse_theory("""theory ContradictionOrder begin
rule R1: [ ] --[ A() ]-> [ ]
rule R2: [ ] --[ B() ]-> [ ]
lemma l: exists-trace "Ex #i #j. A() @ i & B() @ j & last(#i) & #i < #j & not(#i < #j)"
end""")


def test_from_formulas_is_printed_before_node_after_last():
    # Both hold: ¬(#i < #j) with #i < #j, and #j after the last node #i. Tamarin tests the formulas first.
    root = initial_system(ORDER, ORDER.lemma("l"), "s")
    (_, state), = apply(root, methods(root)[0])
    assert state.status == "contradictory" and state.constraints.contradiction == "from formulas"
