"""Constraint systems and proof methods: the API that search (and the learned ranker of part 2/2) drives.

Frozen public API (signatures and meaning are fixed here; the solver behind them grows slice by slice):

``initial_system(theory, lemma) -> System``
    The root of a proof: the lemma's formula in guarded form (its negation for all-traces lemmas, the
    formula characterising all counter-examples), the theory's restrictions, no nodes and no goals.
``methods(state) -> list[Method]``
    The proof methods that execute on ``state``, ranked by the heuristic (first = what the autoprover
    takes). Methods are plain, hashable values: ``Method("simplify")``, ``Method("induction")``,
    ``Method("solve", goal)``. A closed or solved system offers none (``state.status`` says which).
``apply(state, method) -> list[tuple[str, System]]``
    Executes one method: the surviving cases as (case name, successor system), in Tamarin's case order.
    One case with the empty name is a plain step (``simplify``). A successor whose ``status`` is
    ``contradictory`` is a closed leaf (Tamarin's ``by contradiction /* reason */``), one whose status is
    ``solved`` is a found trace; an empty list means every case died inside the step (Tamarin's
    ``by solve( ... )``). Raises ``ValueError`` for a method that ``methods(state)`` does not offer.

A ``System`` is immutable; ``state.to_json()`` is its canonical serialisation and carries the theory's
fingerprint, so a stored state can be checked against the theory it came from.

Implemented now: ``initial_system``; ``methods`` at the root (``simplify``, and ``induction`` where Tamarin
offers it: one closed, ``last``-free formula, no nodes or goals; ranked first for ``[use_induction]`` and
``[sources]`` lemmas) and after it (one ``solve`` per open goal, ranked by ``C`` = goal age, or by a
first approximation of ``s``, see :func:`_rank`); ``apply`` for ``simplify``, ``induction`` and ``solve`` of premise, protocol-action
disjunction, split, KU (intruder deduction in normal form) and chain goals (see
:mod:`~quietrl.proofsearch.constraints`); premise and KU goals are solved through sources, whose cases are
saturated (and refined by earlier ``[sources]`` lemmas) within the limits ``initial_system(...,
open_chains=10, saturation=5)`` (see :mod:`~quietrl.proofsearch.sources`). Chains from a message
variable (partial deconstructions) are never offered; a system whose other goals are all solved is
``solved``, as in Tamarin: its trace takes each such variable to be its chain's end (the trace replayer
then judges it).
``status == "solved"`` marks a trace *candidate*: no verdict may rest on it before the trace replayer.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys

from quietrl.proofsearch import canonical
from quietrl.proofsearch.constraints import Constraints, goal_kind, simplify
from quietrl.proofsearch.formulas import free_vars, goal_formula, guarded, mentions_last
from quietrl.proofsearch.ranking import HEURISTICS, _rank
from quietrl.proofsearch.sources import SourceLimits, refinement_formulas, solve_with_sources
from quietrl.proofsearch.types import Formula, Lemma, Theory


@dataclasses.dataclass(frozen=True)
class Goal:
    """An open goal. ``kind`` is action | premise | chain | split | disjunction; ``text`` is Tamarin's notation
    (chains add ``from <start> to <target>``: ours are chains of deconstruction steps to a KU goal)."""

    kind: str
    text: str


@dataclasses.dataclass(frozen=True)
class Method:
    """A proof method: ``simplify``, ``induction`` or ``solve`` (with its goal)."""

    kind: str
    goal: Goal | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("simplify", "induction", "solve"):
            raise ValueError(f"unknown proof method kind {self.kind!r}")
        if (self.kind == "solve") != (self.goal is not None):
            raise ValueError("a solve method needs a goal, and only a solve method has one")

    def text(self) -> str:
        """Tamarin's proof-script spelling: ``simplify``, ``induction``, ``solve( <goal> )``."""
        return f"solve( {self.goal.text} )" if self.goal is not None else self.kind


@dataclasses.dataclass(frozen=True)
class System:
    """A constraint system (the part that exists so far: formulas, restrictions, goals, flags)."""

    theory_fingerprint: str
    lemma: str
    formulas: tuple[Formula, ...]
    restrictions: tuple[Formula, ...]
    reused: tuple[Formula, ...] = ()  # earlier [reuse] lemmas assumed here (guarded form)
    constraints: Constraints = Constraints()
    simplified: bool = False
    at_root: bool = True
    induction_first: bool = False
    heuristic: str = "s"
    limits: SourceLimits = SourceLimits()  # source saturation limits (--open-chains, --saturation)
    theory: Theory | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def goals(self) -> tuple[Goal, ...]:
        """Open goals that need a proof step, in age order."""
        return tuple(Goal(goal_kind(g), g.text) for g in self.constraints.offered_goals())

    @property
    def status(self) -> str:
        """``contradictory`` (closed leaf), ``solved`` (no goal left: a trace candidate) or ``open``."""
        if self.constraints.contradiction is not None:
            return "contradictory"
        if self.simplified and not self.goals:  # open chains from message variables do not count (Tamarin)
            return "solved"
        return "open"

    def to_json(self) -> str:
        """Canonical JSON (invariant under variable renaming, with the theory's fingerprint): the one
        serialisation, :func:`quietrl.proofsearch.canonical.state_to_json`."""
        return canonical.state_to_json(self)


def theory_fingerprint(theory: Theory) -> str:
    """SHA-256 (hex, 16 chars) of the theory's content, independent of file name and source positions."""
    payload = repr((theory.name, theory.signature, theory.rules, theory.restrictions, theory.lemmas))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def reusable_lemmas(theory: Theory, lemma: Lemma) -> list[Lemma]:
    """Earlier ``[reuse]`` lemmas assumed in ``lemma``'s proof, by Tamarin's rules.

    Only all-traces lemmas (an exists-trace lemma is never assumed), not hidden by ``hide_lemma`` (``ALL``
    hides all), and of a source kind no higher than the current proof's: ``[sources]`` lemmas are proved
    with raw sources and serve every later proof; other lemmas serve only proofs with refined sources,
    so never a ``[sources]`` lemma's.
    """
    out = []
    for other in theory.lemmas:
        if other.name == lemma.name:
            break
        if not other.reuse or other.trace_quantifier != "all-traces":
            continue
        if other.name in lemma.hide_lemmas or "ALL" in lemma.hide_lemmas:
            continue
        if lemma.sources and not other.sources:
            continue
        out.append(other)
    return out


def assumed_lemmas(theory: Theory, lemma: Lemma) -> list[Lemma]:
    """Earlier lemmas assumed in ``lemma``'s proof: the ``[reuse]`` ones (:func:`reusable_lemmas`) and, for a
    lemma that is not itself ``[sources]``, every earlier ``[sources]`` lemma (Tamarin proves those first
    and uses them to refine the sources of all later lemmas; we assume their formulas instead). A verdict
    that rests on them counts only once they are established (see :func:`~quietrl.proofsearch.prover.prove_all`).
    """
    out = reusable_lemmas(theory, lemma)
    if not lemma.sources:
        for other in theory.lemmas:
            if other.name == lemma.name:
                break
            if other.sources and other.trace_quantifier == "all-traces" and other not in out:
                out.append(other)
        out.sort(key=lambda lem: [x.name for x in theory.lemmas].index(lem.name))
    return out


def initial_system(theory: Theory, lemma: Lemma, heuristic: str = "s", open_chains: int = 10,
                   saturation: int = 5) -> System:
    """The root system of ``lemma``: its goal formula plus the theory's restrictions and reused lemmas.

    ``heuristic`` (``s`` or ``C``) fixes how :func:`methods` ranks goals in this proof. ``open_chains`` and
    ``saturation`` are Tamarin's source precomputation limits (``--open-chains``, ``--saturation``;
    see :mod:`~quietrl.proofsearch.sources`); every system of the proof carries them.
    """
    if heuristic not in HEURISTICS:
        raise ValueError(f"unknown heuristic {heuristic!r}; implemented: {', '.join(HEURISTICS)}")
    limits = SourceLimits(open_chains, saturation)
    restrictions = tuple(guarded(r.formula) for r in theory.restrictions)
    # Earlier [sources] lemmas (not also [reuse]) refine the sources only, as in Tamarin: they are assumed
    # inside source steps (see quietrl.proofsearch.sources), not as formulas of the whole proof.
    reused = tuple(guarded(lem.formula) for lem in reusable_lemmas(theory, lemma))
    return System(theory_fingerprint(theory), lemma.name, (goal_formula(lemma),), restrictions, reused,
                  induction_first=lemma.use_induction or lemma.sources, heuristic=heuristic, limits=limits,
                  theory=theory)


def _induction_applies(state: System) -> bool:
    if not state.at_root or state.goals or len(state.formulas) != 1:
        return False
    f = state.formulas[0]
    return not free_vars(f) and not mentions_last(f) and \
        not any(mentions_last(r) for r in state.restrictions + state.reused)


def methods(state: System) -> list[Method]:
    """Ranked executable proof methods of ``state`` (see the module docstring for what exists so far)."""
    if state.status != "open":
        return []
    if state.simplified:
        return [Method("solve", g) for g in _rank(state.goals, state.heuristic, state)]
    out: list[Method] = []
    if not state.simplified:
        out.append(Method("simplify"))
    if _induction_applies(state):
        ind = Method("induction")
        out = [ind] + out if state.induction_first else out + [ind]
    return out


def _induction(state: System) -> list[tuple[str, System]]:
    """Induction over the trace length on the searched formula φ (with the restrictions R).

    A shortest trace satisfying φ ∧ R is either empty, or its prefix without the last position does not
    satisfy φ ∧ R (traces are prefix-closed, restrictions need not be, hence R inside the hypothesis).
    Cases: ``empty_trace`` (φ ∧ R evaluated on the empty trace) and ``non_empty_trace`` (φ, R, the reused
    lemmas and the hypothesis ``(¬(φ ∧ R))`` relativised to non-last time points, then simplified).
    """
    from quietrl.proofsearch.formulas import relativize_to_prefix
    from quietrl.proofsearch.replay import holds
    from quietrl.proofsearch.types import Bool, Conn, Not

    assert state.theory is not None
    phi = state.formulas[0]
    both = phi
    for r in state.restrictions:
        both = Conn("&", both, r)
    empty_ok = holds(state.theory, [], both)
    empty_cs = simplify(state.theory, Constraints(), [Bool(empty_ok)])
    hypothesis = relativize_to_prefix(guarded(Not(both)))
    step_cs = simplify(state.theory, Constraints(),
                       (phi, hypothesis) + state.restrictions + state.reused)
    base = dict(simplified=True, at_root=False)
    return [("empty_trace", dataclasses.replace(state, constraints=empty_cs, **base)),
            ("non_empty_trace", dataclasses.replace(state, formulas=(phi, hypothesis), constraints=step_cs,
                                                    **base))]


class DepthLimit(NotImplementedError):
    """A step whose terms (or the caller's proof) nest deeper than Python's recursion limit lets the engine
    follow, e.g. a counter h(h(...)) unfolded a few hundred times: the step does not execute, as an
    unsupported one (callers report the branch incomplete instead of crashing)."""


def apply(state: System, method: Method) -> list[tuple[str, System]]:
    """Execute ``method`` on ``state`` (see the module docstring for what executes today). Raises
    :class:`DepthLimit` (a ``NotImplementedError``) where the step nests beyond the recursion limit."""
    if method not in methods(state):
        raise ValueError(f"method {method.text()} is not offered by this system")
    try:
        return _apply(state, method)
    except RecursionError:
        raise DepthLimit(f"terms nested beyond the engine's depth limit (Python's recursion limit "
                         f"{sys.getrecursionlimit()})") from None


def _apply(state: System, method: Method) -> list[tuple[str, System]]:
    if method.kind == "simplify":
        if state.theory is None:
            raise ValueError("this system was not built by initial_system (it carries no theory)")
        cs = simplify(state.theory, state.constraints, state.formulas + state.restrictions + state.reused)
        nxt = dataclasses.replace(state, constraints=cs, simplified=True, at_root=False)
        return [("", nxt)]
    if method.kind == "induction":
        return _induction(state)
    if method.kind == "solve":
        assert method.goal is not None and state.theory is not None
        goal = next(g for g in state.constraints.offered_goals() if g.text == method.goal.text)
        refine = refinement_formulas(state.theory, state.lemma)
        return [(name, dataclasses.replace(state, constraints=cs, at_root=False))
                for name, cs in solve_with_sources(state.theory, state.constraints, goal, state.limits, refine)]
    raise AssertionError(method.kind)  # pragma: no cover - Method validates its kind
