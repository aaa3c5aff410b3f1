"""Frozen-dataclass configs: ``--set key=value`` overrides parsed by the field's annotation, JSON round trips.

A config class validates itself in ``__post_init__`` and raises :class:`ConfigError` naming the field;
this module only turns strings into typed values and names bad keys or values.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Iterable, Literal, TypeVar, Union

from quietrl.core.errors import ConfigError

C = TypeVar("C")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse(text: str, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if type(None) in args and text.strip().lower() in {"none", "null", ""}:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _parse(text, a, key)
            except ConfigError:
                pass
        raise ConfigError(f"--set {key}={text}: cannot be read as {_type_name(tp)}")
    if origin is Literal:
        for a in args:
            if str(a) == text:
                return a
        choices = ", ".join(str(a) for a in args)
        raise ConfigError(f"--set {key}={text}: must be one of {choices}")
    if origin in (tuple, list):
        inner = args[0] if args else str
        parts = [p.strip() for p in text.split(",") if p.strip()]
        vals = [_parse(p, inner, key) for p in parts]
        return tuple(vals) if origin is tuple else vals
    if tp is bool:
        low = text.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ConfigError(f"--set {key}={text}: must be true or false")
    if tp in (int, float):
        try:
            return tp(text) if tp is float else int(text)
        except ValueError:
            try:
                f = float(text)
            except ValueError:
                raise ConfigError(f"--set {key}={text}: must be {tp.__name__}") from None
            if tp is int and f.is_integer():
                return int(f)
            raise ConfigError(f"--set {key}={text}: must be {tp.__name__}") from None
    if tp is str or tp is Any:
        return text
    raise ConfigError(f"--set {key}: field of type {_type_name(tp)} cannot be set from the command line")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def field_types(cls: type) -> dict[str, Any]:
    """The resolved annotation of every dataclass field of ``cls``."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def apply_overrides(cfg: C, overrides: Iterable[str]) -> C:
    """Return ``cfg`` with each ``key=value`` applied; the value is parsed by the field's annotation.

    Raises :class:`ConfigError` for a malformed override, an unknown key (listing the valid ones) or a value
    the field's type or the config's own validation rejects.
    """
    types_ = field_types(type(cfg))
    changes: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value")
        key, _, value = item.partition("=")
        key = key.strip()
        if key not in types_:
            raise ConfigError(
                f"--set {key}: unknown key for {type(cfg).__name__}; valid keys: {', '.join(types_)}"
            )
        changes[key] = _parse(value.strip(), types_[key], key)
    if not changes:
        return cfg
    try:
        return dataclasses.replace(cfg, **changes)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"--set: {e}") from None


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict of a (possibly nested) config dataclass."""
    return dataclasses.asdict(cfg)


def from_dict(cls: type[C], d: dict[str, Any]) -> C:
    """Build ``cls`` from a dict written by :func:`to_dict`; unknown keys are an error."""
    types_ = field_types(cls)
    unknown = set(d) - set(types_)
    if unknown:
        raise ConfigError(f"unknown keys for {cls.__name__}: {', '.join(sorted(unknown))}")
    kw = {}
    for k, v in d.items():
        tp = types_[k]
        if dataclasses.is_dataclass(tp) and isinstance(v, dict):
            v = from_dict(tp, v)
        elif typing.get_origin(tp) is tuple and isinstance(v, list):
            v = tuple(v)
        kw[k] = v
    return cls(**kw)


def require(cond: bool, field: str, message: str) -> None:
    """Validation helper for ``__post_init__``: raise ConfigError('<field>: <message>') unless ``cond``."""
    if not cond:
        raise ConfigError(f"{field}: {message}")


def set_option(func):
    """click decorator adding a repeatable ``--set key=value`` option (collected as a tuple ``overrides``)."""
    import click

    return click.option(
        "--set",
        "overrides",
        multiple=True,
        metavar="KEY=VALUE",
        help="Override one config field (repeatable), e.g. --set lr=1e-3.",
    )(func)
