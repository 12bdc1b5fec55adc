"""Dashboard layer: ``/run/<run>`` — one run across subsystems (``/run/<run>/<subsystem>``
is ``dashboard/pages/subsystem.py``).

It checks its URL part (a run that is not a number, or not stored → a clear message)
and shows each subsystem's summary and the references used and why.
"""

from __future__ import annotations

import math
from typing import Any

from dash import dcc, html

from dashboard import ids, queries, state
from dashboard.components import STATUS_ORDER, cell_model, fmt_time, plain_table, status_mark
from dashboard.pages.notfound import guarded


def _fmt(x: float | None) -> str:
    return "—" if x is None or math.isnan(x) else f"{x:.3g}"


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
    reasons = []
    for sub in sorted(summary):
        record = st.store.get_report(number, sub)
        if record is not None and record.reference_reason:
            reasons.append(html.Li([html.Strong(f"{sub}: "), record.reference_reason]))
    return html.Div(
        [
            html.H1(f"Run {number}", className="page-title"),
            plain_table(
                ["Subsystem", "Worst status", "Results", "References", "Compared", "Stale"],
                rows,
            ),
            html.H2("Why these references", className="h5"),
            html.Ul(reasons) if reasons else html.P("No reason stored.", className="text-muted"),
        ],
        id=ids.RUN_SUMMARY,
    )
