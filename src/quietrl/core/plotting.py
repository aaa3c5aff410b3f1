"""Matplotlib helpers with a headless backend and one house style for every figure in a report."""

from __future__ import annotations

from typing import Any, Sequence


def new_figure(nrows: int = 1, ncols: int = 1, size: tuple[float, float] = (5.0, 3.5), **kw: Any):
    """Create ``(fig, axes)`` with the Agg backend; ``size`` is per panel in inches.

    ``axes`` is a single Axes for a 1x1 figure and otherwise always a 2-D array of shape (nrows, ncols),
    so ``axes[0, j]`` works whatever the layout.
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3,
        "font.size": 9, "legend.fontsize": 8, "legend.frameon": False,
    })
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False, **kw)
    return fig, (axes[0, 0] if nrows == ncols == 1 else axes)


def band(ax: Any, x: Sequence[float], mean: Sequence[float], lo: Sequence[float], hi: Sequence[float],
         label: str | None = None, **kw: Any) -> None:
    """A line with a shaded interval (e.g. 95% over seeds)."""
    (line,) = ax.plot(x, mean, label=label, **kw)
    ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)


def mean_ci(values: Any, axis: int = 0, z: float = 1.96):
    """Mean and normal-approximation ``z`` interval over ``axis`` (e.g. over seeds): (mean, lo, hi)."""
    import numpy as np

    v = np.asarray(values, dtype=float)
    m = v.mean(axis=axis)
    n = v.shape[axis]
    se = v.std(axis=axis, ddof=1) / np.sqrt(n) if n > 1 else np.zeros_like(m)
    return m, m - z * se, m + z * se
