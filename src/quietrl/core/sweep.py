"""Sweeps: one function over a list of configs/seeds through an executor, results in input order.

``local`` runs each job in its own process (spawn start method) with at most ``max_workers`` at once and
one XLA thread per worker; a job that raises, or whose process dies, is reported with its item and error
while the other jobs finish. ``ray`` runs the same jobs as Ray tasks, on a local Ray instance or on the
cluster at ``ray_address``, so a sweep that outgrows one machine runs unchanged.
"""

from __future__ import annotations

import dataclasses
import os
import traceback
from typing import Any, Callable, Sequence

from quietrl.core.errors import UserError

EXECUTORS = ("local", "ray")
# One XLA thread per worker: N workers on N cores beat N workers fighting over N*N threads.
_WORKER_ENV = {
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "QUIETRL_NO_PROGRESS": "1",
}


@dataclasses.dataclass
class JobResult:
    """The outcome of one job: ``value`` if ``ok``, else ``error`` (one line) and ``traceback``."""

    index: int
    item: Any
    ok: bool
    value: Any = None
    error: str | None = None
    traceback: str | None = None


def _run_job(fn: Callable, item: Any, conn: Any) -> None:
    # Runs in a spawned child; the environment above is set before JAX can be imported by unpickling fn.
    try:
        value = fn(item)
        conn.send((True, value, None, None))
    except BaseException as e:  # noqa: BLE001 - report everything to the parent
        conn.send((False, None, f"{type(e).__name__}: {e}", traceback.format_exc()))
    finally:
        conn.close()


def _child_main(fn_bytes: bytes, item_bytes: bytes, conn: Any) -> None:
    import pickle

    os.environ.update(_WORKER_ENV)
    fn = pickle.loads(fn_bytes)
    item = pickle.loads(item_bytes)
    _run_job(fn, item, conn)


class LocalExecutor:
    """Process-per-job executor with the spawn start method and at most ``max_workers`` jobs at once."""

    name = "local"

    def __init__(self, max_workers: int | None = None):
        self.max_workers = max(1, int(max_workers or os.cpu_count() or 1))

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], desc: str = "sweep") -> list[JobResult]:
        """Run ``fn(item)`` for each item; return a JobResult per item in input order."""
        import multiprocessing as mp
        import pickle
        import time

        from quietrl.core.progress import progress

        ctx = mp.get_context("spawn")
        items = list(items)
        results: list[JobResult | None] = [None] * len(items)
        pending = list(range(len(items)))
        running: dict[int, tuple[Any, Any]] = {}
        fn_bytes = pickle.dumps(fn)
        bar = progress(total=len(items), desc=desc)
        try:
            while pending or running:
                while pending and len(running) < self.max_workers:
                    i = pending.pop(0)
                    recv, send = ctx.Pipe(duplex=False)
                    p = ctx.Process(target=_child_main, args=(fn_bytes, pickle.dumps(items[i]), send),
                                    daemon=True)
                    p.start()
                    send.close()
                    running[i] = (p, recv)
                finished = []
                for i, (p, recv) in running.items():
                    if recv.poll():
                        try:
                            ok, value, err, tb = recv.recv()
                            p.join()
                        except (EOFError, OSError):  # the pipe closed: the process died without a result
                            p.join()
                            ok, value, err, tb = False, None, f"worker process died (exit code {p.exitcode})", None
                        results[i] = JobResult(i, items[i], ok, value, err, tb)
                        finished.append(i)
                    elif not p.is_alive():
                        p.join()
                        if recv.poll():
                            continue  # the result arrived just now; collect it next round
                        results[i] = JobResult(i, items[i], False, None,
                                               f"worker process died (exit code {p.exitcode})", None)
                        finished.append(i)
                for i in finished:
                    running.pop(i)[1].close()
                    bar.update(1)
                if not finished:
                    time.sleep(0.02)
        finally:
            for p, recv in running.values():
                p.terminate()
                recv.close()
            bar.close()
        return [r for r in results if r is not None]


class RayExecutor:
    """Ray tasks, one per job, on a local instance (no address) or the cluster at ``ray_address``."""

    name = "ray"

    def __init__(self, ray_address: str | None = None, num_cpus: int | None = None):
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UserError("--executor ray needs Ray: pip install 'quietrl[test]' or 'ray[default]'") from None
        self.ray_address = ray_address
        self.num_cpus = num_cpus

    def _init(self) -> None:
        import ray

        if ray.is_initialized():
            return
        kw: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False,
                                  runtime_env={"env_vars": dict(_WORKER_ENV)})
        if self.ray_address:
            ray.init(address=self.ray_address, **kw)
        else:
            ray.init(num_cpus=self.num_cpus or os.cpu_count(), **kw)

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], desc: str = "sweep") -> list[JobResult]:
        """Run ``fn(item)`` for each item as a Ray task; results in input order, failures reported."""
        import ray

        from quietrl.core.progress import progress

        self._init()
        remote = ray.remote(max_retries=0)(_ray_call)
        items = list(items)
        refs = [remote.remote(fn, it) for it in items]
        index = {ref: i for i, ref in enumerate(refs)}
        results: list[JobResult | None] = [None] * len(items)
        bar = progress(total=len(items), desc=desc)
        remaining = list(refs)
        while remaining:
            done, remaining = ray.wait(remaining, num_returns=1)
            ref = done[0]
            i = index[ref]
            try:
                ok, value, err, tb = ray.get(ref)
            except Exception as e:  # the worker itself died
                ok, value, err, tb = False, None, f"{type(e).__name__}: {str(e).splitlines()[0]}", str(e)
            results[i] = JobResult(i, items[i], ok, value, err, tb)
            bar.update(1)
        bar.close()
        return [r for r in results if r is not None]


def _ray_call(fn: Callable, item: Any):
    try:
        return True, fn(item), None, None
    except Exception as e:  # noqa: BLE001
        return False, None, f"{type(e).__name__}: {e}", traceback.format_exc()


def make_executor(kind: str = "local", max_workers: int | None = None, ray_address: str | None = None):
    """An executor by name: ``local`` (default) or ``ray``."""
    if kind == "local":
        return LocalExecutor(max_workers)
    if kind == "ray":
        return RayExecutor(ray_address, num_cpus=max_workers)
    raise UserError(f"unknown executor {kind!r}; choose one of: {', '.join(EXECUTORS)}")


def run_sweep(fn: Callable[[Any], Any], items: Sequence[Any], executor: Any = None, desc: str = "sweep"
              ) -> list[JobResult]:
    """Run ``fn`` over ``items`` with ``executor`` (an executor object or name; default local)."""
    if executor is None or isinstance(executor, str):
        executor = make_executor(executor or "local")
    return executor.map(fn, items, desc=desc)
