"""Dashboard layer: 1D figures — data vs references with pulls, and profiles (pure)."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from engine.types import ComparisonResult, HistData

logger = logging.getLogger(__name__)

Array = np.ndarray[Any, np.dtype[Any]]
Trace = dict[str, Any]
SIGMA, TIMES = "\u03c3", "\u00d7"

#: Look of every figure: readable on a control-room screen, transparent paper for dark mode.
from dashboard.figures_2d import _maps
from dashboard.figures_base import (
    EXPECTED_NAMES,
    THEME,
    _array,
    _axis,
    _expected_traces,
    _hover_1d,
    _refs,
    _step,
    _two_rows,
    empty_figure,
)


def overlay_1d(
    data: HistData,
    refs: Sequence[HistData],
    result: ComparisonResult | None,
    *,
    logx: bool = False,
    logy: bool = False,
    pull_cap: float = 10.0,
    pull_cut: float | None = None,
    title: str | None = None,
) -> go.Figure:
    """Data vs references (normalised to the data's entries), with the pulls below.

    Top row: each reference as a thin step line ("ref 357100", legend group
    "references"), the comparator's expected histogram (``ref_weighted``, ``ref`` or
    ``expected``) dashed, with its ``band`` (the normal range) shaded when given, the
    data as a step histogram with error bars. Bottom row: the pulls as bars on a
    ±``pull_cap`` diverging colour scale, dashed lines at ±``pull_cut``. Counts are what
    counting tests compare (a profile's per-bin entries).

    Args:
        data: The 1D histogram of the data run.
        refs: Reference histograms; other binnings are noted, not drawn.
        result: The comparison (its arrays), or None.
        logx: Log x axis (when the upper edge is positive).
        logy: Log y axis; zeros are drawn at a floor below the smallest positive value.
        pull_cap: Range of the pull axis and colours, in sigma.
        pull_cut: The comparator's pull cut, in sigma, if known.
        title: Figure title; default the cleaned ROOT title.
    """
    counts = np.asarray(data.counts, dtype=np.float64)
    if counts.ndim != 1 or counts.size == 0:
        return empty_figure(f"{data.path}: nothing to draw ({counts.shape} bins)")
    x = _axis(data, 0, counts.size, logx)
    drawn, notes = _refs(data, refs, means=False)
    exp = _array(result, ("ref_weighted", "ref", "expected"), counts.shape)
    pulls = _array(result, ("pulls",), counts.shape)
    var = None if data.is_profile else data.variances
    err = np.sqrt(np.abs(var if var is not None and var.shape == counts.shape else counts))
    floor = -math.inf
    if logy:
        series = np.concatenate([counts, *(r for _, r in drawn), exp[1] if exp else []])
        positive = series[np.isfinite(series) & (series > 0)]
        floor = float(positive.min()) / 2.0 if positive.size else 0.5
    traces = [
        _step(
            x,
            r,
            floor,
            name=f"ref {run}",
            legendgroup="references",
            opacity=0.6,
            line={"width": 1.2, "color": THEME["references"][k % 6]},
        )
        for k, (run, r) in enumerate(drawn)
    ]
    if exp is not None:
        band = _array(result, ("band",), counts.shape)
        spread = band[1] if band is not None else None
        traces += _expected_traces(x, exp[1], spread, EXPECTED_NAMES[exp[0]], floor)
    line = {"width": 2, "color": THEME["data"]}
    traces.append(_step(x, counts, floor, name=f"data {data.run}", legendgroup="data", line=line))
    nan = np.full(counts.shape, np.nan)
    cd = np.column_stack(
        [x.lo, x.hi, counts, exp[1] if exp else nan, pulls[1] if pulls else nan, err]
    )
    tpl = _hover_1d(x, "entries", exp is not None, pulls is not None)
    traces.append(
        {
            "type": "scatter",
            "mode": "markers",
            "x": x.centers,
            "y": np.maximum(counts, floor),
            "name": f"data {data.run}",
            "legendgroup": "data",
            "showlegend": False,
            "marker": {"size": 4, "color": THEME["data"]},
            "text": x.labels,
            "error_y": {
                "type": "data",
                "array": err,
                "width": 0,
                "thickness": 1.2,
                "color": THEME["data"],
            },
            "customdata": cd,
            "hovertemplate": tpl,
        }
    )
    return _two_rows(
        data,
        result,
        x,
        (traces, notes, "entries", cd, tpl),
        pulls[1] if pulls else None,
        logy=logy,
        pull_cap=pull_cap,
        pull_cut=pull_cut,
        title=title,
    )


def profile_plot(
    data: HistData,
    refs: Sequence[HistData],
    result: ComparisonResult | None,
    *,
    logx: bool = False,
    pull_cap: float = 10.0,
    pull_cut: float | None = None,
    title: str | None = None,
) -> go.Figure:
    """Profile means with error bars, data vs references, pulls below; 2D: maps of means.

    Bins without entries are not drawn. The comparator's ``ref_mean`` ± ``ref_error``
    is a band ("expected (weighted reference mean)").

    Args:
        data: The profile of the data run (1D, or 2D for :func:`pull_map_2d` of the means).
        refs: Reference profiles.
        result: The comparison (``pulls``, ``ref_mean``, ``ref_error``), or None.
        logx: Log x axis (1D).
        pull_cap: Range of the pull axis and colours, in sigma.
        pull_cut: The comparator's pull cut, in sigma, if known.
        title: Figure title; default the cleaned ROOT title.
    """
    means = np.asarray(data.values, dtype=np.float64)
    if means.ndim == 2:
        return _maps(data, refs, result, means=True, pull_cap=pull_cap, title=title)
    if means.ndim != 1 or means.size == 0:
        return empty_figure(f"{data.path}: nothing to draw ({means.shape} bins)")
    x = _axis(data, 0, means.size, logx)
    filled = np.asarray(data.counts) > 0 if data.is_profile else np.ones(means.shape, bool)
    drawn, notes = _refs(data, refs, means=True)
    exp = _array(result, ("ref_mean",), means.shape)
    pulls = _array(result, ("pulls",), means.shape)
    var = data.variances
    err = np.sqrt(np.abs(var)) if var is not None and var.shape == means.shape else 0 * means
    traces = [
        {
            "type": "scatter",
            "mode": "markers",
            "x": x.centers,
            "y": r,
            "opacity": 0.6,
            "name": f"ref {run}",
            "legendgroup": "references",
            "hoverinfo": "skip",
            "marker": {"size": 6, "symbol": "circle-open", "color": THEME["references"][k % 6]},
        }
        for k, (run, r) in enumerate(drawn)
    ]
    if exp is not None:
        band = _array(result, ("ref_error",), means.shape)
        e = band[1] if band is not None else 0 * means
        traces += _expected_traces(x, exp[1], e, EXPECTED_NAMES["ref_mean"])
    nan = np.full(means.shape, np.nan)
    cd = np.column_stack(
        [x.lo, x.hi, means, exp[1] if exp else nan, pulls[1] if pulls else nan, err]
    )
    tpl = _hover_1d(x, "(mean)", exp is not None, pulls is not None)
    traces.append(
        {
            "type": "scatter",
            "mode": "markers",
            "x": x.centers,
            "y": np.where(filled, means, nan),
            "text": x.labels,
            "name": f"data {data.run}",
            "legendgroup": "data",
            "customdata": cd,
            "marker": {"size": 7, "color": THEME["data"]},
            "hovertemplate": tpl,
            "error_y": {"type": "data", "array": err, "width": 0, "color": THEME["data"]},
        }
    )
    return _two_rows(
        data,
        result,
        x,
        (traces, notes, "mean", cd, tpl),
        pulls[1] if pulls else None,
        logy=False,
        pull_cap=pull_cap,
        pull_cut=pull_cut,
        title=title,
    )
