"""A trace replayer, independent of the search: runs a found trace forwards and evaluates formulas on it.

``trace_of(theory, constraints)`` turns a solved constraint system (a trace candidate) into a ground trace:
every remaining variable becomes a constant (fresh names for fresh-sorted variables and ``Fr`` arguments,
public names otherwise) and the nodes are ordered consistently with ``<`` and the edges.
``replay(theory, trace)`` then checks it with nothing but the theory: each step is an instance of a rule
variant modulo the equations, linear facts are consumed once, persistent facts must exist, every fresh
name is created once, received messages are derivable by the intruder from what was sent, the
restrictions hold, and it evaluates the lemma's formula on the trace.

Scope: intruder derivability is checked by saturating the sent messages under the destructor equations and
unpairing and then constructing with public function symbols (enough for traces whose messages the solver
placed explicitly); it is a checker, so anything it cannot confirm is a rejection, never an acceptance.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

from quietrl.proofsearch import terms as T
from quietrl.proofsearch.constraints import Constraints, _theory_tools, order_graph
from quietrl.proofsearch.formulas import conjuncts, guarded
from quietrl.proofsearch.types import (
    PAIR,
    Action,
    App,
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
    Sort,
    Term,
    Theory,
    Var,
)


@dataclasses.dataclass(frozen=True)
class Step:
    """One ground rule instance of a trace."""

    rule: str
    premises: tuple[Fact, ...]
    actions: tuple[Fact, ...]
    conclusions: tuple[Fact, ...]

    def __str__(self) -> str:
        def fs(xs):
            return ", ".join(map(str, xs))
        return f"{self.rule}: [ {fs(self.premises)} ] --[ {fs(self.actions)} ]-> [ {fs(self.conclusions)} ]"


@dataclasses.dataclass(frozen=True)
class ReplayResult:
    ok: bool
    reason: str = ""


def trace_of(theory: Theory, cs: Constraints) -> list[Step]:
    """A ground trace from a solved system: constants for variables, nodes in a consistent order."""
    nodes = dict(cs.nodes)
    fr_vars = {v for inst in nodes.values() for p in inst.premises if p.name == "Fr"
               for v in T.vars_of(p.args[0])}
    ground: T.Subst = {}
    for inst in nodes.values():
        for f in inst.premises + inst.actions + inst.conclusions:
            for v in T.vars_of_all(f.args):
                if v in ground:
                    continue
                label = f"{v.name}.{v.idx}" if v.idx else v.name
                fresh = v.sort is Sort.FRESH or (v in fr_vars and v.sort is Sort.MSG)
                ground[v] = Name(Sort.FRESH if fresh else Sort.PUB, label)
    order = _order(cs, list(nodes))
    R, _ = _theory_tools(theory)

    def g(f: Fact) -> Fact:
        return Fact(f.name, tuple(R.normalize(T.apply(a, ground)) for a in f.args), f.persistent)

    return [Step(nodes[n].name, tuple(map(g, nodes[n].premises)), tuple(map(g, nodes[n].actions)),
                 tuple(map(g, nodes[n].conclusions))) for n in order]


def _order(cs: Constraints, nodes: list[Var]) -> list[Var]:
    succ = order_graph(cs.less, cs.edges)
    # Reachability over all time points (KU points included), restricted to nodes, then Kahn's order.
    def reach(a: Var) -> set[Var]:
        seen, stack = set(), [a]
        while stack:
            for y in succ.get(stack.pop(), ()):
                if y not in seen:
                    seen.add(y)
                    stack.append(y)
        return seen

    after = {n: reach(n) & set(nodes) for n in nodes}
    indeg = {n: sum(1 for m in nodes if n in after[m]) for n in nodes}
    key = lambda v: (cs.last == v, v.name, v.idx)  # noqa: E731 - the last node goes last
    ready = sorted((n for n in nodes if indeg[n] == 0), key=key)
    out = []
    while ready:
        n = ready.pop(0)
        out.append(n)
        for m in sorted(after[n], key=key):
            indeg[m] -= 1
            if indeg[m] == 0:
                ready.append(m)
        ready.sort(key=key)
    if len(out) != len(nodes):
        raise ValueError("cyclic ordering: not a trace")
    return out


def replay(theory: Theory, trace: list[Step]) -> ReplayResult:
    """Execute ``trace`` forwards against ``theory`` (see the module docstring for what is checked)."""
    R, variants = _theory_tools(theory)
    linear: Counter = Counter()
    persistent: set[Fact] = set()
    fresh_used: set[Term] = set()
    sent: list[Term] = []
    for i, st in enumerate(trace):
        if st.rule == "isend":
            (ku,), (inp,) = st.premises, st.conclusions
            if not _derivable(theory, R, sent, ku.args[0]):
                return ReplayResult(False, f"step {i} ({st.rule}): {ku.args[0]} is not derivable by the intruder")
            linear[_key(inp)] += 1
            continue
        if st.rule == "fresh":  # the intruder makes a new fresh name: [Fr(~x)] -> [KU(~x)]
            (fr,), (ku,) = st.premises, st.conclusions
            n = fr.args[0]
            if not isinstance(n, Name) or n.sort is not Sort.FRESH or n in fresh_used or ku.args[0] != n:
                return ReplayResult(False, f"step {i} (fresh): Fr({n}) is not a new fresh name")
            fresh_used.add(n)
            sent.append(n)
            continue
        if not _is_instance(st, variants.get(st.rule, [])):
            return ReplayResult(False, f"step {i}: not an instance of rule {st.rule}")
        for p in st.premises:
            if p.name == "Fr":
                n = p.args[0]
                if not isinstance(n, Name) or n.sort is not Sort.FRESH or n in fresh_used:
                    return ReplayResult(False, f"step {i} ({st.rule}): Fr({n}) is not a new fresh name")
                fresh_used.add(n)
            elif p.name == "In":
                if not _derivable(theory, R, sent, p.args[0]):
                    return ReplayResult(False, f"step {i} ({st.rule}): In({p.args[0]}) is not derivable")
            elif p.persistent:
                if _key(p) not in persistent:
                    return ReplayResult(False, f"step {i} ({st.rule}): {p} does not exist")
            else:
                if linear[_key(p)] <= 0:
                    return ReplayResult(False, f"step {i} ({st.rule}): {p} is not available")
                linear[_key(p)] -= 1
        for c in st.conclusions:
            if c.name == "Out":
                sent.append(c.args[0])
            elif c.persistent:
                persistent.add(_key(c))
            else:
                linear[_key(c)] += 1
    return ReplayResult(True)


def _key(f: Fact) -> Fact:
    return Fact(f.name, f.args, f.persistent)


def _is_instance(st: Step, variants) -> bool:
    ground = T.bundle([T.App(f"{f.name}/{int(f.persistent)}", f.args)
                       for f in st.premises + st.actions + st.conclusions])
    for v in variants:
        facts = v.premises + v.actions + v.conclusions
        if len(facts) != len(st.premises + st.actions + st.conclusions):
            continue
        pattern = T.bundle([T.App(f"{f.name}/{int(f.persistent)}", f.args) for f in facts])
        if T.match(pattern, ground) is not None:
            return True
    return False


def _derivable(theory: Theory, R: T.RewriteSystem, sent: list[Term], m: Term) -> bool:
    """Whether the intruder derives ``m`` from the sent messages (public names are always known)."""
    known = set(sent)
    changed = True
    while changed:  # deconstruction: unpairing and destructor equations whose other arguments are derivable
        changed = False
        for t in list(known):
            if isinstance(t, App) and t.fun == PAIR:
                for a in t.args:
                    if a not in known:
                        known.add(a)
                        changed = True
            for e in R.equations:
                if not (isinstance(e.lhs, App) and e.lhs.args and isinstance(e.lhs.args[0], App)):
                    continue
                fs = theory.signature.fun(e.lhs.fun)
                if fs is not None and fs.private:
                    continue  # the intruder cannot apply a private destructor
                s = T.match(e.lhs.args[0], t)
                if s is None:
                    continue
                rest = [T.apply(a, s) for a in e.lhs.args[1:]]
                if any(T.vars_of(r) for r in rest):
                    continue
                if all(_constructible(theory, known, r) for r in rest):
                    out = R.normalize(T.apply(e.lhs, s))
                    if out not in known:
                        known.add(out)
                        changed = True
    return _constructible(theory, known, m)


def _constructible(theory: Theory, known: set[Term], m: Term) -> bool:
    if m in known:
        return True
    if isinstance(m, Name):
        return m.sort is Sort.PUB
    if isinstance(m, App):
        f = theory.signature.fun(m.fun)
        if f is None or f.private:
            return False
        return all(_constructible(theory, known, a) for a in m.args)
    return False


# ---------------------------------------------------------------- formulas on a trace


def holds(theory: Theory, trace: list[Step], formula: Formula) -> bool:
    """Evaluate a closed trace formula on ``trace`` (time points are step positions)."""
    R, _ = _theory_tools(theory)
    actions = [[Fact(a.name, tuple(R.normalize(x) for x in a.args)) for a in st.actions] for st in trace]
    return _eval(R, actions, guarded(formula), {})


def _eval(R, actions, f: Formula, env: dict) -> bool:
    if isinstance(f, Bool):
        return f.value
    if isinstance(f, Not):
        return not _eval(R, actions, f.body, env)
    if isinstance(f, Conn):
        if f.op == "&":
            return _eval(R, actions, f.left, env) and _eval(R, actions, f.right, env)
        if f.op == "|":
            return _eval(R, actions, f.left, env) or _eval(R, actions, f.right, env)
        if f.op == "==>":
            return (not _eval(R, actions, f.left, env)) or _eval(R, actions, f.right, env)
        return _eval(R, actions, f.left, env) == _eval(R, actions, f.right, env)
    if isinstance(f, Action):
        pos = env[f.node]
        want = Fact(f.fact.name, tuple(R.normalize(T.apply(a, env)) for a in f.fact.args))
        return want in actions[pos]
    if isinstance(f, Less):
        return env[f.left] < env[f.right]
    if isinstance(f, Last):
        return env[f.node] == len(actions) - 1
    if isinstance(f, Equal):
        if isinstance(f.left, Var) and f.left.sort is Sort.NODE:
            return env[f.left] == env[f.right]
        return R.normalize(T.apply(f.left, env)) == R.normalize(T.apply(f.right, env))
    assert isinstance(f, Quant)
    if f.kind == "Ex":
        parts = conjuncts(f.body)
        guards = [p for p in parts if isinstance(p, Action)]
        return any(_eval(R, actions, f.body, e) for e in _bindings(R, actions, guards, f.vars, env))
    body = f.body
    assert isinstance(body, Conn) and body.op == "==>"
    guards = [p for p in conjuncts(body.left) if isinstance(p, Action)]
    return all(_eval(R, actions, body.right, e) for e in _bindings(R, actions, guards, f.vars, env)
               if _eval(R, actions, body.left, e))


def _bindings(R, actions, guards: list[Action], vs, env: dict):
    """All extensions of ``env`` binding ``vs`` so that every guard action occurs in the trace."""
    if not guards:
        if all(v in env for v in vs):
            yield env
        return
    g, rest = guards[0], guards[1:]
    for pos, acts in enumerate(actions):
        if g.node in env and env[g.node] != pos:
            continue
        for a in acts:
            if a.name != g.fact.name or len(a.args) != len(g.fact.args):
                continue
            pattern = T.bundle([T.apply(x, {k: v for k, v in env.items() if k.sort is not Sort.NODE})
                                for x in g.fact.args])
            s = T.match(pattern, T.bundle(list(a.args)))
            if s is None:
                continue
            e = dict(env)
            e.update(s)
            e[g.node] = pos
            yield from _bindings(R, actions, rest, vs, e)
