"""Example theories written for quietrl (not Tamarin's files): see each ``.spthy`` header for the model."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from quietrl.core.errors import UserError


def example_names() -> list[str]:
    """Names (file stems) of the bundled example theories, sorted."""
    root = resources.files("quietrl.proofsearch.examples")
    return sorted(p.name[: -len(".spthy")] for p in root.iterdir() if p.name.endswith(".spthy"))


def example_path(name: str) -> Path:
    """Filesystem path of a bundled example theory; UserError naming the choices if unknown."""
    names = example_names()
    if name not in names:
        raise UserError(f"unknown example {name!r}; choose from {', '.join(names)}")
    return Path(str(resources.files("quietrl.proofsearch.examples").joinpath(f"{name}.spthy")))
