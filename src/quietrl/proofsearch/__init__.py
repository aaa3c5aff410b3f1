"""quietrl.proofsearch: a Tamarin-style backward prover for Diffie-Hellman-free ``.spthy`` theories.

Layers (as in Tamarin): :mod:`~quietrl.proofsearch.terms` (rewriting, matching, unification, variants)
knows nothing of protocols; :mod:`~quietrl.proofsearch.parser` and :mod:`~quietrl.proofsearch.types` hold
theories (rules, formulas, lemmas); :mod:`~quietrl.proofsearch.system` holds constraint systems and the
proof-method API ``methods(state)`` / ``apply(state, method) -> cases``.

Engine (issue 3): parser, terms (unification modulo the builtins), constraint systems with ``simplify``,
induction, premise/action/disjunction/KU/chain/split goals, sources saturated on demand (``--open-chains``,
``--saturation``) refined by ``[sources]`` lemmas, loop breakers, the ``s|S|c|C`` rankings and ``o|O``
oracles (:mod:`~quietrl.proofsearch.ranking`, :mod:`~quietrl.proofsearch.oracle`), a greedy prover with
iterative deepening, a proof checker (:mod:`~quietrl.proofsearch.proofcheck`), a trace replayer, canonical
state JSON invariant under renaming (:mod:`~quietrl.proofsearch.canonical`). Lemmas the engine cannot settle
within its step budget end "analysis incomplete", never with a wrong verdict.

RL side (issue 9): the stateless environment (:mod:`~quietrl.proofsearch.env`), an HTTP/JSON server
(:mod:`~quietrl.proofsearch.server`), AND/OR MCTS (:mod:`~quietrl.proofsearch.mcts`), a Flax ranker learnt by
online expert iteration (:mod:`~quietrl.proofsearch.networks`, :mod:`~quietrl.proofsearch.expert`), an
oracle export for tamarin-prover and the evaluation harness. Modules that need JAX are not imported here.
"""

from quietrl.proofsearch.canonical import state_from_json, state_key, state_to_json
from quietrl.proofsearch.formulas import goal_formula, nnf
from quietrl.proofsearch.parser import parse_file, parse_theory
from quietrl.proofsearch.proofcheck import CheckReport, check_proof, check_script
from quietrl.proofsearch.prover import ProofNode, ProofResult, prove, prove_all
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
    "state_from_json", "state_key", "state_to_json", "CheckReport", "check_proof", "check_script",
    "ProofNode", "ProofResult", "prove", "prove_all",
]

from quietrl.proofsearch.examples import example_names, example_path  # noqa: E402
from quietrl.proofsearch.variants import rule_variants  # noqa: E402
