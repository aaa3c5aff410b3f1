"""Our own tokenizer over Tamarin notation (no downloaded vocabulary), for the learned ranker.

A method's text (``simplify``, ``induction``, ``solve( <goal> )``, the goal printed as Tamarin prints it)
becomes ``<kind> [SEP] tokens [EOS]``:

- symbols and punctuation are tokens of their own (``(``, ``)``, ``<``, ``>``, ``,``, ``@``, ``▶₀``, ``∥``,
  ``~~>``, ``=``, ...); sort prefixes ``~ $ #`` are separate tokens;
- function and fact names (an identifier before ``(``) and quoted constants keep their spelling;
- variables are renamed by first occurrence within the method (``V0``, ``V1``, ...; capped), and index
  suffixes ``.n`` are dropped, so goals that differ only in variable names read the same;
- every spelling maps to an id by a stable hash into ``vocab_size`` buckets, so unknown tokens (a new
  protocol's names) never fail: they share a bucket with something else.

An exported oracle uses only this text and order, all that Tamarin gives an oracle.
"""

from __future__ import annotations

import re
import zlib

import numpy as np

PAD, SEP, EOS, UNK = 0, 1, 2, 3
KIND_IDS = {"simplify": 4, "induction": 5, "premise": 6, "action": 7, "ku": 8, "chain": 9, "disjunction": 10,
            "split": 11, "other": 12}
VAR_BASE = 16      # ids 16..16+MAX_VARS-1: first-occurrence variables
MAX_VARS = 48
HASH_BASE = VAR_BASE + MAX_VARS
GOALLESS = frozenset({"simplify", "induction"})   # method texts without a goal

_TOKEN_RE = re.compile(r"""
    (?P<quoted>'[^']*')
  | (?P<chain>~~>)
  | (?P<arrow>▶[₀-₉]+)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[0-9]+)?)
  | (?P<num>[0-9]+)
  | (?P<sym>\S)
""", re.VERBOSE)


def goal_kind(text: str) -> str:
    """Coarse kind of a method text (``solve( ... )`` goals by their shape)."""
    if text in GOALLESS:
        return text
    body = text[len("solve( "):-2] if text.startswith("solve( ") else text
    if body.startswith("!KU("):
        return "ku"
    if "~~>" in body:
        return "chain"
    if "∥" in body:
        return "disjunction"
    if body.startswith("splitEqs"):
        return "split"
    if "▶" in body:
        return "premise"
    if " @ " in body:
        return "action"
    return "other"


def _bucket(s: str, vocab_size: int) -> int:
    return HASH_BASE + zlib.crc32(s.encode("utf-8")) % (vocab_size - HASH_BASE)


def tokenize(text: str, vocab_size: int = 2048, max_len: int = 128) -> list[int]:
    """Token ids of one method text, ``[kind, SEP, ..., EOS]``, truncated to ``max_len`` (EOS kept)."""
    if vocab_size <= HASH_BASE + 16:
        raise ValueError(f"vocab_size must exceed {HASH_BASE + 16}")
    kind = goal_kind(text)
    body = text[len("solve( "):-2] if text.startswith("solve( ") else ""
    ids = [KIND_IDS[kind], SEP]
    names: dict[str, int] = {}
    matches = list(_TOKEN_RE.finditer(body))
    for k, m in enumerate(matches):
        group, tok = m.lastgroup, m.group()
        if group == "ident":
            base = tok.split(".")[0]
            nxt = matches[k + 1].group() if k + 1 < len(matches) else ""
            if nxt == "(" or base in ("last",):
                ids.append(_bucket(base, vocab_size))  # a function or fact symbol keeps its spelling
            else:
                v = names.setdefault(base, len(names))
                ids.append(VAR_BASE + min(v, MAX_VARS - 1))
        elif group == "sym" and tok in "~$#":
            ids.append(_bucket("sort" + tok, vocab_size))
        else:
            ids.append(_bucket(tok, vocab_size))
    ids = ids[: max_len - 1] + [EOS]
    return ids


def _bucket_size(n: int, sizes: tuple[int, ...]) -> int:
    for s in sizes:
        if n <= s:
            return s
    return sizes[-1]


# few buckets: every (M, L) pair is one XLA compilation of the ranker
METHOD_BUCKETS = (8, 32, 64)
TOKEN_BUCKETS = (48, 128)


def encode_methods(texts: list[str], vocab_size: int = 2048, max_len: int = 128,
                   max_methods: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Padded token ids ``[M, L]`` (int32) and a method mask ``[M]`` (bool) for one state's methods.

    M and L are rounded up to a few bucket sizes so that ``jit`` compiles only a handful of shapes; methods
    beyond ``max_methods`` are dropped (the engine's ranking puts the likely ones first).
    """
    rows = [tokenize(t, vocab_size, max_len) for t in texts[:max_methods]]
    m = _bucket_size(max(len(rows), 1), tuple(b for b in METHOD_BUCKETS if b <= max_methods) or (max_methods,))
    n = _bucket_size(max((len(r) for r in rows), default=1), tuple(b for b in TOKEN_BUCKETS if b <= max_len) or (max_len,))
    ids = np.zeros((m, n), np.int32)
    mask = np.zeros(m, bool)
    for i, r in enumerate(rows):
        r = r[:n]
        ids[i, : len(r)] = r
        mask[i] = True
    return ids, mask
