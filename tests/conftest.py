"""Shared test settings: headless plotting, no progress bars, and where ../shared lives."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("QUIETRL_NO_PROGRESS", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("QUIETRL_SHARED_DIR", REPO.parent / "shared"))  # as tests/proofsearch/conftest.py


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared (test data; QUIETRL_SHARED_DIR overrides the place); skipped when absent, unless
    QUIETRL_REQUIRE_SHARED=1 (CI), where it fails."""
    if not SHARED.is_dir():
        if os.environ.get("QUIETRL_REQUIRE_SHARED") == "1":
            pytest.fail(f"{SHARED} is required (QUIETRL_REQUIRE_SHARED=1) but missing")
        pytest.skip("../shared is not present")
    return SHARED
