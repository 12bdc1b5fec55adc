"""Dashboard layer: figure theme and helpers shared by the figure builders (no dash import)."""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import plotly.colors
import plotly.graph_objects as go
import plotly.io as pio

from dashboard.latex import clean_root_latex
from engine.types import ComparisonResult, HistData

logger = logging.getLogger(__name__)

Array = np.ndarray[Any, np.dtype[Any]]
Trace = dict[str, Any]
SIGMA, TIMES = "\u03c3", "\u00d7"

#: Look of every figure: readable on a control-room screen, transparent paper for dark mode.
THEME: dict[str, Any] = {
    "template": "plotly_white",
    "font": {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", "size": 15},
    "title_font": {"size": 18},
    "note_font": {"size": 12},
    "margin": {"l": 70, "r": 30, "t": 90, "b": 60},
    "paper_bgcolor": "rgba(0,0,0,0)",
    "data": "#000000",
    "expected": "#D55E00",
    "expected_band": "rgba(213,94,0,0.25)",
    # Okabe-Ito colours: distinguishable with the common colour-vision deficiencies
    "references": ("#0072B2", "#009E73", "#CC79A7", "#56B4E9", "#E69F00", "#999999"),
    "pull_scale": "RdBu_r",  # red: data above expectation, blue: below
    "map_scale": "Viridis",
    "region": "#000000",  # dotted outline of a comparator's worst region
}
#: Trend markers: a status is a symbol, a colour and hover text, never colour alone.
STATUS_STYLE: dict[str, tuple[str, str]] = {
    "ok": ("circle", "#009E73"),
    "flagged": ("x", "#D55E00"),
    "skipped": ("diamond", "#999999"),
    "error": ("triangle-up", "#CC79A7"),
}
#: Legend names of the comparators' expected-value arrays, in order of preference.
EXPECTED_NAMES: dict[str, str] = {
    "ref_weighted": "expected (probability-weighted)",
    "ref": "expected (reference scaled to data)",
    "ref_mean": "expected (weighted reference mean)",
    "expected": "normal (learned from the references)",
}
_PANEL_X = ((0.0, 0.26), (0.355, 0.615), (0.71, 0.97))


class _Axis(NamedTuple):
    edges: Array  # plotted bin edges (n + 1)
    centers: Array
    lo: Array  # true bin edges, for hover
    hi: Array
    labels: tuple[str, ...] | None
    layout: dict[str, Any]  # axis type and ticks


@functools.cache
def _template() -> dict[str, Any]:
    # validating a named template costs ~15 ms per figure; its dict form costs nothing
    return pio.templates[THEME["template"]].to_plotly_json()  # type: ignore[no-any-return]


@functools.cache
def _scale(name: str) -> list[list[Any]]:
    # explicit stops: unvalidated figures keep names, and plotly.js knows no "_r" names
    return plotly.colors.get_colorscale(name)  # type: ignore[no-any-return]


def _figure(traces: list[Trace], layout: dict[str, Any], title: str) -> go.Figure:
    base = {
        "template": _template(),
        "font": THEME["font"],
        "margin": THEME["margin"],
        "paper_bgcolor": THEME["paper_bgcolor"],
        "title": {
            "text": title,
            "font": THEME["title_font"],
            "x": 0.01,
            "xanchor": "left",
            "y": 0.98,
            "yanchor": "top",
        },
        # "normal" order keeps the grouped references on one legend row
        "legend": {
            "orientation": "h",
            "x": 0.0,
            "y": 1.02,
            "yanchor": "bottom",
            "traceorder": "normal",
        },
        "hoverlabel": {"font": {"family": THEME["font"]["family"]}},
    }
    # unvalidated: validation would cost 5-10x the build; the tests validate every figure
    return go.Figure({"data": traces, "layout": {**base, **layout}}, _validate=False)


def _note(text: str, x: float, y: float, **extra: Any) -> dict[str, Any]:
    """An annotation placed in paper coordinates."""
    return {
        "text": text,
        "x": x,
        "y": y,
        "xref": "paper",
        "yref": "paper",
        "showarrow": False,
        "font": THEME["note_font"],
        **extra,
    }


def empty_figure(message: str) -> go.Figure:
    """A figure with nothing but ``message`` centred, for empty states.

    Args:
        message: Why there is nothing to draw ("run 357130 has no CSC histograms in its file").
    """
    layout = {
        "xaxis": {"visible": False},
        "yaxis": {"visible": False},
        "annotations": [_note(message, 0.5, 0.5, font={"size": 17})],
        "meta": {"empty": True, "message": message},
    }
    return _figure([], layout, "")


def _meta(data: HistData, result: ComparisonResult | None) -> dict[str, Any]:
    return {"path": data.path, "run": data.run, "comparator": result and result.comparator}


def _title(data: HistData, title: str | None) -> str:
    return title if title is not None else clean_root_latex(data.title) or data.path


def _axis_title(data: HistData, i: int, default: str) -> str:
    return clean_root_latex(data.axis_titles[i] if len(data.axis_titles) > i else "") or default


def _axis(data: HistData, i: int, n: int, log: bool = False) -> _Axis:
    """Geometry of axis ``i`` with ``n`` bins: labels as ticks, log only if edges allow it."""
    labels = data.labels[i] if len(data.labels) > i else None
    if labels is not None and len(labels) == n and any(lab.strip() for lab in labels):
        # a linear axis with tick text, not type "category": DQM labels repeat (blanks)
        e = np.arange(n + 1, dtype=np.float64) - 0.5
        ticks = {"type": "linear", "tickmode": "array", "tickvals": np.arange(n)}
        labels = tuple(clean_root_latex(lab) for lab in labels)
        return _Axis(e, e[:-1] + 0.5, e[:-1], e[1:], labels, {**ticks, "ticktext": labels})
    e = np.asarray(data.edges[i], dtype=np.float64) if len(data.edges) > i else np.empty(0)
    if e.shape != (n + 1,) or not np.all(np.isfinite(e)) or not np.all(np.diff(e) > 0):
        e = np.arange(n + 1, dtype=np.float64)  # unusable edges: draw against the bin index
    lo, hi = e[:-1], e[1:]
    if log and e[-1] > 0:
        shown = np.maximum(e, e[e > 0][0] / 10.0)  # a non-positive edge cannot be drawn
        return _Axis(shown, np.sqrt(shown[:-1] * shown[1:]), lo, hi, None, {"type": "log"})
    return _Axis(e, (lo + hi) / 2.0, lo, hi, None, {"type": "linear"})


def _array(
    result: ComparisonResult | None, keys: Sequence[str], shape: tuple[int, ...]
) -> tuple[str, Array] | None:
    """``(key, array)`` for the first of ``keys`` in ``result.arrays`` that has ``shape``."""
    arrays = result.arrays if result is not None else {}
    for key in keys:
        if key in arrays and np.shape(arrays[key]) == shape:
            return key, np.asarray(arrays[key], dtype=np.float64)
    return None


def _finite_sum(a: Array) -> float:
    return float(np.sum(a, where=np.isfinite(a)))


def _refs(
    data: HistData, refs: Sequence[HistData], means: bool
) -> tuple[list[tuple[int, Array]], list[str]]:
    """``(run, array)`` of the drawable references (counts scaled to the data), and notes."""
    shape, out, notes = data.values.shape, [], []
    d_total = _finite_sum(np.asarray(data.counts, dtype=np.float64))
    for ref in refs:
        r = np.asarray(ref.values if means else ref.counts, dtype=np.float64)
        if r.shape != shape:
            notes.append(f"ref {ref.run} not drawn: {r.shape} bins, data has {shape}")
            continue
        r_total = _finite_sum(r)
        if not means and d_total > 0 and r_total > 0:
            r = r * (d_total / r_total)
        out.append((ref.run, r))
    return out, notes


def _cap(pull_cap: float) -> float:
    return float(pull_cap) if math.isfinite(pull_cap) and pull_cap > 0 else 10.0


def _step(x: _Axis, y: Array, floor: float = -math.inf, **style: Any) -> Trace:
    """A step line over the bin edges; on a log axis values below ``floor`` sit at it."""
    shown = np.maximum(y, floor)  # NaN stays NaN: a gap
    return {
        "type": "scatter",
        "mode": "lines",
        "x": x.edges,
        "y": np.append(shown, shown[-1]),
        "line_shape": "hv",
        "hoverinfo": "skip",
        **style,
    }


def _expected_traces(
    x: _Axis, center: Array, spread: Array | None, name: str, floor: float = -math.inf
) -> list[Trace]:
    """The expected histogram as a dashed step line, with a shaded ``± spread`` band."""
    traces: list[Trace] = []
    if spread is not None:
        edge: dict[str, Any] = {"legendgroup": "expected", "showlegend": False,
                                "line": {"width": 0}}  # fmt: skip
        traces.append(_step(x, center + spread, floor, **edge))
        traces.append(_step(x, center - spread, floor, fill="tonexty",
                            fillcolor=THEME["expected_band"], **edge))  # fmt: skip
    line = {"width": 2, "dash": "dash", "color": THEME["expected"]}
    traces.append(_step(x, center, floor, name=name, legendgroup="expected", line=line))
    return traces


def region_shapes(
    result: ComparisonResult | None,
    shape: tuple[int, ...],
    x_edges: Array,
    y_edges: Array | None = None,
    panels: Sequence[str] = ("",),
) -> list[Trace]:
    """A dotted box around the bins of the comparator's ``region`` array (its worst cell),
    1D: the figure's height, labelled "worst region"; 2D: on each panel (axis suffixes
    ``panels``), unlabelled (a small box has no room; the reason says where)."""
    reg = _array(result, ("region",), shape)
    if reg is None or not np.any(reg[1] > 0):
        return []
    idx = np.nonzero(reg[1] > 0)
    i0, i1 = int(idx[0].min()), int(idx[0].max()) + 1
    style: Trace = {"type": "rect", "line": {"color": THEME["region"], "width": 2, "dash": "dot"},
                    "fillcolor": "rgba(0,0,0,0)", "x0": float(x_edges[i0]),
                    "x1": float(x_edges[i1])}  # fmt: skip
    label = {"text": "worst region", "textposition": "top left", "font": {"size": 11}}
    if y_edges is None or len(idx) < 2:
        return [{**style, "xref": "x", "yref": "paper", "y0": 0.0, "y1": 1.0, "label": label}]
    j0, j1 = int(idx[1].min()), int(idx[1].max()) + 1
    return [
        {
            **style,
            "xref": f"x{p}",
            "yref": f"y{p}",
            "y0": float(y_edges[j0]),
            "y1": float(y_edges[j1]),
        }
        for p in panels
    ]


def _hover_1d(x: _Axis, unit: str, exp: bool, pull: bool) -> str:
    where = "%{text}" if x.labels else "[%{customdata[0]:.4~g}, %{customdata[1]:.4~g})"
    lines = [f"bin {where}", f"data: %{{customdata[2]:,.6~g}} ± %{{customdata[5]:.2~g}} {unit}"]
    if exp:
        lines.append(f"expected: %{{customdata[3]:,.4~g}} {unit}")
    if pull:
        lines.append(f"pull: %{{customdata[4]:+.2f}} {SIGMA}")
    return "<br>".join(lines) + "<extra></extra>"


def _two_rows(
    data: HistData,
    result: ComparisonResult | None,
    x: _Axis,
    top: tuple[list[Trace], list[str], str, Array, str],
    pulls: Array | None,
    *,
    logy: bool,
    pull_cap: float,
    pull_cut: float | None,
    title: str | None,
) -> go.Figure:
    """The 1D layout: ``top`` (traces, notes, y unit, customdata, hover) over the pulls."""
    traces, notes, unit, cd, tpl = top
    cap, shapes = _cap(pull_cap), []
    annotations = [_note(n, 1.0, 1.0, xanchor="right", yanchor="top") for n in notes]
    if pulls is not None:
        traces.append(
            {
                "type": "bar",
                "x": x.centers,
                "y": np.clip(pulls, -cap, cap),
                "xaxis": "x2",
                "yaxis": "y2",
                "name": "pull",
                "showlegend": False,
                "text": x.labels,
                "width": None if x.layout["type"] == "log" else np.diff(x.edges),
                "marker": {
                    "color": pulls,
                    "colorscale": _scale(THEME["pull_scale"]),
                    "cmin": -cap,
                    "cmax": cap,
                    "line": {"width": 0},
                },
                "customdata": cd,
                "hovertemplate": tpl,
                "textposition": "none",
            }
        )
        if pull_cut is not None and math.isfinite(pull_cut):
            line = {"dash": "dash", "width": 1, "color": THEME["expected"]}
            shapes = [
                {
                    "type": "line",
                    "xref": "x2 domain",
                    "x0": 0,
                    "x1": 1,
                    "yref": "y2",
                    "y0": c,
                    "y1": c,
                    "line": line,
                }
                for c in (pull_cut, -pull_cut)
            ]
    else:
        what = result.comparator if result is not None else "no comparison"
        annotations.append(_note(f"no per-bin pulls ({what})", 0.5, 0.12))
    pull_title = f"pull ({SIGMA})"
    layout = {
        "xaxis": {**x.layout, "matches": "x2", "showticklabels": False, "anchor": "y"},
        "xaxis2": {**x.layout, "anchor": "y2", "title": {"text": _axis_title(data, 0, "bin")}},
        "yaxis": {
            "domain": [0.31, 1.0],
            "anchor": "x",
            "type": "log" if logy else "linear",
            "title": {"text": _axis_title(data, 1, unit)},
        },
        "yaxis2": {
            "domain": [0.0, 0.25],
            "anchor": "x2",
            "title": {"text": pull_title},
            "range": [-1.1 * cap, 1.1 * cap],
            "zeroline": True,
        },
        "shapes": shapes + region_shapes(result, (len(x.edges) - 1,), x.edges),
        "annotations": annotations,
        "hovermode": "closest",
        "bargap": 0,
        "meta": _meta(data, result),
    }
    return _figure(traces, layout, _title(data, title))
