"""Progress bars (tqdm), quiet when output is not a terminal or QUIETRL_NO_PROGRESS=1."""

from __future__ import annotations

import os
import sys
from typing import Any, Iterable


def progress(iterable: Iterable | None = None, total: int | None = None, desc: str = "", **kw: Any):
    """A tqdm bar over ``iterable`` (or a manual bar of ``total`` steps: call ``.update(n)``)."""
    from tqdm.auto import tqdm

    disable = os.environ.get("QUIETRL_NO_PROGRESS") == "1" or not sys.stderr.isatty()
    return tqdm(iterable, total=total, desc=desc, disable=disable, leave=False, dynamic_ncols=True, **kw)
