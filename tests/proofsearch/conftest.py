"""Shared fixtures: the ../shared/protocols data (skipped on a user's machine, required in CI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("QUIETRL_SHARED_DIR", Path(__file__).resolve().parents[3] / "shared"))
PROTOCOLS = SHARED / "protocols"


def require_shared() -> Path:
    """Path of ../shared/protocols; skip when absent unless QUIETRL_REQUIRE_SHARED=1 (then fail)."""
    if PROTOCOLS.is_dir():
        return PROTOCOLS
    if os.environ.get("QUIETRL_REQUIRE_SHARED") == "1":
        pytest.fail(f"QUIETRL_REQUIRE_SHARED=1 but {PROTOCOLS} is missing")
    pytest.skip(f"{PROTOCOLS} not present (test data of the quietrl repository)")


@pytest.fixture(scope="session")
def protocols() -> Path:
    return require_shared()


def shared_theories() -> list[Path]:
    """Every theory of ../shared/protocols (the analyzed proofs excluded), or [] when absent."""
    if not PROTOCOLS.is_dir():
        return []
    return sorted(p for p in PROTOCOLS.rglob("*.spthy") if "proofs" not in p.relative_to(PROTOCOLS).parts)
