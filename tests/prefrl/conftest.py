import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True, scope="session")
def _one_blas_thread():
    # Small matrices on a shared 2-core machine: BLAS threads only contend.
    with threadpool_limits(1):
        yield
