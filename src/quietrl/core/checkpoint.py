"""Checkpoints: ``meta.json`` (kind, config, shapes, versions, step) plus flax msgpack for the state.

The state file is written first under a step-specific name, then ``meta.json`` is replaced atomically to
point at it: meta.json is the commit point, so an interrupted save leaves the previous checkpoint intact.
A checkpoint of another model kind, config or parameter shapes is rejected from ``meta.json`` alone.
PRNG keys in the state must be raw ``uint32`` keys (``jax.random.PRNGKey``), which msgpack can hold.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from quietrl.core.errors import CheckpointMismatch
from quietrl.core.io import atomic_write_bytes, atomic_write_json, read_json, to_json

META = "meta.json"
FORMAT = 1


def _shapes(tree: Any) -> Any:
    import jax
    import numpy as np

    def leaf(x):
        a = np.asarray(x)
        return [list(a.shape), str(a.dtype)]

    return jax.tree_util.tree_map(leaf, tree)


def _shape_signature(tree: Any) -> list:
    import jax

    flat, _ = jax.tree_util.tree_flatten_with_path(_shapes(tree), is_leaf=lambda x: isinstance(x, list)
                                                   and len(x) == 2 and isinstance(x[1], str))
    return [[jax.tree_util.keystr(path), v] for path, v in flat]


def _normalise(config: Any) -> Any:
    return json.loads(to_json(config, indent=None))


def has_checkpoint(directory: str | os.PathLike) -> bool:
    """True if ``directory`` holds a committed checkpoint."""
    return (Path(directory) / META).exists()


def read_meta(directory: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint's meta.json."""
    try:
        return read_json(Path(directory) / META)
    except FileNotFoundError:
        raise CheckpointMismatch(f"{directory}: no checkpoint (meta.json missing)") from None
    except json.JSONDecodeError as e:
        raise CheckpointMismatch(f"{directory}/meta.json: unreadable ({e})") from None


def save_checkpoint(directory: str | os.PathLike, kind: str, config: Any, state: Any, step: int,
                    extra: dict[str, Any] | None = None) -> Path:
    """Save ``state`` (a pytree of arrays) as the checkpoint at ``step`` in ``directory``.

    ``kind`` names the model/trainer ("leo.pqn", "precise.flow"), ``config`` is a JSON-able dict (or
    dataclass) that must match on load, ``extra`` is stored verbatim in meta.json.
    """
    import dataclasses

    from flax import serialization

    from quietrl.core.runs import package_versions

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if dataclasses.is_dataclass(config):
        config = dataclasses.asdict(config)
    data = serialization.to_bytes(state)
    fname = f"state-{int(step):09d}.msgpack"
    atomic_write_bytes(directory / fname, data)
    meta = {
        "format": FORMAT,
        "kind": kind,
        "config": _normalise(config),
        "shapes": _shape_signature(state),
        "step": int(step),
        "state_file": fname,
        "sha256": hashlib.sha256(data).hexdigest(),
        "versions": package_versions(),
        "extra": extra or {},
    }
    atomic_write_json(directory / META, meta)
    for old in directory.glob("state-*.msgpack"):
        if old.name != fname:
            old.unlink(missing_ok=True)
    return directory


def check_compatible(directory: str | os.PathLike, kind: str, config: Any, target: Any | None = None
                     ) -> dict[str, Any]:
    """Raise CheckpointMismatch unless the checkpoint in ``directory`` is of ``kind`` with ``config``
    (and ``target``'s shapes, when given); return its meta. Reads only meta.json."""
    import dataclasses

    meta = read_meta(directory)
    if meta.get("kind") != kind:
        raise CheckpointMismatch(
            f"{directory}: checkpoint is of model kind {meta.get('kind')!r}, expected {kind!r}")
    if dataclasses.is_dataclass(config):
        config = dataclasses.asdict(config)
    want = _normalise(config)
    have = meta.get("config")
    if have != want:
        diff = sorted(k for k in set(want) | set(have or {}) if (have or {}).get(k) != want.get(k)) \
            if isinstance(want, dict) and isinstance(have, dict) else ["<config>"]
        shown = ", ".join(f"{k}={(have or {}).get(k)!r} (expected {want.get(k)!r})" for k in diff[:3])
        raise CheckpointMismatch(f"{directory}: checkpoint was written with another config: {shown}")
    if target is not None:
        sig = _shape_signature(target)
        if sig != meta.get("shapes"):
            have_sig = {k: v for k, v in meta.get("shapes", [])}
            bad = next((k for k, v in sig if have_sig.get(k) != v), "<structure>")
            raise CheckpointMismatch(
                f"{directory}: checkpoint shapes differ at {bad}: {have_sig.get(bad)} vs {dict(sig).get(bad)}")
    return meta


def load_checkpoint(directory: str | os.PathLike, kind: str, config: Any, target: Any) -> tuple[Any, int]:
    """Restore the state saved in ``directory`` into the structure of ``target``; return (state, step)."""
    from flax import serialization

    meta = check_compatible(directory, kind, config, target)
    data = (Path(directory) / meta["state_file"]).read_bytes()
    if hashlib.sha256(data).hexdigest() != meta["sha256"]:
        raise CheckpointMismatch(f"{directory}: state file does not match meta.json (corrupt checkpoint)")
    state = serialization.from_bytes(target, data)
    return state, int(meta["step"])
