"""quietrl.proofsearch: a Tamarin-style backward prover for Diffie-Hellman-free ``.spthy`` theories.

Layers (as in Tamarin): :mod:`~quietrl.proofsearch.terms` (rewriting, matching, unification, variants)
knows nothing of protocols; :mod:`~quietrl.proofsearch.parser` and :mod:`~quietrl.proofsearch.types` hold
theories (rules, formulas, lemmas); :mod:`~quietrl.proofsearch.system` holds constraint systems and the
proof-method API ``methods(state)`` / ``apply(state, method) -> cases``.

Status: slice A (language, terms) is implemented. Of slice B: constraint systems, ``simplify``, induction,
``solve`` for premise/action/disjunction goals, KU goals (normal-form intruder: construction, intruder
fresh names, deconstruction chains from sent messages with pending chains from message variables, merged
KU goals, forbidden/impossible chains) and chain goals; earlier ``[sources]``/``[reuse]`` lemmas assumed
as formulas (verdicts resting on them count only once they are established); a greedy prover (``C`` or an
approximate ``s`` ranking) with iterative deepening over a shared, lazily built tree; a trace replayer
that confirms every found trace. Not yet: precomputed sources (partial deconstructions stay open
"incomplete" leaves), split goals, the exact ``s`` ranking, oracles; lemmas needing them end "analysis
incomplete", never with a wrong verdict.
"""

from quietrl.proofsearch.formulas import goal_formula, nnf
from quietrl.proofsearch.parser import parse_file, parse_theory
from quietrl.proofsearch.system import Goal, Method, System, apply, initial_system, methods
from quietrl.proofsearch.terms import RewriteSystem, match, unify
from quietrl.proofsearch.types import (
    ALL_TRACES,
    EXISTS_TRACE,
    App,
    Equation,
    Fact,
    FunSym,
    Lemma,
    Name,
    Restriction,
    Rule,
    Signature,
    Sort,
    Theory,
    Var,
    pair,
)

__all__ = [
    "ALL_TRACES", "EXISTS_TRACE", "App", "Equation", "Fact", "FunSym", "Lemma", "Name", "Restriction", "Rule",
    "Signature", "Sort", "Theory", "Var", "pair", "parse_file", "parse_theory", "RewriteSystem", "match",
    "unify", "goal_formula", "nnf", "rule_variants", "example_path", "example_names",
    "Goal", "Method", "System", "apply", "initial_system", "methods",
]

from quietrl.proofsearch.examples import example_names, example_path  # noqa: E402
from quietrl.proofsearch.variants import rule_variants  # noqa: E402
