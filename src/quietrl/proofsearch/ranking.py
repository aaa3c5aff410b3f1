"""Goal rankings: Tamarin's ``s``, ``S``, ``c``, ``C`` (and ``o``/``O``, which an oracle reorders later).

Heuristics only order what the solver offers (spec sections 11 and 22):

- ``C``: goal age (the per-system insertion counter; merged goals keep the smaller number).
- ``c``: stable sort by usefulness, Useful < LoopBreaker < ProbablyConstructible < CurrentlyDeducible,
  then age.
- ``s``: the age order, stably partitioned by the first matching class (chains; disjunctions; ``F_``/``[+]``
  facts; Useful non-loop-breaker premises, not ``K`` or ``AuthOut``; non-KU actions; other premises but
  ``AuthOut``; KU with a private root; KU of a fresh-sorted variable; splits of <= 3 cases; KU whose
  precomputed source of its root symbol has one case; KU of ``sign``; (DH: none here); all but large splits;
  large splits), then ``L_``/``[-]`` facts moved to the end, then a stable sort by band: Useful 0,
  ProbablyConstructible and LoopBreaker 1, CurrentlyDeducible 2.
- ``S``: ``s`` with every premise goal counting as Useful (loop breakers are not delayed).
- ``o`` / ``O``: ``C`` / ``s`` order, which :mod:`~quietrl.proofsearch.oracle` sends to an external oracle.

Usefulness (Tamarin's ``Usefulness``): a premise goal at a loop-breaker index is LoopBreaker; a KU goal is
Useful if an open universal formula has a KU guard; else CurrentlyDeducible if its term holds only public
literals and no private symbol, or is a top-level pair part of an ``Out`` conclusion of an existing node
that is not the last one and could precede the goal without a cycle; else ProbablyConstructible if its term
holds no fresh literal and no private symbol; otherwise Useful. Every other goal is Useful.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quietrl.proofsearch import terms as T
from quietrl.proofsearch.types import Action, App, Conn, Quant, Sort, Var

if TYPE_CHECKING:  # pragma: no cover
    from quietrl.proofsearch.system import Goal, System

HEURISTICS = ("s", "S", "c", "C", "o", "O")

USEFUL, LOOP_BREAKER, PROBABLY_CONSTRUCTIBLE, CURRENTLY_DEDUCIBLE = (
    "Useful", "LoopBreaker", "ProbablyConstructible", "CurrentlyDeducible")
_C_ORDER = {USEFUL: 0, LOOP_BREAKER: 1, PROBABLY_CONSTRUCTIBLE: 2, CURRENTLY_DEDUCIBLE: 3}
_S_BAND = {USEFUL: 0, PROBABLY_CONSTRUCTIBLE: 1, LOOP_BREAKER: 1, CURRENTLY_DEDUCIBLE: 2}
SMALL_SPLIT = 3


def base_heuristic(heuristic: str) -> str:
    """The ranking an oracle heuristic pre-sorts with: ``o`` -> ``C``, ``O`` -> ``s``; others unchanged."""
    return {"o": "C", "O": "s"}.get(heuristic, heuristic)


# ---------------------------------------------------------------- goal views


def _kind(g) -> str:
    return type(g).__name__


def _ku_term(g):
    """The message of a KU action goal, else None."""
    if _kind(g) == "ActionGoal" and g.fact.name == "KU":
        return g.fact.args[0]
    return None


def _fact(g):
    return g.fact if _kind(g) in ("ActionGoal", "PremiseGoal") else None


def _split_size(g) -> int | None:
    for attr in ("size", "n_cases", "disjuncts", "cases"):
        v = getattr(g, attr, None)
        if isinstance(v, int):
            return v
        if isinstance(v, (tuple, list)):
            return len(v)
    return None


def _private_syms(theory) -> frozenset[str]:
    return frozenset(f.name for f in theory.signature.functions if f.private)


def _contains_private(t, private: frozenset[str]) -> bool:
    return isinstance(t, App) and (t.fun in private or any(_contains_private(a, private) for a in t.args))


def _toplevel_terms(t):
    """A term and, through pairs, its top-level parts (Tamarin's ``toplevelTerms``; no inverses here)."""
    yield t
    if isinstance(t, App) and t.fun == T.PAIR_FUN and len(t.args) == 2:
        yield from _toplevel_terms(t.args[0])
        yield from _toplevel_terms(t.args[1])


def _reaches(succ: dict, a, b) -> bool:
    seen, todo = set(), [a]
    while todo:
        x = todo.pop()
        if x == b:
            return True
        if x in seen:
            continue
        seen.add(x)
        todo.extend(succ.get(x, ()))
    return False


def _has_ku_guards(cs) -> bool:
    def guards(f):
        if isinstance(f, Quant) and f.kind == "All" and isinstance(f.body, Conn) and f.body.op == "==>":
            from quietrl.proofsearch.formulas import conjuncts
            return [c for c in conjuncts(f.body.left) if isinstance(c, Action)]
        return []

    return any(a.fact.name == "KU" for f in cs.formulas for a in guards(f))


def usefulness(state: "System") -> dict:
    """Usefulness of every open goal of ``state`` (internal goal -> one of the four tags)."""
    from quietrl.proofsearch.constraints import order_graph
    from quietrl.proofsearch.sources import loop_breakers

    cs = state.constraints
    theory = state.theory
    breakers = loop_breakers(theory) if theory is not None else {}
    private = _private_syms(theory) if theory is not None else frozenset()
    nodes = dict(cs.nodes)
    ku_guards = _has_ku_guards(cs)
    succ = order_graph(cs.less, cs.edges)
    sent: list[tuple] = []  # (node, top-level terms of its Out / KD conclusions)
    for n, inst in cs.nodes:
        if n == cs.last:
            continue  # nothing is deduced from the last node
        terms = [t for c in inst.conclusions if c.name in ("Out", "KD") for t in _toplevel_terms(c.args[0])]
        if terms:
            sent.append((n, terms))
    out = {}
    for g in cs.open_goals():
        tag = USEFUL
        if _kind(g) == "PremiseGoal":
            inst = nodes.get(g.node)
            if inst is not None and g.index in breakers.get(inst.name, ()):
                tag = LOOP_BREAKER
        else:
            m = _ku_term(g)
            if m is not None and not ku_guards:
                lits = list(T.atoms_of(m))
                if all(x.sort is Sort.PUB for x in lits) and not _contains_private(m, private):
                    tag = CURRENTLY_DEDUCIBLE
                elif any(m in terms and not (j == g.node or _reaches(succ, g.node, j)) for j, terms in sent):
                    tag = CURRENTLY_DEDUCIBLE
                elif all(x.sort is not Sort.FRESH for x in lits) and not _contains_private(m, private):
                    tag = PROBABLY_CONSTRUCTIBLE
        out[g] = tag
    return out


# ---------------------------------------------------------------- one-case sources (class 10)

_ONE_CASE: dict[tuple, tuple] = {}


def _one_case_symbols(state: "System") -> frozenset[str]:
    """Root symbols f whose precomputed source ``!KU( f(..) )`` has exactly one case (raw sources for a
    ``[sources]`` lemma, refined ones otherwise)."""
    from quietrl.proofsearch.sources import SourceLimits, precompute_sources

    theory = state.theory
    if theory is None:
        return frozenset()
    lemma = theory.lemma(state.lemma)
    raw = lemma is None or lemma.sources
    limits = getattr(state, "limits", SourceLimits())
    key = (id(theory), raw or state.lemma, limits)
    hit = _ONE_CASE.get(key)
    if hit is not None and hit[0] is theory:
        return hit[1]
    try:
        srcs = precompute_sources(theory, None if raw else state.lemma, limits)
        syms = frozenset(s.goal[len("!KU( "):].split("(", 1)[0] for s in srcs.items
                         if s.goal.startswith("!KU( ") and "(" in s.goal[len("!KU( "):] and len(s.cases) == 1)
    except NotImplementedError:
        syms = frozenset()  # a source the solver cannot compute yet: no goal is in class 10
    if len(_ONE_CASE) > 64:
        _ONE_CASE.clear()
    _ONE_CASE[key] = (theory, syms)
    return syms


# ---------------------------------------------------------------- rankings


def _annotated(f, prefix: str, mark: str) -> bool:
    return f is not None and (f.name.startswith(prefix) or mark in f.annotations)


def rank_internal(state: "System", heuristic: str | None = None) -> list:
    """The offered (internal) goals of ``state`` in the order of ``heuristic`` (default: the state's)."""
    h = base_heuristic(heuristic or state.heuristic)
    if h not in ("s", "S", "c", "C"):
        raise ValueError(f"unknown heuristic {h!r}; known: {', '.join(HEURISTICS)}")
    cs = state.constraints
    ages = {g: age for g, age, _ in cs.goals}
    goals = sorted(cs.offered_goals(), key=lambda g: ages.get(g, 0))
    if h == "C":
        return goals
    use = usefulness(state)
    if h == "c":
        return sorted(goals, key=lambda g: _C_ORDER[use[g]])
    if h == "S":
        use = {g: (USEFUL if _kind(g) == "PremiseGoal" else u) for g, u in use.items()}
    private = _private_syms(state.theory) if state.theory is not None else frozenset()
    one_case: list = []  # computed at most once, when a goal first reaches class 10

    def klass(g) -> int:
        k = _kind(g)
        f = _fact(g)
        m = _ku_term(g)
        if k == "ChainGoal":
            return 1
        if k == "DisjGoal":
            return 2
        if _annotated(f, "F_", "+"):
            return 3
        if k == "PremiseGoal" and use[g] == USEFUL and f.name not in ("K", "KU", "KD") and f.name != "AuthOut":
            return 4
        if k == "ActionGoal" and m is None:
            return 5
        if k == "PremiseGoal" and f.name != "AuthOut":
            return 6
        if m is not None and isinstance(m, App) and m.fun in private:
            return 7
        if m is not None and isinstance(m, Var) and m.sort is Sort.FRESH:
            return 8
        split = k == "SplitGoal"
        if split and (_split_size(g) or SMALL_SPLIT + 1) <= SMALL_SPLIT:
            return 9
        if m is not None and isinstance(m, App) and m.args:
            if not one_case:
                one_case.append(_one_case_symbols(state))
            if m.fun in one_case[0]:
                return 10
        if m is not None and isinstance(m, App) and m.fun == "sign":
            return 11
        if not split:
            return 13
        return 14

    ordered = sorted(goals, key=klass)  # stable: age order inside each class
    ordered = sorted(ordered, key=lambda g: _annotated(_fact(g), "L_", "-"))
    return sorted(ordered, key=lambda g: _S_BAND[use[g]])


def rank(state: "System", heuristic: str | None = None) -> list["Goal"]:
    """The offered goals of ``state`` as :class:`~quietrl.proofsearch.system.Goal` values, ranked."""
    from quietrl.proofsearch.constraints import goal_kind
    from quietrl.proofsearch.system import Goal

    return [Goal(goal_kind(g), g.text) for g in rank_internal(state, heuristic)]


def _rank(goals: tuple, heuristic: str, state: "System | None" = None) -> list:
    """Rank ``goals`` (the state's offered goals, age order). With ``state`` the exact rankings above;
    without it (goal texts only) ``C`` is the age order and every other heuristic a text-level
    approximation of ``s`` (chains, disjunctions, premises, actions, KU of fresh variables, KU of
    ``sign``, other KU; KU terms without ``~`` delayed)."""
    if state is not None and state.theory is not None:
        return rank(state, heuristic)
    if base_heuristic(heuristic) == "C":
        return list(goals)

    def ku_term(g) -> str | None:
        if g.kind == "action" and g.text.startswith("!KU( "):
            return g.text[len("!KU( "):g.text.rindex(" ) @ ")]
        return None

    def klass(g) -> int:
        if g.kind == "chain":
            return 0
        if g.kind == "disjunction":
            return 1
        if g.kind == "premise":
            return 2
        m = ku_term(g)
        if m is None:
            return 3
        if m.startswith("~") and "(" not in m and "<" not in m:
            return 4
        if m.startswith("sign("):
            return 5
        return 6

    def band(g) -> int:
        m = ku_term(g)
        return 1 if m is not None and "~" not in m else 0

    return sorted(sorted(goals, key=klass), key=band)
