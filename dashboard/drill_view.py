"""Dashboard layer: pure builders of the drill-down's pieces — the verdict in words, scores,
the comparator panel, the trend links and the stored verdict (no store, no request)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from dash import dcc, html

from dashboard import ids
from dashboard.components import fmt_time, plain_table, status_mark
from dashboard.figures import TIMES
from dashboard.verdicts import words
from engine.types import ComparisonResult, Status


def _g(x: float | None) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.4g}"


def explain(r: ComparisonResult) -> str:
    """One sentence: what the comparator decided and why, in words."""
    cut = f"{_g(r.threshold)}" if r.threshold is not None else "its cut"
    detail = f": {r.reason}" if r.reason else ""
    if r.status == Status.FLAGGED:
        return f"Flagged by {r.comparator}: severity {_g(r.score)} ≥ {cut} ({TIMES} cut){detail}."
    if r.status == Status.OK:
        return f"{r.comparator} finds no problem: severity {_g(r.score)} < {cut} ({TIMES} cut){detail}."
    if r.status == Status.SKIPPED:
        return f"{r.comparator} did not judge this histogram{detail or ' (no reason stored)'}."
    return f"{r.comparator} failed on this histogram{detail or ' (no reason stored)'}."


def scores_table(r: ComparisonResult) -> html.Table:
    """Severity, threshold, entries and every named score of one result."""
    rows: list[list[Any]] = [
        ["status", status_mark(str(r.status))],
        [f"severity ({TIMES} cut)", _g(r.score)],
        ["flag at severity", _g(r.threshold)],
        ["entries", f"{r.entries:,.0f}" if math.isfinite(r.entries) else "—"],
    ]
    rows += [[k, _g(v)] for k, v in r.scores.items()]
    return plain_table(["score", "value"], rows, class_name="scores-table")


def verdict_view(v: Mapping[str, Any] | None) -> html.Div:
    """The stored verdict with who and when (or that none is given)."""
    body: Any = (
        [
            html.Strong(words(str(v["verdict"]))),
            f" — by {v.get('by', '?')}, {fmt_time(str(v.get('at', '')))}",
        ]
        if v
        else html.Span("No verdict given yet.", className="text-muted")
    )
    return html.Div(body, id=ids.DRILL_VERDICT, className="verdict-now", role="status")


def trend_links(run: int, subsystem: str, path: str, comparator: str,
                points: Sequence[tuple[int, Any, float, Any]], href: Any) -> html.Div:  # fmt: skip
    """The trend's runs as links to their drill-downs (newest first; this run marked)."""
    items: list[Any] = []
    for r, status, score, _ in reversed(points):
        mark = status_mark(str(status), f"{r} ({_g(score)})")
        if r == run:
            items.append(html.Li(html.Strong(["this run: ", mark]), className="trend-this"))
        else:
            items.append(html.Li(dcc.Link(mark, href=href(r, subsystem, path, comparator))))
    if not items:
        return html.Div(
            "No stored result of this histogram in recent runs.", className="text-muted"
        )
    return html.Div(
        [html.Span("Recent runs: ", className="me-1"), html.Ul(items, className="trend-links")]
    )


def graph_config(run: int, subsystem: str, histogram: str, suffix: str = "") -> dcc.Graph.Config:
    """A ``dcc.Graph`` config whose modebar camera downloads a 2x PNG named after the plot:
    ``<run>_<subsystem>_<histogram, "/" as "_">[_<suffix>].png``, no Plotly logo."""
    name = f"{run}_{subsystem}_{histogram.replace('/', '_')}" + (f"_{suffix}" if suffix else "")
    config: dcc.Graph.Config = {
        "toImageButtonOptions": {"format": "png", "filename": name, "scale": 2},
        "displaylogo": False,
    }
    return config


def panel(
    r: ComparisonResult,
    figure: Any,
    problems: Sequence[str],
    trend_fig: Any,
    links: Any,
    verdict: Mapping[str, Any] | None,
    *,
    run: int,
    subsystem: str,
) -> list[Any]:
    """The comparator panel: plot (or why there is none), reason, scores, trend, verdict.

    ``run`` and ``subsystem`` name the PNG files the plots' camera buttons download.
    """
    plot: Any = (
        dcc.Graph(
            id=ids.DRILL_FIGURE,
            figure=figure,
            className="drill-figure",
            config=graph_config(run, subsystem, r.path),
        )
        if figure is not None
        else html.Div(id=ids.DRILL_FIGURE)
    )
    notes = [html.P(p, className="empty-state drill-problem") for p in problems]
    return [
        html.Div([*notes, plot], className="drill-plot"),
        html.Div(
            [
                html.P(explain(r), id=ids.DRILL_REASON, className="drill-reason"),
                html.H2("Scores", className="h6"),
                scores_table(r),
                html.H2("Verdict", className="h6"),
                verdict_view(verdict),
            ],
            className="drill-side",
        ),
        html.Div(
            [
                html.H2(f"{r.comparator} across recent runs", className="h6"),
                dcc.Graph(
                    id=ids.DRILL_TREND,
                    figure=trend_fig,
                    className="drill-trend",
                    config=graph_config(run, subsystem, r.path, f"{r.comparator}_trend"),
                ),
                links,
            ],
            className="drill-trend-wrap",
        ),
    ]
