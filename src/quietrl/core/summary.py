"""Summary rows: the one format in which every sub-package reports a quantity next to the paper's."""

from __future__ import annotations

import dataclasses
import math
from typing import Any


@dataclasses.dataclass(frozen=True)
class Row:
    """One reported quantity.

    ``ours`` always comes from the run; ``ci`` is its interval (low, high) when we have one. ``paper`` is a
    constant cited from the paper, with ``source`` saying where ("arXiv:2605.23551, Table 2") and
    ``paper_setting`` saying under which setting it was measured; ``comparable`` is True only when our
    setting matches the paper's closely enough for a direct comparison.
    """

    quantity: str
    ours: float | int | str | None
    ci: tuple[float, float] | None = None
    paper: float | int | str | None = None
    paper_setting: str = ""
    source: str = ""
    comparable: bool = False

    def __post_init__(self) -> None:
        if not self.quantity:
            raise ValueError("a summary row needs a quantity name")
        if self.paper is not None and not self.source:
            raise ValueError(f"row {self.quantity!r}: a paper figure needs its source")
        if self.ci is not None:
            lo, hi = self.ci
            object.__setattr__(self, "ci", (float(lo), float(hi)))
        if hasattr(self.ours, "item"):  # NumPy/JAX scalar
            object.__setattr__(self, "ours", self.ours.item())

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Row":
        fields = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in fields}
        if kw.get("ci") is not None:
            kw["ci"] = tuple(kw["ci"])
        return cls(**kw)


def format_value(v: Any) -> str:
    """Human formatting for report tables: 4 significant digits for floats, '-' for missing."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
            return f"{v:.3e}"
        return f"{v:.4g}"
    return str(v)
