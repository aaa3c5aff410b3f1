"""Run directories: one per ``quietrl reproduce`` (or experiment) invocation, one stage per
(sub-package, experiment, seed).

Layout::

    RUN/config.json            the options the run was started with (compared on --resume)
    RUN/versions.json          Python and package versions
    RUN/log.txt                human log, appended
    RUN/<sub>/status.json      per sub-package status written by ``quietrl reproduce``
    RUN/<sub>/<experiment>/seed<k>/
        metrics.jsonl          one JSON object per line, appended and flushed as training goes
        summary.json           rows + status + wall time (written whole, atomically)
        figures/*.png          written atomically
        checkpoints/           see quietrl.core.checkpoint
        DONE                   the done-marker, written last

Resuming an unfinished stage deletes its partial outputs except its checkpoints and its metrics (cut back
to the last complete line) and runs it again. Re-logged metric lines that are already in the file are not
written twice (``log_metrics`` replays them), and a training loop that restarts from a checkpoint moves the
replay position to where the checkpoint was taken, so a resumed stage ends with the same files as an
uninterrupted one.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import shutil
import time
import traceback
from pathlib import Path
from typing import Any, Iterable, Iterator

from quietrl.core.errors import UserError
from quietrl.core.io import atomic_write_bytes, atomic_write_json, read_json, to_json
from quietrl.core.summary import Row

RUN_MARKER = "quietrl_run"
DONE = "DONE"
_VERSIONED = ("quietrl", "jax", "jaxlib", "flax", "optax", "numpy", "scipy", "matplotlib", "click",
              "craftax", "gymnax", "lark", "scikit-learn", "ray")


def package_versions() -> dict[str, str]:
    """Versions of Python and of the packages quietrl's numbers depend on (missing ones omitted)."""
    from importlib import metadata

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def default_run_path() -> Path:
    """``runs/<UTC timestamp>`` under the current directory."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path("runs") / stamp


def _check_writable_dir(path: Path) -> None:
    """Create ``path`` (and parents) or raise a one-line UserError saying why it cannot be."""
    for parent in [path, *path.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"cannot create run directory {path}: {parent} is a file, not a directory")
            break
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create run directory {path}: {e.strerror or e}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserError(f"cannot write to run directory {path}: permission denied")


class RunDir:
    """A run directory. Create with :meth:`create`, reopen with :meth:`open`."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    # -- construction -------------------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike | None, config: dict[str, Any], seed: int) -> "RunDir":
        """Start a new run in ``path`` (default ``runs/<UTC timestamp>``), which must be absent or empty."""
        path = Path(path) if path is not None else default_run_path()
        if path.exists() and path.is_dir() and any(path.iterdir()):
            if (path / "config.json").exists():
                raise UserError(f"{path} already holds a run; resume it with --resume {path} or choose another --out")
            raise UserError(f"{path} is not empty; choose an empty or new directory for --out")
        _check_writable_dir(path)
        run = cls(path)
        cfg = dict(config)
        cfg["seed"] = int(seed)
        cfg[RUN_MARKER] = 1
        atomic_write_json(path / "config.json", cfg)
        atomic_write_json(path / "versions.json", package_versions())
        run.log(f"run started: seed={seed} config={json.dumps(config, sort_keys=True)}")
        return run

    @classmethod
    def open(cls, path: str | os.PathLike) -> "RunDir":
        """Open an existing run (for --resume or ``quietrl report``); a UserError if ``path`` is not one."""
        path = Path(path)
        cfg_path = path / "config.json"
        if not path.is_dir():
            raise UserError(f"{path} is not a run directory (no such directory)")
        try:
            cfg = read_json(cfg_path)
        except FileNotFoundError:
            raise UserError(f"{path} is not a quietrl run directory (no config.json)") from None
        except (OSError, json.JSONDecodeError) as e:
            raise UserError(f"{cfg_path}: unreadable run config ({e})") from None
        if not isinstance(cfg, dict) or RUN_MARKER not in cfg:
            raise UserError(f"{path} is not a quietrl run directory (config.json was not written by quietrl)")
        return cls(path)

    # -- contents -----------------------------------------------------------------------------------------
    @property
    def config(self) -> dict[str, Any]:
        cfg = read_json(self.path / "config.json")
        cfg.pop(RUN_MARKER, None)
        return cfg

    @property
    def seed(self) -> int:
        return int(self.config["seed"])

    def log(self, text: str) -> None:
        """Append a timestamped line to ``log.txt``."""
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        with open(self.path / "log.txt", "a", encoding="utf-8") as f:
            for line in str(text).splitlines() or [""]:
                f.write(f"{stamp} {line}\n")

    def stage(self, sub: str, experiment: str, seed: int) -> "Stage":
        """The stage directory for (sub-package, experiment, seed); created on first use."""
        for name, value in (("sub-package", sub), ("experiment", experiment)):
            if not value or "/" in value or value.startswith("."):
                raise ValueError(f"bad {name} name for a stage: {value!r}")
        return Stage(self, self.path / sub / experiment / f"seed{int(seed)}", sub, experiment, int(seed))

    def stages(self, sub: str | None = None) -> list["Stage"]:
        """Every stage directory present, in sorted order (optionally of one sub-package)."""
        out = []
        subs = [sub] if sub else sorted(p.name for p in self.path.iterdir() if p.is_dir())
        for s in subs:
            base = self.path / s
            if not base.is_dir():
                continue
            for exp in sorted(p for p in base.iterdir() if p.is_dir()):
                for sd in sorted(p for p in exp.iterdir() if p.is_dir() and p.name.startswith("seed")):
                    try:
                        seed = int(sd.name[4:])
                    except ValueError:
                        continue
                    out.append(Stage(self, sd, s, exp.name, seed))
        return out

    def write_sub_status(self, sub: str, status: str, wall_s: float | None = None, error: str | None = None,
                         note: str | None = None) -> None:
        """Record how a sub-package's part of ``quietrl reproduce`` ended."""
        atomic_write_json(self.path / sub / "status.json",
                          {"status": status, "wall_s": wall_s, "error": error, "note": note})

    def sub_status(self, sub: str) -> dict[str, Any] | None:
        try:
            return read_json(self.path / sub / "status.json")
        except (FileNotFoundError, json.JSONDecodeError):
            return None


class Stage:
    """One (sub-package, experiment, seed) unit of work with its metrics, figures, summary and checkpoints."""

    def __init__(self, run: RunDir, path: Path, sub: str, experiment: str, seed: int):
        self.run = run
        self.path = path
        self.sub = sub
        self.experiment = experiment
        self.seed = seed
        self._lines_logged = 0    # lines this execution has logged (or replayed)
        self._lines_present = 0   # complete lines found in metrics.jsonl when the stage (re)started
        self._t0: float | None = None

    def __repr__(self) -> str:
        return f"Stage({self.sub}/{self.experiment}/seed{self.seed})"

    @property
    def name(self) -> str:
        return f"{self.sub}/{self.experiment}/seed{self.seed}"

    @property
    def done(self) -> bool:
        return (self.path / DONE).exists()

    @property
    def figures_dir(self) -> Path:
        return self.path / "figures"

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    # -- lifecycle ----------------------------------------------------------------------------------------
    def _reset_partial(self) -> None:
        """Remove what an interrupted attempt left, keeping checkpoints and complete metric lines."""
        self.path.mkdir(parents=True, exist_ok=True)
        keep = {"checkpoints", "metrics.jsonl"}
        for p in self.path.iterdir():
            if p.name in keep:
                continue
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink()
        self._lines_present = _cut_to_complete_lines(self.metrics_path)
        self._lines_logged = 0

    @contextlib.contextmanager
    def running(self) -> Iterator["Stage"]:
        """Run the stage's work inside this block.

        On entry partial outputs of an earlier attempt are removed; on success the summary gets status
        "done" and the wall time and the done-marker is written; on an exception the summary records the
        failure and the exception propagates.
        """
        if self.done:
            raise RuntimeError(f"{self.name} is already done; check stage.done before running it")
        self._reset_partial()
        self._t0 = time.perf_counter()
        self.run.log(f"stage {self.name}: started")
        try:
            yield self
        except BaseException as e:
            wall = time.perf_counter() - self._t0
            summary = self._read_summary() or {"rows": [], "extra": {}}
            status = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
            summary.update(status=status, wall_s=wall, error=f"{type(e).__name__}: {e}")
            atomic_write_json(self.path / "summary.json", summary)
            self.run.log(f"stage {self.name}: {status} after {wall:.1f} s\n" + traceback.format_exc())
            raise
        wall = time.perf_counter() - self._t0
        summary = self._read_summary() or {"rows": [], "extra": {}}
        summary.update(status="done", wall_s=wall, error=None)
        atomic_write_json(self.path / "summary.json", summary)
        atomic_write_json(self.path / DONE, {"wall_s": wall})
        self.run.log(f"stage {self.name}: done in {wall:.1f} s")

    # -- outputs ------------------------------------------------------------------------------------------
    def log_metrics(self, record: dict[str, Any]) -> None:
        """Append one JSON line to metrics.jsonl and flush it.

        A line that an earlier, interrupted attempt already wrote at this position is not written again.
        """
        if self._lines_logged < self._lines_present:
            self._lines_logged += 1
            return
        line = to_json(record, indent=None)
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())
        self._lines_logged += 1
        self._lines_present = max(self._lines_present, self._lines_logged)

    @property
    def metrics_position(self) -> int:
        """Number of metric lines logged so far; stored with checkpoints to resume the log in step."""
        return self._lines_logged

    def seek_metrics(self, position: int) -> None:
        """Continue the metrics log from line ``position`` (used when training restarts from a checkpoint)."""
        self._lines_logged = int(position)

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every complete line of metrics.jsonl."""
        try:
            text = self.metrics_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    break
        return out

    def save_figure(self, fig: Any, name: str, dpi: int = 110) -> Path:
        """Save a matplotlib figure to ``figures/<name>.png`` atomically and close it."""
        import io

        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        plt.close(fig)
        path = self.figures_dir / f"{name}.png"
        atomic_write_bytes(path, buf.getvalue())
        return path

    def write_summary(self, rows: Iterable[Row], extra: dict[str, Any] | None = None) -> None:
        """Write summary.json with the stage's rows (and free-form ``extra``), atomically."""
        rows = [r if isinstance(r, Row) else Row(**r) for r in rows]
        atomic_write_json(self.path / "summary.json",
                          {"rows": [r.to_dict() for r in rows], "extra": extra or {}, "status": "running"})

    def _read_summary(self) -> dict[str, Any] | None:
        try:
            return read_json(self.path / "summary.json")
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def summary(self) -> dict[str, Any] | None:
        """The stage's summary.json (None if the stage never wrote one)."""
        return self._read_summary()

    def rows(self) -> list[Row]:
        s = self._read_summary() or {}
        return [Row.from_dict(r) for r in s.get("rows", [])]


def _cut_to_complete_lines(path: Path) -> int:
    """Truncate a JSON-lines file after its last complete, parseable line; return the number of lines kept."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    keep = 0
    n = 0
    pos = 0
    while True:
        nl = data.find(b"\n", pos)
        if nl < 0:
            break
        try:
            json.loads(data[pos:nl])
        except ValueError:
            break
        pos = nl + 1
        keep = pos
        n += 1
    if keep != len(data):
        with open(path, "r+b") as f:
            f.truncate(keep)
    return n
