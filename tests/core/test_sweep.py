import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import _sweep_jobs  # noqa: E402

from quietrl.core.errors import UserError  # noqa: E402
from quietrl.core.sweep import make_executor, run_sweep  # noqa: E402

ITEMS = [1.2, 0.6, "raise", 0.0]


def _check(results):
    assert [r.index for r in results] == [0, 1, 2, 3]
    assert [r.item for r in results] == ITEMS
    assert [r.ok for r in results] == [True, True, False, True]
    assert [r.value["slept"] for r in results if r.ok] == [1.2, 0.6, 0.0]
    assert "ValueError: job failed on purpose" in results[2].error
    for r in results:
        if r.ok:
            assert "intra_op_parallelism_threads=1" in r.value["xla"]


def test_local_executor_order_failure_and_crash():
    results = run_sweep(_sweep_jobs.sleepy, ITEMS, make_executor("local", max_workers=4))
    _check(results)
    crashed = make_executor("local", max_workers=2).map(_sweep_jobs.sleepy, [0.0, "crash", 0.1])
    assert [r.ok for r in crashed] == [True, False, True]
    assert "exit code 3" in crashed[1].error


def test_unknown_executor():
    with pytest.raises(UserError, match="choose one of: local, ray"):
        make_executor("dask")


def test_ray_executor():
    try:
        import ray
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("Ray must be installed in CI")
        pytest.skip("ray not installed")
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(_sweep_jobs)  # Ray's workers cannot import the tests folder
    ex = make_executor("ray", max_workers=2)
    try:
        _check(ex.map(_sweep_jobs.sleepy, ITEMS))
    finally:
        ray.shutdown()
