"""Split goals: an equation with several most general E-unifiers becomes a case split of the equation store
(Tamarin's ``splitEqs(i)``), settled early when a substitution leaves one unifier or none."""

from __future__ import annotations

from quietrl.proofsearch import parse_theory
from quietrl.proofsearch.constraints import Constraints, SplitGoal, goal_kind, simplify, solve
from quietrl.proofsearch.prover import VERIFIED, prove_all
from quietrl.proofsearch.types import Action, App, Conn, Equal, Fact, Name, Quant, Sort, Var

TH = parse_theory("theory S begin\nbuiltins: symmetric-encryption\n"
                  "rule A: [ In(x) ] --[ Got(x) ]-> [ ]\nrule B: [ In(x) ] --[ Got(x) ]-> [ Out(x) ]\nend")
x, k, m = Var("x"), Var("k"), Var("m")
i = Var("i", 0, Sort.NODE)


def _system(*extra):
    """Got(<x, k>) @ #i together with sdec(x, k) = m (and ``extra`` formulas)."""
    f = Conn("&", Action(Fact("Got", (App("pair", (x, k)),)), i), Equal(App("sdec", (x, k)), m))
    for e in extra:
        f = Conn("&", f, e)
    return simplify(TH, Constraints(), [Quant("Ex", (x, k, m, i), f)])


def test_equation_with_two_unifiers_becomes_a_split_goal():
    cs = _system()
    (split,) = [g for g in cs.open_goals() if isinstance(g, SplitGoal)]
    assert goal_kind(split) == "split" and split.text == "splitEqs(0)"
    # m = sdec(x, k) with x arbitrary, or x = senc(m, k') (the decryption reduces).
    assert len(split.cases) == 2
    cases = solve(TH, cs, split)
    assert [n for n, _ in cases] == ["split_case_1", "split_case_2"]
    got = {n: [g.text for g in c.open_goals()] for n, c in cases}
    assert got["split_case_1"] == ["Got( <x, k> ) @ #i"]
    assert got["split_case_2"] == ["Got( <senc(m, k.1), k.1> ) @ #i"]
    for _, c in cases:
        assert c.contradiction is None and not [g for g in c.open_goals() if isinstance(g, SplitGoal)]


def test_split_with_one_unifier_left_is_applied_by_simplification():
    # m = 'a' leaves sdec(x, k) = 'a', whose only unifier is x = senc('a', k'): no split remains.
    cs = _system(Equal(m, Name(Sort.PUB, "a")))
    assert not [g for g in cs.open_goals() if isinstance(g, SplitGoal)]
    assert [g.text for g in cs.open_goals()] == ["Got( <senc('a', k.1), k.1> ) @ #i"]


def test_split_without_unifiers_is_incompatible():
    # One substitution fixes x = 'c' and m = 'a': sdec('c', k) = 'a' has no unifier at all.
    cs = _system(Equal(App("pair", (x, m)), App("pair", (Name(Sort.PUB, "c"), Name(Sort.PUB, "a")))))
    assert cs.contradiction == "incompatible equalities"


def test_restriction_with_a_split_is_proved_through_both_cases():
    th = parse_theory("""theory R begin
builtins: symmetric-encryption
rule Open: [ In(c), In(key) ] --[ Opened(sdec(c, key), c, key) ]-> [ ]
restriction opened_plain: "All p c key #i. Opened(p, c, key) @ i ==> p = 'ok'"
lemma only_ok: "All p c key #i. Opened(p, c, key) @ i ==> p = 'ok'"
end""")
    (r,) = prove_all(th, max_steps=40)
    assert r.verdict == VERIFIED
