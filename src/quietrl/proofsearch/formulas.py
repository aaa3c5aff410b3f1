"""Trace formulas: negation normal form, free variables and printing in Tamarin's notation.

An all-traces lemma is refuted by searching for a trace of its negation; Tamarin shows that formula in
negation normal form with unicode connectives (``∀ ∃ ¬ ∧ ∨ ⇒ ⊤ ⊥``), which is what this module prints.
"""

from __future__ import annotations

from quietrl.proofsearch import terms as T
from quietrl.proofsearch.types import (
    EXISTS_TRACE,
    Action,
    Bool,
    Conn,
    Equal,
    Formula,
    Last,
    Lemma,
    Less,
    Not,
    Quant,
    Var,
)


def nnf(f: Formula, negate: bool = False) -> Formula:
    """Negation normal form of ``f`` (or of ``not f``): negation only on atoms, no ``==>``/``<=>`` left."""
    if isinstance(f, Bool):
        return Bool(f.value != negate)
    if isinstance(f, (Action, Less, Equal, Last)):
        return Not(f) if negate else f
    if isinstance(f, Not):
        return nnf(f.body, not negate)
    if isinstance(f, Quant):
        kind = f.kind if not negate else ("Ex" if f.kind == "All" else "All")
        return Quant(kind, f.vars, nnf(f.body, negate))
    assert isinstance(f, Conn)
    if f.op == "==>":
        return nnf(Conn("|", Not(f.left), f.right), negate)
    if f.op == "<=>":
        both = Conn("&", Conn("==>", f.left, f.right), Conn("==>", f.right, f.left))
        return nnf(both, negate)
    op = f.op
    if negate:
        op = "|" if op == "&" else "&"
    return Conn(op, nnf(f.left, negate), nnf(f.right, negate))


def _conj(parts: list[Formula]) -> Formula:
    parts = [p for p in parts if p != Bool(True)]
    if any(p == Bool(False) for p in parts):
        return Bool(False)
    if not parts:
        return Bool(True)
    out = parts[-1]
    for p in reversed(parts[:-1]):
        out = Conn("&", p, out)
    return out


def _disj(a: Formula, b: Formula) -> Formula:
    if a == Bool(True) or b == Bool(True):
        return Bool(True)
    if a == Bool(False):
        return b
    if b == Bool(False):
        return a
    return Conn("|", a, b)


def conjuncts(f: Formula) -> list[Formula]:
    """The top-level conjuncts of ``f`` (left to right)."""
    if isinstance(f, Conn) and f.op == "&":
        return conjuncts(f.left) + conjuncts(f.right)
    return [f]


def guarded(f: Formula, negate: bool = False) -> Formula:
    """Tamarin's guarded negation normal form of ``f`` (or of ``not f``).

    Like :func:`nnf`, but every universal quantifier keeps the shape ``∀ xs. (guards) ⇒ body`` with the
    guarding action atoms on the left, and ``⊤``/``⊥`` are simplified away inside connectives: this is the
    "guarded formula characterizing all counter-examples" that Tamarin prints for an all-traces lemma.
    """
    if isinstance(f, Bool):
        return Bool(f.value != negate)
    if isinstance(f, (Action, Less, Equal, Last)):
        return Not(f) if negate else f
    if isinstance(f, Not):
        return guarded(f.body, not negate)
    if isinstance(f, Conn):
        if f.op == "==>":
            if negate:
                return _conj(conjuncts(guarded(f.left)) + conjuncts(guarded(f.right, True)))
            return _disj(guarded(f.left, True), guarded(f.right))
        if f.op == "<=>":
            both = Conn("&", Conn("==>", f.left, f.right), Conn("==>", f.right, f.left))
            return guarded(both, negate)
        left, right = guarded(f.left, negate), guarded(f.right, negate)
        is_and = (f.op == "&") != negate
        return _conj(conjuncts(left) + conjuncts(right)) if is_and else _disj(left, right)
    assert isinstance(f, Quant)
    if (f.kind == "Ex") != negate:  # an existential after pushing the negation
        body = guarded(f.body, negate)
        return Quant("Ex", f.vars, body) if body != Bool(False) else body
    # A universal: split the body into guards (actions) and the rest.
    if not negate:
        if isinstance(f.body, Conn) and f.body.op == "==>":
            guard_part, rest = guarded(f.body.left), guarded(f.body.right)
        else:  # All xs. not(A & ...): guards are the actions inside the negation
            guard_part, rest = guarded(f.body, True), Bool(False)
            guard_part = guarded(f.body.body) if isinstance(f.body, Not) else guard_part
    else:  # not (Ex xs. A & rest)
        guard_part, rest = guarded(f.body), Bool(False)
    cs = conjuncts(guard_part)
    guards = [c for c in cs if isinstance(c, Action)]
    others = [c for c in cs if not isinstance(c, Action)]
    if negate:
        body = guarded(_conj(others), True) if others else Bool(False)
    else:
        body = _disj(guarded(_conj(others), True), rest) if others else rest
    return Quant("All", f.vars, Conn("==>", _conj(guards), body))


def goal_formula(lemma: Lemma) -> Formula:
    """The formula whose traces the prover searches, in guarded form: the lemma itself (exists-trace) or,
    for an all-traces lemma, its negation (the formula characterising all counter-examples)."""
    return guarded(lemma.formula, negate=lemma.trace_quantifier != EXISTS_TRACE)


def free_vars(f: Formula) -> dict[Var, None]:
    """Free variables (message and temporal) in order of first occurrence."""
    out: dict[Var, None] = {}

    def go(g: Formula, bound: frozenset[Var]) -> None:
        if isinstance(g, Action):
            for v in list(T.vars_of_all(g.fact.args)) + [g.node]:
                if v not in bound:
                    out.setdefault(v, None)
        elif isinstance(g, (Less, Equal)):
            for v in T.vars_of_all([g.left, g.right]):
                if v not in bound:
                    out.setdefault(v, None)
        elif isinstance(g, Last):
            if g.node not in bound:
                out.setdefault(g.node, None)
        elif isinstance(g, Not):
            go(g.body, bound)
        elif isinstance(g, Conn):
            go(g.left, bound)
            go(g.right, bound)
        elif isinstance(g, Quant):
            go(g.body, bound | frozenset(g.vars))

    go(f, frozenset())
    return out


def mentions_last(f: Formula) -> bool:
    if isinstance(f, Last):
        return True
    if isinstance(f, Not):
        return mentions_last(f.body)
    if isinstance(f, Conn):
        return mentions_last(f.left) or mentions_last(f.right)
    if isinstance(f, Quant):
        return mentions_last(f.body)
    return False


_OPS = {"&": "∧", "|": "∨", "==>": "⇒", "<=>": "⇔"}


def show(f: Formula) -> str:
    """Tamarin-style rendering, e.g. ``∃ S k #i. (SessKeyC( S, k ) @ #i) ∧ (¬(#r < #i))``."""
    if isinstance(f, Bool):
        return "⊤" if f.value else "⊥"
    if isinstance(f, Action):
        bang = "!" if f.fact.name in ("KU", "KD") else ""
        return f"{bang}{f.fact.name}( " + ", ".join(map(str, f.fact.args)) + f" ) @ {f.node}"
    if isinstance(f, Less):
        return f"{f.left} < {f.right}"
    if isinstance(f, Equal):
        return f"{f.left} = {f.right}"
    if isinstance(f, Last):
        return f"last({f.node})"
    if isinstance(f, Not):
        return f"¬({show(f.body)})"
    if isinstance(f, Conn):
        if f.op in ("&", "|"):
            # As Tamarin prints: a disjunction carries its own parentheses, a conjunction does not.
            text = f" {_OPS[f.op]} ".join(_paren(p) for p in _flatten(f, f.op))
            return f"({text})" if f.op == "|" else text
        return f"{_paren(f.left)} {_OPS[f.op]} {_paren(f.right)}"
    assert isinstance(f, Quant)
    head = f"{'∀' if f.kind == 'All' else '∃'} {' '.join(map(str, f.vars))}. "
    if f.kind == "All" and isinstance(f.body, Conn) and f.body.op == "==>":
        guards = " ∧ ".join(f"({show(g)})" for g in conjuncts(f.body.left))
        body = f.body.right
        return head + guards + " ⇒ " + show(body)
    # Tamarin prints ∃ as: guards (each in parentheses) ∧ the rest, a lone rest without parentheses.
    parts = conjuncts(f.body)
    guards = [p for p in parts if isinstance(p, Action)]
    rest = [p for p in parts if not isinstance(p, Action)]
    out = [f"({show(g)})" for g in guards]
    if len(rest) == 1:
        out.append(show(rest[0]))
    else:
        out += [f"({show(r)})" for r in rest]
    return head + " ∧ ".join(out)


def _flatten(f: Formula, op: str) -> list[Formula]:
    if isinstance(f, Conn) and f.op == op:
        return _flatten(f.left, op) + _flatten(f.right, op)
    return [f]


def _paren(f: Formula) -> str:
    if isinstance(f, Bool):
        return show(f)
    return f"({show(f)})"


def relativize_to_prefix(f: Formula) -> Formula:
    """``f`` evaluated on the trace without its last position (the induction hypothesis's shape).

    Every quantified time point must be a non-last one: ``∃ #t. A@#t ∧ φ`` becomes ``∃ #t. A@#t ∧ ¬last(#t)
    ∧ φ'`` and ``∀ #t. A@#t ⇒ φ`` becomes ``∀ #t. A@#t ⇒ last(#t) ∨ φ'``. Message variables are guarded by
    actions at time points, so they need nothing. ``f`` must be in guarded form (see :func:`guarded`).
    """
    if isinstance(f, Not):
        return Not(relativize_to_prefix(f.body))
    if isinstance(f, Conn):
        return Conn(f.op, relativize_to_prefix(f.left), relativize_to_prefix(f.right))
    if not isinstance(f, Quant):
        return f
    times = [v for v in f.vars if v.sort.value == "node"]
    if f.kind == "Ex":
        parts = conjuncts(f.body)
        guards = [p for p in parts if isinstance(p, Action)]
        rest = [relativize_to_prefix(p) for p in parts if not isinstance(p, Action)]
        return Quant("Ex", f.vars, _conj(guards + [Not(Last(t)) for t in times] + rest))
    body = f.body
    assert isinstance(body, Conn) and body.op == "==>", "relativize_to_prefix needs a guarded formula"
    out = relativize_to_prefix(body.right)
    for t in times:  # Tamarin lists the last(#t) disjuncts innermost-bound first
        out = _disj(Last(t), out)
    return Quant("All", f.vars, Conn("==>", body.left, out))
