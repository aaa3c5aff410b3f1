"""Terms: normal forms, matching, sort-aware unification, variants and unification modulo the builtins."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quietrl.proofsearch import parse_theory
from quietrl.proofsearch import terms as T
from quietrl.proofsearch.types import App, Name, Sort, Var, pair
from quietrl.proofsearch.variants import rule_variants

SIG = parse_theory("""theory S begin
builtins: hashing, symmetric-encryption, asymmetric-encryption, signing, revealing-signing
functions: inc/1, dec/1
equations: inc(dec(x)) = x
end""").signature
R = T.RewriteSystem(SIG.equations)

x, y, z, m, k = (Var(n) for n in "xyzmk")
fk, fn = Var("k", 0, Sort.FRESH), Var("n", 0, Sort.FRESH)
pa = Var("A", 0, Sort.PUB)
c = Name(Sort.PUB, "c")
TRUE = App("true")


def f(name, *args):
    return App(name, tuple(args))


def canon_set(substs, keep):
    """Unifiers as a set of canonical tuples over the variables ``keep`` (for comparing up to renaming)."""
    return {T.canonical(T.bundle([T.apply(v, s) for v in keep])) for s in substs}


# ---------------------------------------------------------------- rewriting


@pytest.mark.parametrize("term, nf", [
    (f("sdec", f("senc", m, k), k), m),
    (f("sdec", f("senc", m, k), x), f("sdec", f("senc", m, k), x)),  # wrong key: stuck
    (f("adec", f("aenc", m, f("pk", fk)), fk), m),
    (f("verify", f("sign", m, k), m, f("pk", k)), TRUE),
    (f("revealVerify", f("revealSign", m, k), m, f("pk", k)), TRUE),
    (f("getMessage", f("revealSign", m, k)), m),
    (f("fst", pair(x, y, z)), x),
    (f("snd", pair(x, y, z)), pair(y, z)),
    (f("inc", f("dec", f("fst", pair(x, y)))), x),
    (f("h", f("sdec", f("senc", f("snd", pair(x, y)), k), k)), f("h", y)),
])
def test_normal_forms(term, nf):
    assert R.normalize(term) == nf
    assert R.is_normal(nf)


def test_match_and_sorts():
    assert T.match(f("senc", x, y), f("senc", c, fk)) == {x: c, y: fk}
    assert T.match(f("senc", x, x), f("senc", c, fk)) is None  # non-linear pattern
    assert T.match(fn, c) is None  # a fresh variable never matches a public name
    assert T.match(pa, c) == {pa: c}
    assert T.match(x, Var("i", 0, Sort.NODE)) is None


def test_syntactic_unification_with_sorts():
    assert T.unify1(f("pk", x), f("pk", fk)) == {x: fk}
    assert T.unify1(fk, pa) is None
    assert T.unify1(fk, f("h", x)) is None
    assert T.unify1(x, f("h", x)) is None  # occurs check
    s = T.unify1(pair(x, f("h", y)), pair(f("h", z), x))
    assert T.apply(pair(x, f("h", y)), s) == T.apply(pair(f("h", z), x), s)
    assert T.unify1(Var("i", 0, Sort.NODE), x) is None
    assert T.unify1(fk, Name(Sort.FRESH, "n")) == {fk: Name(Sort.FRESH, "n")}


# ---------------------------------------------------------------- variants


def test_serv1_has_three_variants():
    th = parse_theory("""theory Tut begin
functions: h/1, aenc/2, adec/2, pk/1
equations: adec(aenc(m, pk(k)), k) = m
rule Serv_1:
  [ !Ltk($S, ~ltkS), In(request) ]
  --[ Eq(fst(adec(request, ~ltkS)), '1'), AnswerRequest($S, snd(adec(request, ~ltkS))) ]->
  [ Out(h(snd(adec(request, ~ltkS)))) ]
end""")
    vs = rule_variants(th.rule("Serv_1"), th.signature)
    assert len(vs) == 3
    requests = [v.premises[1].args[0] for v in vs]
    assert requests[0] == Var("request")
    shapes = {str(T.canonical(r)) for r in requests[1:]}
    assert shapes == {"aenc(v0, pk(~v1))", "aenc(<v0, v1>, pk(~v2))"}
    # In the pair variant the Eq action is fully reduced.
    paired = next(v for v in vs[1:] if isinstance(v.premises[1].args[0].args[0], App))
    assert paired.actions[0].args[0] == paired.premises[1].args[0].args[0].args[0]


def test_variants_of_constructor_term_are_trivial():
    assert R.variants(f("senc", pair(x, y), f("h", k))) == [({}, f("senc", pair(x, y), f("h", k)))]


def test_variants_of_nested_destructors():
    vs = R.variants(f("fst", f("sdec", x, k)))
    # identity; x = senc(m, k); x = senc(<a, b>, k)
    assert len(vs) == 3
    for sigma, u in vs:
        assert u == R.normalize(T.apply(f("fst", f("sdec", x, k)), sigma))


# ---------------------------------------------------------------- unification modulo E (hand-computed sets)


def test_unify_sdec():
    us = R.unify(f("sdec", x, k), m)
    assert canon_set(us, [x, k, m]) == canon_set([{m: f("sdec", x, k)}, {x: f("senc", m, k)}], [x, k, m])


def test_unify_fst():
    assert canon_set(R.unify(f("fst", x), c), [x]) == canon_set([{x: pair(c, y)}], [x])


def test_unify_adec():
    us = R.unify(f("adec", x, fk), Name(Sort.PUB, "m"))
    assert us == [{x: f("aenc", Name(Sort.PUB, "m"), f("pk", fk))}]


def test_unify_verify_true():
    us = R.unify(f("verify", x, m, f("pk", k)), TRUE)
    assert canon_set(us, [x, m, k]) == canon_set([{x: f("sign", m, k)}], [x, m, k])


def test_unify_reveal_signing():
    us = R.unify(f("getMessage", x), c)
    assert canon_set(us, [x]) == canon_set([{x: f("revealSign", c, k)}], [x])


def test_unify_user_equation():
    us = R.unify(f("inc", x), y)
    assert canon_set(us, [x, y]) == canon_set([{y: f("inc", x)}, {x: f("dec", y)}], [x, y])


def test_unify_fails_modulo_e():
    assert R.unify(f("h", x), f("senc", x, y)) == []
    assert R.unify(f("sdec", f("senc", x, k), k), f("h", x)) == []  # x = h(x) after reduction


def test_unify_is_sort_aware():
    assert canon_set(R.unify(f("fst", x), fk), [x]) == canon_set([{x: pair(fk, y)}], [x])
    assert R.unify(f("pk", fn), f("pk", pa)) == []


# ---------------------------------------------------------------- property: every unifier unifies modulo E

VARS = [x, y, z, fk, pa]
CONSTS = [c, Name(Sort.FRESH, "n"), TRUE]
UNARY = ["h", "pk", "fst", "snd", "inc", "dec", "getMessage"]
BINARY = ["pair", "senc", "sdec", "aenc", "adec", "sign", "revealSign"]


def _terms(max_leaves: int):
    leaf = st.sampled_from(VARS + CONSTS)
    return st.recursive(
        leaf,
        lambda sub: st.one_of(
            st.builds(lambda g, a: App(g, (a,)), st.sampled_from(UNARY), sub),
            st.builds(lambda g, a, b: App(g, (a, b)), st.sampled_from(BINARY), sub, sub),
            st.builds(lambda a, b: App("verify", (a, b, App("pk", (fk,)))), sub, sub),
        ),
        max_leaves=max_leaves,
    )


@settings(deadline=None, max_examples=150, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(_terms(5), _terms(4))
def test_every_unifier_unifies_modulo_e(s, t):
    for rho in R.unify(s, t):
        assert R.normalize(T.apply(s, rho)) == R.normalize(T.apply(t, rho))
        assert all(R.is_normal(v) for v in rho.values())


@settings(deadline=None, max_examples=150, derandomize=True)
@given(_terms(6))
def test_variants_are_sound_and_include_identity(t):
    vs = R.variants(t)
    assert vs[0] == ({}, R.normalize(t))
    for sigma, u in vs:
        assert u == R.normalize(T.apply(t, sigma))
        assert set(sigma) <= set(T.vars_of(t))


@settings(deadline=None, max_examples=100, derandomize=True)
@given(_terms(5), st.sampled_from(VARS + CONSTS))
def test_unification_is_complete_for_ground_instances(s, value):
    """If s{x:=v} =E t{x:=v} for a concrete instance, some returned unifier is more general."""
    rho = {x: value}
    t = T.apply(s, rho)  # so rho (x := value) is an E-unifier of s and t
    us = R.unify(s, t)
    keep = list(T.vars_of_all([s, t]))
    target = [R.normalize(T.apply(v, rho)) for v in keep]
    assert any(T.is_instance([T.apply(v, u) for v in keep], target) for u in us)


def test_normalize_is_idempotent_on_samples():
    t = f("adec", f("aenc", f("fst", pair(f("sdec", f("senc", x, k), k), y)), f("pk", fk)), fk)
    assert R.normalize(t) == x
    assert R.normalize(R.normalize(t)) == x
