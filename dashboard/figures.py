"""Dashboard layer: pure plotly figure builders for the drill-down (never imports dash).

Each builder maps arrays (``HistData``, references, ``ComparisonResult``) to a ``go.Figure``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from engine.types import ComparisonResult, HistData

logger = logging.getLogger(__name__)

Array = np.ndarray[Any, np.dtype[Any]]
Trace = dict[str, Any]
SIGMA, TIMES = "\u03c3", "\u00d7"

#: Look of every figure: readable on a control-room screen, transparent paper for dark mode.
from dashboard.figures_1d import overlay_1d, profile_plot
from dashboard.figures_2d import pull_map_2d, trend
from dashboard.figures_base import EXPECTED_NAMES, STATUS_STYLE, THEME, empty_figure

__all__ = [
    "EXPECTED_NAMES",
    "STATUS_STYLE",
    "THEME",
    "empty_figure",
    "figure_for",
    "overlay_1d",
    "profile_plot",
    "pull_map_2d",
    "trend",
]

_BUILDERS: dict[str, tuple[Callable[..., go.Figure], frozenset[str]]] = {
    "overlay": (overlay_1d, frozenset({"logx", "logy", "pull_cap", "pull_cut", "title"})),
    "pull_map": (pull_map_2d, frozenset({"pull_cap", "title"})),
    "profile": (profile_plot, frozenset({"logx", "pull_cap", "pull_cut", "title"})),
}


def figure_for(
    plot_kind: str,
    data: HistData,
    refs: Sequence[HistData],
    result: ComparisonResult | None,
    **opts: Any,
) -> go.Figure:
    """The drill-down figure for a comparator's ``plot_kind``; never raises.

    ``overlay`` and ``pull_map`` draw :func:`overlay_1d` for 1D and :func:`pull_map_2d`
    for 2D histograms (beta_binomial is an overlay comparator that also runs on 2D);
    ``profile`` draws :func:`profile_plot`. Options a builder does not take (``logy``
    for a map) are ignored. An unknown kind, an unsupported dimension or a failure
    gives :func:`empty_figure` saying why.

    Args:
        plot_kind: The comparator's ``plot_kind``.
        data: The data histogram.
        refs: The reference histograms.
        result: The comparison, or None.
        **opts: ``logx``, ``logy``, ``pull_cap``, ``pull_cut``, ``title``.
    """
    try:
        if plot_kind == "none":
            who = repr(result.comparator) if result is not None else "this comparator"
            return empty_figure(f"{who} has no plot; its verdict is in the table")
        if plot_kind not in _BUILDERS:
            known = ", ".join(sorted([*_BUILDERS, "none"]))
            return empty_figure(f"unknown plot kind {plot_kind!r} (known: {known})")
        ndim = np.ndim(data.values)
        if ndim not in (1, 2):
            return empty_figure(f"{data.path}: cannot draw a {ndim}D histogram")
        if data.is_profile and result is not None and "ref_mean" in result.arrays:
            plot_kind = "profile"  # a test of the means (variation_scan on a profile)
        if plot_kind != "profile":
            plot_kind = "overlay" if ndim == 1 else "pull_map"
        builder, allowed = _BUILDERS[plot_kind]
        return builder(data, refs, result, **{k: v for k, v in opts.items() if k in allowed})
    except Exception as err:  # a figure must never break the page: say why instead
        where = getattr(data, "path", "?")
        logger.exception("drawing %s (%s) failed", where, plot_kind)
        return empty_figure(f"cannot draw {where}: {type(err).__name__}: {err}")
