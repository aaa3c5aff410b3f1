"""Chunked training loops: a Python loop over jitted chunks of updates that reports, checkpoints and resumes.

The shape follows purejaxrl: ``chunk_fn(state) -> (state, metrics)`` is a jitted ``lax.scan`` over N updates;
this loop runs it ``num_chunks`` times, and after every chunk logs one metrics line, advances the progress
bar and saves the whole training state (parameters, optimiser, env state, key, running statistics). A stage
that restarts finds the checkpoint, continues from the chunk after it and ends with the same state, metrics
and files as an uninterrupted run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from quietrl.core.checkpoint import has_checkpoint, load_checkpoint, read_meta, save_checkpoint


def mean_metrics(chunk: int, state: Any, metrics: Any) -> dict[str, float]:
    """Default reporter: the mean of every leaf of the chunk's metrics pytree (dict keys joined by '/')."""
    import jax
    import numpy as np

    out: dict[str, float] = {}
    flat, _ = jax.tree_util.tree_flatten_with_path(metrics)
    for path, leaf in flat:
        key = "/".join(str(getattr(p, "key", getattr(p, "idx", p))) for p in path) or "value"
        out[key] = float(np.mean(np.asarray(leaf)))
    return out


def run_chunks(
    stage: Any,
    init_state: Any,
    chunk_fn: Callable[[Any], tuple[Any, Any]],
    num_chunks: int,
    kind: str,
    config: Any,
    metrics_fn: Callable[[int, Any, Any], dict[str, Any]] | None = None,
    desc: str = "training",
    name: str = "train",
    checkpoint_dir: str | Path | None = None,
    checkpoint: bool = True,
) -> Any:
    """Run ``num_chunks`` chunks of ``chunk_fn`` from ``init_state`` and return the final state.

    ``stage`` is a :class:`quietrl.core.runs.Stage` (metrics and checkpoints go there) or None (library use;
    then ``checkpoint_dir`` may still be given). ``name`` separates several training series in one stage.
    Each metrics line holds ``series``, ``chunk`` (1-based count of chunks done), ``wall_s`` and what
    ``metrics_fn(chunk, state, metrics)`` returns (default: leaf means).
    """
    import jax

    from quietrl.core.progress import progress

    metrics_fn = metrics_fn or mean_metrics
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else (
        stage.checkpoint_dir / name if stage is not None else None)
    # Host copies with concrete dtypes: a jitted init returns weakly-typed leaves, and the strongly-typed
    # state that the first chunk returns would otherwise make the second call compile everything again.
    init_state = jax.device_get(init_state)
    state, start = init_state, 0
    if checkpoint and ckpt_dir is not None and has_checkpoint(ckpt_dir):
        state, start = load_checkpoint(ckpt_dir, kind, config, init_state)
        if stage is not None:
            stage.seek_metrics(read_meta(ckpt_dir)["extra"].get("metrics_position", 0))
    bar = progress(total=num_chunks, desc=desc, initial=start)
    t0 = time.perf_counter()
    try:
        for chunk in range(start, num_chunks):
            state, metrics = chunk_fn(state)
            metrics = jax.device_get(metrics)
            record = {"series": name, "chunk": chunk + 1, **metrics_fn(chunk + 1, state, metrics)}
            record["wall_s"] = time.perf_counter() - t0
            if stage is not None:
                stage.log_metrics(record)
            if checkpoint and ckpt_dir is not None:
                extra = {"metrics_position": stage.metrics_position if stage is not None else 0}
                save_checkpoint(ckpt_dir, kind, config, jax.device_get(state), chunk + 1, extra=extra)
            bar.update(1)
    finally:
        bar.close()
    return state
