"""Canonical JSON of constraint systems: identical text for alpha-equivalent states, and a way back.

``state_to_json(state)`` renames every variable by its first occurrence in a fixed traversal (the lemma's
formulas, then goals in age order, then the rest of the system, with nodes visited by the numbers their
variables already got, not by their old names), and serialises the renamed system structurally with sorted
keys. Two states that differ only in variable names (``#vk.3`` versus ``#vk.7``, ``x`` versus ``y``) give the
same text, so ``state_key`` (a short SHA-256 of it) serves as a transposition-table key.

``state_from_json(theory, text)`` rebuilds the ``System``: the canonical representative, on which
``methods``/``apply`` behave as on the original up to the renaming (the same methods and case names, goal
texts with the canonical variable names). ``state_to_json(state, canonical=False)`` keeps the variable names
for an exact round trip. The text carries the theory's fingerprint; decoding against another theory is a
``UserError``.

Canonical variable names are ``v0, v1, ...`` (with the variable's sort prefix: ``~v3``, ``$v1``, ``#v0``) and
index 0; each has its own base name, so the solver's fresh-name counter (per base name) never collides with
another variable after a round trip.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import importlib
import json
from typing import Any, Callable

from quietrl.core.errors import UserError
from quietrl.proofsearch.types import App, Name, Sort, Theory, Var

FORMAT = "quietrl.proofsearch.state/1"
_PKG = "quietrl.proofsearch."
_ATOMS = (str, int, float, bool, type(None))
_ATOM_TYPES = frozenset(_ATOMS)
_FIELDS: dict[type, tuple[tuple[str, bool, bool], ...]] = {}


def _fields(cls: type) -> tuple[tuple[str, bool, bool], ...]:
    """(name, compare, init) of a dataclass's fields, computed once per class."""
    hit = _FIELDS.get(cls)
    if hit is None:
        hit = _FIELDS[cls] = tuple((f.name, f.compare, f.init) for f in dataclasses.fields(cls))
    return hit


# ---------------------------------------------------------------- renaming


def _shape(x: Any) -> str:
    """A name-independent sort key (variables blanked to their sort), for unordered collections."""
    if isinstance(x, Var):
        return "?" + x.sort.value
    if isinstance(x, enum.Enum):
        return str(x.value)
    if isinstance(x, _ATOMS):
        return repr(x)
    if isinstance(x, (tuple, list)):
        return "(" + ",".join(_shape(y) for y in x) + ")"
    if isinstance(x, (set, frozenset)):
        return "{" + ",".join(sorted(_shape(y) for y in x)) + "}"
    if isinstance(x, dict):
        return "{" + ",".join(f"{_shape(k)}:{_shape(v)}" for k, v in x.items()) + "}"
    if dataclasses.is_dataclass(x):
        return type(x).__name__ + "(" + ",".join(
            _shape(getattr(x, f.name)) for f in dataclasses.fields(x) if f.compare) + ")"
    return repr(x)


def _first_occurrences(state) -> dict[Var, Var]:
    """Variables of ``state`` in canonical first-occurrence order, mapped to their canonical names."""
    order: dict[Var, None] = {}

    def visit(x: Any) -> None:
        t = type(x)
        if t is Var:
            order.setdefault(x, None)
        elif t is App:
            for y in x.args:
                visit(y)
        elif t is tuple or t is list:
            for y in x:
                visit(y)
        elif t in _ATOM_TYPES or t is Name or isinstance(x, enum.Enum):
            return
        elif t is frozenset or t is set:
            for y in sorted(x, key=_shape):
                visit(y)
        elif t is dict:
            for k, v in x.items():
                visit(k)
                visit(v)
        elif dataclasses.is_dataclass(x):
            if t.__name__ == "Constraints":
                visit_constraints(x)
                return
            for name, compare, _ in _fields(t):
                if compare:
                    visit(getattr(x, name))

    def visit_constraints(cs) -> None:
        # Goals first (their age order is canonical), then nodes ranked by the numbers their node variables
        # already have (the solver stores nodes sorted by name, which a renaming would change), then the rest.
        names = [f.name for f in dataclasses.fields(cs) if f.compare]
        if "goals" in names:
            visit(cs.goals)
        if "nodes" in names:
            rank = {v: i for i, v in enumerate(order)}
            unranked = len(rank)
            for n, inst in sorted(cs.nodes, key=lambda kv: (rank.get(kv[0], unranked),
                                                            "" if kv[0] in rank else _shape(kv[1]))):
                visit(n)
                visit(inst)
        for name in names:
            if name not in ("goals", "nodes"):
                visit(getattr(cs, name))

    for f in dataclasses.fields(state):
        if f.compare and f.name != "constraints":
            visit(getattr(state, f.name))
    if hasattr(state, "constraints"):
        visit(state.constraints)
    return {v: Var(f"v{i}", 0, v.sort) for i, v in enumerate(order)}


def _rebuild(x: Any, fn: Callable[[Var], Var]) -> Any:
    """``x`` with every variable replaced by ``fn(var)``. Fields that take no part in equality are kept (source
    positions), except memos (names starting with ``_``: ``App._hash``, ``Constraints._used``), which describe
    the old variables and start afresh."""
    if isinstance(x, Var):
        return fn(x)
    if isinstance(x, (enum.Enum,) + _ATOMS):
        return x
    if isinstance(x, tuple):
        return tuple(_rebuild(y, fn) for y in x)
    if isinstance(x, list):
        return [_rebuild(y, fn) for y in x]
    if isinstance(x, frozenset):
        return frozenset(_rebuild(y, fn) for y in x)
    if isinstance(x, dict):
        return {_rebuild(k, fn): _rebuild(v, fn) for k, v in x.items()}
    if dataclasses.is_dataclass(x):
        kw = {f.name: (_rebuild(getattr(x, f.name), fn) if f.compare else getattr(x, f.name))
              for f in dataclasses.fields(x) if f.init and (f.compare or not f.name.startswith("_"))}
        out = type(x)(**kw)
        if type(x).__name__ == "Constraints" and "nodes" in kw:
            # Keep the solver's invariant: nodes sorted by (name, index) of their variables.
            out = dataclasses.replace(out, nodes=tuple(sorted(out.nodes, key=lambda kv: (kv[0].name, kv[0].idx))))
        return out
    return x


def canonical_state(state):
    """The canonical representative of ``state``'s alpha-equivalence class (variables ``v0, v1, ...``)."""
    ren = _first_occurrences(state)
    return _rebuild(state, lambda v: ren.get(v, v))


# ---------------------------------------------------------------- structural JSON


def _class_id(cls: type) -> str:
    mod = cls.__module__
    if not mod.startswith(_PKG):
        raise TypeError(f"cannot serialise a {mod}.{cls.__qualname__} inside a constraint system")
    return mod[len(_PKG):] + ":" + cls.__qualname__


def _encode(x: Any, ren: dict | None = None) -> Any:
    """Structural JSON of ``x``; variables mapped through ``ren`` (nodes re-sorted by their new names)."""
    t = type(x)
    if t is Var:
        if ren is not None:
            x = ren.get(x, x)
        return {"@V": [x.name, x.idx, x.sort.value]}
    if t is App:
        return {"@A": [x.fun, [_encode(a, ren) for a in x.args]]}
    if t is tuple:
        return [_encode(y, ren) for y in x]
    if t in _ATOM_TYPES:
        return x
    if t is Name:
        return {"@N": [x.sort.value, x.value]}
    if isinstance(x, enum.Enum):
        return {"@E": [_class_id(t), x.value]}
    if t is list:
        return {"@L": [_encode(y, ren) for y in x]}
    if t is frozenset:
        items = [_encode(y, ren) for y in x]
        return {"@S": sorted(items, key=lambda e: json.dumps(e, sort_keys=True, ensure_ascii=False))}
    if t is dict:
        return {"@D": [[_encode(k, ren), _encode(v, ren)] for k, v in x.items()]}
    if dataclasses.is_dataclass(x):
        out = {"@": _class_id(t)}
        for name, compare, init in _fields(t):
            if compare and init:
                val = getattr(x, name)
                if name == "nodes" and ren is not None and t.__name__ == "Constraints":
                    # Keep the solver's invariant: nodes sorted by (name, index) of their (new) variables.
                    val = tuple(sorted(val, key=lambda kv: (ren.get(kv[0], kv[0]).name, ren.get(kv[0], kv[0]).idx)))
                out[name] = _encode(val, ren)
        return out
    raise TypeError(f"cannot serialise {t.__name__} inside a constraint system")


def _resolve(cid: str) -> type:
    mod, _, qual = cid.partition(":")
    obj: Any = importlib.import_module(_PKG + mod)
    for part in qual.split("."):
        obj = getattr(obj, part)
    return obj


def _decode(x: Any) -> Any:
    if isinstance(x, list):
        return tuple(_decode(y) for y in x)
    if not isinstance(x, dict):
        return x
    if "@V" in x:
        name, idx, sort = x["@V"]
        return Var(name, idx, Sort(sort))
    if "@N" in x:
        sort, value = x["@N"]
        return Name(Sort(sort), value)
    if "@A" in x:
        fun, args = x["@A"]
        return App(fun, tuple(_decode(a) for a in args))
    if "@E" in x:
        cid, value = x["@E"]
        return _resolve(cid)(value)
    if "@L" in x:
        return [_decode(y) for y in x["@L"]]
    if "@S" in x:
        return frozenset(_decode(y) for y in x["@S"])
    if "@D" in x:
        return {_decode(k): _decode(v) for k, v in x["@D"]}
    cls = _resolve(x["@"])
    return cls(**{k: _decode(v) for k, v in x.items() if k != "@"})


# ---------------------------------------------------------------- public API


def state_to_json(state, canonical: bool = True) -> str:
    """Canonical JSON text of a ``System`` (sorted keys, no whitespace), invariant under variable renaming.

    The text holds the format tag, the theory fingerprint, the lemma name and the whole system; with
    ``canonical=False`` the variables keep their names (an exact round trip, not renaming-invariant).
    """
    ren = _first_occurrences(state) if canonical else None
    doc = {"format": FORMAT, "theory": state.theory_fingerprint, "lemma": state.lemma,
           "canonical": canonical, "system": _encode(state, ren)}
    return json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


_KEYS: dict[int, tuple[Any, str]] = {}


def state_key(state) -> str:
    """A short hash (20 hex digits of SHA-256) of the canonical JSON: equal for alpha-equivalent states.

    Keys are remembered per state object (kept alive with its key, so an id is never reused while cached):
    search code asks for the same state's key many times."""
    hit = _KEYS.get(id(state))
    if hit is not None and hit[0] is state:
        return hit[1]
    key = hashlib.sha256(state_to_json(state).encode("utf-8")).hexdigest()[:20]
    if len(_KEYS) >= 4096:
        _KEYS.clear()
    _KEYS[id(state)] = (state, key)
    return key


def state_from_json(theory: Theory, text: str):
    """Rebuild a ``System`` from :func:`state_to_json` text, attached to ``theory``.

    Raises ``UserError`` if the text is not a serialised state, or was made from another theory (the
    fingerprints differ) or names a lemma that ``theory`` does not have.
    """
    from quietrl.proofsearch.system import System, theory_fingerprint

    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"state JSON: not JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise UserError(f"state JSON: not a serialised constraint system (expected format {FORMAT!r})")
    fp = theory_fingerprint(theory)
    if doc.get("theory") != fp:
        raise UserError(f"state JSON: made from another theory (fingerprint {doc.get('theory')}, "
                        f"theory {theory.name} has {fp})")
    if theory.lemma(doc.get("lemma", "")) is None:
        raise UserError(f"state JSON: theory {theory.name} has no lemma {doc.get('lemma')!r}")
    try:
        state = _decode(doc["system"])
    except (KeyError, TypeError, ValueError, AttributeError, ImportError) as e:
        raise UserError(f"state JSON: malformed system ({type(e).__name__}: {e})") from None
    if not isinstance(state, System):
        raise UserError("state JSON: the payload is not a constraint system")
    return dataclasses.replace(state, theory=theory)
