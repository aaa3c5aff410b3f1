"""Data types that cross module boundaries in the proofsearch engine.

Terms know nothing of protocols, the theory layer (facts, rules, formulas, lemmas) knows nothing of search:
the same split as Tamarin's. Every type here is an immutable value, so terms and theories can be hashed,
shared between constraint systems and used as dictionary keys.

Source positions ride along on facts, rules and lemmas for error messages but never take part in equality.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Union


class Sort(str, enum.Enum):
    """Variable sorts. ``MSG`` is the top sort of messages; ``NODE`` (temporal) is separate."""

    MSG = "msg"
    FRESH = "fresh"
    PUB = "pub"
    NODE = "node"


_SORT_PREFIX = {Sort.MSG: "", Sort.FRESH: "~", Sort.PUB: "$", Sort.NODE: "#"}


@dataclasses.dataclass(frozen=True, slots=True)
class Var:
    """A sorted variable ``name.idx`` (``idx`` 0 prints without suffix), e.g. ``~k``, ``$A``, ``#vk.1``."""

    name: str
    idx: int = 0
    sort: Sort = Sort.MSG

    def __str__(self) -> str:
        suffix = f".{self.idx}" if self.idx else ""
        return f"{_SORT_PREFIX[self.sort]}{self.name}{suffix}"


@dataclasses.dataclass(frozen=True, slots=True)
class Name:
    """A constant name: a public name ``'c'`` (sort PUB) or a fresh name ``~'n'`` (sort FRESH)."""

    sort: Sort
    value: str

    def __str__(self) -> str:
        return f"~'{self.value}'" if self.sort is Sort.FRESH else f"'{self.value}'"


PAIR = "pair"


@dataclasses.dataclass(frozen=True, slots=True)
class App:
    """A function application; pairs are ``App("pair", (a, b))`` and ``<a, b, c>`` is ``<a, <b, c>>``."""

    fun: str
    args: tuple["Term", ...] = ()
    # Hash memo (0 = not computed yet): terms are hashed constantly as dictionary keys and set members.
    _hash: int = dataclasses.field(default=0, compare=False, repr=False)

    def __hash__(self) -> int:
        h = self._hash
        if not h:
            h = hash((self.fun, self.args)) or 1
            object.__setattr__(self, "_hash", h)
        return h

    def __str__(self) -> str:
        if self.fun == PAIR and len(self.args) == 2:
            parts = [self.args[0]]
            rest = self.args[1]
            # Right-nested pairs print flat, as Tamarin prints them.
            while isinstance(rest, App) and rest.fun == PAIR and len(rest.args) == 2:
                parts.append(rest.args[0])
                rest = rest.args[1]
            parts.append(rest)
            return "<" + ", ".join(str(p) for p in parts) + ">"
        if not self.args:
            return self.fun
        return f"{self.fun}(" + ", ".join(str(a) for a in self.args) + ")"


Term = Union[Var, Name, App]


def pair(*items: Term) -> Term:
    """Right-nested tuple ``<a, b, c> = <a, <b, c>>``; a single item is itself."""
    if not items:
        raise ValueError("pair() needs at least one item")
    out = items[-1]
    for t in reversed(items[:-1]):
        out = App(PAIR, (t, out))
    return out


def term_sort(t: Term) -> Sort:
    """The sort of a term: a variable's sort, a name's sort, MSG for applications."""
    if isinstance(t, (Var, Name)):
        return t.sort
    return Sort.MSG


@dataclasses.dataclass(frozen=True, slots=True)
class Pos:
    """A source location (1-based line and column)."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclasses.dataclass(frozen=True)
class Fact:
    """A fact ``F(t1, ..., tn)``; ``persistent`` for ``!F``; ``annotations`` holds ``+``, ``-``, ``no_precomp``."""

    name: str
    args: tuple[Term, ...]
    persistent: bool = False
    annotations: frozenset[str] = frozenset()
    pos: Pos | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def arity(self) -> int:
        return len(self.args)

    def __str__(self) -> str:
        bang = "!" if self.persistent else ""
        return f"{bang}{self.name}( " + ", ".join(str(a) for a in self.args) + " )"


@dataclasses.dataclass(frozen=True)
class Rule:
    """A multiset rewriting rule ``[premises] --[actions]-> [conclusions]`` (``let`` bindings already inlined)."""

    name: str
    premises: tuple[Fact, ...]
    actions: tuple[Fact, ...]
    conclusions: tuple[Fact, ...]
    lets: tuple[tuple[Var, Term], ...] = ()
    attributes: tuple[tuple[str, str | None], ...] = ()
    pos: Pos | None = dataclasses.field(default=None, compare=False, repr=False)


# ---------------------------------------------------------------- formulas


@dataclasses.dataclass(frozen=True)
class Action:
    """Atom ``F(ts) @ #i``; ``K``/``KU`` facts stand for the intruder actions."""

    fact: Fact
    node: Var


@dataclasses.dataclass(frozen=True)
class Less:
    """Atom ``#i < #j``."""

    left: Var
    right: Var


@dataclasses.dataclass(frozen=True)
class Equal:
    """Atom ``s = t``, between messages or (both temporal) between time points."""

    left: Term
    right: Term


@dataclasses.dataclass(frozen=True)
class Last:
    """Atom ``last(#i)``."""

    node: Var


@dataclasses.dataclass(frozen=True)
class Bool:
    """``T`` / ``F`` (⊤ / ⊥)."""

    value: bool


@dataclasses.dataclass(frozen=True)
class Not:
    body: "Formula"


@dataclasses.dataclass(frozen=True)
class Conn:
    """Binary connective: ``op`` is one of ``&``, ``|``, ``==>``, ``<=>``."""

    op: str
    left: "Formula"
    right: "Formula"


@dataclasses.dataclass(frozen=True)
class Quant:
    """``All vs. body`` (``kind == "All"``) or ``Ex vs. body``."""

    kind: str
    vars: tuple[Var, ...]
    body: "Formula"


Formula = Union[Action, Less, Equal, Last, Bool, Not, Conn, Quant]


# ---------------------------------------------------------------- theory


@dataclasses.dataclass(frozen=True)
class FunSym:
    """A function symbol ``name/arity``; private symbols get no intruder construction rule."""

    name: str
    arity: int
    private: bool = False


@dataclasses.dataclass(frozen=True)
class Equation:
    """An oriented equation ``lhs -> rhs`` of the subterm-convergent rewrite system."""

    lhs: Term
    rhs: Term
    origin: str = "user"  # builtin name or "user"

    def __str__(self) -> str:
        return f"{self.lhs} = {self.rhs}"


@dataclasses.dataclass(frozen=True)
class Signature:
    """Function symbols and equations of a theory (builtins expanded, pairing always present)."""

    functions: tuple[FunSym, ...]
    equations: tuple[Equation, ...]
    builtins: tuple[str, ...] = ()

    def fun(self, name: str) -> FunSym | None:
        for f in self.functions:
            if f.name == name:
                return f
        return None

    @property
    def destructors(self) -> frozenset[str]:
        """Root symbols of equation left-hand sides (the symbols narrowing acts on)."""
        return frozenset(e.lhs.fun for e in self.equations if isinstance(e.lhs, App))


@dataclasses.dataclass(frozen=True)
class Restriction:
    name: str
    formula: Formula
    pos: Pos | None = dataclasses.field(default=None, compare=False, repr=False)


ALL_TRACES = "all-traces"
EXISTS_TRACE = "exists-trace"


@dataclasses.dataclass(frozen=True)
class Lemma:
    """A lemma with its trace quantifier and Tamarin attributes."""

    name: str
    formula: Formula
    trace_quantifier: str = ALL_TRACES
    sources: bool = False
    reuse: bool = False
    use_induction: bool = False
    hide_lemmas: tuple[str, ...] = ()
    heuristic: str | None = None
    pos: Pos | None = dataclasses.field(default=None, compare=False, repr=False)


@dataclasses.dataclass(frozen=True)
class Theory:
    """A parsed theory: signature, rules, restrictions and lemmas in file order, plus parser warnings."""

    name: str
    signature: Signature
    rules: tuple[Rule, ...]
    restrictions: tuple[Restriction, ...]
    lemmas: tuple[Lemma, ...]
    heuristic: str | None = None
    warnings: tuple[str, ...] = ()
    path: str = "<string>"

    def lemma(self, name: str) -> Lemma | None:
        for lem in self.lemmas:
            if lem.name == name:
                return lem
        return None

    def rule(self, name: str) -> Rule | None:
        for r in self.rules:
            if r.name == name:
                return r
        return None
