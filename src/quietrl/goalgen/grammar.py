"""The pipeline grammar: parsing pipeline strings into `Pipeline` values, with errors naming a column.

    pipeline := stage ("_then_" stage)*
    stage    := goal ("_or_" goal)* ("_with_" object "_distractor")* ("@" fraction)?
    goal     := object
    object   := colour "_" shape            (shapes may contain hyphens: hollow-diamond)
    fraction := a decimal in (0, 1)

Example: ``red_cross_or_blue_plus_with_green_ring_distractor@0.25_then_black_diamond``.
"""

from __future__ import annotations

import re

from quietrl.core.errors import UserError

from .types import COLOURS, SHAPES, GameObject, Pipeline, Stage

# Most objects one stage may hold: the environment has this many object slots.
MAX_OBJECTS_PER_STAGE = 4

_WORD = re.compile(r"[a-z][a-z0-9-]*")
_NUMBER = re.compile(r"[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?")


class _Cursor:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    def error(self, what: str, pos: int | None = None) -> UserError:
        p = self.pos if pos is None else pos
        return UserError(f"pipeline {self.text!r}: {what} at column {p + 1}")

    def startswith(self, token: str) -> bool:
        return self.text.startswith(token, self.pos)

    def expect(self, token: str) -> None:
        if not self.startswith(token):
            found = self.text[self.pos:self.pos + len(token)] or "end of string"
            raise self.error(f"expected {token!r}, found {found!r}")
        self.pos += len(token)

    def word(self, kind: str) -> tuple[str, int]:
        m = _WORD.match(self.text, self.pos)
        if not m:
            found = self.text[self.pos:self.pos + 1] or "end of string"
            raise self.error(f"expected a {kind}, found {found!r}")
        self.pos = m.end()
        return m.group(), m.start()


def _parse_object(cur: _Cursor) -> GameObject:
    colour, at = cur.word("colour")
    if colour not in COLOURS:
        raise cur.error(f"unknown colour {colour!r} (valid: {', '.join(COLOURS)})", at)
    cur.expect("_")
    shape, at = cur.word("shape")
    if shape not in SHAPES:
        raise cur.error(f"unknown shape {shape!r} (valid: {', '.join(SHAPES)})", at)
    return GameObject(colour, shape)


def _parse_stage(cur: _Cursor) -> Stage:
    start = cur.pos
    goals = [_parse_object(cur)]
    while cur.startswith("_or_"):
        cur.pos += len("_or_")
        goals.append(_parse_object(cur))
    distractors = []
    while cur.startswith("_with_"):
        cur.pos += len("_with_")
        distractors.append(_parse_object(cur))
        cur.expect("_distractor")
    fraction = None
    if cur.startswith("@"):
        cur.pos += 1
        m = _NUMBER.match(cur.text, cur.pos)
        if not m:
            raise cur.error("expected a fraction after '@'")
        fraction = float(m.group())
        if not 0.0 < fraction < 1.0:
            raise cur.error(f"stage fraction {m.group()} must lie strictly between 0 and 1")
        cur.pos = m.end()
    objects = goals + distractors
    if len(set(objects)) != len(objects):
        raise cur.error("an object appears twice in one stage", start)
    if len(objects) > MAX_OBJECTS_PER_STAGE:
        raise cur.error(f"a stage holds at most {MAX_OBJECTS_PER_STAGE} objects, found {len(objects)}",
                        start)
    return Stage(tuple(goals), tuple(distractors), fraction)


def parse_pipeline(text: str, family: str = "") -> Pipeline:
    """Parse a pipeline string. Raises `UserError` naming the column of the first problem."""
    if not isinstance(text, str) or not text.strip():
        raise UserError("pipeline string is empty")
    cur = _Cursor(text.strip())
    stages = [_parse_stage(cur)]
    while cur.startswith("_then_"):
        cur.pos += len("_then_")
        stages.append(_parse_stage(cur))
    if cur.pos != len(cur.text):
        raise cur.error(f"unexpected text {cur.text[cur.pos:cur.pos + 12]!r} (expected '_or_', "
                        "'_with_', '@', '_then_' or the end)")
    total = sum(s.fraction for s in stages if s.fraction is not None)
    n_free = sum(s.fraction is None for s in stages)
    if total > 1.0 + 1e-9 or (n_free == 0 and abs(total - 1.0) > 1e-6 and len(stages) > 1):
        raise UserError(f"pipeline {text!r}: stage fractions sum to {total:g}; they must sum to 1 "
                        "when every stage has one, and to at most 1 otherwise")
    return Pipeline(tuple(stages), family)


def parse_object(text: str) -> GameObject:
    """Parse ``colour_shape``; `UserError` naming the column on failure."""
    cur = _Cursor(text.strip())
    obj = _parse_object(cur)
    if cur.pos != len(cur.text):
        raise cur.error(f"unexpected text {cur.text[cur.pos:]!r} after the object")
    return obj
