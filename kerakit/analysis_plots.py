"""Deprecated place of `plot_importance`; figures live in `kerakit.plots` (see `kerakit.plots.analysis`)."""

from kerakit.plots.analysis import plot_importance

__all__ = ["plot_importance"]
