"""Constraint-system API at the root: guarded goal formulas, methods, canonical JSON."""

from __future__ import annotations

import re

import pytest

from quietrl.proofsearch import Sort, Var, parse_file, parse_theory
from quietrl.proofsearch.formulas import goal_formula, show
from quietrl.proofsearch.system import Method, apply, initial_system, methods, theory_fingerprint


def test_client_auth_counterexample_formula(protocols):
    th = parse_file(protocols / "Tutorial.spthy")
    # Tamarin's "guarded formula characterizing all counter-examples" for Client_auth:
    want = ("∃ S k #i. (SessKeyC( S, k ) @ #i) ∧ (∀ #a. (AnswerRequest( S, k ) @ #a) ⇒ ⊥) ∧ "
            "(∀ #r. (LtkReveal( S ) @ #r) ⇒ ¬(#r < #i))")
    assert show(goal_formula(th.lemma("Client_auth"))) == want


def test_loop_counterexample_formula(protocols):
    th = parse_file(protocols / "loops" / "Minimal_Loop_Example.spthy")
    assert show(goal_formula(th.lemma("Start_before_Loop"))) == \
        "∃ x #j. (Loop( x ) @ #j) ∧ ∀ #i. (Start( x ) @ #i) ⇒ ¬(#i < #j)"
    assert show(goal_formula(th.lemma("Stop_unique"))) == "∃ x #i #j. (Stop( x ) @ #j) ∧ (Stop( x ) @ #i) ∧ ¬(#i = #j)"


THEORY = """theory M begin
rule Start: [ Fr(x) ] --[ Start(x) ]-> [ A(x) ]
rule Loop:  [ A(x) ]  --[ Loop(x)  ]-> [ A(x) ]
restriction r: "All x #i. Loop(x) @ i ==> Ex #j. Start(x) @ j"
lemma plain: "All x #j. Loop(x) @ j ==> (Ex #i. Start(x) @ i & i < j)"
lemma ind [use_induction]: "All x #j. Loop(x) @ j ==> (Ex #i. Start(x) @ i & i < j)"
lemma withlast [use_induction]: "All x #j. Loop(x) @ j ==> last(#j)"
end"""


def test_root_methods_and_induction_ranking():
    th = parse_theory(THEORY)
    assert methods(initial_system(th, th.lemma("plain"))) == [Method("simplify"), Method("induction")]
    assert methods(initial_system(th, th.lemma("ind"))) == [Method("induction"), Method("simplify")]
    # Induction needs a last-free formula.
    assert methods(initial_system(th, th.lemma("withlast"))) == [Method("simplify")]


def test_method_values_and_apply_contract():
    th = parse_theory(THEORY)
    s = initial_system(th, th.lemma("plain"))
    assert Method("simplify").text() == "simplify"
    with pytest.raises(ValueError):
        Method("solve")
    with pytest.raises(ValueError):  # not offered: the formula mentions last
        apply(initial_system(th, th.lemma("withlast")), Method("induction"))
    ((name, nxt),) = apply(s, Method("simplify"))
    # Start's Fr(~x) precedes Loop's premise A(~x) (fresh ordering): "no Start before j" is false at once.
    assert name == "" and nxt.simplified and nxt.status == "contradictory"
    assert nxt.constraints.contradiction == "from formulas"
    ((name, nxt),) = apply(initial_system(th, th.lemma("withlast")), Method("simplify"))
    assert name == "" and nxt.simplified and nxt.status == "open"
    assert methods(nxt) == [Method("solve", g) for g in nxt.goals]
    cases = apply(initial_system(th, th.lemma("ind")), Method("induction"))
    assert [name for name, _ in cases] == ["empty_trace", "non_empty_trace"]
    assert cases[0][1].status == "contradictory"  # no Loop action in the empty trace
    hyp = show(cases[1][1].formulas[1])
    assert "last(#j)" in hyp and "¬(last(#i))" in hyp
    ku = parse_theory("theory KU begin\nbuiltins: hashing\nrule R: [ In(h(x)) ] --[ Got(x) ]-> [ ]\n"
                      'lemma l: "All x #i. Got(x) @ i ==> F"\nend')
    st = apply(initial_system(ku, ku.lemma("l")), Method("simplify"))[0][1]
    assert [g.text for g in st.goals] == ["!KU( h(x) ) @ #vk"]
    cases = apply(st, methods(st)[0])
    # Nothing is ever sent, so the intruder can only construct h(x) (c_h); the step is exhaustive.
    assert [name for name, _ in cases] == ["c_h"]
    assert cases[0][1].constraints.exhaustive and cases[0][1].status == "solved"


def test_json_is_canonical_and_fingerprinted():
    th1 = parse_theory(THEORY, "a.spthy")
    th2 = parse_theory(THEORY.replace("rule Start", "// a comment\nrule Start"), "b.spthy")
    s1, s2 = initial_system(th1, th1.lemma("plain")), initial_system(th2, th2.lemma("plain"))
    assert theory_fingerprint(th1) == theory_fingerprint(th2)
    assert s1.to_json() == s2.to_json()
    th3 = parse_theory(THEORY.replace("Fr(x)", "Fr(y)").replace("A(x) ]\nrule Loop", "A(y) ]\nrule Loop")
                       .replace("Start(x) ]->", "Start(y) ]->"))
    assert theory_fingerprint(th3) != theory_fingerprint(th1)


def _simplified(th, lemma):
    ((_, st),) = apply(initial_system(th, th.lemma(lemma)), Method("simplify"))
    return st


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"\.\d+", ".N", text)).strip()


def test_simplify_matches_oracle_sample(protocols):
    """The second oracle call for Tutorial's Client_auth lists the goals of the system after simplify."""
    blocks = (protocols / "oracle_samples" / "Tutorial_Client_auth.txt").read_text(encoding="utf-8")
    calls = [b.strip().splitlines() for b in blocks.split("### lemma=Client_auth")[1:]]
    assert calls[0] == []  # the root: no goals before simplify
    want = [_norm(line.split(": ", 1)[1]) for line in calls[1]]
    th = parse_file(protocols / "Tutorial.spthy")
    st = _simplified(th, "Client_auth")
    assert [_norm(g.text) for g in st.goals] == want
    assert [n for n, _ in st.constraints.nodes] == [Var("i", 0, Sort.NODE)]


FIRST_STEPS = [  # (theory, lemma, Tamarin's first solve after simplify, from proofs/)
    ("Tutorial.spthy", "Client_session_key_secrecy", "Client_1( S, k ) ▶₀ #i"),
    ("classic/NSPK3.spthy", "nonce_secrecy", "Secret( A, B, s ) ▶₀ #i"),
    ("classic/NSPK3.spthy", "injective_agree", "Commit( actor, peer, params ) @ #i"),
    ("loops/Minimal_Loop_Example.spthy", "Start_before_Stop", "A( x ) ▶₀ #j"),
    ("loops/Minimal_Loop_Example.spthy", "Stop_unique", "(#i < #j)  ∥ (#j < #i)"),
    ("loops/Minimal_Typing_Example.spthy", "Public_part_public", "!Key( k ) ▶₀ #i"),
    ("classic/TLS_Handshake.spthy", "session_key_secrecy", "(∃ #i. (K( keyS ) @ #i))  ∥ (∃ #i. (K( keyC ) @ #i))"),
]


@pytest.mark.parametrize("theory, lemma, goal", FIRST_STEPS)
def test_first_tamarin_goal_is_offered_after_simplify(protocols, theory, lemma, goal):
    st = _simplified(parse_file(protocols / theory), lemma)
    assert _norm(goal) in [_norm(g.text) for g in st.goals]


def test_simplify_closes_and_solves_small_systems():
    th = parse_theory("""theory H begin
rule Start: [ Fr(x) ] --[ Start(x) ]-> [ A(x) ]
rule Loop:  [ A(x) ]  --[ Loop(x)  ]-> [ A(x) ]
lemma trivial: "All x #i. Loop(x) @ i ==> T"
lemma empty [use_induction]: exists-trace "All x #j. Loop(x) @ j ==> F"
lemma cyc: "All x #i #j. Loop(x) @ i & Loop(x) @ j ==> not(#i < #j & #j < #i)"
lemma ks: exists-trace "Ex m #j. K(m) @ j"
end""")
    assert _simplified(th, "trivial").status == "contradictory"
    assert _simplified(th, "trivial").constraints.contradiction == "from formulas"
    assert _simplified(th, "empty").status == "solved"  # the empty trace satisfies it
    assert _simplified(th, "cyc").constraints.contradiction == "cyclic"
    ks = _simplified(th, "ks")
    # K(m) @ #j places an isend node at #j with an earlier KU goal.
    (node, inst), = ks.constraints.nodes
    assert node == Var("j", 0, Sort.NODE) and inst.name == "isend"
    assert [g.text for g in ks.constraints.open_goals()] == ["!KU( m ) @ #vk"]
    assert ks.goals == () and ks.status == "solved"  # KU of a message variable: any message will do
    assert (Var("vk", 0, Sort.NODE), node) in ks.constraints.less


def test_restriction_instantiated_by_new_action():
    th = parse_theory("""theory E begin
functions: f/1
rule R: [ In(x) ] --[ Eq(x, f('a')), Got(x) ]-> [ ]
restriction eq: "All a b #i. Eq(a, b) @ i ==> a = b"
lemma l: exists-trace "Ex y #i. Got(y) @ i"
end""")
    st = _simplified(th, "l")
    assert [g.text for g in st.goals] == ["!KU( f('a') ) @ #vk"]


def _proof_files(protocols):
    return sorted((protocols / "proofs").rglob("*_analyzed.spthy"))


def _source_of(protocols, proof):
    rel = proof.relative_to(protocols / "proofs")
    return protocols / rel.parent / rel.name.replace("_analyzed", "")


def test_guarded_formulas_print_as_tamarin(protocols):
    """Every "guarded formula characterizing ..." block of Tamarin's proofs equals ours (whitespace aside)."""
    def norm(s):
        return re.sub(r"\s+", " ", s).replace("( ", "(").replace(" )", ")").strip()

    checked = 0
    for proof in _proof_files(protocols):
        th = parse_file(_source_of(protocols, proof))
        text = proof.read_text(encoding="utf-8")
        for lem in th.lemmas:
            m = re.search(r"^lemma " + re.escape(lem.name) + r"\b(?:(?!\nlemma ).)*?guarded formula characterizing all "
                          r"(?:counter-examples|satisfying traces):\n\"(.*?)\"\n\*/", text, re.S | re.M)
            if m:
                assert norm(show(goal_formula(lem))) == norm(m.group(1)), (proof.name, lem.name)
                checked += 1
    assert checked == 64


def test_first_goal_of_every_simplify_proof_is_offered(protocols):
    """For every Tamarin proof that starts with simplify, its first solve( goal ) is among our open goals."""
    checked = 0
    for proof in _proof_files(protocols):
        th = parse_file(_source_of(protocols, proof))
        text = proof.read_text(encoding="utf-8")
        for lem in th.lemmas:
            m = re.search(r"^lemma " + re.escape(lem.name) + r"\b(?:(?!\nlemma ).)*?\n\*/\nsimplify\nsolve\((.*?)\)\s*\n\s*"
                          r"(?:case|by|SOLVED|next|qed)", text, re.S | re.M)
            if not m:
                continue
            ours = [_norm(g.text) for g in _simplified(th, lem.name).goals]
            assert _norm(m.group(1)) in ours, (proof.name, lem.name, ours)
            checked += 1
    assert checked == 47
