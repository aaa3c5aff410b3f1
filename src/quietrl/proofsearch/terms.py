"""Terms modulo a subterm-convergent rewrite system: normal forms, matching, unification, variants.

Tamarin's message theory without Diffie-Hellman is a subterm-convergent rewrite system R (every right-hand
side is a subterm of its left-hand side or a ground normal form). That gives unique normal forms and the
finite variant property: every term has finitely many most general variants (sigma, (t sigma)!), computed
here by folding variant narrowing. Unification modulo E then reduces to syntactic unification over the
variants of ``s =? t`` (keeping normal substitutions), which is finite and complete.

Unification is sort-aware: a fresh variable binds only fresh variables and fresh names, a public variable
only public variables and public names, a message variable anything but temporal variables, and temporal
variables only each other.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

from quietrl.proofsearch.types import App, Equation, Name, Sort, Term, Var

Subst = dict[Var, Term]

# Pseudo function symbol used to bundle several terms into one (never a user symbol: not an identifier).
BUNDLE = "<bundle>"
PAIR_FUN = "pair"


class NarrowingLimit(RuntimeError):
    """Variant narrowing produced more variants than the safety limit (a non-convergent system slipped in)."""


# ---------------------------------------------------------------- basic term operations


def vars_of(t: Term, acc: dict[Var, None] | None = None) -> dict[Var, None]:
    """Variables of ``t`` in order of first occurrence (a dict used as an ordered set)."""
    if acc is None:
        acc = {}
    if isinstance(t, Var):
        acc.setdefault(t, None)
    elif isinstance(t, App):
        for a in t.args:
            vars_of(a, acc)
    return acc


def atoms_of(t: Term):
    """Variables and names occurring in ``t``, in order, with repeats."""
    if isinstance(t, App):
        for a in t.args:
            yield from atoms_of(a)
    else:
        yield t


def vars_of_all(ts: Iterable[Term]) -> dict[Var, None]:
    acc: dict[Var, None] = {}
    for t in ts:
        vars_of(t, acc)
    return acc


def occurs(v: Var, t: Term) -> bool:
    if t == v:
        return True
    if isinstance(t, App):
        return any(occurs(v, a) for a in t.args)
    return False


def apply(t: Term, s: Mapping[Var, Term]) -> Term:
    """Apply an idempotent substitution."""
    if not s:
        return t
    if isinstance(t, Var):
        return s.get(t, t)
    if isinstance(t, App):
        if not t.args:
            return t
        new = tuple(apply(a, s) for a in t.args)
        return t if all(x is y for x, y in zip(new, t.args)) else App(t.fun, new)
    return t


def compose(first: Mapping[Var, Term], second: Mapping[Var, Term]) -> Subst:
    """The substitution 'first, then second' (x -> second(first(x)))."""
    out: Subst = {x: apply(t, second) for x, t in first.items()}
    for y, t in second.items():
        if y not in out:
            out[y] = t
    return {x: t for x, t in out.items() if t != x}


def restrict(s: Mapping[Var, Term], keep: Iterable[Var]) -> Subst:
    keep = set(keep)
    return {x: t for x, t in s.items() if x in keep}


def subterms(t: Term) -> Iterator[Term]:
    """All subterms, ``t`` first (pre-order)."""
    yield t
    if isinstance(t, App):
        for a in t.args:
            yield from subterms(a)


def is_proper_subterm(small: Term, big: Term) -> bool:
    return isinstance(big, App) and any(small == s for a in big.args for s in subterms(a))


def positions(t: Term, prefix: tuple[int, ...] = ()) -> Iterator[tuple[tuple[int, ...], Term]]:
    """(position, subterm) pairs in pre-order; a position is the tuple of argument indices."""
    yield prefix, t
    if isinstance(t, App):
        for i, a in enumerate(t.args):
            yield from positions(a, prefix + (i,))


def replace_at(t: Term, pos: tuple[int, ...], new: Term) -> Term:
    if not pos:
        return new
    assert isinstance(t, App)
    i = pos[0]
    args = list(t.args)
    args[i] = replace_at(args[i], pos[1:], new)
    return App(t.fun, tuple(args))


def max_idx(ts: Iterable[Term]) -> int:
    m = 0
    for t in ts:
        for v in vars_of(t):
            m = max(m, v.idx)
    return m


def shift_vars(t: Term, offset: int) -> Term:
    """Rename every variable ``x.i`` to ``x.(i+offset)`` (renaming apart from terms with indices < offset)."""
    if isinstance(t, Var):
        return Var(t.name, t.idx + offset, t.sort)
    if isinstance(t, App):
        return App(t.fun, tuple(shift_vars(a, offset) for a in t.args))
    return t


def canonical(t: Term) -> Term:
    """Rename variables by first occurrence to ``v0, v1, ...`` (sorts kept): equal iff equal up to renaming."""
    ren: Subst = {}
    for v in vars_of(t):
        ren[v] = Var(f"v{len(ren)}", 0, v.sort)
    return apply(t, ren)


def bundle(ts: Sequence[Term]) -> Term:
    return App(BUNDLE, tuple(ts))


# ---------------------------------------------------------------- sorts, syntactic unification, matching


def _can_bind(v: Var, t: Term) -> bool:
    """Whether variable ``v`` may be instantiated with ``t`` (sort discipline)."""
    if v.sort is Sort.MSG:
        return not (isinstance(t, Var) and t.sort is Sort.NODE)
    if v.sort is Sort.NODE:
        return isinstance(t, Var) and t.sort is Sort.NODE
    # fresh / public: only variables or names of the same sort
    return isinstance(t, (Var, Name)) and t.sort is v.sort


def unify(pairs: Iterable[tuple[Term, Term]], subst: Mapping[Var, Term] | None = None) -> Subst | None:
    """Most general syntactic unifier (sort-aware, idempotent) of all pairs, extending ``subst``; None if none."""
    s: Subst = dict(subst) if subst else {}
    work = [(apply(a, s), apply(b, s)) for a, b in pairs]
    while work:
        a, b = work.pop()
        if a == b:
            continue
        if isinstance(a, Var) or isinstance(b, Var):
            if isinstance(a, Var) and isinstance(b, Var):
                # Bind the variable of the more general sort, so that sorts only ever get refined.
                if _can_bind(a, b):
                    v, t = a, b
                elif _can_bind(b, a):
                    v, t = b, a
                else:
                    return None
            elif isinstance(a, Var):
                v, t = a, b
            else:
                v, t = b, a
            if not _can_bind(v, t) or occurs(v, t):
                return None
            one = {v: t}
            s = {x: apply(u, one) for x, u in s.items()}
            s[v] = t
            work = [(apply(x, one), apply(y, one)) for x, y in work]
            continue
        if isinstance(a, App) and isinstance(b, App):
            if a.fun != b.fun or len(a.args) != len(b.args):
                return None
            work.extend(zip(a.args, b.args))
            continue
        return None  # distinct names, or a name against an application
    return s


def unify1(a: Term, b: Term) -> Subst | None:
    return unify([(a, b)])


def match(pattern: Term, term: Term, subst: Mapping[Var, Term] | None = None) -> Subst | None:
    """A substitution s with ``pattern s == term`` (variables of ``term`` are constants), or None."""
    s: Subst = dict(subst) if subst else {}
    work = [(pattern, term)]
    while work:
        p, t = work.pop()
        if isinstance(p, Var):
            bound = s.get(p)
            if bound is None:
                if not _can_bind(p, t):
                    return None
                s[p] = t
            elif bound != t:
                return None
        elif isinstance(p, App):
            if not isinstance(t, App) or t.fun != p.fun or len(t.args) != len(p.args):
                return None
            work.extend(zip(p.args, t.args))
        elif p != t:
            return None
    return s


def is_instance(general: Sequence[Term], specific: Sequence[Term]) -> bool:
    """Whether ``specific`` is an instance of ``general`` under one substitution (variables renamed apart)."""
    off = max_idx(specific) + 1
    g = [shift_vars(t, off) for t in general]
    return match(bundle(g), bundle(list(specific))) is not None


# ---------------------------------------------------------------- rewriting, variants, unification modulo E


class RewriteSystem:
    """The oriented equations of a signature: normal forms, variants and unification modulo E.

    ``equations`` must be subterm-convergent (the parser checks this). Results are cached per term.
    """

    def __init__(self, equations: Sequence[Equation], max_variants: int = 20000):
        self.equations = tuple(equations)
        self.max_variants = max_variants
        self._by_root: dict[str, list[Equation]] = {}
        for e in self.equations:
            if not isinstance(e.lhs, App):
                raise ValueError(f"equation {e}: left-hand side must be an application")
            self._by_root.setdefault(e.lhs.fun, []).append(e)
        self._nf_cache: dict[Term, Term] = {}

    @property
    def destructors(self) -> frozenset[str]:
        return frozenset(self._by_root)

    # -- normal forms
    def normalize(self, t: Term) -> Term:
        """The unique R-normal form of ``t`` (innermost rewriting)."""
        if not isinstance(t, App):
            return t
        hit = self._nf_cache.get(t)
        if hit is not None:
            return hit
        args = tuple(self.normalize(a) for a in t.args)
        u = App(t.fun, args) if args != t.args else t
        for e in self._by_root.get(u.fun, ()):
            s = match(e.lhs, u)
            if s is not None:
                u = self.normalize(apply(e.rhs, s))
                break
        if len(self._nf_cache) > 200_000:
            self._nf_cache.clear()
        self._nf_cache[t] = u
        return u

    def is_normal(self, t: Term) -> bool:
        return self.normalize(t) == t

    def redexes(self, t: Term) -> Iterator[tuple[int, ...]]:
        """Positions of non-variable subterms whose root is an equation's root symbol (narrowing sites)."""
        for pos, sub in positions(t):
            if isinstance(sub, App) and sub.fun in self._by_root:
                yield pos

    # -- variants
    def variants(self, t: Term) -> list[tuple[Subst, Term]]:
        """Most general R-variants (sigma, (t sigma)!) of ``t``, sigma restricted to vars(t); identity first.

        Folding variant narrowing: from each variant, narrow one destructor position with a renamed-apart
        equation, normalise, and keep the result unless it is an instance of a variant already found.
        Terminates because each step consumes a destructor occurrence (subterm convergence).
        """
        tvars = list(vars_of(t))
        start: tuple[Subst, Term] = ({}, self.normalize(t))
        found: list[tuple[Subst, Term]] = [start]
        seen = {self._variant_key(tvars, start)}
        queue = [start]
        while queue:
            sigma, u = queue.pop(0)
            for pos in self.redexes(u):
                sub = _subterm_at(u, pos)
                for e in self._by_root[sub.fun]:
                    off = max_idx([u, *sigma.values(), *tvars]) + 1
                    lhs = shift_vars(e.lhs, off)
                    theta = unify1(sub, lhs)
                    if theta is None:
                        continue
                    new_sigma = restrict(compose(sigma, theta), tvars)
                    new_u = self.normalize(apply(u, theta))
                    cand = (new_sigma, new_u)
                    key = self._variant_key(tvars, cand)
                    if key in seen:
                        continue
                    seen.add(key)
                    found.append(cand)
                    queue.append(cand)
                    if len(found) > self.max_variants:
                        raise NarrowingLimit(f"more than {self.max_variants} variants of {t}")
        return _most_general(tvars, found)

    @staticmethod
    def _variant_key(tvars: list[Var], v: tuple[Subst, Term]) -> Term:
        sigma, u = v
        return canonical(bundle([apply(x, sigma) for x in tvars] + [u]))

    # -- unification modulo E
    def unify(self, s: Term, t: Term) -> list[Subst]:
        """A complete, finite set of normal E-unifiers of ``s =?E t`` (restricted to their variables)."""
        return self.unify_all([(s, t)])

    def unify_all(self, pairs: Sequence[tuple[Term, Term]]) -> list[Subst]:
        """Complete set of normal E-unifiers of a conjunction of equations."""
        if not pairs:
            return [{}]
        lhs = bundle([a for a, _ in pairs])
        rhs = bundle([b for _, b in pairs])
        both = bundle([lhs, rhs])
        tvars = list(vars_of(both))
        out: list[tuple[Subst, Term]] = []
        keys = set()
        for sigma, u in self.variants(both):
            assert isinstance(u, App) and u.fun == BUNDLE
            theta = unify1(u.args[0], u.args[1])
            if theta is None:
                continue
            rho = restrict(compose(sigma, theta), tvars)
            if not all(self.is_normal(v) for v in rho.values()):
                continue  # a normal instance of this unifier comes from another variant
            key = self._variant_key(tvars, (rho, both))
            if key in keys:
                continue
            keys.add(key)
            out.append((rho, apply(both, rho)))
        return [rho for rho, _ in _most_general(tvars, out)]

    def equal(self, s: Term, t: Term) -> bool:
        """Whether ``s =E t``."""
        return self.normalize(s) == self.normalize(t)


def _subterm_at(t: Term, pos: tuple[int, ...]) -> App:
    for i in pos:
        assert isinstance(t, App)
        t = t.args[i]
    assert isinstance(t, App)
    return t


def _most_general(tvars: list[Var], items: list[tuple[Subst, Term]]) -> list[tuple[Subst, Term]]:
    """Drop every (sigma, u) that is a strict instance of another; keep first of equivalent ones (stable)."""
    shapes = [[apply(x, s) for x in tvars] + [u] for s, u in items]
    keep: list[int] = []
    for i, si in enumerate(shapes):
        dominated = False
        for j, sj in enumerate(shapes):
            if i == j:
                continue
            if is_instance(sj, si):
                # j is at least as general as i; i goes unless they are renamings and i comes first.
                if is_instance(si, sj) and i < j:
                    continue
                dominated = True
                break
        if not dominated:
            keep.append(i)
    return [items[i] for i in keep]
