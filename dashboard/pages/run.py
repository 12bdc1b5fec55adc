"""Dashboard layer: ``/run/<run>`` and ``/run/<run>/<subsystem>`` — first, plain versions.

Both check their URL parts (a run that is not a number, not stored, an unknown
subsystem → a clear message) and show a real summary from the store; the full pages
(outlier grid, filters, drill-down links) replace these later.
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


@guarded
def layout_run_subsystem(
    run: str | None = None, subsystem: str | None = None, **_query: Any
) -> html.Div:
    """One subsystem of one run: counts per status and every result, most severe first."""
    st = state.get()
    number = queries.parse_run(run)
    record = queries.require_report(st, number, subsystem or "")
    results = queries.by_severity(record.results)
    counts = dict.fromkeys(STATUS_ORDER, 0)
    for r in results:
        counts[str(r.status)] += 1
    rows = [
        [
            r.path,
            r.comparator,
            status_mark(str(r.status)),
            _fmt(r.score),
            ", ".join(f"{k} {_fmt(v)}" for k, v in r.scores.items()),
            f"{r.entries:,.0f}",
            r.reason,
        ]
        for r in results
    ]
    prov = record.provenance
    stale = st.store.is_stale(number, record.subsystem)
    return html.Div(
        [
            html.H1(
                [dcc.Link(f"Run {number}", href=f"/run/{number}"), f" · {record.subsystem}"],
                className="page-title",
            ),
            html.P(
                [status_mark(s, f"{counts[s]} {s}", className="me-3") for s in STATUS_ORDER],
                className="counts",
            ),
            html.P(
                f"References: {', '.join(map(str, record.reference_runs)) or 'none'} — "
                f"{record.reference_reason or 'no reason stored'}. Compared "
                f"{fmt_time(prov.created)} with config {prov.config_digest[:12] or '?'} "
                f"(code {prov.code_version or '?'})."
                + (" Stale: the config changed since." if stale else ""),
                className="provenance",
            ),
            html.P(
                [
                    "Export: ",
                    html.A("CSV", href=f"/api/v1/runs/{number}/{record.subsystem}?format=csv"),
                    " · ",
                    html.A("JSON", href=f"/api/v1/runs/{number}/{record.subsystem}"),
                ],
                className="small",
            ),
            plain_table(
                ["Histogram", "Comparator", "Status", "Score", "Scores", "Entries", "Reason"],
                rows,
            )
            if rows
            else html.P(
                f"Run {number} has no {record.subsystem} results stored "
                f"(missing histograms: {len(record.missing)}).",
                className="empty-state",
            ),
        ],
        id=ids.RUNSUB_TABLE,
    )
