"""Sources: raw and refined case distinctions for premise and intruder-knowledge goals, and loop breakers.

Tamarin solves every premise goal and every ``!KU( f(..) )`` / ``!KU( ~x )`` goal through a *source*: the
goal solved once, then its cases *saturated* by solving the cheap goals inside them (premises that are not
loop breakers, protocol actions, deconstruction chains up to ``open_chains``, and, for refined sources,
the case splits of the earlier ``[sources]`` lemmas). A case keeps the name of the step that solved the
source goal; the saturation steps are not proof steps and do not count towards the proof size.

Here the same saturation runs at the moment a source goal is solved (:func:`solve_with_sources`), on the
cases of that step inside the current system, and only on goals that the step created. Every saturation
step is an ordinary, complete case split of :func:`~quietrl.proofsearch.constraints.solve_raw`, so a
source step stays sound; the current system only prunes cases earlier than Tamarin's conjoining would.
:func:`precompute_sources` computes the theory-level case lists in the empty system (Tamarin's
precomputation), which say how many cases each source has and how many of them keep a partial
deconstruction (an open chain from a message variable).

Refined sources: for a lemma that is not itself ``[sources]``, the earlier ``[sources]`` lemmas are assumed
(their verdicts must be established for the proof to count, see :mod:`~quietrl.proofsearch.prover`); the
disjunctions that their instances create inside a source step are split during saturation, which removes
partial deconstructions such as NSPK3's ``In(aenc{'1', ni, I}pk(ltkR))``. A ``[sources]`` lemma itself is
proved with raw sources.

Limits (Tamarin's ``--open-chains`` and ``--saturation``, defaults 10 and 5) live in :class:`SourceLimits`,
passed to :func:`~quietrl.proofsearch.system.initial_system` (``open_chains=``, ``saturation=``) and carried
by every system of that proof: ``open_chains`` bounds the chain goals solved while saturating one source
case, ``saturation`` the saturation rounds (each round solves every cheap goal present at its start).
"""

from __future__ import annotations

import dataclasses

from quietrl.proofsearch import terms as T
from quietrl.proofsearch.constraints import (
    ActionGoal,
    ChainGoal,
    Constraints,
    DisjGoal,
    GoalT,
    PremiseGoal,
    _disjuncts,
    _has_cycle,
    _theory_tools,
    a_key,
    forget_formulas,
    instantiate_at,
    name_cases,
    order_graph,
    resimplify,
    solve_raw,
)
from quietrl.proofsearch.formulas import conjuncts, show
from quietrl.proofsearch.types import Conn, Fact, Formula, Quant, Sort, Theory, Var

# A source case is not split further once a saturation has produced this many cases from it.
MAX_SATURATED_CASES = 64


@dataclasses.dataclass(frozen=True)
class SourceLimits:
    """Precomputation limits: Tamarin's ``--open-chains`` (default 10) and ``--saturation`` (default 5)."""

    open_chains: int = 10
    saturation: int = 5

    def __post_init__(self) -> None:
        if self.open_chains < 0:
            raise ValueError(f"open_chains must be >= 0, got {self.open_chains}")
        if self.saturation < 0:
            raise ValueError(f"saturation must be >= 0, got {self.saturation}")


# ---------------------------------------------------------------- loop breakers


_BREAKERS: dict[int, tuple[Theory, dict[str, tuple[int, ...]]]] = {}


def loop_breakers(theory: Theory) -> dict[str, tuple[int, ...]]:
    """Premise indices per rule name that break the loops of the premise graph (spec section 22).

    Nodes are premises (rule, j); for each producer P and consumer Q (theory order) and each premise j of Q
    (not ``no_precomp``) that unifies with a conclusion of P (over all variants, renamed apart), there is
    an edge (Q, j) -> (P, i) for every premise i of P. A greedy depth-first search in edge order marks a
    node as a breaker when one of its successors is itself or on the current path. Rules without breakers
    are absent from the result.
    """
    hit = _BREAKERS.get(id(theory))
    if hit is not None and hit[0] is theory:
        return hit[1]
    _, variants = _theory_tools(theory)
    edges: list[tuple[tuple[str, int], tuple[str, int]]] = []
    for prod in theory.rules:
        for cons in theory.rules:
            for j, prem in enumerate(cons.premises):
                if "no_precomp" in prem.annotations:
                    continue
                if any(_facts_unify(pv, cv, c, p)
                       for pv in variants[prod.name] for cv in variants[cons.name]
                       for c in pv.conclusions for p in [cv.premises[j]]):
                    for i in range(len(prod.premises)):
                        edges.append(((cons.name, j), (prod.name, i)))
    succ: dict[tuple[str, int], list[tuple[str, int]]] = {}
    for a, b in edges:
        if b not in succ.setdefault(a, []):
            succ[a].append(b)
    visited: set[tuple[str, int]] = set()
    breakers: set[tuple[str, int]] = set()

    def explore(x: tuple[str, int], path: list[tuple[str, int]]) -> None:
        visited.add(x)
        nxt = succ.get(x, [])
        if any(y == x or y in path for y in nxt):
            breakers.add(x)
            return
        for y in nxt:
            if y not in visited:
                explore(y, path + [x])

    for a, _ in edges:
        if a not in visited:
            explore(a, [])
    out: dict[str, tuple[int, ...]] = {}
    for rule in theory.rules:
        idx = tuple(sorted(j for name, j in breakers if name == rule.name))
        if idx:
            out[rule.name] = idx
    if len(_BREAKERS) > 64:
        _BREAKERS.clear()
    _BREAKERS[id(theory)] = (theory, out)
    return out


def _facts_unify(pv, cv, conc: Fact, prem: Fact) -> bool:
    if conc.name != prem.name or conc.persistent != prem.persistent or len(conc.args) != len(prem.args):
        return False
    off = T.max_idx(list(prem.args)) + 1
    shifted = Fact(conc.name, tuple(T.shift_vars(a, off) for a in conc.args))
    return T.unify1(a_key(shifted), a_key(prem)) is not None


def is_loop_breaker(theory: Theory, cs: Constraints, goal: GoalT) -> bool:
    """Whether ``goal`` is a premise goal at a loop-breaker index of its node's rule."""
    if not isinstance(goal, PremiseGoal):
        return False
    inst = dict(cs.nodes).get(goal.node)
    return inst is not None and goal.index in loop_breakers(theory).get(inst.name, ())


# ---------------------------------------------------------------- source goals and saturation


def is_source_goal(goal: GoalT) -> bool:
    """Goals that Tamarin solves through a source: premise goals, and KU goals on an application with
    arguments or on a fresh-sorted variable or name."""
    if isinstance(goal, PremiseGoal):
        return True
    if isinstance(goal, ActionGoal) and goal.fact.name == "KU":
        m = goal.fact.args[0]
        if isinstance(m, T.App):
            return bool(m.args)
        return m.sort is Sort.FRESH
    return False


_REFINE: dict[tuple[int, str], tuple[Theory, frozenset[Formula]]] = {}


def refinement_formulas(theory: Theory, lemma_name: str) -> frozenset[Formula]:
    """The guarded universals of the earlier ``[sources]`` lemmas that refine the sources of ``lemma_name``
    (empty for a ``[sources]`` lemma, which is proved with raw sources)."""
    from quietrl.proofsearch.formulas import guarded
    from quietrl.proofsearch.system import assumed_lemmas

    hit = _REFINE.get((id(theory), lemma_name))
    if hit is not None and hit[0] is theory:
        return hit[1]
    lemma = theory.lemma(lemma_name)
    if lemma is None or lemma.sources:
        return frozenset()
    out: set[Formula] = set()
    for other in assumed_lemmas(theory, lemma):
        if other.sources:
            out.update(f for f in conjuncts(guarded(other.formula)) if isinstance(f, Quant) and f.kind == "All")
    if len(_REFINE) > 256:
        _REFINE.clear()
    _REFINE[(id(theory), lemma_name)] = (theory, frozenset(out))
    return frozenset(out)


def _refinement_disjunctions(cs: Constraints, refine: frozenset[Formula],
                             skip: frozenset = frozenset()) -> set[DisjGoal]:
    """Disjunction goals created by instances of the refining ``[sources]`` universals (except the
    instances in ``skip``)."""
    out: set[DisjGoal] = set()
    for key in cs.solved_formulas:
        if key in skip or not (isinstance(key, Conn) and key.op == "&" and key.left in refine):
            continue
        for part in conjuncts(key.right):
            if isinstance(part, Conn) and part.op == "|":
                out.add(DisjGoal(tuple(_disjuncts(part))))
    return out


def _safe_goal(theory: Theory, cs: Constraints, first_age: int, chains_left: int,
               refine_disj: set[DisjGoal], refined_ages: frozenset[int]) -> GoalT | None:
    """The oldest goal that saturation solves: created at age >= ``first_age``, and a protocol premise that
    is not a loop breaker, an offered chain (while ``chains_left``), a disjunction of a refining lemma, or
    a protocol action that such a disjunction created (age in ``refined_ages``). Action goals of the
    lemma, the restrictions or reused lemmas are not part of a source: they stay goals of the proof."""
    offered = set(cs.offered_goals())
    # Tamarin splits a disjunction inside a source only while the source case has a partial
    # deconstruction (an open chain from a message variable) and no other chain goal: otherwise the
    # refining lemma's disjunction is dropped with the lemma when the source is finished.
    own_chains = [g for g, age, solved in cs.goals
                  if not solved and age >= first_age and isinstance(g, ChainGoal)]
    split_allowed = bool(own_chains) and all(isinstance(g.start, Var) and g.start.sort is Sort.MSG
                                             for g in own_chains)
    for g, age, solved in cs.goals:
        if solved or age < first_age or g not in offered:
            continue
        if isinstance(g, PremiseGoal):
            if not is_loop_breaker(theory, cs, g):
                return g
        elif isinstance(g, ActionGoal):
            if g.fact.name not in ("KU", "KD") and age in refined_ages:
                return g
        elif isinstance(g, ChainGoal):
            if chains_left > 0:
                return g
        elif isinstance(g, DisjGoal) and g in refine_disj and split_allowed:
            return g
    return None


def saturate(theory: Theory, cs: Constraints, first_age: int, limits: SourceLimits,
             refine: frozenset[Formula] = frozenset(), before: Constraints | None = None) -> list[Constraints]:
    """Saturate one source case: solve its cheap goals (see :func:`_safe_goal`) round by round.

    Returns the surviving cases; when every case dies, the closed leaves of the contradictions with the rest
    of the system (see the end). Bounded by ``limits`` and by :data:`MAX_SATURATED_CASES`; goals left by a
    limit simply stay open.
    """
    if cs.contradiction is not None:
        return [cs]
    old_nodes = frozenset(n for n, _ in before.nodes) if before is not None else frozenset()
    ordered_refine = sorted(refine, key=show)  # a fixed order: goal ages must not depend on hash seeds

    def refined_now(c: Constraints) -> Constraints | None:
        # The refining [sources] lemmas hold for the nodes of the source (not for the rest of the system).
        if not refine:
            return c
        return instantiate_at(theory, c, ordered_refine, [n for n, _ in c.nodes if n not in old_nodes])

    cs = refined_now(cs)
    if cs is None:
        return []
    if cs.contradiction is not None:
        return [cs] if _contextual(cs) else []

    def pick(c: Constraints, chains: int, refined: frozenset[int]) -> GoalT | None:
        return _safe_goal(theory, c, first_age, limits.open_chains - chains,
                          _refinement_disjunctions(c, refine), refined)

    # Branches: (system, chain goals solved so far, ages of goals that refining disjunctions created).
    frontier: list[tuple[Constraints, int, frozenset[int]]] = [(cs, 0, frozenset())]
    done: list[Constraints] = []
    dead: list[Constraints] = []
    for _ in range(limits.saturation):
        if not frontier:
            break
        nxt: list[tuple[Constraints, int, frozenset[int]]] = []
        for c, chains, refined in frontier:
            if pick(c, chains, refined) is None:
                done.append(c)
                continue
            # One round solves the cheap goals present at its start; goals they create wait for the next.
            round_ages = {age for _, age, solved in c.goals if not solved}
            branch = [(c, chains, refined)]
            while branch:
                b, ch, ref = branch.pop(0)
                g = pick(b, ch, ref)
                age = next((a for x, a, _ in b.goals if x == g), None) if g is not None else None
                if g is None or age not in round_ages:
                    nxt.append((b, ch, ref))
                    continue
                cases = solve_raw(theory, b, g)
                if len(done) + len(nxt) + len(branch) + len(cases) > MAX_SATURATED_CASES:
                    nxt.append((b, ch, ref))  # too many cases: leave the goal open
                    round_ages.discard(age)
                    continue
                for _, sub in cases:
                    sub = refined_now(sub)
                    if sub is None:
                        continue
                    if sub.contradiction is not None and not _contextual(sub):
                        dead.append(sub)
                        continue
                    ref2 = ref
                    if isinstance(g, DisjGoal):
                        ref2 = ref | {a for _, a, _ in sub.goals if a >= b.next_age}
                    branch.append((sub, ch + isinstance(g, ChainGoal), ref2))
        frontier = nxt
    done.extend(c for c, _, _ in frontier)
    # A case contradicted by the rest of the system was saturated on (as Tamarin's source, precomputed
    # without that context): its own premises may still make it die silently when conjoined.
    dead.extend(c for c in done if c.contradiction is not None)
    done = [c for c in done if c.contradiction is None]
    if refine:
        # As Tamarin's refined sources: the assumed lemmas and their case splits, solved or not, leave the case.
        # Only what the source step added goes: the context's instances and their case splits stay.
        keep = frozenset(before.solved_formulas) if before is not None else frozenset()
        done = [forget_formulas(c, refine, _refinement_disjunctions(c, refine, keep), keep, first_age)
                for c in done]
        if any(f in refine for f in cs.formulas):
            # A refining lemma that is also [reuse] is a formula of the proof itself: once the source is
            # conjoined, S_∀ instantiates it on the source's nodes again (its disjunctions become goals).
            done = [c for c in map(lambda c: resimplify(theory, c), done) if c is not None]
    if not done:
        # Every case died while saturating. Each contradiction with the rest of the system (the formulas,
        # the ordering) shows as a closed leaf, as after Tamarin's conjoining of the source (KAS1's two
        # Sessk_reveal leaves); one inside the source itself (an impossible or forbidden chain) means the
        # source has no such case at all.
        return [c for c in dead if _contextual(c)]
    return done


def _contextual(cs: Constraints) -> bool:
    """Whether the contradiction of ``cs`` involves the rest of the system (and so shows as a closed
    leaf), not only the source itself. A cycle made only by an open chain's ordering (its variable known
    before it is deconstructed) is a forbidden chain inside the source."""
    reason = cs.contradiction
    if reason == "cyclic":
        return _has_cycle(order_graph(cs.less, cs.edges))
    return reason is not None and (reason == "from formulas" or reason.startswith("node ")
                                   or reason.startswith("non-injective"))


def solve_with_sources(theory: Theory, cs: Constraints, goal: GoalT, limits: SourceLimits,
                       refine: frozenset[Formula] = frozenset()) -> list[tuple[str, Constraints]]:
    """Solve ``goal`` (through its source when :func:`is_source_goal`): Tamarin-named cases in case order."""
    if isinstance(goal, DisjGoal) or not is_source_goal(goal):
        from quietrl.proofsearch.constraints import solve

        return solve(theory, cs, goal)
    first_age = cs.next_age
    out: list[tuple[str, Constraints]] = []
    for name, case in solve_raw(theory, cs, goal):
        out.extend((name, c) for c in saturate(theory, case, first_age, limits, refine, cs))
    return name_cases(out)


# ---------------------------------------------------------------- theory-level precomputation


@dataclasses.dataclass(frozen=True)
class Source:
    """A precomputed source: the goal in the empty system and its saturated cases (name, system)."""

    goal: str
    cases: tuple[tuple[str, Constraints], ...]

    @property
    def partial(self) -> int:
        """Cases that keep an open chain from a message variable (partial deconstructions)."""
        return sum(1 for _, c in self.cases if c.pending_chains())


@dataclasses.dataclass(frozen=True)
class Sources:
    """The sources of a theory: ``refined`` says whether earlier ``[sources]`` lemmas refined them."""

    refined: bool
    items: tuple[Source, ...]

    @property
    def partial_deconstructions(self) -> int:
        return sum(s.partial for s in self.items)

    def case_count(self, goal_text: str) -> int | None:
        """Number of cases of the source whose goal prints as ``goal_text`` (None: no such source)."""
        for s in self.items:
            if s.goal == goal_text:
                return len(s.cases)
        return None


def precompute_sources(theory: Theory, lemma_name: str | None = None,
                       limits: SourceLimits = SourceLimits()) -> Sources:
    """Tamarin's precomputed sources: every protocol premise fact and ``!KU( f(x1..xn) )`` for each public
    function symbol (pairs excepted) and ``!KU( ~x )``, solved in the empty system and saturated.

    ``lemma_name`` picks raw (a ``[sources]`` lemma, or None) or refined sources (any other lemma: refined
    by the earlier ``[sources]`` lemmas, assumed as formulas while saturating).
    """
    from quietrl.proofsearch.constraints import _Work

    refine = refinement_formulas(theory, lemma_name) if lemma_name is not None else frozenset()
    base = Constraints()  # the refining lemmas are instantiated on the source's own nodes by saturate
    goals: list[GoalT] = []
    node = Var("i", 0, Sort.NODE)
    seen: set[tuple[str, bool, int]] = set()
    for rule in theory.rules:
        for p in rule.premises:
            if p.name in ("Fr", "In", "KU") or (p.name, p.persistent, len(p.args)) in seen:
                continue
            seen.add((p.name, p.persistent, len(p.args)))
            goals.append(PremiseGoal(node, 0, Fact(p.name, tuple(Var(f"x{k}") for k in range(len(p.args))),
                                                   p.persistent)))
    for f in theory.signature.functions:
        if f.private or f.arity == 0 or f.name == T.PAIR_FUN or f.name in theory.signature.destructors:
            continue
        goals.append(ActionGoal(node, Fact("KU", (T.App(f.name, tuple(Var(f"x{k}") for k in range(f.arity))),))))
    goals.append(ActionGoal(node, Fact("KU", (Var("x", 0, Sort.FRESH),))))
    items = []
    for g in goals:
        w = _Work(theory, base)
        w.add_goal(g)
        cs = w.freeze()
        real = next((x for x in cs.open_goals() if x == g), None)
        if real is None:
            continue
        cases = solve_with_sources(theory, cs, real, limits, refine)
        items.append(Source(g.text, tuple((n, c) for n, c in cases if c.contradiction is None)))
    return Sources(bool(refine), tuple(items))
