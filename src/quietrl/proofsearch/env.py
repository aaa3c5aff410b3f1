"""The proof-search environment: the engine's method API as a stateless RL interface, plus a Gymnasium-style
single-path wrapper.

Stateless API (spec section 14, the authors' ``initial`` / ``executemethod`` / ``checkproof``):

``initial_state(theory, lemma_name) -> System``
    UserError for an unknown lemma (naming the choices).
``legal_methods(state) -> list[Method]``
    The ranked methods (index 0 = what greedy ``s`` takes); empty for a settled or stuck state.
``step(theory, lemma, state, method) -> list[Case]``
    The method's surviving cases, each classified (:func:`outcome`): ``closed`` (a contradiction that counts
    for a verdict), ``trace`` (a trace candidate confirmed by the engine's replayer), ``dead`` (a leaf
    that settles nothing: a contradiction below a non-exhaustive intruder step, a rejected trace candidate,
    a system without methods) or ``open``. An empty case list closes the branch (Tamarin's ``by solve``).
    Raises :class:`MethodFailed` when the engine cannot execute the method.

States are the engine's immutable ``System`` values; :func:`state_key` hashes their canonical JSON, which is
invariant under variable renaming (:mod:`~quietrl.proofsearch.canonical`). Proofs are re-checked by the
engine's checker (:mod:`~quietrl.proofsearch.proofcheck`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from quietrl.core.errors import UserError
from quietrl.proofsearch import canonical, proofcheck
from quietrl.proofsearch.prover import ProofNode, confirm_trace
from quietrl.proofsearch.system import Method, System, apply, initial_system, methods
from quietrl.proofsearch.types import EXISTS_TRACE, Lemma, Theory

CLOSED, TRACE, DEAD, OPEN = "closed", "trace", "dead", "open"


class MethodFailed(Exception):
    """The engine could not execute a method (an unsupported step); search marks it failed."""


@dataclasses.dataclass(frozen=True)
class Case:
    """One surviving case of a step: Tamarin's case name, the successor system and its outcome."""

    name: str
    state: System
    outcome: str
    note: str = ""


def find_lemma(theory: Theory, name: str) -> Lemma:
    """The lemma called ``name``; UserError listing the theory's lemmas if there is none."""
    for lem in theory.lemmas:
        if lem.name == name:
            return lem
    raise UserError(f"unknown lemma {name!r} in theory {theory.name}; "
                    f"choose from {', '.join(lem.name for lem in theory.lemmas)}")


def initial_state(theory: Theory, lemma_name: str, heuristic: str = "s") -> System:
    """The root system of ``lemma_name`` (UserError if the theory has no such lemma)."""
    return initial_system(theory, find_lemma(theory, lemma_name), heuristic)


def legal_methods(state: System) -> list[Method]:
    """Ranked executable methods of ``state`` (rank 0 = the engine's greedy choice)."""
    return methods(state)


# The engine's renaming-invariant state JSON and its fingerprint check (re-exported for RL callers).
state_to_json = canonical.state_to_json
state_key = canonical.state_key
state_from_json = canonical.state_from_json


class Confirmer:
    """Confirms trace candidates with the engine's replayer (the same checks the greedy prover makes)."""

    def __init__(self, theory: Theory, lemma: Lemma):
        self.theory, self.lemma = theory, lemma
        self._memo: dict[int, tuple[System, str]] = {}

    def __call__(self, state: System) -> str:
        """'' if ``state`` is a genuine trace for the lemma's verdict, else the reason it is not."""
        hit = self._memo.get(id(state))
        if hit is not None and hit[0] is state:
            return hit[1]
        why, _ = confirm_trace(self.theory, self.lemma, state)
        self._memo[id(state)] = (state, why)
        return why


def outcome(state: System, confirm: Confirmer) -> tuple[str, str]:
    """(outcome, note) of a successor system: closed / trace / dead / open (see the module docstring)."""
    status = state.status
    if status == "contradictory":
        if not state.constraints.exhaustive:
            return DEAD, "contradiction below a non-exhaustive intruder step"
        return CLOSED, state.constraints.contradiction or ""
    if status == "solved":
        why = confirm(state)
        return (TRACE, "") if not why else (DEAD, why)
    if not methods(state):
        return DEAD, "no method applies"
    return OPEN, ""


def step(state: System, method: Method, confirm: Confirmer) -> list[Case]:
    """Execute ``method`` on ``state``; the classified cases. MethodFailed if the engine cannot run it."""
    try:
        cases = apply(state, method)
    except (NotImplementedError, ValueError) as e:
        raise MethodFailed(f"{method.text()}: {e}") from e
    out = []
    for name, nxt in cases:
        kind, note = outcome(nxt, confirm)
        out.append(Case(name, nxt, kind, note))
    return out


# --------------------------------------------------------------------------------------------- checking


def check_proof(theory: Theory, lemma: Lemma | str, node: ProofNode) -> proofcheck.CheckReport:
    """Re-check a proof tree with the engine's proof checker (every step offered, every case covered,
    every leaf closed or a replayed trace)."""
    return proofcheck.check_proof(theory, lemma, node)


def _is_trace_path(node: ProofNode) -> bool:
    """A cut proof (the root-to-trace path) keeps one case per step and ends in a solved leaf."""
    while node.method is not None:
        if len(node.cases) != 1:
            return False
        node = node.cases[0][1]
    return node.leaf == "solved"


def proof_kind(node: ProofNode) -> str:
    """``trace`` when the proof is a cut path to a found trace, else ``closed``."""
    return TRACE if _is_trace_path(node) else CLOSED


def verdict_of(lemma: Lemma, kind: str) -> str:
    """Tamarin's verdict for a settled proof of ``kind`` (closed / trace)."""
    from quietrl.proofsearch.prover import FOUND_TRACE, NO_TRACE, VERIFIED

    if lemma.trace_quantifier == EXISTS_TRACE:
        return VERIFIED if kind == TRACE else NO_TRACE
    return FOUND_TRACE if kind == TRACE else VERIFIED


# ------------------------------------------------------------------------------------- Gymnasium wrapper


class ProofEnv:
    """Single-path Gymnasium-style wrapper: a stack of open cases, one method per step.

    ``reset()`` returns ``(obs, info)``; ``step(action)`` returns ``(obs, reward, terminated, truncated,
    info)``. ``obs`` is the list of method texts of the case on top of the stack (the action space is an
    index into it). Every executed step costs reward -1, so the return is minus the proof size's method
    part. The episode terminates when every case is closed or a trace is found, and is truncated after
    ``max_steps`` steps or when the top case is dead (it can never close).
    """

    def __init__(self, theory: Theory, lemma_name: str, max_steps: int = 200):
        self.theory = theory
        self.lemma = find_lemma(theory, lemma_name)
        self.max_steps = max_steps
        self._confirm = Confirmer(theory, self.lemma)
        self._stack: list[System] = []
        self._steps = 0

    @property
    def open_cases(self) -> int:
        return len(self._stack)

    def _obs(self) -> list[str]:
        return [m.text() for m in legal_methods(self._stack[-1])] if self._stack else []

    def reset(self, seed: int | None = None) -> tuple[list[str], dict[str, Any]]:
        del seed  # the environment is deterministic
        self._stack = [initial_system(self.theory, self.lemma)]
        self._steps = 0
        return self._obs(), {"open_cases": 1}

    def step(self, action: int) -> tuple[list[str], float, bool, bool, dict[str, Any]]:
        if not self._stack:
            raise UserError("step() on a finished episode; call reset()")
        state = self._stack[-1]
        offered = legal_methods(state)
        if not 0 <= int(action) < len(offered):
            raise UserError(f"action {action} out of range: {len(offered)} methods are offered")
        self._steps += 1
        try:
            cases = step(state, offered[int(action)], self._confirm)
        except MethodFailed as e:
            return self._obs(), -1.0, False, True, {"error": str(e), "open_cases": len(self._stack)}
        self._stack.pop()
        info: dict[str, Any] = {"cases": [c.name for c in cases]}
        for c in reversed(cases):  # the first case ends on top, as the proof script lists it first
            if c.outcome == TRACE:
                self._stack = []
                info.update(trace=True, open_cases=0)
                return [], -1.0, True, False, info
            if c.outcome == DEAD:
                info.update(dead=c.note, open_cases=len(self._stack) + 1)
                self._stack.append(c.state)
                return self._obs(), -1.0, False, True, info
            if c.outcome == OPEN:
                self._stack.append(c.state)
        info["open_cases"] = len(self._stack)
        terminated = not self._stack
        truncated = not terminated and self._steps >= self.max_steps
        return self._obs(), -1.0, terminated, truncated, info
