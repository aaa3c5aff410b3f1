"""A greedy autoprover over the method API, with Tamarin's proof-size count and proof-script syntax.

``prove(theory, lemma)`` takes the first offered method at every node and explores every case (Tamarin's
autoprover without backtracking), by iterative deepening on the proof depth (bounds 4, 8, 16, ..., as
Tamarin's default ``--stop-on-trace=dfs``) within a total step budget. Goals are ranked by Tamarin's
``s``, ``S``, ``c`` or ``C`` (see :mod:`~quietrl.proofsearch.ranking`), or by an external oracle (``o``/``O``,
see :mod:`~quietrl.proofsearch.oracle`) called once per step, as Tamarin calls it.

When the first method cannot execute yet (NotImplementedError), the next offered one is taken.

Verdicts are conservative (never a wrong verdict): ``verified`` (all-traces) and ``falsified - no trace
found`` (exists-trace) only when every case closed by a contradiction. A system with no open goal is a trace
*candidate*: it counts only once :mod:`~quietrl.proofsearch.replay` has executed it forwards, the
restrictions hold on it and the lemma evaluates as needed (false for all-traces: ``falsified - found
trace``; true for exists-trace: ``verified``); the search then stops, as Tamarin's does at the first trace,
and the proof is cut to the path to that trace. A rejected candidate, an unsupported step or the step budget
leave ``analysis incomplete``.
"""

from __future__ import annotations

import dataclasses
import sys

from quietrl.proofsearch.constraints import close_open_chains, ku_exhaustive
from quietrl.proofsearch.oracle import Oracle
from quietrl.proofsearch.replay import Step, holds, replay, trace_of
from quietrl.proofsearch.system import System, apply, initial_system, methods, assumed_lemmas
from quietrl.proofsearch.types import EXISTS_TRACE, Lemma, Theory

VERIFIED = "verified"
NO_TRACE = "falsified - no trace found"
FOUND_TRACE = "falsified - found trace"
INCOMPLETE = "analysis incomplete"


@dataclasses.dataclass
class ProofNode:
    """One node of a proof tree: a method with its cases, or a leaf (contradiction, solved, sorry)."""

    state: System
    method: str | None = None
    cases: list[tuple[str, "ProofNode"]] = dataclasses.field(default_factory=list)
    leaf: str | None = None  # "contradiction" | "solved" | "sorry"
    note: str = ""

    def size(self) -> int:
        """Tamarin's proof size: every method step and every closing leaf counts once (sorry does not)."""
        own = 1 if self.method is not None or self.leaf in ("contradiction", "solved") else 0
        return own + sum(child.size() for _, child in self.cases)

    def method_count(self) -> int:
        """The methods in the tree (its steps without the closing leaves)."""
        return (self.method is not None) + sum(child.method_count() for _, child in self.cases)

    def leaves(self):
        if self.method is None:
            yield self
        for _, child in self.cases:
            yield from child.leaves()


@dataclasses.dataclass(frozen=True)
class ProofResult:
    lemma: str
    kind: str
    verdict: str
    steps: int
    tree: ProofNode = dataclasses.field(repr=False)
    reason: str = ""
    trace: tuple[Step, ...] = ()
    assumes: tuple[str, ...] = ()  # earlier [reuse] lemmas the verdict may rest on (closed proofs only)
    executions: int = 0  # methods executed, all deepening rounds (a found trace's cut proof is smaller)

    @property
    def verdict_text(self) -> str:
        """The verdict, flagged when a closed proof assumed [reuse] lemmas (it then does not count alone)."""
        if self.assumes and self.verdict in (VERIFIED, NO_TRACE):
            return f"{self.verdict}, assuming {', '.join(self.assumes)}"
        return self.verdict

    def summary_line(self) -> str:
        """One line of Tamarin's "summary of summaries"."""
        return f"  {self.lemma} ({self.kind}): {self.verdict_text} ({self.steps} steps)"


def prove(theory: Theory, lemma: Lemma, max_steps: int = 2000, heuristic: str = "s", *,
          oracle: Oracle | None = None, bound: int | None = None, open_chains: int = 10,
          saturation: int = 5) -> ProofResult:
    """Greedy depth-first proof search for ``lemma`` (see the module docstring for the verdict rules).

    ``heuristic`` is one of ``s S c C o O`` (``o``/``O`` need ``oracle``, which reorders the ``C``/``s``
    ranking at every step); ``bound`` caps the proof depth (Tamarin's ``--bound``: deeper steps become
    ``sorry /* bound N hit */``); ``open_chains`` and ``saturation`` are the source limits.
    """
    if max_steps < 1:
        raise ValueError("max_steps must be >= 1")
    if bound is not None and bound < 0:
        raise ValueError("bound must be >= 0")
    if heuristic in ("o", "O") and oracle is None:
        raise ValueError(f"heuristic {heuristic} needs an oracle")
    # Iterative deepening (depth bounds 4, 8, 16, ...), as Tamarin's default --stop-on-trace=dfs: the first
    # bound that holds a confirmed trace returns it; a tree explored without hitting the bound is final.
    ctx = _Ctx(theory, lemma, max_steps)
    ctx.oracle = oracle if heuristic in ("o", "O") else None  # as Tamarin: other heuristics ignore it
    start = initial_system(theory, lemma, heuristic, open_chains=open_chains, saturation=saturation)
    depth = 4 if bound is None else min(4, bound)
    while True:
        ctx.bound, ctx.hit_bound = depth, False
        try:
            root = _search(start, ctx, 0)
        except RecursionError:  # the proof itself nests beyond the recursion limit (steps nest: DepthLimit)
            return ProofResult(lemma.name, lemma.trace_quantifier, INCOMPLETE, 0, ProofNode(start, leaf="sorry"),
                               f"proof nested beyond the engine's depth limit (Python's recursion limit "
                               f"{sys.getrecursionlimit()})", executions=max_steps - ctx.budget)
        if ctx.trace is not None or not ctx.hit_bound or ctx.budget <= 0:
            break
        if bound is not None and depth >= bound:
            break
        depth = depth * 2 if bound is None else min(depth * 2, bound)
    used = max_steps - ctx.budget
    if ctx.trace is not None:
        _cut_to_trace(root)
        verdict = VERIFIED if lemma.trace_quantifier == EXISTS_TRACE else FOUND_TRACE
        return ProofResult(lemma.name, lemma.trace_quantifier, verdict, root.size(), root, "", tuple(ctx.trace),
                           executions=used)
    sorries = [leaf for leaf in root.leaves() if leaf.leaf in ("sorry", "solved")]
    if ctx.nonexhaustive and not sorries:
        return ProofResult(lemma.name, lemma.trace_quantifier, INCOMPLETE, root.size(), root,
                           "closed only with intruder (KU) steps that are not exhaustive yet", executions=used)
    if sorries:
        verdict = INCOMPLETE
        reason = "step budget exhausted" if ctx.budget <= 0 else sorries[0].note
    else:
        verdict, reason = (NO_TRACE if lemma.trace_quantifier == EXISTS_TRACE else VERIFIED), ""
        assumed = tuple(lem.name for lem in assumed_lemmas(theory, lemma))
        return ProofResult(lemma.name, lemma.trace_quantifier, verdict, root.size(), root, reason, (), assumed, used)
    return ProofResult(lemma.name, lemma.trace_quantifier, verdict, root.size(), root, reason, executions=used)


def resolve_heuristic(theory: Theory, lemma: Lemma, given: str | None = None) -> str:
    """The heuristic of ``lemma``'s proof by Tamarin's precedence: ``given`` (``--heuristic``), the lemma's
    ``[heuristic=]``, the theory's ``heuristic:`` line, ``s``. Of a multi-letter heuristic (Tamarin
    alternates them by depth) only the first letter is used. Raises ``UserError`` for unknown letters."""
    from quietrl.core.errors import UserError
    from quietrl.proofsearch.ranking import HEURISTICS

    h = (given or lemma.heuristic or theory.heuristic or "s").strip().strip('"')[:1]
    if h not in HEURISTICS:
        raise UserError(f"{theory.path}: lemma {lemma.name}: heuristic {h!r} is not supported "
                        f"(supported: {', '.join(HEURISTICS)})")
    return h


def prove_all(theory: Theory, names: list[str] | None = None, max_steps: int = 2000,
              heuristic: str | None = "s", **options) -> list[ProofResult]:
    """Prove lemmas in file order; a closed proof counts only if every lemma it assumed counts too.

    Assumed [reuse] lemmas are proved first even when not requested (as Tamarin checks them), and a
    verdict resting on one that is not itself established becomes ``analysis incomplete``. ``options``
    go to :func:`prove` (``oracle``, ``bound``, ``open_chains``, ``saturation``). ``heuristic=None``
    picks each lemma's own by :func:`resolve_heuristic`.
    """
    wanted = set(names) if names is not None else {lem.name for lem in theory.lemmas}
    needed = set(wanted)
    for lem in reversed(theory.lemmas):
        if lem.name in needed:
            needed |= {x.name for x in assumed_lemmas(theory, lem)}
    done: dict[str, ProofResult] = {}
    for lem in theory.lemmas:
        if lem.name not in needed:
            continue
        r = prove(theory, lem, max_steps, resolve_heuristic(theory, lem, heuristic), **options)
        if r.assumes:
            missing = [a for a in r.assumes if done[a].verdict != VERIFIED or done[a].assumes]
            if missing:
                r = dataclasses.replace(r, verdict=INCOMPLETE,
                                        reason=f"closed only by assuming unestablished {', '.join(missing)}")
            else:
                r = dataclasses.replace(r, assumes=())
        done[lem.name] = r
    return [done[lem.name] for lem in theory.lemmas if lem.name in wanted]


def confirm_trace(theory: Theory, lemma: Lemma, state: System) -> tuple[str, tuple[Step, ...] | None]:
    """Replay the trace candidate ``state`` (a solved system) forwards: ``('', trace)`` if it is a genuine
    witness for the lemma's verdict (replayer, restrictions, lemma evaluated), else ``(why not, None)``."""
    from quietrl.proofsearch.parser import _actions

    formulas = [lemma.formula] + [r.formula for r in theory.restrictions]
    if any(a.fact.name in ("KU", "KD") for f in formulas for a in _actions(f)):
        # Our traces carry isend's K actions but not the intruder's construction (KU) actions.
        return "trace candidate not judged: the formula mentions KU, which the replayer does not model", None
    closed = close_open_chains(theory, state.constraints)
    if closed is None or closed.contradiction is not None:
        return "trace candidate rejected: its open chains from message variables cannot end there", None
    try:
        trace = trace_of(theory, closed)
    except ValueError as e:
        return f"trace candidate rejected: {e}", None
    r = replay(theory, trace)
    if not r.ok:
        return f"trace candidate rejected by the replayer: {r.reason}", None
    for restr in theory.restrictions:
        if not holds(theory, trace, restr.formula):
            return f"trace candidate violates restriction {restr.name}", None
    want = lemma.trace_quantifier == EXISTS_TRACE
    if holds(theory, trace, lemma.formula) != want:
        return "trace candidate does not " + ("satisfy" if want else "violate") + " the lemma", None
    return "", tuple(trace)


class _Ctx:
    def __init__(self, theory: Theory, lemma: Lemma, budget: int):
        self.theory, self.lemma, self.budget = theory, lemma, budget
        self.trace: tuple[Step, ...] | None = None
        self.bound = 4
        self.hit_bound = False
        self.nonexhaustive = False
        self.ku_exhaustive = ku_exhaustive(theory)
        # id(state) -> (state, method, cases): the state is kept alive, so its id stays unique.
        self.cache: dict[int, tuple] = {}
        self.oracle: Oracle | None = None

    def confirm(self, state: System) -> str:
        """Replay a trace candidate; '' if it is a genuine witness for the verdict, else why not."""
        why, trace = confirm_trace(self.theory, self.lemma, state)
        if not why:
            self.trace = trace
        return why


def _search(state: System, ctx: _Ctx, depth: int) -> ProofNode:
    status = state.status
    if status == "contradictory":
        if not state.constraints.exhaustive:
            ctx.nonexhaustive = True
        return ProofNode(state, leaf="contradiction", note=state.constraints.contradiction or "")
    if status == "solved":
        why = ctx.confirm(state)
        return ProofNode(state, leaf="solved", note=why)
    if depth >= ctx.bound:
        ctx.hit_bound = True
        return ProofNode(state, leaf="sorry", note=f"bound {ctx.bound} hit")
    hit = ctx.cache.get(id(state))
    if ctx.budget <= 0 and (hit is None or hit[0] is not state):
        return ProofNode(state, leaf="sorry", note="step budget exhausted")
    offered = methods(state)
    if ctx.oracle is not None and offered and (hit is None or hit[0] is not state):
        offered = _oracle_order(ctx, state, offered)
    if not offered:
        if state.constraints.pending_chains():
            return ProofNode(state, leaf="sorry",
                             note="open chain from a message variable (partial deconstruction: needs sources)")
        return ProofNode(state, leaf="sorry", note="no method applies")
    if hit is not None and hit[0] is state:
        _, m, cases = hit  # explored in an earlier deepening round: not recomputed, not counted again
    else:
        first_error = ""
        for m in offered:
            try:
                cases = apply(state, m)
            except NotImplementedError as e:
                first_error = first_error or f"{m.text()}: {e}"
                continue
            break
        else:
            return ProofNode(state, leaf="sorry", note=first_error)
        ctx.cache[id(state)] = (state, m, cases)
        # The budget counts executed steps (Tamarin's effort); a later deepening round re-walks the steps
        # of the earlier ones from the cache for free. Depth and term size stay bounded by the budget.
        ctx.budget -= 1
    if m.goal is not None and m.goal.text.startswith("!KU(") and not ctx.ku_exhaustive:
        ctx.nonexhaustive = True  # its cases may be incomplete: closures below it do not count
    node = ProofNode(state, method=m.text())
    for name, nxt in cases:
        if ctx.trace is not None:
            break  # stop at the first confirmed trace, as Tamarin does
        node.cases.append((name, _search(nxt, ctx, depth + 1)))
    return node


def _oracle_order(ctx: "_Ctx", state: System, offered: list) -> list:
    """Tamarin's oracle call: the solve goals (already in ``C``/``s`` order) go to the oracle, which picks
    their order; ``simplify``/``induction`` keep their places before them (at the root the list is empty)."""
    goals = [m for m in offered if m.kind == "solve"]
    others = [m for m in offered if m.kind != "solve"]
    order = ctx.oracle.order(ctx.lemma.name, [m.goal.text for m in goals])
    return others + [goals[i] for i in order]


def _cut_to_trace(node: ProofNode) -> bool:
    """Keep only the path from the root to the confirmed trace (Tamarin's cut proof)."""
    if node.method is None:
        return node.leaf == "solved" and not node.note
    for name, child in node.cases:
        if _cut_to_trace(child):
            node.cases = [(name, child)]
            return True
    return False


def script(node: ProofNode, indent: int = 0) -> str:
    """The proof in Tamarin's proof-script syntax (cases indented two spaces, ``next``, ``qed``)."""
    pad = " " * indent
    if node.method is None:
        if node.leaf == "contradiction":
            return f"{pad}by contradiction /* {node.note} */"
        if node.leaf == "solved":
            return f"{pad}SOLVED // trace found"
        return f"{pad}by sorry /* {node.note} */"
    if not node.cases:
        return f"{pad}by {node.method}"
    if len(node.cases) == 1 and node.cases[0][0] == "":
        return f"{pad}{node.method}\n" + script(node.cases[0][1], indent)
    lines = [f"{pad}{node.method}"]
    for i, (name, child) in enumerate(node.cases):
        if i:
            lines.append(f"{pad}next")
        lines.append(f"{pad}  case {name}")
        lines.append(script(child, indent + 2))
    lines.append(f"{pad}qed")
    return "\n".join(lines)
