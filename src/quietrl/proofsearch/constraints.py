"""Constraint systems (slice B): nodes, edges, ordering, goals, formulas, ``simplify`` and ``solve``.

What is here: the data of a constraint system and the formula part of Tamarin's ``simplify``: existential
instantiation, conjunction splitting, action atoms becoming action goals (``K(m) @ #j`` becoming an
``isend`` node whose premise is the goal ``!KU( m ) @ #vk``), ordering atoms, equations solved by
unification modulo E, disjunctions becoming disjunction goals, guarded universals instantiated with every
matching action (S_∀), the S_@ rule for an action of exactly one protocol rule (Tamarin's
``solveUniqueActions``; a rule with several variants is placed with its destructor applications abstracted
by variables and its variants filed as a split goal, so the case does not fan out), merged
KU goals (each message is deduced once), and the contradictions ``from formulas``, ``cyclic``,
``impossible chain`` and ``forbidden chain``; and ``solve`` for premise, protocol-action, disjunction,
KU and chain goals, and the contradiction ``node #j after last node #i``.

The intruder (KU goals) is Tamarin's normal form folded into one step per goal: construction ``c_f``,
intruder-generated fresh names, and deconstruction paths from every protocol ``Out`` (unpairing and
destructor equations, keys as earlier KU goals). A path through a message variable the intruder did not
know leaves a pending :class:`ChainGoal` (Tamarin's open chain from a variable, which precomputed sources
would resolve); it is offered once a premise goal binds the variable. These cases are exhaustive for the
builtins and destructor-shaped user equations (:func:`ku_exhaustive`); for other equation shapes every KU
case is flagged ``exhaustive=False`` so that no verdict rests on a closure below it. An equation with
several most general E-unifiers becomes a :class:`SplitGoal` (Tamarin's ``splitEqs(i)``), settled by
simplification as soon as a substitution leaves one unifier (applied) or none (``incompatible
equalities``). Sources (the saturation of a step's cases) live in :mod:`~quietrl.proofsearch.sources`,
induction in :mod:`~quietrl.proofsearch.system`. Unique ``Fr`` instances (DG4) and single uses of linear
conclusions (DG3) are enforced by merging nodes; a ``Fr(x)`` premise makes ``x`` fresh-sorted."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from quietrl.proofsearch import terms as T
from quietrl.proofsearch.formulas import conjuncts, free_vars, show
from quietrl.proofsearch.types import (
    Action,
    Bool,
    Conn,
    Equal,
    Fact,
    Formula,
    Last,
    Less,
    Name,
    Not,
    Quant,
    Rule,
    Sort,
    Term,
    Theory,
    Var,
)
from quietrl.proofsearch.variants import rule_variants

SUBSCRIPT = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


# ---------------------------------------------------------------- goals


@dataclasses.dataclass(frozen=True)
class ActionGoal:
    node: Var
    fact: Fact

    @property
    def text(self) -> str:
        bang = "!" if self.fact.name in ("KU", "KD") else ""
        return f"{bang}{_fact_text(self.fact)} @ {self.node}"


@dataclasses.dataclass(frozen=True)
class PremiseGoal:
    node: Var
    index: int
    fact: Fact

    @property
    def text(self) -> str:
        bang = "!" if self.fact.persistent else ""
        return f"{bang}{_fact_text(self.fact)} ▶{str(self.index).translate(SUBSCRIPT)} {self.node}"


@dataclasses.dataclass(frozen=True)
class DisjGoal:
    disjuncts: tuple[Formula, ...]

    @property
    def text(self) -> str:
        return "  ∥ ".join(f"({show(d)})" for d in self.disjuncts)


@dataclasses.dataclass(frozen=True)
class ChainGoal:
    """A pending deconstruction chain: ``target`` is obtained by zero or more deconstruction steps
    (unpairing or a public destructor equation) from ``start``, a message variable inside the message that
    node ``src`` sent with its conclusion ``conc`` when the chain was made; the result is known at ``node``
    (the node of the ``!KU( target )`` goal it serves). Offered only once ``start`` is no longer a message
    variable (Tamarin offers no chain from a message variable: solving a premise goal first instantiates
    it); zero steps is Tamarin's direct edge."""

    src: Var
    conc: int
    start: Term
    target: Term
    node: Var

    @property
    def text(self) -> str:
        return f"({self.src}, {self.conc}) ~~> ({self.node}, 0) from {self.start} to {self.target}"


@dataclasses.dataclass(frozen=True)
class SplitGoal:
    """A pending case split of the equation store: ``left =E right`` has several most general E-unifiers
    (``cases``, each a tuple of (variable, term) bindings). Printed as Tamarin's ``splitEqs(idx)``."""

    idx: int
    left: Term
    right: Term
    cases: tuple[tuple[tuple[Var, Term], ...], ...]

    @property
    def text(self) -> str:
        return f"splitEqs({self.idx})"


GoalT = ActionGoal | PremiseGoal | DisjGoal | ChainGoal | SplitGoal


def _split_cases(R: T.RewriteSystem, left: Term, right: Term) -> tuple[tuple[tuple[Var, Term], ...], ...]:
    """The most general E-unifiers of ``left = right`` as hashable binding tuples (sorted by variable)."""
    return tuple(tuple(sorted(u.items(), key=lambda kv: (kv[0].name, kv[0].idx, kv[0].sort.value)))
                 for u in R.unify(left, right))


def _fact_text(f: Fact) -> str:
    return f"{f.name}( " + ", ".join(map(str, f.args)) + " )"


def goal_kind(g: GoalT) -> str:
    return {ActionGoal: "action", PremiseGoal: "premise", DisjGoal: "disjunction", ChainGoal: "chain",
            SplitGoal: "split"}[type(g)]


@dataclasses.dataclass(frozen=True)
class RuleInstance:
    """A rule instance placed at a node (protocol rule variant or intruder rule such as ``isend``)."""

    name: str
    premises: tuple[Fact, ...]
    actions: tuple[Fact, ...]
    conclusions: tuple[Fact, ...]


@dataclasses.dataclass(frozen=True)
class Constraints:
    """An immutable constraint system. ``goals`` are (goal, age, solved) in age order."""

    nodes: tuple[tuple[Var, RuleInstance], ...] = ()
    less: tuple[tuple[Var, Var], ...] = ()
    last: Var | None = None
    formulas: tuple[Formula, ...] = ()         # open formulas (guarded universals, negated atoms)
    solved_formulas: tuple[Formula, ...] = ()  # instantiations already done (S_∀ bookkeeping)
    goals: tuple[tuple[GoalT, int, bool], ...] = ()
    next_age: int = 0
    # Tamarin's split-id counter (``splitEqs(i)``): every protocol rule placed at an action goal, every
    # equation with several unifiers and every split solved takes the next id, used or not.
    next_split: int = 0
    contradiction: str | None = None
    # (source node, conclusion index) -> (target node, premise index)
    edges: tuple[tuple[tuple[Var, int], tuple[Var, int]], ...] = ()
    # False once an intruder (KU) step produced this system: its cases are not known to be exhaustive yet,
    # so no closure below it may support a verdict (found traces are replayed and still count).
    exhaustive: bool = True
    # Cache of the variable names in use, (name, sort) -> highest index (filled by the first _Work built
    # from this system; not part of its value).
    _used: dict | None = dataclasses.field(default=None, compare=False, repr=False, hash=False)

    def open_goals(self) -> list[GoalT]:
        """Unsolved goals in age order, including KU goals the intruder satisfies trivially."""
        return [g for g, _, solved in self.goals if not solved]

    def offered_goals(self) -> list[GoalT]:
        """Open goals that a proof method must solve: Tamarin offers no KU goal on a message variable
        (the intruder may choose any message there) or on a public name or nullary public symbol."""
        fresh = {v for _, inst in self.nodes for p in inst.premises if p.name == "Fr"
                 for v in T.vars_of(p.args[0])}
        return [g for g in self.open_goals() if not _trivial_ku(g, fresh) and not _from_msg_var(g)]

    def pending_chains(self) -> list[ChainGoal]:
        """Open chains that start at a message variable: not solvable until a premise goal binds it (a
        system whose other goals are all solved is solved, as in Tamarin: the variable can be the chain's
        end itself, see :func:`close_open_chains`)."""
        return [g for g in self.open_goals() if _from_msg_var(g)]


def _from_msg_var(g) -> bool:
    return isinstance(g, ChainGoal) and isinstance(g.start, Var) and g.start.sort is Sort.MSG


def _trivial_ku(g, fresh: set) -> bool:
    if not (isinstance(g, ActionGoal) and g.fact.name == "KU"):
        return False
    m = g.fact.args[0]
    if isinstance(m, Var):
        # A message variable is any message the intruder likes, unless a Fr premise makes it a fresh name.
        return m.sort in (Sort.MSG, Sort.PUB) and m not in fresh
    if isinstance(m, Name):
        return m.sort is Sort.PUB
    return isinstance(m, T.App) and not m.args


class Unsupported(NotImplementedError):
    """A constraint the solver of this slice cannot handle yet."""


# ---------------------------------------------------------------- mutable work area


_THEORY_CACHE: dict[int, tuple[Theory, T.RewriteSystem, dict[str, list[Rule]]]] = {}


def _theory_tools(theory: Theory) -> tuple[T.RewriteSystem, dict[str, list[Rule]]]:
    """Rewrite system and rule variants of a theory, computed once per theory object."""
    hit = _THEORY_CACHE.get(id(theory))
    if hit is None or hit[0] is not theory:
        R = T.RewriteSystem(theory.signature.equations)
        variants = {r.name: [_fresh_refined(v) for v in rule_variants(r, theory.signature, R)]
                    for r in theory.rules}
        if len(_THEORY_CACHE) > 64:
            _THEORY_CACHE.clear()
        hit = _THEORY_CACHE[id(theory)] = (theory, R, variants)
    return hit[1], hit[2]


def _fresh_refined(rule: Rule) -> Rule:
    """``rule`` with every message variable of a ``Fr`` premise made fresh-sorted.

    ``Fr`` facts come only from Tamarin's built-in rule ``[] --> [Fr(~n)]``, so solving a ``Fr(x)`` premise
    unifies ``x`` with a fresh variable: every instance of the rule has a fresh name there. Refining the
    sort up front keeps ``x`` from being unified with a composed message later.
    """
    ren: T.Subst = {}
    for p in rule.premises:
        if p.name == "Fr" and len(p.args) == 1 and isinstance(p.args[0], Var) and p.args[0].sort is Sort.MSG:
            v = p.args[0]
            ren[v] = Var(v.name, v.idx, Sort.FRESH)
    if not ren:
        return rule

    def facts(fs: tuple[Fact, ...]) -> tuple[Fact, ...]:
        return tuple(Fact(f.name, tuple(T.apply(a, ren) for a in f.args), f.persistent, f.annotations, f.pos)
                     for f in fs)

    return dataclasses.replace(rule, premises=facts(rule.premises), actions=facts(rule.actions),
                               conclusions=facts(rule.conclusions),
                               lets=tuple((v, T.apply(t, ren)) for v, t in rule.lets))


class _Work:
    def __init__(self, theory: Theory, cs: Constraints):
        self.theory = theory
        self.R, self._rule_variants = _theory_tools(theory)
        self.nodes: dict[Var, RuleInstance] = dict(cs.nodes)
        self.less: list[tuple[Var, Var]] = list(cs.less)
        self.last = cs.last
        self.formulas: list[Formula] = list(cs.formulas)
        self.solved_formulas: list[Formula] = list(cs.solved_formulas)
        self.goals: dict[GoalT, list] = {g: [age, solved] for g, age, solved in cs.goals}
        self.next_age = cs.next_age
        self.next_split = cs.next_split
        self.contradiction = cs.contradiction
        self.edges: list[tuple[tuple[Var, int], tuple[Var, int]]] = list(cs.edges)
        self.exhaustive = cs.exhaustive
        self.dead = False  # the case dies inside the step (no trace, and no contradiction leaf either)
        # Names in use per (name, sort): Tamarin's ~x, $x and x are different variables.
        if cs._used is None:
            used: dict[tuple[str, Sort], int] = {}
            for v in self._all_vars():
                key = (v.name, v.sort)
                used[key] = max(used.get(key, -1), v.idx)
            object.__setattr__(cs, "_used", used)
        self.used: dict[tuple[str, Sort], int] = dict(cs._used)

    # -- bookkeeping
    def _all_vars(self) -> Iterable[Var]:
        for n, inst in self.nodes.items():
            yield n
            for f in inst.premises + inst.actions + inst.conclusions:
                yield from T.vars_of_all(f.args)
        for a, b in self.less:
            yield a
            yield b
        for g in self.goals:
            if isinstance(g, (ActionGoal, PremiseGoal)):
                yield g.node
                yield from T.vars_of_all(g.fact.args)
            elif isinstance(g, ChainGoal):
                yield g.src
                yield g.node
                yield from T.vars_of_all((g.start, g.target))
            elif isinstance(g, SplitGoal):
                yield from T.vars_of_all((g.left, g.right))

    def fresh(self, name: str, sort: Sort) -> Var:
        idx = self.used.get((name, sort), -1) + 1
        self.used[(name, sort)] = idx
        return Var(name, idx, sort)

    def reserve(self, v: Var) -> Var:
        """Keep a formula's variable name if unused, else rename it apart."""
        if (v.name, v.sort) not in self.used:
            self.used[(v.name, v.sort)] = v.idx
            return v
        return self.fresh(v.name, v.sort)

    def add_goal(self, g: GoalT, solved: bool = False) -> None:
        if isinstance(g, ActionGoal) and g.fact.name == "KU" and isinstance(g.fact.args[0], T.App) \
                and g.fact.args[0].fun == T.PAIR_FUN:
            # KU of a pair is never a goal: its components are, at earlier time points.
            for part in g.fact.args[0].args:
                vk = self.fresh("vk", Sort.NODE)
                self.less.append((vk, g.node))
                self.add_goal(ActionGoal(vk, Fact("KU", (part,))), solved)
            return
        if g in self.goals:
            entry = self.goals[g]
            entry[1] = entry[1] or solved
            return
        self.goals[g] = [self.next_age, solved]
        self.next_age += 1

    def contradict(self, reason: str) -> None:
        if self.contradiction is None:
            self.contradiction = reason

    def variants(self) -> dict[str, list[Rule]]:
        return self._rule_variants

    # -- substitution of the whole system
    def substitute(self, s: T.Subst) -> None:
        if not s:
            return

        def term(a: Term) -> Term:
            b = T.apply(a, s)
            return a if b is a else self.R.normalize(b)  # system terms are normal: only changed ones need it

        def fact(f: Fact) -> Fact:
            args = tuple(term(a) for a in f.args)
            if all(x is y for x, y in zip(args, f.args)):
                return f
            return Fact(f.name, args, f.persistent, f.annotations, f.pos)

        def node_fact(f: Fact) -> Fact:
            # N1: rule instances stay in normal form. A substitution that makes one reducible is one
            # Tamarin's unification discards (another variant of the rule covers that instance): the case
            # dies inside the step.
            args = []
            for a in f.args:
                b = T.apply(a, s)
                if b is not a:
                    nb = self.R.normalize(b)
                    if nb != b:
                        self.dead = True
                    b = nb
                args.append(b)
            if all(x is y for x, y in zip(args, f.args)):
                return f
            return Fact(f.name, tuple(args), f.persistent, f.annotations, f.pos)

        def node(v: Var) -> Var:
            t = s.get(v, v)
            assert isinstance(t, Var)
            return t

        self.nodes = {node(n): RuleInstance(i.name, tuple(map(node_fact, i.premises)),
                                            tuple(map(node_fact, i.actions)), tuple(map(node_fact, i.conclusions)))
                      for n, i in self.nodes.items()}
        self.less = [(node(a), node(b)) for a, b in self.less]
        self.edges = [((node(a), i), (node(b), j)) for (a, i), (b, j) in self.edges]
        self.last = node(self.last) if self.last is not None else None
        self.formulas = [_subst_formula(f, s) for f in self.formulas]
        self.solved_formulas = [_subst_formula(f, s) for f in self.solved_formulas]
        new_goals: dict[GoalT, list] = {}
        for g, (age, solved) in self.goals.items():
            if isinstance(g, ActionGoal):
                g2: GoalT = ActionGoal(node(g.node), fact(g.fact))
            elif isinstance(g, PremiseGoal):
                g2 = PremiseGoal(node(g.node), g.index, fact(g.fact))
            elif isinstance(g, ChainGoal):
                g2 = ChainGoal(node(g.src), g.conc, self.R.normalize(T.apply(g.start, s)),
                               self.R.normalize(T.apply(g.target, s)), node(g.node))
            elif isinstance(g, SplitGoal):
                left, right = term(g.left), term(g.right)
                if left is g.left and right is g.right:
                    g2 = g
                else:
                    cases = g.cases
                    if not solved:
                        # Tamarin keeps a split's unifiers in a set, re-sorted whenever a substitution
                        # re-unifies them: in its proofs the variants that reduce a destructor then come
                        # first (an untouched variant split keeps the destructor-keeping variant first).
                        destr = self.R.destructors
                        cases = tuple(sorted(_split_cases(self.R, left, right), key=lambda c: any(
                            isinstance(u, T.App) and u.fun in destr for _, t in c for u in T.subterms(t))))
                    g2 = SplitGoal(g.idx, left, right, cases)
            else:
                g2 = DisjGoal(tuple(_subst_formula(d, s) for d in g.disjuncts))
            if g2 in new_goals:  # merged goals keep the smaller age, solved flags are OR-ed
                old = new_goals[g2]
                new_goals[g2] = [min(old[0], age), old[1] or solved]
            else:
                new_goals[g2] = [age, solved]
        self.goals = new_goals

    # -- formulas
    def add_formula(self, f: Formula) -> None:
        if self.contradiction:
            return
        if isinstance(f, Bool):
            if not f.value:
                self.contradict("from formulas")
            return
        if isinstance(f, Conn):
            if f.op == "&":
                self.add_formula(f.left)
                self.add_formula(f.right)
                return
            if f.op == "|":
                self.add_goal(DisjGoal(tuple(_disjuncts(f))))
                return
            raise Unsupported(f"connective {f.op} in a guarded formula")
        if isinstance(f, Quant):
            if f.kind == "Ex":
                ren = {v: self.reserve(v) for v in f.vars}
                self.add_formula(_subst_formula(f.body, {k: v for k, v in ren.items() if k != v}))
            else:
                if f not in self.formulas:
                    self.formulas.append(f)
                self.saturate_universals()
            return
        if isinstance(f, Action):
            self.add_action(f.node, f.fact)
            return
        if isinstance(f, Less):
            if (f.left, f.right) not in self.less:
                self.less.append((f.left, f.right))
            return
        if isinstance(f, Last):
            if self.last is not None and self.last != f.node:
                self.equate_nodes(self.last, f.node)  # one last node: the substitution renames self.last
            else:
                self.last = f.node
            return
        if isinstance(f, Equal):
            if isinstance(f.left, Var) and f.left.sort is Sort.NODE:
                self.equate_nodes(f.left, f.right)
                return
            unifiers = self.R.unify(f.left, f.right)
            if not unifiers:
                self.contradict("from formulas")
            elif len(unifiers) == 1:
                self.substitute(unifiers[0])
            else:
                # Several most general E-unifiers: a case split of the equation store (Tamarin's SplitG).
                left, right = self.R.normalize(f.left), self.R.normalize(f.right)
                self.add_goal(SplitGoal(self.split_id(), left, right, _split_cases(self.R, left, right)))
            return
        if isinstance(f, Not):
            a = f.body
            if isinstance(a, Equal) and isinstance(a.left, Var) and a.left.sort is Sort.NODE:
                # Distinct time points are ordered one way or the other.
                self.add_goal(DisjGoal((Less(a.left, a.right), Less(a.right, a.left))))
                return
            if f not in self.formulas:
                self.formulas.append(f)
            return
        raise AssertionError(f)

    def equate_nodes(self, a, b) -> None:
        """``#a = #b``: the greater variable (by name, then index) is replaced by the smaller, as Tamarin's
        unification orders a variable pair."""
        if a != b and a in self.nodes and b in self.nodes:
            # Two placed nodes are one node only if their rule instances unify (a plain renaming would drop
            # one instance and its constraints).
            if self.merge_nodes(a, b) is None:
                self.contradict("from formulas")
            return
        s = T.unify1(*sorted((a, b), key=_var_order, reverse=True))
        if s is None:
            self.contradict("from formulas")
            return
        self.substitute(s)

    def add_action(self, node: Var, fact: Fact) -> None:
        self.add_goal(ActionGoal(node, fact))

    # -- nodes
    def place(self, node: Var, inst: RuleInstance) -> None:
        if node in self.nodes:
            if self.nodes[node] != inst:
                raise Unsupported("merging two rule instances at one node")
            return
        if any(self.R.normalize(a) != a for f in inst.premises + inst.actions + inst.conclusions for a in f.args):
            self.dead = True  # N1: a reducible instance is covered by another variant of the rule
        self.nodes[node] = inst
        for i, p in enumerate(inst.premises):
            if p.name == "Fr":
                continue  # fresh premises are solved by the unique Fr instance of their name
            if p.name in ("In", "KU"):
                vk = self.fresh("vk", Sort.NODE)
                self.add_goal(ActionGoal(vk, Fact("KU", p.args)))
                self.less.append((vk, node))
                continue
            self.add_goal(PremiseGoal(node, i, p))
        # Actions placed at a node satisfy action goals there.
        for g, entry in list(self.goals.items()):
            if isinstance(g, ActionGoal) and g.node == node and not entry[1] and g.fact in inst.actions:
                entry[1] = True
        self.saturate_universals()

    def renamed_instance(self, rule: Rule) -> RuleInstance:
        ren: T.Subst = {}
        for f in rule.premises + rule.actions + rule.conclusions:
            for v in T.vars_of_all(f.args):
                if v not in ren:
                    ren[v] = self.fresh(v.name, v.sort)

        def fact(f: Fact) -> Fact:
            return Fact(f.name, tuple(T.apply(a, ren) for a in f.args), f.persistent, f.annotations, f.pos)

        return RuleInstance(rule.name, tuple(map(fact, rule.premises)), tuple(map(fact, rule.actions)),
                            tuple(map(fact, rule.conclusions)))

    def unique_action_rules(self) -> bool:
        """S_@ for action goals whose fact (name and arity) is the action of exactly one rule of the theory
        (Tamarin's ``solveUniqueActions``): solved when the rule has one variant that unifies (or the
        node's one action does), or by :meth:`place_abstracted` when the rule has several variants; the case
        dies silently when no variant unifies; True if something changed."""
        unique = _unique_action_tags(self.theory)
        for g, entry in list(self.goals.items()):
            if entry[1] or not isinstance(g, ActionGoal) or g.fact.name in ("KU", "KD"):
                continue
            if g.fact.name == "K" and g.node not in self.nodes:
                # K(m) @ #j is the isend action: #j is an isend node whose KU premise is an earlier KU goal.
                m = g.fact.args[0]
                entry[1] = True
                self.place(g.node, RuleInstance("isend", (Fact("KU", (m,)),), (Fact("K", (m,)),),
                                                (Fact("In", (m,)),)))
                return True
            if (g.fact.name, len(g.fact.args)) not in unique:
                continue
            if g.node in self.nodes:
                inst = self.nodes[g.node]
                cands = [a for a in inst.actions if T.unify1(a_key(a), a_key(g.fact)) is not None]
                if not cands:
                    self.dead = True
                    return True
                if len(cands) == 1:
                    s = T.unify1(a_key(cands[0]), a_key(g.fact))
                    entry[1] = True
                    self.substitute(s)
                    return True
                continue
            # Test every variant renamed far apart (consuming no names); rename for real only the one used.
            off = max(self.used.values(), default=0) + 1000
            options = []
            for variants in self.variants().values():
                for v in variants:
                    for a in v.actions:
                        probe = Fact(a.name, tuple(T.shift_vars(t, off) for t in a.args))
                        if T.unify1(a_key(probe), a_key(g.fact)) is not None:
                            options.append((v, a))
            if not options:
                self.dead = True
                return True
            if len(self.variants()[options[0][0].name]) > 1 and self.place_abstracted(g):
                return True
            if len(options) == 1:
                self.place_variant(g, options[0][0])
                return True
        return False

    def place_abstracted(self, g: ActionGoal, rule: Rule | None = None, action: int | None = None) -> bool:
        """Solve the action goal ``g`` with a rule of several variants as Tamarin does: place the rule
        with each maximal destructor application abstracted by a fresh variable ``z`` and file the
        equation ``<z..> = <t..>`` modulo E (its unifiers are the rule's variants) as a numbered split goal,
        settled at once when one unifier remains. So the case does not fan out per variant here.
        ``rule`` defaults to the one rule with ``g``'s action (simplify's unique actions); ``action`` picks
        the rule's action to unify with ``g`` (default: the one that fits). False when that rule is not
        unique or no (or, without ``action``, more than one) action of its instance fits ``g``."""
        if rule is None:
            rules = [r for r in self.theory.rules
                     if any((a.name, len(a.args)) == (g.fact.name, len(g.fact.args)) for a in r.actions)]
            if len(rules) != 1:
                return False
            rule = rules[0]
        inst, abstr = self.abstracted_instance(rule)
        if action is None:
            cands = [a for a in inst.actions if T.unify1(a_key(a), a_key(g.fact)) is not None]
            if len(cands) != 1:
                return False
        else:
            cands = [inst.actions[action]]
        s = T.unify1(a_key(cands[0]), a_key(g.fact))
        if s is None:
            return False
        self.place_at_goal(g, inst, s, abstr)
        return True

    def place_at_goal(self, g: ActionGoal, inst: RuleInstance, s: T.Subst,
                      abstr: dict[Term, Var] | None = None) -> None:
        """Solve the action goal ``g`` with the protocol rule instance ``inst`` (its action unified with
        ``g``'s fact by ``s``) at ``g``'s node; its variants filed as :meth:`file_variants` does (none
        abstracted: the trivial disjunction, which still takes a split id)."""
        self.goals[g][1] = True
        self.substitute(s)
        self.file_variants(abstr or {}, s)
        self.place(g.node, _subst_inst(inst, s))

    def abstracted_instance(self, rule: Rule) -> tuple[RuleInstance, dict[Term, Var]]:
        """A fresh instance of ``rule`` with each maximal destructor application abstracted by a fresh
        variable ``z``; the map from those applications to their variables (first-seen order)."""
        inst = self.renamed_instance(_fresh_refined(rule))
        destr = self.R.destructors
        abstr: dict[Term, Var] = {}  # maximal destructor application -> its variable, in first-seen order

        def term(t: Term) -> Term:
            if isinstance(t, T.App):
                if t.fun in destr:
                    if t not in abstr:
                        abstr[t] = self.fresh("z", Sort.MSG)
                    return abstr[t]
                args = tuple(term(a) for a in t.args)
                return t if all(x is y for x, y in zip(args, t.args)) else T.App(t.fun, args)
            return t

        def fact(f: Fact) -> Fact:
            return Fact(f.name, tuple(term(self.R.normalize(a)) for a in f.args), f.persistent, f.annotations,
                        f.pos)

        inst = RuleInstance(inst.name, tuple(map(fact, inst.premises)), tuple(map(fact, inst.actions)),
                            tuple(map(fact, inst.conclusions)))
        return inst, abstr

    def file_variants(self, abstr: dict[Term, Var], s: T.Subst) -> None:
        """File a placed rule's variants (``abstr`` from :meth:`abstracted_instance`, under the unifier
        ``s`` of its placing) as a split goal; a rule without destructors still takes a split id."""
        if abstr:
            # Tamarin files the variants as a numbered split even when one of them is left (applied at once
            # by settle_splits), so later splits are numbered after it. It is filed before the rule's
            # premises (older goal) and before placing, so that what placing implies (restrictions on the
            # rule's actions, e.g. ``Eq(z, true)``) acts on it.
            left = self.R.normalize(T.bundle([T.apply(z, s) for z in abstr.values()]))
            right = self.R.normalize(T.bundle([T.apply(t, s) for t in abstr]))
            self.add_goal(SplitGoal(self.split_id(), left, right, _split_cases(self.R, left, right)))
        else:
            self.split_id()

    def split_id(self) -> int:
        """The next split id (Tamarin numbers every variant disjunction of a placed protocol rule, trivial
        ones included, every equation with several unifiers and every split performed)."""
        self.next_split += 1
        return self.next_split - 1

    def place_variant(self, g: ActionGoal, rule: Rule) -> None:
        """Solve the action goal ``g`` with a fresh instance of the rule variant ``rule`` at its node."""
        inst = self.renamed_instance(rule)
        a = next(x for x in inst.actions if T.unify1(a_key(x), a_key(g.fact)) is not None)
        self.place_at_goal(g, inst, T.unify1(a_key(a), a_key(g.fact)))

    def eval_disjunctions(self) -> bool:
        """Tamarin's atom valuation on open disjunctions: a disjunct that is ``last(#i)``, ``#i < #j``,
        ``#i = #j`` of time points or ``t = t`` (or the negation of one) is decided by the ordering when it
        can be; a true disjunct solves the disjunction, false ones leave it (the rest becomes a new
        disjunction, or a plain formula when one remains, none: ``from formulas``). True if something changed."""
        succ = order_graph(self.less, self.edges)
        in_trace = set(self.nodes) | {g.node for g in self.goals if isinstance(g, ActionGoal)}

        def value(d: Formula) -> bool | None:
            if isinstance(d, Last):
                if self.last == d.node:
                    return True
                if any(n != d.node and n in in_trace for n in _reach_set(succ, d.node)):
                    return False
                if self.last is not None and self.distinct_nodes(d.node, self.last):
                    return False
                return None
            if isinstance(d, Less):
                if _reaches(succ, d.left, d.right):
                    return True
                if d.left == d.right or _reaches(succ, d.right, d.left):
                    return False
                if self.last == d.left and d.right in in_trace:
                    return False
                if self.last == d.right and d.left in in_trace and self.distinct_nodes(d.left, d.right):
                    return True
                return None
            if isinstance(d, Equal):
                if d.left == d.right:
                    return True
                if isinstance(d.left, Var) and d.left.sort is Sort.NODE and isinstance(d.right, Var):
                    if _reaches(succ, d.left, d.right) or _reaches(succ, d.right, d.left) \
                            or self.distinct_nodes(d.left, d.right):
                        return False
                return None
            if isinstance(d, Not) and isinstance(d.body, (Last, Less, Equal)):
                v = value(d.body)
                return None if v is None else not v
            return None

        for g, entry in list(self.goals.items()):
            if entry[1] or not isinstance(g, DisjGoal):
                continue
            vals = [value(d) for d in g.disjuncts]
            if True in vals:
                entry[1] = True
                return True
            if False not in vals:
                continue
            entry[1] = True
            rest = [d for d, v in zip(g.disjuncts, vals) if v is not False]
            if not rest:
                self.contradict("from formulas")
            elif len(rest) == 1:
                self.add_formula(rest[0])
            else:
                self.add_goal(DisjGoal(tuple(rest)))
            return True
        return False

    def distinct_nodes(self, a: Var, b: Var) -> bool:
        """Whether time points ``a`` and ``b`` are surely different nodes: both hold rule instances that no
        substitution makes equal (different rules)."""
        ia, ib = self.nodes.get(a), self.nodes.get(b)
        return ia is not None and ib is not None and ia.name != ib.name

    def negative_orderings(self) -> bool:
        """``¬(#i < #j)``: for two surely different nodes it means ``#j < #i`` (time points are totally
        ordered); otherwise it becomes the goal ``#i = #j ∨ #j < #i``. True if something was added."""
        added = False
        succ = order_graph(self.less, self.edges)
        for f in self.formulas:
            if isinstance(f, Not) and isinstance(f.body, Less):
                a, b = f.body.left, f.body.right
                if _reaches(succ, a, b) or _reaches(succ, b, a):
                    continue  # already decided: ``from formulas``, or nothing to add
                if self.distinct_nodes(a, b):
                    self.less.append((b, a))
                    added = True
                else:
                    # Tamarin's S_¬,<: ``#i = #j ∨ #j < #i``, a disjunction goal (once).
                    g = DisjGoal((Equal(a, b), Less(b, a)))
                    if g not in self.goals:
                        self.add_goal(g)
                        added = True
        return added

    def fresh_order(self) -> bool:
        """A fresh name exists only once its ``Fr`` is consumed: the node with ``Fr(~n)`` precedes every
        other node with ``~n`` in a premise or action, outside destructor applications (Tamarin's
        S_fresh-order). Tamarin's route refinement: when the creating node's single linear conclusion feeds a
        chain of such nodes (its *route*), a node that can be none of the route's later nodes comes after
        the route's end. True if an ordering was added."""
        made: dict[Term, Var] = {}
        for n, inst in self.nodes.items():
            for p in inst.premises:
                if p.name == "Fr" and p.args and _fresh_sorted(p.args[0]):
                    made.setdefault(p.args[0], n)
        if not made:
            return False
        succ = order_graph(self.less, self.edges)
        destr = self.R.destructors
        out_edge = {src: tgt[0] for src, tgt in self.edges}
        routes: dict[Var, list[Var]] = {}

        def route(i: Var) -> list[Var]:
            hit = routes.get(i)
            if hit is None:
                hit, n, seen = [i], i, {i}
                while True:
                    inst = self.nodes.get(n)
                    if inst is None or len(inst.conclusions) != 1 or inst.conclusions[0].persistent:
                        break
                    n = out_edge.get((n, 0))
                    if n is None or n in seen:
                        break
                    hit.append(n)
                    seen.add(n)
                routes[i] = hit
            return hit

        added = False
        for j, inst in self.nodes.items():
            fr_here = {p.args[0] for p in inst.premises if p.name == "Fr" and p.args}
            used = {v for f in inst.premises + inst.actions if f.name != "Fr" for a in f.args
                    for v in _atoms_outside(a, destr)}
            for t in used:
                i = made.get(t)
                if i is None or i == j or t in fr_here:
                    continue
                added |= _order(self.less, succ, i, j)
                r = route(i)
                if len(r) > 1 and all(self.distinct_nodes(j, m) for m in r[1:]):
                    added |= _order(self.less, succ, r[-1], j)
        return added

    def injective_order(self) -> bool:
        """Injective facts (see :func:`_injective_tags`): at most one ``F(t, ..)`` exists at a time, so a node
        ``j`` that uses ``F(t, ..)`` after the producer ``i`` of an edge ``i -> k`` carrying ``F(t, ..)`` is not
        before ``k`` (Tamarin's non-injective fact instances): ``k <= j``, so ``k`` precedes every node after
        ``j`` (a ``j`` strictly between ``i`` and ``k`` thus closes a cycle, as in Tamarin's proofs). True if
        an ordering was added."""
        tags = _injective_tags(self.theory)
        if not tags or not self.edges:
            return False
        succ = order_graph(self.less, self.edges)
        users: dict[tuple[str, Term], list[Var]] = {}
        for n, inst in self.nodes.items():
            for f in inst.premises + inst.conclusions:
                if f.name in tags and f.args:
                    users.setdefault((f.name, f.args[0]), []).append(n)
        added = False
        for (i, ci), (k, _) in self.edges:
            inst = self.nodes.get(i)
            if inst is None or ci >= len(inst.conclusions):
                continue
            f = inst.conclusions[ci]
            if f.name not in tags or not f.args:
                continue
            for j in dict.fromkeys(users.get((f.name, f.args[0]), ())):
                if j in (i, k) or not _reaches(succ, i, j):
                    continue
                # (j strictly between i and k, Tamarin's non-injective instance, ends up cyclic here.)
                for m in sorted(succ.get(j, ()), key=lambda v: (v.name, v.idx)):
                    if m == k:
                        if self.contradiction:
                            continue
                        self.contradict("cyclic")  # k <= j < k
                        return True
                    added |= _order(self.less, succ, k, m)
        return added

    def merge_fresh(self) -> bool | None:
        """DG4: a fresh name is created once, so two nodes with ``Fr(t)`` premises are one node.

        Returns True if two nodes were merged, False if none needed merging, None if a merge failed
        (different rules or clashing terms: the case dies).
        """
        seen: dict[Term, Var] = {}
        for n, inst in sorted(self.nodes.items(), key=lambda kv: (kv[0].name, kv[0].idx)):
            frs = [p.args[0] for p in inst.premises if p.name == "Fr"]
            if len(set(frs)) < len(frs):
                return None  # two Fr premises of one node would consume the same fresh name's single Fr
            for p in inst.premises:
                if p.name != "Fr":
                    continue
                other = seen.get(p.args[0])
                if other is None or other == n:
                    seen[p.args[0]] = n
                    continue
                return self.merge_nodes(other, n)
        # DG3: a linear conclusion feeds at most one premise.
        targets: dict[tuple[Var, int], tuple[Var, int]] = {}
        for src, dst in self.edges:
            conc = self.nodes[src[0]].conclusions[src[1]] if src[0] in self.nodes else None
            if conc is None or conc.persistent:
                continue
            old = targets.setdefault(src, dst)
            if old != dst:
                if old[1] != dst[1]:
                    return None
                return self.merge_nodes(old[0], dst[0])
        return False

    def merge_nodes(self, keep: Var, drop: Var) -> bool | None:
        """Identify two node variables (their rule instances must unify); None if they cannot be one node."""
        a, b = self.nodes[keep], self.nodes[drop]
        fa, fb = a.premises + a.actions + a.conclusions, b.premises + b.actions + b.conclusions
        if a.name != b.name or len(fa) != len(fb) or len(a.premises) != len(b.premises):
            return None
        # The greater variable is replaced by the smaller (Tamarin's orientation of a variable pair).
        small, large = sorted((keep, drop), key=_var_order)
        s = T.unify([(a_key(x), a_key(y)) for x, y in zip(fa, fb)] + [(large, small)])
        if s is None:
            return None
        del self.nodes[large]
        self.substitute(s)
        return True

    def settle_splits(self) -> bool:
        """Splits whose equation a substitution decided: none left (``incompatible equalities``) or one
        unifier (applied now). True if something changed."""
        for g, entry in list(self.goals.items()):
            if entry[1] or not isinstance(g, SplitGoal) or len(g.cases) > 1:
                continue
            entry[1] = True
            if not g.cases:
                self.contradict("incompatible equalities")
            else:
                self.substitute(dict(g.cases[0]))
            return True
        return False

    def merge_ku(self) -> bool:
        """Normal form: the intruder deduces each message once, so two KU actions of one term share a time
        point (goals merge, keeping the smaller age). True if two time points were identified."""
        seen: dict[Term, Var] = {}
        for g in sorted(self.goals, key=lambda g: self.goals[g][0]):
            if isinstance(g, ActionGoal) and g.fact.name == "KU":
                other = seen.setdefault(g.fact.args[0], g.node)
                if other != g.node:
                    if other in self.nodes and g.node in self.nodes:
                        continue  # two placed nodes: leave them (never happens for KU time points)
                    self.equate_nodes(other, g.node)
                    return True
        return False

    # -- universals
    def actions_available(self) -> list[tuple[Var, Fact]]:
        acts = [(n, a) for n, inst in self.nodes.items() for a in inst.actions]
        acts += [(g.node, g.fact) for g in self.goals if isinstance(g, ActionGoal)]
        seen: dict = {}
        for x in acts:
            seen.setdefault(x, None)
        return list(seen)

    def saturate_universals(self) -> None:
        """S_∀: instantiate every guarded universal with every combination of matching actions."""
        done = set(self.solved_formulas)
        changed = True
        while changed and not self.contradiction:
            changed = False
            by_name: dict[str, list[tuple[Var, Fact]]] = {}
            for node, fact in self.actions_available():
                by_name.setdefault(fact.name, []).append((node, fact))
            for f in list(self.formulas):
                if not (isinstance(f, Quant) and f.kind == "All"):
                    continue
                body = f.body
                assert isinstance(body, Conn) and body.op == "==>"
                guards = [c for c in conjuncts(body.left) if isinstance(c, Action)]
                bound = frozenset(f.vars)
                for s in _join(guards, by_name, bound, {}):
                    inst = _subst_formula(body.right, {k: v for k, v in s.items() if k in bound})
                    key = Conn("&", f, inst)
                    if key in done:
                        continue
                    done.add(key)
                    self.solved_formulas.append(key)
                    changed = True
                    self.add_formula(inst)
                    if self.contradiction:
                        return
                    break  # the system changed: recompute the available actions

    # -- contradictions
    def check(self) -> None:
        """Tamarin's contradictions in its order (cyclic, ..., from formulas, node after last): the ones
        found while simplifying (from formulas, incompatible equalities) yield to the structural ones
        tested first."""
        if self.contradiction in ("from formulas", "incompatible equalities"):
            found, self.contradiction = self.contradiction, None
            self._check()
            if self.contradiction is None or self.contradiction.startswith("node "):
                self.contradiction = found
            return
        if not self.contradiction:
            self._check()

    def _check(self) -> None:
        succ = order_graph(self.less, self.edges)
        if _has_cycle(succ):
            self.contradict("cyclic")
            return
        # An open chain from a message variable x deconstructs x (KD) after its sending node, and in
        # normal form x is deconstructed before it is constructed (KD before KU): a KU(x) that is not
        # after the sending node closes a cycle.
        ku_at: dict[Term, list[Var]] = {}
        for g in self.goals:
            if isinstance(g, ActionGoal) and g.fact.name == "KU":
                ku_at.setdefault(g.fact.args[0], []).append(g.node)
        for g, (_, solved) in self.goals.items():
            if not solved and _from_msg_var(g) and any(
                    j == g.src or _reaches(succ, j, g.src) for j in ku_at.get(g.start, ())):
                self.contradict("cyclic")
                return
        for g, (_, solved) in self.goals.items():
            if isinstance(g, ChainGoal) and not solved and not (
                    (isinstance(g.start, Var) and g.start.sort is Sort.MSG)
                    or (isinstance(g.start, T.App) and g.start.args)) \
                    and T.unify1(g.start, g.target) is None:
                # An atom ends the chain at once (a direct edge) or not at all.
                self.contradict("impossible chain")
                return
        known_at: dict[Term, list[Var]] = {}
        for g in self.goals:
            if isinstance(g, ActionGoal) and g.fact.name == "KU":
                known_at.setdefault(g.fact.args[0], []).append(g.node)
        for g, (_, solved) in self.goals.items():
            # Normal form: no chain from a message variable the intruder already knew (via KU) before the
            # chain's result is needed: deconstructing it yields nothing that was not deducible earlier.
            if _from_msg_var(g) and not solved and any(
                    j == g.node or _reaches(succ, j, g.node) for j in known_at.get(g.start, ())):
                self.contradict("forbidden chain")
                return
        for f in self.formulas:
            if isinstance(f, Not):
                a = f.body
                if isinstance(a, Less) and _reaches(succ, a.left, a.right):
                    self.contradict("from formulas")
                elif isinstance(a, Equal) and a.left == a.right:
                    self.contradict("from formulas")
                elif isinstance(a, Last) and self.last == a.node:
                    self.contradict("from formulas")
        if self.last is not None and not self.contradiction:
            later = sorted((n for n in _reach_set(succ, self.last)), key=lambda v: (v.name, v.idx))
            if later:
                self.contradict(f"node {later[0]} after last node {self.last}")

    def freeze(self) -> Constraints:
        goals = sorted(((g, age, solved) for g, (age, solved) in self.goals.items()), key=lambda x: x[1])
        return Constraints(
            nodes=tuple(sorted(self.nodes.items(), key=lambda kv: (kv[0].name, kv[0].idx))),
            less=tuple(dict.fromkeys(self.less)), last=self.last, formulas=tuple(self.formulas),
            solved_formulas=tuple(self.solved_formulas), goals=tuple(goals), next_age=self.next_age,
            next_split=self.next_split, contradiction=self.contradiction, edges=tuple(dict.fromkeys(self.edges)),
            exhaustive=self.exhaustive)


_INJECTIVE: dict[int, tuple[Theory, frozenset]] = {}


def _injective_tags(theory: Theory) -> frozenset:
    """Names of looping linear facts with injective instances: every rule that concludes ``F(t, ..)``
    concludes it once, and consumes ``Fr(t)`` or an ``F(t, ..)`` with the same first term; so no two
    ``F(t, ..)`` exist at the same time (Tamarin's "looping facts with injective instances")."""
    hit = _INJECTIVE.get(id(theory))
    if hit is None or hit[0] is not theory:
        ok: dict[str, bool] = {}
        for rule in theory.rules:
            for c in rule.conclusions:
                if c.persistent or not c.args or c.name in ("Fr", "In", "Out", "K", "KU", "KD"):
                    ok[c.name] = False
                    continue
                t = c.args[0]
                once = sum(1 for d in rule.conclusions if d.name == c.name) == 1
                fed = any((p.name == "Fr" and p.args and p.args[0] == t)
                          or (p.name == c.name and not p.persistent and p.args and p.args[0] == t)
                          for p in rule.premises)
                ok[c.name] = ok.get(c.name, True) and once and fed
        # Tamarin only considers looping facts: some rule consumes and concludes the fact.
        looping = {c.name for rule in theory.rules for c in rule.conclusions
                   if any(p.name == c.name and not p.persistent for p in rule.premises)}
        if len(_INJECTIVE) > 64:
            _INJECTIVE.clear()
        hit = _INJECTIVE[id(theory)] = (theory, frozenset(n for n, good in ok.items() if good and n in looping))
    return hit[1]


_UNIQUE_TAGS: dict[int, tuple[Theory, frozenset]] = {}


def _unique_action_tags(theory: Theory) -> frozenset:
    """(name, arity) of the action facts that occur exactly once among all rules' actions."""
    hit = _UNIQUE_TAGS.get(id(theory))
    if hit is None or hit[0] is not theory:
        counts: dict[tuple[str, int], int] = {}
        for rule in theory.rules:
            for a in rule.actions:
                counts[(a.name, len(a.args))] = counts.get((a.name, len(a.args)), 0) + 1
        if len(_UNIQUE_TAGS) > 64:
            _UNIQUE_TAGS.clear()
        hit = _UNIQUE_TAGS[id(theory)] = (theory, frozenset(k for k, n in counts.items() if n == 1))
    return hit[1]


def _subst_inst(inst: RuleInstance, s: T.Subst) -> RuleInstance:
    def fact(f: Fact) -> Fact:
        return Fact(f.name, tuple(T.apply(a, s) for a in f.args), f.persistent, f.annotations, f.pos)

    return RuleInstance(inst.name, tuple(map(fact, inst.premises)), tuple(map(fact, inst.actions)),
                        tuple(map(fact, inst.conclusions)))


def a_key(f: Fact) -> Term:
    return T.App(f"{f.name}/{len(f.args)}", f.args)


def _join(guards: list[Action], by_name: dict[str, list[tuple[Var, Fact]]], bound: frozenset[Var],
          s: T.Subst):
    """All matches of the guard atoms against available actions (variables free in the formula are constants)."""
    if not guards:
        yield s
        return
    g, rest = guards[0], guards[1:]
    pattern = T.bundle([g.node, *g.fact.args])
    for node, fact in by_name.get(g.fact.name, ()):
        if len(fact.args) != len(g.fact.args):
            continue
        m = T.match(pattern, T.bundle([node, *fact.args]), s)
        if m is None or any(k not in bound and v != k for k, v in m.items()):
            continue
        yield from _join(rest, by_name, bound, m)


def _disjuncts(f: Formula) -> list[Formula]:
    if isinstance(f, Conn) and f.op == "|":
        return _disjuncts(f.left) + _disjuncts(f.right)
    return [f]


def _var_order(v: Var) -> tuple:
    return (v.name, v.sort.value, v.idx)


def order_graph(less, edges) -> dict[Var, set[Var]]:
    """Successor sets of the time points: the ordering atoms ``less`` and the edges' (source, target)."""
    succ: dict[Var, set[Var]] = {}
    for a, b in list(less) + [(a, b) for (a, _), (b, _) in edges]:
        succ.setdefault(a, set()).add(b)
    return succ


def _order(less: list, succ: dict[Var, set[Var]], a: Var, b: Var) -> bool:
    """Add ``a < b`` to ``less`` and its successor sets ``succ`` unless they already imply it; True if
    added."""
    if _reaches(succ, a, b):
        return False
    less.append((a, b))
    succ.setdefault(a, set()).add(b)
    return True


def _reaches(succ: dict[Var, set[Var]], a: Var, b: Var) -> bool:
    stack, seen = [a], set()
    while stack:
        x = stack.pop()
        for y in succ.get(x, ()):
            if y == b:
                return True
            if y not in seen:
                seen.add(y)
                stack.append(y)
    return False


def _reach_set(succ: dict[Var, set[Var]], a: Var) -> set[Var]:
    seen: set[Var] = set()
    stack = [a]
    while stack:
        for y in succ.get(stack.pop(), ()):
            if y not in seen:
                seen.add(y)
                stack.append(y)
    return seen


def _has_cycle(succ: dict[Var, set[Var]]) -> bool:
    """Whether the graph has a cycle (iterative depth-first search with white/grey/black marks)."""
    state: dict[Var, int] = {}
    for root in succ:
        if state.get(root):
            continue
        state[root] = 1
        stack = [(root, iter(succ.get(root, ())))]
        while stack:
            node, it = stack[-1]
            for y in it:
                mark = state.get(y, 0)
                if mark == 1:
                    return True
                if mark == 0:
                    state[y] = 1
                    stack.append((y, iter(succ.get(y, ()))))
                    break
            else:
                state[node] = 2
                stack.pop()
    return False


def _subst_formula(f: Formula, s: T.Subst) -> Formula:
    if not s:
        return f
    if isinstance(f, Action):
        node = s.get(f.node, f.node)
        return Action(Fact(f.fact.name, tuple(T.apply(a, s) for a in f.fact.args)), node)
    if isinstance(f, Less):
        return Less(s.get(f.left, f.left), s.get(f.right, f.right))
    if isinstance(f, Equal):
        return Equal(T.apply(f.left, s), T.apply(f.right, s))
    if isinstance(f, Last):
        return Last(s.get(f.node, f.node))
    if isinstance(f, Bool):
        return f
    if isinstance(f, Not):
        return Not(_subst_formula(f.body, s))
    if isinstance(f, Conn):
        return Conn(f.op, _subst_formula(f.left, s), _subst_formula(f.right, s))
    assert isinstance(f, Quant)
    free = free_vars(f)
    inner = {k: v for k, v in s.items() if k in free}
    if not inner:
        return f  # keeps closed formulas (restrictions, lemmas) identical, so they stay recognisable
    incoming = T.vars_of_all(inner.values())
    if any(v in incoming for v in f.vars):
        # Capture-avoiding: rename the bound variables that the substitution would capture.
        top = max([v.idx for v in incoming] + [v.idx for v in f.vars]) + 1
        ren = {v: Var(v.name, top, v.sort) for v in f.vars if v in incoming}
        body = _subst_formula(f.body, ren)
        return Quant(f.kind, tuple(ren.get(v, v) for v in f.vars), _subst_formula(body, inner))
    return Quant(f.kind, f.vars, _subst_formula(f.body, inner))


def _finish(w: _Work) -> Constraints | None:
    """Simplify to a fixpoint; None when the case dies inside the step (a failed merge of Fr instances, an
    action no rule produces, a rule instance made reducible: Tamarin drops such cases without a leaf)."""
    while True:
        merged = w.merge_fresh()
        if merged is None:
            return None
        # After a contradiction the merges still run (Tamarin's simplification does not stop at one): a
        # case whose fresh instances cannot be one node dies silently instead of closing as a leaf. The fresh
        # ordering comes before the disjunctions are valued: Tamarin's pass valuates formula atoms before it
        # instantiates the universals (S_∀) and orders fresh names, so a hypothesis instance made in the
        # step meets the fresh orderings of that step (Minimal_Loop_Example's Loop_before_Stop).
        if not merged and not w.merge_ku() and not w.unique_action_rules() and not w.settle_splits() \
                and not w.fresh_order() and not w.eval_disjunctions() and not w.injective_order() \
                and not w.negative_orderings():
            break
        if w.dead:
            return None
    w.saturate_universals()
    if w.dead:
        return None
    w.check()
    return w.freeze()


def instantiate_at(theory: Theory, cs: Constraints, universals: Iterable[Formula],
                   nodes: Iterable[Var]) -> Constraints | None:
    """Instantiate guarded universals on the actions of the given nodes only (S_∀ restricted to them), then
    simplify. Instances already made (recorded in ``solved_formulas``) are not made again. None when the
    case dies in the simplification (see :func:`_finish`)."""
    w = _Work(theory, cs)
    nodes = set(nodes)
    by_name: dict[str, list[tuple[Var, Fact]]] = {}
    for n, inst in w.nodes.items():
        if n in nodes:
            for a in inst.actions:
                by_name.setdefault(a.name, []).append((n, a))
    done = set(w.solved_formulas)
    for f in universals:
        assert isinstance(f, Quant) and f.kind == "All" and isinstance(f.body, Conn)
        guards = [c for c in conjuncts(f.body.left) if isinstance(c, Action)]
        for sub in list(_join(guards, by_name, frozenset(f.vars), {})):
            inst = _subst_formula(f.body.right, {k: v for k, v in sub.items() if k in f.vars})
            key = Conn("&", f, inst)
            if key in done:
                continue
            done.add(key)
            w.solved_formulas.append(key)
            w.add_formula(inst)
    return _finish(w)


def forget_formulas(cs: Constraints, universals: frozenset[Formula], goals: Iterable[GoalT] = (),
                    keep: frozenset = frozenset(), first_age: int = 0) -> Constraints:
    """``cs`` without the instance records of ``universals`` (except those in ``keep``) and without the given
    ``goals`` created at age ``first_age`` or later, solved or not (dropping constraints only enlarges the
    set of solutions, so closures stay sound)."""
    drop = set(goals)
    return dataclasses.replace(
        cs, solved_formulas=tuple(k for k in cs.solved_formulas if k in keep
                                  or not (isinstance(k, Conn) and k.op == "&" and k.left in universals)),
        goals=tuple(e for e in cs.goals if e[0] not in drop or e[1] < first_age), _used=None)


def resimplify(theory: Theory, cs: Constraints) -> Constraints | None:
    """``cs`` simplified again (after constraints were dropped); None when the case dies."""
    return _finish(_Work(theory, cs))


def simplify(theory: Theory, cs: Constraints, new_formulas: Iterable[Formula] = ()) -> Constraints:
    """Tamarin's ``simplify`` (the parts listed in the module docstring), to a fixpoint."""
    w = _Work(theory, cs)
    for f in new_formulas:
        w.add_formula(f)
    done = _finish(w)
    if done is None:  # two Fr instances that cannot be one node: no trace at all
        w.contradict("from formulas")
        return w.freeze()
    return done


def _mark_solved(w: _Work, g: GoalT) -> None:
    w.goals[g][1] = True


def solve(theory: Theory, cs: Constraints, goal: GoalT) -> list[tuple[str, Constraints]]:
    """All surviving cases of solving ``goal``: (case name, simplified system), in Tamarin's case order.

    Premise goals (a new instance of any rule variant with a unifying conclusion and an edge; merged with
    an existing node by simplification), protocol action goals (a rule variant with a unifying action
    placed at the goal's node), KU goals (see :func:`_solve_ku`), chain goals, disjunction goals
    (``case_i`` per disjunct) and split goals (``split`` per E-unifier). Without sources: see
    :func:`quietrl.proofsearch.sources.solve_with_sources` for the saturated cases the proof methods use.
    """
    if isinstance(goal, DisjGoal):
        return solve_raw(theory, cs, goal)  # positional names are unique already; dead cases leave gaps
    return name_cases(solve_raw(theory, cs, goal))


def solve_raw(theory: Theory, cs: Constraints, goal: GoalT) -> list[tuple[str, Constraints]]:
    """Like :func:`solve`, but cases keep their raw names (rule, ``c_f``, ``d_...``): equal names are not
    numbered and cases stay in generation order (disjunctions: ``case_i`` by position)."""
    if goal not in dict((g, None) for g in cs.open_goals()):
        raise ValueError(f"goal {goal.text} is not open in this system")
    raw: list[tuple[str, Constraints]] = []
    if isinstance(goal, DisjGoal):
        for i, d in enumerate(goal.disjuncts, start=1):
            w = _Work(theory, cs)
            _mark_solved(w, goal)
            w.add_formula(d)
            done = _finish(w)
            if done is not None:
                raw.append((f"case_{i}", done))
        return raw  # positional names are unique already; dead cases leave gaps
    if isinstance(goal, ActionGoal):
        if goal.fact.name == "KD":
            raise Unsupported("KD goals (deconstruction chains) are not implemented yet")
        raw = _solve_ku(theory, cs, goal) if goal.fact.name == "KU" else _solve_action(theory, cs, goal)
    elif isinstance(goal, SplitGoal):
        for case in goal.cases:
            w = _Work(theory, cs)
            _mark_solved(w, goal)
            w.split_id()  # the chosen case is filed again under a new id
            # The unifier's variables are fresh to this system only where they are new: reserve them.
            for v in T.vars_of_all([t for _, t in case]):
                key = (v.name, v.sort)
                w.used[key] = max(w.used.get(key, -1), v.idx)
            w.substitute(dict(case))
            _keep(raw, "split", _finish(w))
    elif isinstance(goal, ChainGoal):
        if _from_msg_var(goal):
            raise ValueError(f"chain {goal.text} starts at a message variable: not solvable yet")
        raw = _solve_chain(theory, cs, goal)
    else:
        raw = _solve_premise(theory, cs, goal)
    return raw


def _extraction_steps(theory: Theory, R: T.RewriteSystem):
    """The intruder's deconstruction equations: (lhs, rhs) with ``rhs`` a variable of the first argument."""
    out = []
    for e in R.equations:
        lhs, rhs = e.lhs, e.rhs
        if not (isinstance(lhs, T.App) and lhs.args and isinstance(lhs.args[0], T.App)
                and isinstance(rhs, Var) and rhs in T.vars_of(lhs.args[0])) or lhs.fun in ("fst", "snd"):
            continue
        f = theory.signature.fun(lhs.fun)
        if f is not None and f.private:
            continue  # the intruder cannot apply a private destructor
        out.append((lhs, rhs))
    return out


_KU_EXHAUSTIVE: dict[int, tuple[Theory, bool]] = {}


def ku_exhaustive(theory: Theory) -> bool:
    """Cached :func:`_ku_exhaustive`."""
    hit = _KU_EXHAUSTIVE.get(id(theory))
    if hit is None or hit[0] is not theory:
        if len(_KU_EXHAUSTIVE) > 64:
            _KU_EXHAUSTIVE.clear()
        hit = _KU_EXHAUSTIVE[id(theory)] = (theory, _ku_exhaustive(theory))
    return hit[1]


def _ku_exhaustive(theory: Theory) -> bool:
    """Whether :func:`solve` on KU goals enumerates every normal-form deduction for this theory's equations.

    True when every equation is unpairing, has a ground right side made of public symbols (``true``), or is
    a destructor ``f(P, a2, ..) -> x`` with ``x`` a variable of ``P`` (Tamarin's deconstruction rules);
    other subterm-convergent shapes would need more intruder rules, so their KU steps stay non-exhaustive.
    """
    R, _ = _theory_tools(theory)
    steps = {id(lhs) for lhs, _ in _extraction_steps(theory, R)}
    for e in R.equations:
        lhs, rhs = e.lhs, e.rhs
        if isinstance(lhs, T.App) and lhs.fun in ("fst", "snd"):
            continue
        if id(lhs) in steps:
            continue
        if not T.vars_of(rhs) and all(
                (f := theory.signature.fun(t.fun)) is None or not f.private
                for t in T.subterms(rhs) if isinstance(t, T.App)):
            continue
        if isinstance(lhs, T.App) and (f := theory.signature.fun(lhs.fun)) is not None and f.private:
            continue  # a private destructor gives the intruder nothing
        return False
    return True


def _extractions(theory: Theory, R: T.RewriteSystem, t: Term) -> list[tuple[Term, list[Term], T.Subst, tuple]]:
    """Subterms the intruder can extract from a sent message ``t``: (subterm, side KU terms, substitution,
    path of destructor names).

    Unpairing, and every equation ``f(P, a2, ..) -> x`` with ``x`` inside ``P`` (``sdec``, ``adec``,
    ``getMessage``, user destructors): when ``P`` unifies with a subterm, ``x`` is extracted and the other
    arguments become KU side goals (the key). Each step extracts a proper subterm, so this terminates.
    The first entry is ``t`` itself (no step). Message variables are not deconstructed here: a chain
    through one stays pending (:class:`ChainGoal`).
    """
    out = []
    steps = _extraction_steps(theory, R)
    todo: list[tuple[Term, list[Term], T.Subst, tuple]] = [(t, [], {}, ())]
    while todo:
        u, sides, th, path = todo.pop(0)
        out.append((u, sides, th, path))
        if not isinstance(u, T.App):
            continue
        if u.fun == T.PAIR_FUN:
            todo.extend((a, sides, th, path + (("fst", "snd")[min(i, 1)],)) for i, a in enumerate(u.args))
            continue
        for lhs, rhs in steps:
            off = T.max_idx([u, *th.values()]) + 1000
            pat = T.shift_vars(lhs, off)
            s = T.unify([(pat.args[0], u)], th)
            if s is None:
                continue
            got = T.apply(T.shift_vars(rhs, off), s)
            new_sides = [T.apply(x, s) for x in sides] + [T.apply(a, s) for a in pat.args[1:]]
            todo.append((got, new_sides, s, path + (lhs.fun,)))
    return out


def _known_parts(inst: RuleInstance) -> set[Term]:
    """Terms the intruder knew before ``inst`` ran: the pair components of its received messages."""
    out: set[Term] = set()

    def parts(t: Term) -> None:
        if isinstance(t, T.App) and t.fun == T.PAIR_FUN:
            for a in t.args:
                parts(a)
        else:
            out.add(t)

    for p in inst.premises:
        if p.name == "In":
            parts(p.args[0])
    return out


def _chain_may_continue(u: Term, inst: RuleInstance) -> bool:
    """A deconstruction chain may go on through the message variable ``u`` (not fresh, not public, not
    already known to the intruder: deconstructing a known message yields nothing new in normal form)."""
    if not (isinstance(u, Var) and u.sort is Sort.MSG):
        return False
    if any(p.name == "Fr" and p.args[0] == u for p in inst.premises):
        return False
    return u not in _known_parts(inst)


def _atoms_outside(t: Term, destructors: frozenset):
    """Variables and names of ``t`` that do not occur below a destructor application."""
    if isinstance(t, T.App):
        if t.fun in destructors:
            return
        for a in t.args:
            yield from _atoms_outside(a, destructors)
    else:
        yield t


def _fresh_sorted(m: Term) -> bool:
    return (isinstance(m, Var) or isinstance(m, Name)) and m.sort is Sort.FRESH


def _solve_ku(theory: Theory, cs: Constraints, goal: ActionGoal) -> list[tuple[str, Constraints]]:
    """Intruder knowledge ``!KU( m ) @ #vk`` in normal form: every way the intruder deduces ``m`` first.

    Cases: construction ``c_f`` (public ``f`` at the root, its arguments known earlier); ``fresh`` (an
    intruder-generated fresh name: dies when a protocol ``Fr`` makes the same name, DG4); and, for every
    protocol rule variant with an ``Out``, every deconstruction path from the sent message (unpairing,
    destructor equations with their keys as earlier KU goals) whose end unifies with ``m`` (the case is
    named after the sending rule, as Tamarin's coerce cases). A path that reaches a message variable that
    the intruder did not know yet leaves a :class:`ChainGoal` (Tamarin's open chain), solved once a
    premise goal binds the variable. Exhaustive when :func:`ku_exhaustive` holds; otherwise every case
    is flagged and no closure below it supports a verdict.
    """
    inst = dict(cs.nodes).get(goal.node)
    if inst is not None and goal.fact not in inst.actions:
        # The time point holds a protocol rule instance (an equation identified it with one) without this KU
        # action: every intruder rule placed there clashes with it, so no case is left (as in Tamarin).
        return []
    m = goal.fact.args[0]
    out: list[tuple[str, Constraints]] = []
    exhaustive = ku_exhaustive(theory)
    if isinstance(m, T.App) and m.args:
        f = theory.signature.fun(m.fun)
        if f is not None and not f.private:
            w = _Work(theory, cs)
            _mark_solved(w, goal)
            for a in m.args:
                vk = w.fresh("vk", Sort.NODE)
                w.less.append((vk, goal.node))
                w.add_goal(ActionGoal(vk, Fact("KU", (a,))))
            w.exhaustive = w.exhaustive and exhaustive
            _keep(out, f"c_{m.fun}", _finish(w))
    if _fresh_sorted(m):
        w = _Work(theory, cs)
        _mark_solved(w, goal)
        vf = w.fresh("vf", Sort.NODE)
        w.less.append((vf, goal.node))
        w.place(vf, RuleInstance("fresh", (Fact("Fr", (m,)),), (), (Fact("KU", (m,)),)))
        w.exhaustive = w.exhaustive and exhaustive
        _keep(out, "fresh", _finish(w))
    probe = _Work(theory, cs)
    for rule in theory.rules:
        for v in probe.variants()[rule.name]:
            for ci, c in enumerate(v.conclusions):
                if c.name != "Out":
                    continue
                # A work area built from ``cs`` renames a variant deterministically: compute the paths once.
                exts = _extractions(theory, probe.R, _Work(theory, cs).renamed_instance(v).conclusions[ci].args[0])
                for k in range(len(exts)):
                    for pending in (False, True):
                        w = _Work(theory, cs)
                        inst = w.renamed_instance(v)
                        u, sides, th, _ = exts[k]
                        if pending:
                            if not _chain_may_continue(T.apply(u, th), _subst_inst(inst, th)):
                                continue
                            s = th
                        elif _msg_var(T.apply(u, th)):
                            # Tamarin never unifies a deconstruction that reached a message variable with
                            # the goal: it is an open chain from the variable (the pending case above,
                            # which may end at the variable itself), or forbidden when the intruder knew it.
                            continue
                        else:
                            s = T.unify([(u, m)], th)
                            if s is None:
                                continue
                        _mark_solved(w, goal)
                        w.substitute(s)
                        vr = w.fresh("vr", Sort.NODE)
                        w.less.append((vr, goal.node))
                        w.place(vr, _subst_inst(inst, s))
                        for side in sides:
                            vk = w.fresh("vk", Sort.NODE)
                            w.less.append((vk, goal.node))
                            w.add_goal(ActionGoal(vk, Fact("KU", (w.R.normalize(T.apply(side, s)),))))
                        if pending:
                            w.add_goal(ChainGoal(vr, ci, T.apply(u, s), m, goal.node))
                        w.exhaustive = w.exhaustive and exhaustive
                        _keep(out, rule.name, _finish(w))
    return out


def _solve_chain(theory: Theory, cs: Constraints, goal: ChainGoal) -> list[tuple[str, Constraints]]:
    """Zero or more deconstruction steps from ``goal.start`` (no longer a variable) to ``goal.target``.

    Cases ``d_<path>``: each extraction path of length >= 1 whose end unifies with the target (keys as KU
    goals before the target's node), and each path that reaches a message variable not yet known to the
    intruder, which stays a pending chain. No case: the chain is impossible and the branch dies.
    """
    out: list[tuple[str, Constraints]] = []
    exhaustive = ku_exhaustive(theory)
    probe = _Work(theory, cs)
    src_inst = probe.nodes.get(goal.src, RuleInstance("", (), (), ()))
    exts = _extractions(theory, probe.R, goal.start)
    for k in range(len(exts)):
        for pending in (False, True):
            w = _Work(theory, cs)
            u, sides, th, path = exts[k]
            if pending:
                if not _chain_may_continue(T.apply(u, th), _subst_inst(src_inst, th)):
                    continue
                s = th
            elif _msg_var(T.apply(u, th)):
                continue  # an open chain from the variable: the pending case
            else:
                s = T.unify([(u, goal.target)], th)
                if s is None:
                    continue
            _mark_solved(w, goal)
            # Pattern variables of the destructors are fresh system variables now: reserve their names.
            for v in T.vars_of_all(list(s.values()) + list(s)):
                key = (v.name, v.sort)
                w.used[key] = max(w.used.get(key, -1), v.idx)
            w.substitute(s)
            for side in sides:
                vk = w.fresh("vk", Sort.NODE)
                w.less.append((vk, goal.node))
                w.add_goal(ActionGoal(vk, Fact("KU", (w.R.normalize(T.apply(side, s)),))))
            if pending:
                w.add_goal(ChainGoal(goal.src, goal.conc, w.R.normalize(T.apply(u, s)),
                                     w.R.normalize(T.apply(goal.target, s)), goal.node))
            w.exhaustive = w.exhaustive and exhaustive
            _keep(out, "d_0_" + "_".join(path) if path else _edge_name(goal.start), _finish(w))
    return out


def _msg_var(t: Term) -> bool:
    return isinstance(t, Var) and t.sort is Sort.MSG


def _edge_name(t: Term) -> str:
    """Tamarin's case name for a chain that ends at once (a direct edge): the root symbol, or the atom's kind."""
    if isinstance(t, T.App):
        return t.fun
    kind = {Sort.FRESH: "fresh", Sort.PUB: "pub"}.get(t.sort, "msg")
    return f"Var_{kind}_{t.name}" if isinstance(t, Var) else f"Const_{kind}_{t.name}"


def close_open_chains(theory: Theory, cs: Constraints) -> Constraints | None:
    """A solved system with open chains from message variables, each variable taken as its chain's end
    (the instance that makes the chain a direct edge): the system a trace is read from. None (or a
    contradictory system) when these choices clash with the rest of the system."""
    chains = cs.pending_chains()
    if not chains:
        return cs
    w = _Work(theory, cs)
    for g in chains:
        _mark_solved(w, g)
    s = T.unify([(g.start, g.target) for g in chains], {})
    if s is None:
        return None
    w.substitute(s)
    return _finish(w)


def _solve_action(theory: Theory, cs: Constraints, goal: ActionGoal) -> list[tuple[str, Constraints]]:
    """A protocol action goal: the action of the node already there, else one case per rule action that
    unifies. A rule with several variants gives one case (Tamarin's rule with a disjunction of variant
    substitutions: destructor applications abstracted, the variants a ``splitEqs`` goal), a rule with
    one variant its instance."""
    out = []
    probe_w = _Work(theory, cs)
    if goal.node in probe_w.nodes:
        inst = probe_w.nodes[goal.node]
        for a in inst.actions:
            s = T.unify1(a_key(a), a_key(goal.fact))
            if s is None:
                continue
            w = _Work(theory, cs)
            _mark_solved(w, goal)
            w.substitute(s)
            _keep(out, inst.name, _finish(w))
        return out
    for rule in theory.rules:
        variants = probe_w.variants()[rule.name]
        if len(variants) > 1:
            # A rule with several variants is placed once, destructor applications abstracted, its variants
            # a split goal (Tamarin's rule with a disjunction of variant substitutions).
            for ai, a in enumerate(rule.actions):
                if (a.name, len(a.args)) != (goal.fact.name, len(goal.fact.args)):
                    continue
                w = _Work(theory, cs)
                if w.place_abstracted(goal, rule, ai):
                    _keep(out, rule.name, _finish(w))
            continue
        for v in variants:
            for ai, a in enumerate(v.actions):
                w = _Work(theory, cs)
                inst = w.renamed_instance(v)
                s = T.unify1(a_key(inst.actions[ai]), a_key(goal.fact))
                if s is None:
                    continue
                w.place_at_goal(goal, inst, s)
                _keep(out, rule.name, _finish(w))
    return out


def _solve_premise(theory: Theory, cs: Constraints, goal: PremiseGoal) -> list[tuple[str, Constraints]]:
    out = []
    fact = goal.fact

    def fits(c: Fact) -> bool:
        return c.name == fact.name and c.persistent == fact.persistent and len(c.args) == len(fact.args)

    # Tamarin solves a premise through its source: a fresh instance of the rule, where a rule with several
    # variants is placed once with its destructor applications abstracted and its variants a split goal;
    # an instance that is really an existing node is merged into it later by simplification (unique Fr
    # instances, DG4).
    probe_w = _Work(theory, cs)
    for rule in theory.rules:
        variants = probe_w.variants()[rule.name]
        several = len(variants) > 1
        for v in ([rule] if several else variants):
            for ci, c in enumerate(v.conclusions):
                if not fits(c):
                    continue
                w = _Work(theory, cs)
                inst, abstr = w.abstracted_instance(rule) if several else (w.renamed_instance(v), None)
                s = T.unify1(a_key(inst.conclusions[ci]), a_key(fact))
                if s is None:
                    continue
                vr = w.fresh("vr", Sort.NODE)
                _mark_solved(w, goal)
                w.substitute(s)
                if abstr is not None:
                    w.file_variants(abstr, s)
                w.edges.append(((vr, ci), (goal.node, goal.index)))
                w.place(vr, _subst_inst(inst, s))
                _keep(out, rule.name, _finish(w))
    return out


def _keep(out: list, name: str, cs: Constraints | None) -> None:
    if cs is not None:
        out.append((name, cs))


def name_cases(raw: list[tuple[str, Constraints]]) -> list[tuple[str, Constraints]]:
    """Tamarin's case names: equal names become X_case_k (generation order, zero-padded), then name order."""
    counts: dict[str, int] = {}
    for name, _ in raw:
        counts[name] = counts.get(name, 0) + 1
    seen: dict[str, int] = {}
    named = []
    for name, cs in raw:
        if counts[name] == 1:
            named.append((name, cs))
            continue
        seen[name] = seen.get(name, 0) + 1
        width = len(str(counts[name]))
        named.append((f"{name}_case_{seen[name]:0{width}d}", cs))
    return sorted(named, key=lambda x: x[0])
