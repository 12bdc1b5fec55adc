"""Dashboard layer: 2D pull/data/reference maps and score trends (pure)."""

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
from dashboard.figures_base import (
    _PANEL_X,
    EXPECTED_NAMES,
    STATUS_STYLE,
    THEME,
    _array,
    _axis,
    _axis_title,
    _cap,
    _figure,
    _meta,
    _note,
    _refs,
    _scale,
    _title,
    empty_figure,
    region_shapes,
)


def pull_map_2d(
    data: HistData,
    refs: Sequence[HistData],
    result: ComparisonResult | None,
    *,
    pull_cap: float = 10.0,
    title: str | None = None,
) -> go.Figure:
    """Pull map, data map and expected map side by side, zooming together.

    The pull map's diverging scale is fixed to ±``pull_cap``; the data and expected maps
    share one sequential scale. Bins empty in the data and in every reference are blank
    (NaN, which plotly leaves undrawn). The expected map is the comparator's
    ``ref_weighted``/``ref`` array, else the mean of the references scaled to the data.

    Args:
        data: The 2D histogram of the data run.
        refs: Reference histograms; other binnings are noted, not drawn.
        result: The comparison (its ``pulls`` and expected arrays), or None.
        pull_cap: Colour range of the pull map, in sigma.
        title: Figure title; default the cleaned ROOT title.
    """
    return _maps(data, refs, result, means=False, pull_cap=pull_cap, title=title)


def _maps(
    data: HistData,
    refs: Sequence[HistData],
    result: ComparisonResult | None,
    *,
    means: bool,
    pull_cap: float,
    title: str | None,
) -> go.Figure:
    v = np.asarray(data.values if means else data.counts, dtype=np.float64)
    if v.ndim != 2 or v.size == 0:
        return empty_figure(f"{data.path}: nothing to draw ({v.shape} bins)")
    cap, (nx, ny) = _cap(pull_cap), v.shape
    xa, ya = _axis(data, 0, nx), _axis(data, 1, ny)
    drawn, notes = _refs(data, refs, means=means)
    exp = _array(result, ("ref_mean",) if means else ("ref_weighted", "ref", "expected"), v.shape)
    if exp is not None:
        expected, exp_name = exp[1], EXPECTED_NAMES[exp[0]]
    elif drawn:
        expected = np.mean([r for _, r in drawn], axis=0)
        exp_name = f"mean of {len(drawn)} reference(s)" + ("" if means else " scaled to data")
    else:
        expected, exp_name = np.full(v.shape, np.nan), "no reference with this binning"
    pulls = _array(result, ("pulls",), v.shape)
    p = pulls[1] if pulls is not None else np.full(v.shape, np.nan)
    seen = np.asarray(data.counts, dtype=np.float64) != 0
    for ref in refs:
        if ref.values.shape == v.shape:
            seen |= np.asarray(ref.counts) != 0
    seen |= np.isfinite(expected) & (expected != 0)
    blank = ~seen.T
    d_t, e_t, p_t = (np.where(blank, np.nan, a.T) for a in (v, expected, p))
    x_t, y_t, unit = (
        _axis_title(data, 0, "x"),
        _axis_title(data, 1, "y"),
        "(mean)" if means else "entries",
    )
    text = None
    if xa.labels or ya.labels:  # one string per bin, made by numpy string ufuncs
        xs = np.asarray(xa.labels or [f"{c:.4g}" for c in xa.centers], dtype=str)
        ys = np.asarray(ya.labels or [f"{c:.4g}" for c in ya.centers], dtype=str)
        text = np.strings.add(np.strings.add(xs[None, :], f" {TIMES} "), ys[:, None])
    where = "%{text}" if text is not None else f"{x_t} %{{x:.4~g}}, {y_t} %{{y:.4~g}}"
    finite = np.concatenate([d_t[np.isfinite(d_t)], e_t[np.isfinite(e_t)]])
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    lo = lo if means else min(lo, 0.0)
    seq = {"colorscale": _scale(THEME["map_scale"]), "zmin": lo, "zmax": max(hi, lo + 1e-12)}
    panels = (
        (
            p_t,
            f"pull ({SIGMA})" if pulls is not None else "no pulls from this comparator",
            {"colorscale": _scale(THEME["pull_scale"]), "zmin": -cap, "zmax": cap, "zmid": 0},
            SIGMA,
        ),
        (d_t, f"data {data.run}", seq, unit),
        (e_t, exp_name, seq, unit),
    )
    traces: list[Trace] = []
    layout: dict[str, Any] = {"meta": _meta(data, result), "hovermode": "closest"}
    annotations = [_note(n, 1.0, -0.14, xanchor="right") for n in notes]
    maps = [z for z, *_ in panels]  # each heatmap's hover reads its own z, the others' customdata
    for k, ((z, name, scale, bar_title), (x0, x1)) in enumerate(zip(panels, _PANEL_X, strict=True)):
        sx, link = ("", {}) if k == 0 else (str(k + 1), {"matches": "x"})
        traces.append(
            {
                "type": "heatmap",
                "z": z,
                "x": xa.edges,
                "y": ya.edges,
                "name": name,
                "xaxis": f"x{sx}",
                "yaxis": f"y{sx}",
                "customdata": np.stack([q for j, q in enumerate(maps) if j != k], -1).astype("f4"),
                "text": text,
                "hovertemplate": _map_hover(k, where, unit, pulls is not None),
                "hoverongaps": False,
                **scale,
                "colorbar": {
                    "x": x1 + 0.005,
                    "xanchor": "left",
                    "len": 1.0,
                    "thickness": 12,
                    "title": {"text": bar_title, "side": "right"},
                },
            }
        )
        layout[f"xaxis{sx}"] = {
            **xa.layout,
            "domain": [x0, x1],
            "anchor": f"y{sx}",
            "title": {"text": x_t},
            **link,
        }
        layout[f"yaxis{sx}"] = {
            **ya.layout,
            "anchor": f"x{sx}",
            "title": {"text": y_t if k == 0 else ""},
            **({"matches": "y", "showticklabels": False} if k else {}),
        }
        annotations.append(
            _note(f"<b>{name}</b>", (x0 + x1) / 2, 1.0, yanchor="bottom", font={"size": 14})
        )
    layout |= {"annotations": annotations, "margin": {**THEME["margin"], "t": 80},
               "shapes": region_shapes(result, v.shape, xa.edges, ya.edges, ("", "2", "3"))}  # fmt: skip
    return _figure(traces, layout, _title(data, title))


def _map_hover(k: int, where: str, unit: str, has_pull: bool) -> str:
    """Hover of map ``k`` (0 pull, 1 data, 2 expected): its own value is ``z``."""
    fmt = (f"+.2f}} {SIGMA}", f",.6~g}} {unit}", f",.4~g}} {unit}")
    ref = [f"customdata[{i}]" for i in range(2)]
    ref.insert(k, "z")
    data, expected, pull = (f"%{{{ref[j]}:{fmt[j]}" for j in (1, 2, 0))
    pull = f"pull: {pull}" if has_pull else "no pulls"
    return f"{where}<br>data: {data}<br>expected: {expected}<br>{pull}<extra></extra>"


def trend(
    points: Sequence[tuple[int, str, float]],
    *,
    threshold: float | None = 1.0,
    title: str | None = None,
    logy: bool = False,
) -> go.Figure:
    """Severity of one histogram and comparator across runs, the cut as a dashed line.

    A status is a marker symbol, a colour and hover text (never colour alone): ``x``
    flagged, ``circle`` ok, ``diamond`` skipped, ``triangle-up`` error. Runs are
    categories in run order, so gaps between run numbers take no room.

    Args:
        points: ``(run, status, score)`` per run, in any order; a non-finite score is 0.
        threshold: Severity at which a result is flagged (1 = at the cut); None: no line.
        title: Figure title.
        logy: Log severity axis.
    """
    if not points:
        return empty_figure("no results for this histogram in recent runs")
    pts = sorted(points, key=lambda pt: int(pt[0]))
    runs = np.array([str(int(pt[0])) for pt in pts])
    status = np.array([str(pt[1]).lower() for pt in pts])
    score = np.array([float(pt[2]) for pt in pts])
    score = np.where(np.isfinite(score), score, 0.0)
    traces: list[Trace] = [
        {
            "type": "scatter",
            "mode": "lines",
            "x": runs,
            # skipped and error scores are no severities: the line does not run through them
            "y": np.where(np.isin(status, ("skipped", "error")), np.nan, score),
            "showlegend": False,
            "hoverinfo": "skip",
            "line": {"width": 1, "color": "#999999"},
        }
    ]
    for st in [*(s for s in STATUS_STYLE if s in status), *sorted(set(status) - set(STATUS_STYLE))]:
        symbol, colour = STATUS_STYLE.get(st, ("circle-open", "#555555"))
        sel = status == st
        tpl = f"run %{{x}}<br>{st}<br>severity %{{y:.3~g}} {TIMES} cut<extra></extra>"
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "x": runs[sel],
                "y": score[sel],
                "name": st,
                "cliponaxis": False,
                "marker": {
                    "symbol": symbol,
                    "color": colour,
                    "size": 11,
                    "line": {"width": 1.5, "color": colour},
                },
                "hovertemplate": tpl,
            }
        )
    shapes = []
    if threshold is not None and math.isfinite(threshold):
        line = {"dash": "dash", "width": 1.5, "color": THEME["expected"]}
        shapes.append(
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "yref": "y",
                "y0": threshold,
                "y1": threshold,
                "line": line,
            }
        )
    layout = {
        "xaxis": {
            "type": "category",
            "categoryorder": "array",
            "categoryarray": runs,
            "title": {"text": "run"},
        },
        "yaxis": {
            "title": {"text": f"severity ({TIMES} cut)"},
            "rangemode": "tozero",
            "type": "log" if logy else "linear",
        },
        "shapes": shapes,
        "meta": {"threshold": threshold},
    }
    return _figure(traces, layout, title or "")
