"""Parser for the Diffie-Hellman-free ``.spthy`` subset: lark grammar -> typed :class:`Theory`.

Errors are :class:`quietrl.core.errors.UserError` with one line ``FILE:LINE:COL: ...`` (the quietrl CLI
prints it as ``error: FILE:LINE:COL: ...``, exit 2); wellformedness problems that Tamarin only warns about
are collected in ``Theory.warnings`` (``FILE:LINE:COL: warning: ...``).
The grammar lives in ``spthy.lark``; text after the theory's closing ``end`` is never read, as in Tamarin.
"""

from __future__ import annotations

import functools
import os
from importlib import resources
from pathlib import Path

import lark
from lark import Token, Transformer, Tree, v_args

from quietrl.core.errors import UserError
from quietrl.proofsearch import terms as T
from quietrl.proofsearch.types import (
    ALL_TRACES,
    EXISTS_TRACE,
    PAIR,
    Action,
    App,
    Bool,
    Conn,
    Equal,
    Equation,
    Fact,
    Formula,
    FunSym,
    Last,
    Lemma,
    Less,
    Name,
    Not,
    Pos,
    Quant,
    Restriction,
    Rule,
    Signature,
    Sort,
    Term,
    Theory,
    Var,
    pair,
)

# ---------------------------------------------------------------- builtins

_m, _k, _x, _y = Var("m"), Var("k"), Var("x"), Var("y")
_TRUE = App("true")


def _pk(t: Term) -> Term:
    return App("pk", (t,))


BUILTINS: dict[str, tuple[tuple[FunSym, ...], tuple[Equation, ...]]] = {
    "hashing": ((FunSym("h", 1),), ()),
    "symmetric-encryption": (
        (FunSym("senc", 2), FunSym("sdec", 2)),
        (Equation(App("sdec", (App("senc", (_m, _k)), _k)), _m, "symmetric-encryption"),),
    ),
    "asymmetric-encryption": (
        (FunSym("aenc", 2), FunSym("adec", 2), FunSym("pk", 1)),
        (Equation(App("adec", (App("aenc", (_m, _pk(_k))), _k)), _m, "asymmetric-encryption"),),
    ),
    "signing": (
        (FunSym("sign", 2), FunSym("verify", 3), FunSym("pk", 1), FunSym("true", 0)),
        (Equation(App("verify", (App("sign", (_m, _k)), _m, _pk(_k))), _TRUE, "signing"),),
    ),
    "revealing-signing": (
        (FunSym("revealSign", 2), FunSym("revealVerify", 3), FunSym("getMessage", 1), FunSym("pk", 1),
         FunSym("true", 0)),
        (
            Equation(App("revealVerify", (App("revealSign", (_m, _k)), _m, _pk(_k))), _TRUE, "revealing-signing"),
            Equation(App("getMessage", (App("revealSign", (_m, _k)),)), _m, "revealing-signing"),
        ),
    ),
}
PAIRING: tuple[tuple[FunSym, ...], tuple[Equation, ...]] = (
    (FunSym(PAIR, 2), FunSym("fst", 1), FunSym("snd", 1)),
    (
        Equation(App("fst", (App(PAIR, (_x, _y)),)), _x, "pairing"),
        Equation(App("snd", (App(PAIR, (_x, _y)),)), _y, "pairing"),
    ),
)
UNSUPPORTED_BUILTINS = frozenset(
    {"diffie-hellman", "bilinear-pairing", "xor", "multiset", "natural-numbers"}
)
# Top-level keywords of Tamarin constructs outside our subset: named in the error instead of a syntax error.
UNSUPPORTED_KEYWORDS = {
    "process": "SAPIC processes", "predicates": "predicates", "predicate": "predicates",
    "macros": "macros", "tactic": "tactics", "options": "options", "export": "export blocks",
    "diffLemma": "diff lemmas (observational equivalence)", "#ifdef": "preprocessor directives",
    "#include": "preprocessor directives", "#define": "preprocessor directives", "let": "SAPIC processes",
    "configuration": "theory configuration blocks",
}
RESERVED_FACTS = {"Fr": 1, "In": 1, "Out": 1, "K": 1, "KU": 1, "KD": 1}
LEMMA_ATTRIBUTES = {"sources", "typing", "reuse", "use_induction", "hide_lemma", "heuristic", "output"}


@functools.lru_cache(maxsize=1)
def _parser() -> lark.Lark:
    grammar = resources.files("quietrl.proofsearch").joinpath("spthy.lark").read_text(encoding="utf-8")
    return lark.Lark(grammar, parser="lalr", lexer="contextual", propagate_positions=True,
                     maybe_placeholders=True)


# ---------------------------------------------------------------- intermediate values


class _RawApp:
    """An application before its symbol is checked against the signature (or read as a fact)."""

    __slots__ = ("name", "args", "pos")

    def __init__(self, name: str, args: tuple, pos: Pos):
        self.name, self.args, self.pos = name, args, pos


class _Ctx:
    def __init__(self, path: str):
        self.path = path
        self.warnings: list[str] = []

    def pos(self, line: int | None, col: int | None) -> Pos:
        return Pos(self.path, line or 0, col or 0)

    def tpos(self, tok: Token) -> Pos:
        return self.pos(tok.line, tok.column)

    def error(self, pos: Pos, msg: str) -> UserError:
        return UserError(f"{pos}: {msg}")

    def warn(self, pos: Pos | None, msg: str) -> None:
        where = f"{pos}: " if pos else f"{self.path}: "
        self.warnings.append(f"{where}warning: {msg}")


def _var_from_token(tok: Token) -> Var:
    text = str(tok)
    sort = Sort.MSG
    if text[0] in "~$#":
        sort = {"~": Sort.FRESH, "$": Sort.PUB, "#": Sort.NODE}[text[0]]
        text = text[1:]
    name, idx = text, 0
    if "." in text:
        name, _, num = text.partition(".")
        idx = int(num)
    return Var(name, idx, sort)


@v_args(meta=True)
class _Build(Transformer):
    """Tree -> raw terms/facts/formulas; symbols are checked later in :func:`_Checker.term`."""

    def __init__(self, ctx: _Ctx):
        super().__init__()
        self.ctx = ctx

    # terms
    def var(self, meta, children):
        return _var_from_token(children[0])

    def const(self, meta, children):
        tok = children[0]
        text = str(tok)
        if tok.type == "FRESHCONST":
            return Name(Sort.FRESH, text[2:-1])
        return Name(Sort.PUB, text[1:-1])

    def pair(self, meta, children):
        return pair(*children)

    def app(self, meta, children):
        name, *args = children
        args = tuple(a for a in args if a is not None)
        return _RawApp(str(name), args, self.ctx.tpos(name))

    def binapp(self, meta, children):
        name, *args = children
        *msg, key = args
        return _RawApp(str(name), (pair(*msg), key), self.ctx.tpos(name))

    # facts
    def factannot(self, meta, children):
        return frozenset(children)

    def annot_plus(self, meta, children):
        return "+"

    def annot_minus(self, meta, children):
        return "-"

    def annot_name(self, meta, children):
        return str(children[0])

    def fact(self, meta, children):
        bang = children[0] is not None
        name = children[1]
        rest = list(children[2:])
        annots: frozenset[str] = frozenset()
        if rest and isinstance(rest[-1], frozenset):
            annots = rest.pop()
        elif rest and rest[-1] is None:
            rest.pop()
        args = tuple(a for a in rest if a is not None)
        return ("fact", bang, str(name), args, annots, self.ctx.tpos(name))

    # formulas
    def action(self, meta, children):
        left, node = children
        return ("action", left, node, self.ctx.pos(meta.line, meta.column))

    def less(self, meta, children):
        return ("less", children[0], children[2], self.ctx.pos(meta.line, meta.column))

    def equal(self, meta, children):
        return ("equal", children[0], children[1], self.ctx.pos(meta.line, meta.column))

    def last(self, meta, children):
        return ("last", children[0], self.ctx.pos(meta.line, meta.column))

    def true(self, meta, children):
        return Bool(True)

    def false(self, meta, children):
        return Bool(False)

    def not_(self, meta, children):
        return ("not", children[-1])

    def and_(self, meta, children):
        return ("conn", "&", children[0], children[2])

    def or_(self, meta, children):
        return ("conn", "|", children[0], children[2])

    def imp(self, meta, children):
        return ("conn", "==>", children[0], children[2])

    def iff(self, meta, children):
        return ("conn", "<=>", children[0], children[2])

    def quant(self, meta, children):
        kind = "All" if str(children[0]) in ("All", "∀") else "Ex"
        vs = tuple(_var_from_token(t) for t in children[1:-1])
        return ("quant", kind, vs, children[-1], self.ctx.pos(meta.line, meta.column))


# ---------------------------------------------------------------- checker: raw items -> typed theory


class _Checker:
    def __init__(self, ctx: _Ctx):
        self.ctx = ctx
        self.funs: dict[str, FunSym] = {}
        self.equations: list[Equation] = []
        self.builtins: list[str] = []
        self.fact_use: dict[str, tuple[int, bool, Pos]] = {}
        self._add_funs(PAIRING[0], None)
        self.equations.extend(PAIRING[1])

    # -- signature
    def _add_funs(self, funs, pos: Pos | None) -> None:
        for f in funs:
            old = self.funs.get(f.name)
            if old is not None and old.arity != f.arity:
                raise self.ctx.error(pos or self.ctx.pos(0, 0),
                                     f"function symbol {f.name} declared with arity {f.arity} and {old.arity}")
            if old is None or f.private:
                self.funs[f.name] = f

    def builtin(self, tok: Token) -> None:
        name = str(tok)
        pos = self.ctx.tpos(tok)
        if name in UNSUPPORTED_BUILTINS:
            raise self.ctx.error(pos, f"unsupported builtin '{name}' (this engine has no Diffie-Hellman, "
                                      "bilinear-pairing, xor, multiset or natural-number theory)")
        if name not in BUILTINS:
            raise self.ctx.error(pos, f"unknown builtin '{name}'; supported: {', '.join(sorted(BUILTINS))}")
        if name in self.builtins:
            return
        self.builtins.append(name)
        funs, eqs = BUILTINS[name]
        self._add_funs(funs, pos)
        self.equations.extend(eqs)

    def fundecl(self, tree: Tree) -> None:
        name_tok, arity_tok, attrs = tree.children
        pos = self.ctx.tpos(name_tok)
        flags = {a for a, _ in self.attrs(attrs)} if attrs is not None else set()
        for flag in flags - {"private", "destructor"}:
            self.ctx.warn(pos, f"ignoring unknown function attribute [{flag}]")
        if str(name_tok) == PAIR:
            raise self.ctx.error(pos, "'pair' is a reserved function symbol")
        self._add_funs([FunSym(str(name_tok), int(arity_tok), "private" in flags)], pos)

    def equations_item(self, tree: Tree) -> None:
        attrs, *eqs = tree.children
        if attrs is not None:
            for a, _ in self.attrs(attrs):
                pos = self.ctx.pos(attrs.meta.line, attrs.meta.column)
                if a == "convergent":
                    raise self.ctx.error(pos, "unsupported: [convergent] equations (only subterm-convergent "
                                              "equations are supported)")
                raise self.ctx.error(pos, f"unsupported equation attribute [{a}]")
        for eq in eqs:
            lhs_raw, rhs_raw = eq.children
            pos = self.ctx.pos(eq.meta.line, eq.meta.column)
            lhs, rhs = self.term(lhs_raw), self.term(rhs_raw)
            self.check_equation(lhs, rhs, pos)
            self.equations.append(Equation(lhs, rhs, "user"))

    def check_equation(self, lhs: Term, rhs: Term, pos: Pos) -> None:
        if not isinstance(lhs, App) or lhs.fun == PAIR:
            raise self.ctx.error(pos, f"equation {lhs} = {rhs}: the left-hand side must be a function application")
        if any(isinstance(t, Name) for t in T.subterms(lhs)):
            raise self.ctx.error(pos, f"equation {lhs} = {rhs}: names are not allowed in equations")
        extra = set(T.vars_of(rhs)) - set(T.vars_of(lhs))
        if extra:
            raise self.ctx.error(pos, f"equation {lhs} = {rhs}: right-hand side variable(s) "
                                      f"{', '.join(sorted(map(str, extra)))} not in the left-hand side")
        if T.is_proper_subterm(rhs, lhs):
            return
        if not T.vars_of(rhs):
            # A ground right-hand side must be irreducible under the equations declared so far.
            if T.RewriteSystem(self.equations).is_normal(rhs):
                return
        raise self.ctx.error(pos, f"equation {lhs} = {rhs} is not subterm-convergent (the right-hand side must "
                                  "be a proper subterm of the left-hand side or a ground normal form)")

    def signature(self) -> Signature:
        return Signature(tuple(self.funs.values()), tuple(self.equations), tuple(self.builtins))

    # -- terms
    def term(self, t) -> Term:
        if isinstance(t, _RawApp):
            f = self.funs.get(t.name)
            if f is None:
                raise self.ctx.error(t.pos, f"undeclared function symbol {t.name}/{len(t.args)}")
            args = t.args
            if f.arity == 1 and len(args) > 1:
                # Tamarin reads f(a, b, c) for a unary f as f(<a, b, c>).
                args = (pair(*args),)
            if f.arity != len(args):
                raise self.ctx.error(t.pos, f"function symbol {t.name} has arity {f.arity}, used with "
                                            f"{len(t.args)} argument(s)")
            return App(t.name, tuple(self.term(a) for a in args))
        if isinstance(t, App):
            return App(t.fun, tuple(self.term(a) for a in t.args))
        if isinstance(t, Var) and t.sort is Sort.MSG and t.idx == 0:
            f = self.funs.get(t.name)
            if f is not None and f.arity == 0:
                return App(t.name)
        return t

    @staticmethod
    def attrs(tree: Tree | None) -> list[tuple[str, str | None]]:
        out = []
        if tree is None:
            return out
        for a in tree.children:
            name, val = a.children
            if isinstance(val, Token) and val.type == "STRING":
                val = str(val)[1:-1]
            out.append((str(name), None if val is None else str(val)))
        return out

    # -- facts
    def fact(self, raw, where: str) -> Fact:
        _, bang, name, args, annots, pos = raw
        f = Fact(name, tuple(self.term(a) for a in args), bang, annots, pos)
        self.note_fact(f, where)
        return f

    def note_fact(self, f: Fact, where: str) -> None:
        pos = f.pos or self.ctx.pos(0, 0)
        want = RESERVED_FACTS.get(f.name)
        if want is not None and f.arity != want:
            raise self.ctx.error(pos, f"fact {f.name} must have arity {want}, used with {f.arity} argument(s)")
        old = self.fact_use.get(f.name)
        if old is None:
            self.fact_use[f.name] = (f.arity, f.persistent, pos)
            return
        arity, persistent, first = old
        if arity != f.arity:
            raise self.ctx.error(pos, f"fact {f.name} used with arity {f.arity} here and arity {arity} at "
                                      f"{first.line}:{first.col}")
        if persistent != f.persistent and where == "rule":
            self.ctx.warn(pos, f"fact {f.name} used both as persistent (!) and linear fact")

    # -- rules
    def rule(self, tree: Tree) -> Rule:
        name_tok, attrs, letblock, prems, arrow, concs = tree.children
        pos = self.ctx.tpos(name_tok)
        lets: list[tuple[Var, Term]] = []
        if letblock is not None:
            subst: dict[Var, Term] = {}
            for lb in letblock.children:
                vtok, rhs_raw = lb.children
                v = _var_from_token(vtok)
                rhs = T.apply(self.term(rhs_raw), subst)
                lets.append((v, rhs))
                subst[v] = rhs
        else:
            subst = {}

        def facts(node) -> tuple[Fact, ...]:
            out = []
            for raw in node.children:
                if raw is None:
                    continue
                f = self.fact(raw, "rule")
                out.append(Fact(f.name, tuple(T.apply(a, subst) for a in f.args), f.persistent, f.annotations,
                                f.pos))
            return tuple(out)

        premises = facts(prems)
        actions = facts(arrow) if arrow.data == "action_arrow" else ()
        conclusions = facts(concs)
        rule = Rule(str(name_tok), premises, actions, conclusions, tuple(lets), tuple(self.attrs(attrs)), pos)
        self.check_rule(rule)
        return rule

    def check_rule(self, r: Rule) -> None:
        for f in r.premises:
            if f.name in ("Out", "K", "KU", "KD"):
                self.ctx.warn(f.pos, f"rule {r.name}: fact {f.name} in a premise")
        for f in r.conclusions:
            if f.name in ("Fr", "In", "K", "KU", "KD"):
                self.ctx.warn(f.pos, f"rule {r.name}: fact {f.name} in a conclusion")
        for f in r.actions:
            if f.name in ("Fr", "In", "Out"):
                self.ctx.warn(f.pos, f"rule {r.name}: fact {f.name} as an action")
        for f in r.premises + r.actions + r.conclusions:
            if f.name in ("Fr", "In", "Out") and f.persistent:
                self.ctx.warn(f.pos, f"rule {r.name}: builtin fact {f.name} cannot be persistent")
        prem_vars = T.vars_of_all(a for f in r.premises for a in f.args)
        by_name: dict[str, set[Sort]] = {}
        for f in r.premises + r.actions + r.conclusions:
            for v in T.vars_of_all(f.args):
                by_name.setdefault(v.name, set()).add(v.sort)
        for name, sorts in sorted(by_name.items()):
            if len(sorts) > 1:
                self.ctx.warn(r.pos, f"rule {r.name}: variable {name} used with several sorts "
                                     f"({', '.join(sorted(s.value for s in sorts))})")
        for f in r.actions + r.conclusions:
            for v in T.vars_of_all(f.args):
                if v in prem_vars:
                    continue
                if v.sort is Sort.FRESH:
                    raise self.ctx.error(f.pos or r.pos, f"rule {r.name}: fresh variable {v} in the right-hand "
                                                         "side is not bound by a premise (add Fr(" f"{v}))")
                if v.sort is Sort.MSG:
                    self.ctx.warn(f.pos or r.pos, f"rule {r.name}: variable {v} in the right-hand side is not "
                                                  "bound by a premise")

    # -- formulas
    def formula(self, raw, scope: dict[tuple[str, int, Sort], Var], where: str) -> Formula:
        if isinstance(raw, Bool):
            return raw
        kind = raw[0]
        if kind == "not":
            return Not(self.formula(raw[1], scope, where))
        if kind == "conn":
            return Conn(raw[1], self.formula(raw[2], scope, where), self.formula(raw[3], scope, where))
        if kind == "quant":
            _, q, vs, body, pos = raw
            inner = dict(scope)
            for v in vs:
                inner[(v.name, v.idx, v.sort)] = v
            f = Quant(q, vs, self.formula(body, inner, where))
            self.check_guarded(f, pos, where)
            return f
        if kind == "action":
            _, left, node, pos = raw
            if not isinstance(left, _RawApp):
                raise self.ctx.error(pos, f"{where}: expected a fact before '@'")
            fact = Fact(left.name, tuple(self.msg(self.term(a), scope, pos, where) for a in left.args),
                        False, frozenset(), left.pos)
            self.note_fact(fact, "formula")
            return Action(fact, self.tvar(node, scope, pos, where))
        if kind == "less":
            _, a, b, pos = raw
            return Less(self.tvar(a, scope, pos, where), self.tvar(b, scope, pos, where))
        if kind == "last":
            _, a, pos = raw
            return Last(self.tvar(a, scope, pos, where))
        if kind == "equal":
            _, a, b, pos = raw
            if self.is_temporal(a, scope) and self.is_temporal(b, scope):
                return Equal(self.tvar(a, scope, pos, where), self.tvar(b, scope, pos, where))
            return Equal(self.msg(self.term(a), scope, pos, where), self.msg(self.term(b), scope, pos, where))
        raise AssertionError(kind)

    @staticmethod
    def is_temporal(t, scope) -> bool:
        if not isinstance(t, Var):
            return False
        if t.sort is Sort.NODE:
            return True
        return (t.sort is Sort.MSG and (t.name, t.idx, Sort.NODE) in scope
                and (t.name, t.idx, Sort.MSG) not in scope)

    def tvar(self, t, scope, pos: Pos, where: str) -> Var:
        if isinstance(t, Var) and t.sort in (Sort.NODE, Sort.MSG):
            v = scope.get((t.name, t.idx, Sort.NODE))
            if v is not None:
                return v
            if t.sort is Sort.MSG and (t.name, t.idx, Sort.MSG) in scope:  # `x < i` with x a message variable
                raise self.ctx.error(pos, f"{where}: {t.name} is a message variable, where a temporal variable "
                                          "is expected")
            raise self.ctx.error(pos, f"{where}: unbound temporal variable #{t.name}")
        raise self.ctx.error(pos, f"{where}: expected a temporal variable, found {self.show(t)}")

    def msg(self, t: Term, scope, pos: Pos, where: str) -> Term:
        for v in T.vars_of(t):
            if (v.name, v.idx, v.sort) not in scope:
                raise self.ctx.error(pos, f"{where}: unbound variable {v}")
        return t

    @staticmethod
    def show(t) -> str:
        return t.name if isinstance(t, _RawApp) else str(t)

    def check_guarded(self, f: Quant, pos: Pos, where: str) -> None:
        """Tamarin's guarded fragment: Ex x. (A@i & ...), All x. (A@i & ...) ==> phi, or All x. not(A@i & ...)."""
        body = f.body
        if f.kind == "All":
            if isinstance(body, Conn) and body.op == "==>":
                guard = body.left
            elif isinstance(body, Not):
                guard = body.body
            else:
                raise self.ctx.error(pos, f"{where}: unguarded formula: the body of a universal quantifier "
                                          "must be an implication whose premise holds the guarding actions")
        else:
            guard = body
        covered: set[Var] = set()
        for c in _conjuncts(guard):
            if isinstance(c, Action):
                covered |= set(T.vars_of_all(c.fact.args))
                covered.add(c.node)
        missing = [v for v in f.vars if v not in covered]
        if missing:
            raise self.ctx.error(pos, f"{where}: unguarded variable(s) {', '.join(map(str, missing))}: every "
                                      "quantified variable must occur in an action atom right after the "
                                      "quantifier")


def _conjuncts(f: Formula) -> list[Formula]:
    if isinstance(f, Conn) and f.op == "&":
        return _conjuncts(f.left) + _conjuncts(f.right)
    return [f]


# ---------------------------------------------------------------- entry points


@functools.lru_cache(maxsize=1)
def _terminal_texts() -> dict[str, str]:
    """Terminal name -> how the user writes it: ``'-->'`` for a fixed string (lark names it ``__ANON_0``), else NAME."""
    out = {}
    for t in _parser().terminals:
        if isinstance(t.pattern, lark.lexer.PatternStr):
            out[t.name] = repr(t.pattern.value)
        else:
            out[t.name] = t.name
    return out


def _expected(e: lark.exceptions.UnexpectedInput, ip) -> str:
    """The tokens the parser could take at the error, as the user writes them (at most 24, then '...')."""
    # The parse-table row behind e.expected (and the contextual lexer's e.allowed) is too wide: LALR merges the
    # states after both fact lists of a rule, so after the premises it also lists the top-level keywords that
    # could only follow the conclusions. accepts() feeds each candidate to a copy of the parser and keeps the
    # ones that really advance it. The parse stopped at the error, so the copy sees the state at the bad token
    # (after any reductions that token triggered, as lark's own expected set does).
    try:
        names = set(ip.accepts()) if ip is not None else set()
    except (lark.exceptions.LarkError, KeyError):
        names = set()
    names = names or set(getattr(e, "expected", None) or getattr(e, "allowed", None) or ())
    texts = _terminal_texts()
    shown = sorted({texts.get(n, n) for n in names if n != "$END"})
    if not shown:
        return ""
    more = ", ..." if len(shown) > 24 else ""
    return f" (expected one of {', '.join(shown[:24])}{more})"


def _syntax_error(ctx: _Ctx, e: lark.exceptions.LarkError, ip=None) -> UserError:
    """One-line UserError for a lark error; ``ip`` is the interactive parser that stopped there, if any."""
    line = getattr(e, "line", 0)
    col = getattr(e, "column", 0)
    pos = ctx.pos(line if isinstance(line, int) and line > 0 else 0, col if isinstance(col, int) and col > 0 else 0)
    if isinstance(e, lark.exceptions.UnexpectedToken):
        tok = e.token
        if tok.type == "$END":
            return ctx.error(pos, "unexpected end of file (missing 'end'?)")
        what = UNSUPPORTED_KEYWORDS.get(str(tok))
        if what:
            return ctx.error(pos, f"unsupported construct: {what} ('{tok}')")
        return ctx.error(pos, f"syntax error: unexpected '{tok}'{_expected(e, ip)}")
    if isinstance(e, lark.exceptions.UnexpectedCharacters):
        ch = e.char
        if ch in "^*⊕+":
            return ctx.error(pos, f"unsupported operator '{ch}' (Diffie-Hellman, xor and multiset terms are "
                                  "not supported)")
        return ctx.error(pos, f"syntax error: unexpected character {ch!r}{_expected(e, ip)}")
    return ctx.error(pos, f"syntax error: {str(e).splitlines()[0]}")


def _eof_token(last: Token | None) -> Token:
    """The end-of-file token, placed right after the last token (lark's ``feed_eof`` puts it at 1:1).

    So a file missing its final ``end`` reports the line of its last token and the column just after it:
    where ``end`` is missing, past any trailing blank lines and comments. An empty file reports 1:1.
    """
    if last is None or last.end_line is None or last.end_column is None:
        return Token("$END", "", 0, 1, 1)
    return Token("$END", "", last.end_pos, last.end_line, last.end_column, last.end_line, last.end_column,
                 last.end_pos)


def parse_theory(text: str, path: str = "<string>") -> Theory:
    """Parse ``.spthy`` text into a checked :class:`Theory` (raises UserError with FILE:LINE:COL)."""
    ctx = _Ctx(path)
    parser = _parser()
    ip = parser.parse_interactive(text)
    last: Token | None = None
    try:
        for tok in ip.iter_parse():
            last = tok
            if tok.type == "END":
                ip.feed_token(tok)  # everything after the theory's `end` is ignored, never lexed
                break
        tree = ip.feed_token(_eof_token(last))
    except lark.exceptions.LarkError as e:
        raise _syntax_error(ctx, e, ip) from None

    name_tok, *items, _end = tree.children
    chk = _Checker(ctx)
    build = _Build(ctx)
    # Signature first (Tamarin allows declarations anywhere before use; we allow them anywhere).
    for it in items:
        if it.data == "builtins":
            for tok in it.children:
                chk.builtin(tok)
        elif it.data == "functions":
            for fd in it.children:
                chk.fundecl(fd)
    for it in items:
        if it.data == "equations":
            chk.equations_item(build.transform(it))

    rules: list[Rule] = []
    restrictions: list[Restriction] = []
    lemmas: list[Lemma] = []
    heuristic: str | None = None
    names: dict[str, Pos] = {}

    def claim(kind: str, name: str, pos: Pos) -> None:
        key = f"{kind}:{name}"
        if key in names:
            first = names[key]
            raise ctx.error(pos, f"duplicate {kind} name {name} (first at {first.line}:{first.col})")
        names[key] = pos

    for it in items:
        if it.data in ("builtins", "functions", "equations"):
            continue
        if it.data == "heuristic":
            h, _oracle = it.children
            heuristic = str(h)
            continue
        t = build.transform(it)
        if it.data == "rule":
            r = chk.rule(t)
            claim("rule", r.name, r.pos)
            rules.append(r)
        elif it.data == "restriction":
            _kw, rname, raw = t.children
            pos = ctx.tpos(rname)
            claim("restriction", str(rname), pos)
            f = chk.formula(raw, {}, f"restriction {rname}")
            restrictions.append(Restriction(str(rname), f, pos))
        elif it.data == "lemma":
            lemmas.append(_lemma(ctx, chk, t, claim))
        else:  # pragma: no cover - grammar and this dispatch are kept in sync
            raise AssertionError(it.data)

    _warn_unused_actions(ctx, rules, restrictions, lemmas)
    sig = chk.signature()
    return Theory(str(name_tok), sig, tuple(rules), tuple(restrictions), tuple(lemmas), heuristic,
                  tuple(ctx.warnings), path)


def _lemma(ctx: _Ctx, chk: _Checker, t: Tree, claim) -> Lemma:
    name_tok, attrs, traceq, raw = t.children
    pos = ctx.tpos(name_tok)
    name = str(name_tok)
    claim("lemma", name, pos)
    flags = dict(sources=False, reuse=False, use_induction=False)
    hide: list[str] = []
    heuristic = None
    for a, val in chk.attrs(attrs):
        if a in ("sources", "typing"):
            flags["sources"] = True
        elif a in ("reuse", "use_induction"):
            flags[a] = True
        elif a == "hide_lemma":
            if val:
                hide.append(val)
        elif a == "heuristic":
            heuristic = val
        elif a in ("left", "right") or a.startswith("diff"):
            raise ctx.error(pos, f"unsupported lemma attribute [{a}] (observational equivalence)")
        elif a not in LEMMA_ATTRIBUTES:
            ctx.warn(pos, f"lemma {name}: ignoring unknown attribute [{a}]")
    tq = ALL_TRACES
    if traceq is not None:
        tq = EXISTS_TRACE if str(traceq.children[0]) == EXISTS_TRACE else ALL_TRACES
    f = chk.formula(raw, {}, f"lemma {name}")
    return Lemma(name, f, tq, flags["sources"], flags["reuse"], flags["use_induction"], tuple(hide),
                 heuristic, pos)


def _warn_unused_actions(ctx: _Ctx, rules, restrictions, lemmas) -> None:
    """Tamarin warns when a formula mentions an action no rule can produce (the formula is then vacuous)."""
    produced = {f.name for r in rules for f in r.actions} | {"K", "KU"}
    for where, f, pos in [(f"restriction {r.name}", r.formula, r.pos) for r in restrictions] + \
                         [(f"lemma {lem.name}", lem.formula, lem.pos) for lem in lemmas]:
        for fact in sorted({a.fact.name for a in _actions(f)} - produced):
            ctx.warn(pos, f"{where}: action {fact} occurs in no rule")


def _actions(f: Formula):
    if isinstance(f, Action):
        yield f
    elif isinstance(f, Not):
        yield from _actions(f.body)
    elif isinstance(f, Conn):
        yield from _actions(f.left)
        yield from _actions(f.right)
    elif isinstance(f, Quant):
        yield from _actions(f.body)


def parse_file(path: str | os.PathLike) -> Theory:
    """Read and parse a ``.spthy`` file; a missing or unreadable file is a UserError."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{p}: cannot read file ({e.__class__.__name__})") from None
    return parse_theory(text, str(p))
