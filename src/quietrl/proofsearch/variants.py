"""Protocol rules replaced by their variants, so that constraint solving can stay syntactic.

Tamarin computes the variants of each rule as a whole (all of its terms at once) and solves with those;
Tutorial's ``Serv_1`` (which applies ``adec``, ``fst`` and ``snd`` to a received message) has three.
"""

from __future__ import annotations

from quietrl.proofsearch import terms as T
from quietrl.proofsearch.types import Fact, Rule, Signature


def _rule_terms(r: Rule) -> list:
    return [a for f in r.premises + r.actions + r.conclusions for a in f.args]


def rule_variants(rule: Rule, signature: Signature, rewrite: T.RewriteSystem | None = None) -> list[Rule]:
    """The most general variants of ``rule`` modulo the signature's equations, the identity variant first.

    Each variant is the rule instantiated with the variant substitution and normalised; its ``lets`` are
    instantiated too. The list has one element for a rule whose terms contain no destructor.
    """
    R = rewrite or T.RewriteSystem(signature.equations)
    ts = _rule_terms(rule)
    out: list[Rule] = []
    for sigma, _ in R.variants(T.bundle(ts)):
        def inst(facts: tuple[Fact, ...]) -> tuple[Fact, ...]:
            return tuple(Fact(f.name, tuple(R.normalize(T.apply(a, sigma)) for a in f.args), f.persistent,
                              f.annotations, f.pos) for f in facts)
        lets = tuple((v, R.normalize(T.apply(t, sigma))) for v, t in rule.lets)
        out.append(Rule(rule.name, inst(rule.premises), inst(rule.actions), inst(rule.conclusions), lets,
                        rule.attributes, rule.pos))
    return out
