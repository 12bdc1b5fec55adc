"""Dashboard layer: ``/run/<run>`` — one run across subsystems (``/run/<run>/<subsystem>``
is ``dashboard/pages/subsystem.py``).

It checks its URL part (a run that is not a number, or not stored → a clear message)
and shows each subsystem's summary, the most severe histograms of all subsystems ranked
together (:mod:`engine.outliers`), and the references used and why.
"""

from __future__ import annotations

import math
from typing import Any

from dash import dcc, html

from dashboard import ids, queries, state
from dashboard.components import STATUS_ORDER, cell_model, fmt_time, plain_table, status_mark
from dashboard.figures import TIMES
from dashboard.pages.notfound import guarded
from dashboard.pages.subsystem import hist_href
from engine import outliers


def _fmt(x: float | None) -> str:
    return "—" if x is None or math.isnan(x) else f"{x:.3g}"


#: Rows of the cross-subsystem outlier table.
TOP_OUTLIERS = 20


def _outlier_table(run: int, worst: list[outliers.HistogramVerdict]) -> Any:
    """The run's flagged histograms of every subsystem, ranked by severity (x cut)."""
    if not worst:
        return html.P(f"No histogram of run {run} is flagged by any test.",
                      className="text-muted", id=ids.RUN_OUTLIERS)  # fmt: skip
    rows = [
        [
            str(i),
            v.subsystem,
            dcc.Link(v.path, href=hist_href(run, v.subsystem, v.path, v.lead)),
            f"{v.severity:.3g}",
            f"{len(v.flagged_by)} of {v.tests}: {', '.join(v.flagged_by)}",
            v.reason,
        ]
        for i, v in enumerate(worst[:TOP_OUTLIERS], 1)
    ]
    more = len(worst) - TOP_OUTLIERS
    note = [html.P(f"… and {more} more flagged histograms (see each subsystem's table).",
                   className="text-muted")] if more > 0 else []  # fmt: skip
    table = plain_table(
        ["#", "Subsystem", "Histogram", f"Severity ({TIMES} cut)", "Flagged by", "Most severe, why"],
        rows, class_name="outliers",
    )  # fmt: skip
    return html.Div([table, *note], id=ids.RUN_OUTLIERS)


@guarded
def layout_run(run: str | None = None, **_query: Any) -> html.Div:
    """One run across subsystems: status, counts, references and why."""
    st = state.get()
    number = queries.parse_run(run)
    summary = queries.require_run(st, number)
    known = st.known_subsystems()
    rows = []
    for sub in sorted(summary, key=lambda s: known.index(s) if s in known else len(known)):
        entry = summary[sub]
        m = cell_model(entry)
        counts = entry.get("counts", {})
        rows.append(
            [
                dcc.Link(sub, href=f"/run/{number}/{sub}"),
                status_mark(m["status"], m["text"]),
                " · ".join(f"{counts.get(s, 0)} {s}" for s in STATUS_ORDER),
                ", ".join(str(r) for r in entry.get("reference_runs", [])) or "—",
                fmt_time(str(entry.get("created", ""))),
                "yes (config changed)" if entry.get("stale") else "no",
            ]
        )
    reports = queries.run_reports(st, number, summary)
    reasons = [html.Li([html.Strong(f"{sub}: "), r.reference_reason])
               for sub, r in reports.items() if r.reference_reason]  # fmt: skip
    worst = queries.run_outliers(reports)
    return html.Div(
        [
            html.H1(f"Run {number}", className="page-title"),
            plain_table(
                ["Subsystem", "Worst status", "Results", "References", "Compared", "Stale"],
                rows,
            ),
            html.H2("Most severe histograms across subsystems", className="h5"),
            _outlier_table(number, worst),
            html.H2("Why these references", className="h5"),
            html.Ul(reasons) if reasons else html.P("No reason stored.", className="text-muted"),
        ],
        id=ids.RUN_SUMMARY,
    )
