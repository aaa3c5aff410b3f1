"""Goal rankings s, S, c, C on a hand-made constraint system whose right order is known."""

from __future__ import annotations

import pytest

from quietrl.proofsearch import parse_theory
from quietrl.proofsearch.constraints import ActionGoal, ChainGoal, Constraints, DisjGoal, PremiseGoal, RuleInstance
from quietrl.proofsearch.ranking import (
    CURRENTLY_DEDUCIBLE,
    LOOP_BREAKER,
    PROBABLY_CONSTRUCTIBLE,
    USEFUL,
    _one_case_symbols,
    _rank,
    rank,
    usefulness,
)
from quietrl.proofsearch.sources import loop_breakers
from quietrl.proofsearch.system import System, initial_system, methods, theory_fingerprint
from quietrl.proofsearch.types import App, Fact, Less, Name, Sort, Var

THEORY = """theory RankT begin
builtins: hashing, signing
functions: secretf/1 [private]
rule Init: [ Fr(~k) ] --> [ Loop(~k), Out(<h(~k), 'x'>) ]
rule Step: [ Loop(x) ] --[ Stepped(x) ]-> [ Loop(h(x)) ]
rule Go: [ F_Go(x), St(x), L_Last(x) ] --> [ ]
lemma l: "All x #i. Stepped(x) @ i ==> F"
end"""


def N(name, idx=0):
    return Var(name, idx, Sort.NODE)


def ku(term, node):
    return ActionGoal(node, Fact("KU", (term,)))


k, n, m = Var("k", 0, Sort.FRESH), Var("n", 0, Sort.FRESH), Var("m", 0, Sort.FRESH)
x, y = Var("x"), Var("y")
G = {
    "ku_h_k": ku(App("h", (k,)), N("vk", 1)),
    "loop": PremiseGoal(N("j"), 0, Fact("Loop", (y,))),
    "stepped": ActionGoal(N("i"), Fact("Stepped", (x,))),
    "disj": DisjGoal((Less(N("i"), N("j")), Less(N("j"), N("i")))),
    "ku_n": ku(n, N("vk", 2)),
    "ku_private": ku(App("secretf", (k,)), N("vk", 3)),
    "ku_public": ku(App("h", (Name(Sort.PUB, "c"),)), N("vk", 4)),
    "ku_h_x": ku(App("h", (x,)), N("vk", 5)),
    "f_go": PremiseGoal(N("g"), 0, Fact("F_Go", (x,))),
    "l_last": PremiseGoal(N("g"), 2, Fact("L_Last", (x,))),
    "st": PremiseGoal(N("g"), 1, Fact("St", (x,))),
    "chain": ChainGoal(N("s"), 1, App("h", (k,)), k, N("vk", 6)),
    "ku_sign": ku(App("sign", (m, k)), N("vk", 7)),
}
AGE_ORDER = list(G)


@pytest.fixture(scope="module")
def theory():
    return parse_theory(THEORY)


def _state(theory, heuristic, extra_less=()):
    nodes = ((N("j"), RuleInstance("Step", (Fact("Loop", (y,)),), (Fact("Stepped", (y,)),),
                                   (Fact("Loop", (App("h", (y,)),)),))),
             (N("s"), RuleInstance("Init", (Fact("Fr", (k,)),), (),
                                   (Fact("Loop", (k,)), Fact("Out", (App("pair", (App("h", (k,)),
                                                                                 Name(Sort.PUB, "x"))),))))))
    cs = Constraints(nodes=nodes, goals=tuple((g, age, False) for age, g in enumerate(G.values())),
                     next_age=len(G), less=tuple(extra_less))
    return System(theory_fingerprint(theory), "l", (), (), constraints=cs, simplified=True, at_root=False,
                  heuristic=heuristic, theory=theory)


def _names(goals):
    by_text = {g.text: name for name, g in G.items()}
    return [by_text[g.text] for g in goals]


def test_loop_breaker_of_the_step_rule(theory):
    assert loop_breakers(theory) == {"Step": (0,)}


def test_usefulness_tags(theory):
    use = usefulness(_state(theory, "s"))
    assert use[G["loop"]] == LOOP_BREAKER
    assert use[G["ku_public"]] == CURRENTLY_DEDUCIBLE
    assert use[G["ku_h_k"]] == CURRENTLY_DEDUCIBLE  # a top-level pair part of Init's Out
    assert use[G["ku_h_x"]] == PROBABLY_CONSTRUCTIBLE
    assert use[G["ku_n"]] == use[G["ku_private"]] == use[G["st"]] == USEFUL
    # Once the goal's time point must precede the sending node, h(~k) is no longer extractible there.
    after = usefulness(_state(theory, "s", extra_less=((N("vk", 1), N("s")),)))
    assert after[G["ku_h_k"]] == USEFUL


def test_C_is_age_order(theory):
    assert _names(rank(_state(theory, "C"))) == AGE_ORDER


def test_c_sorts_by_usefulness_then_age(theory):
    got = _names(rank(_state(theory, "c")))
    assert got == ["stepped", "disj", "ku_n", "ku_private", "f_go", "l_last", "st", "chain", "ku_sign",
                   "loop", "ku_h_x", "ku_h_k", "ku_public"]


def test_s_classes_bands_and_late_facts(theory):
    state = _state(theory, "s")
    got = _names(rank(state))
    sign_then_rest = ["ku_sign"]
    assert got == ["chain", "disj", "f_go", "st", "stepped", "ku_private", "ku_n", *sign_then_rest, "l_last",
                   "loop", "ku_h_x", "ku_h_k", "ku_public"]
    # methods() ranks with the same function.
    assert [mt.goal.text for mt in methods(state)] == [G[name].text for name in got]
    assert _rank(state.goals, "s", state) == rank(state)


def test_S_does_not_delay_loop_breakers(theory):
    got = _names(rank(_state(theory, "S")))
    assert got[:5] == ["chain", "disj", "f_go", "loop", "st"]


def test_o_and_O_presort_with_C_and_s(theory):
    assert rank(_state(theory, "o")) == rank(_state(theory, "C"))
    assert rank(_state(theory, "O")) == rank(_state(theory, "s"))


def test_one_case_source_class_orders_ku_before_sign(theory):
    # With two goals of band 0 outside classes 1-9, a one-case source puts its KU before KU(sign(..)).
    st = _state(theory, "s")
    one = _one_case_symbols(st)
    assert isinstance(one, frozenset)
    cs = Constraints(goals=((ku(App("h", (n,)), N("vk", 8)), 0, False), (G["ku_sign"], 1, False)), next_age=2)
    st2 = System(st.theory_fingerprint, "l", (), (), constraints=cs, simplified=True, at_root=False,
                 heuristic="s", theory=theory)
    first = rank(st2)[0].text
    assert first == ("!KU( h(~n) ) @ #vk.8" if "h" in one else G["ku_sign"].text)


def test_text_only_fallback_keeps_the_old_approximation():
    from quietrl.proofsearch.system import Goal

    goals = (Goal("action", "!KU( h(x) ) @ #vk"), Goal("premise", "St( x ) ▶₀ #i"), Goal("chain", "c"))
    assert [g.text for g in _rank(goals, "s")] == ["c", "St( x ) ▶₀ #i", "!KU( h(x) ) @ #vk"]
    assert _rank(goals, "C") == list(goals)


def test_unknown_heuristic_is_refused(theory):
    with pytest.raises(ValueError, match="unknown heuristic"):
        initial_system(theory, theory.lemma("l"), "z")


def test_tutorial_s_follows_tamarins_first_goals(shared_dir):
    """Tamarin's Client_auth proof solves the Client_1 premise first, then KU( h(~k) )."""
    from quietrl.proofsearch import Method, apply, parse_file

    th = parse_file(shared_dir / "protocols" / "Tutorial.spthy")
    ((_, st),) = apply(initial_system(th, th.lemma("Client_auth")), Method("simplify"))
    assert [m.goal.text for m in methods(st)][:1] == ["Client_1( S, k ) ▶₀ #i"]
    cases = dict(apply(st, methods(st)[0]))
    assert methods(cases["Client_1"])[0].goal.text == "!KU( h(~k) ) @ #vk"
