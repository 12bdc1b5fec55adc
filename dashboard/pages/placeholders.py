"""Dashboard layer: first versions of ``/alerts`` (a plain list) and ``/compare`` (a pointer).

The full alerts page (acknowledge, silence, audit) and the ad-hoc comparison form come
later; these keep the navigation and the alert banner's link from leading nowhere.
"""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from dashboard import state
from dashboard.components import fmt_time, plain_table, status_mark
from dashboard.pages.notfound import guarded


@guarded
def layout_alerts(**_query: Any) -> html.Div:
    """Every stored alert, newest first, with its acknowledgement."""
    alerts = state.get().store.alerts(limit=200)
    rows = [
        [
            dcc.Link(f"run {a.run} · {a.subsystem}", href=f"/run/{a.run}/{a.subsystem}"),
            status_mark("flagged", f"{a.n_flagged} flagged"),
            fmt_time(a.created),
            f"acknowledged by {a.acked_by} {fmt_time(a.acked_at)}"
            if a.acked_by
            else "not acknowledged",
            ", ".join(f"{k}: {v}" for k, v in a.deliveries.items()) or "—",
        ]
        for a in alerts
    ]
    body: Any = (
        plain_table(["Alert", "Flagged", "Created", "Acknowledged", "Deliveries"], rows)
        if rows
        else html.P(
            "No alert stored: no processed run had flagged histograms at or above the "
            "alert severity.",
            className="empty-state",
        )
    )
    return html.Div(
        [
            html.H1("Alerts", className="page-title"),
            html.P(
                'Acknowledge with POST /api/v1/alerts/<id>/ack {"by": "name"}; '
                "buttons and silences come with the full alerts page.",
                className="text-muted small",
            ),
            body,
        ]
    )


@guarded
def layout_compare(**_query: Any) -> html.Div:
    """Where the ad-hoc comparison form will be."""
    return html.Div(
        [
            html.H1("Compare", className="page-title"),
            html.P(
                "The ad-hoc comparison form is not built yet. Meanwhile: "
                "`autodqm compare DATA.root REF.root --subsystem NAME`.",
                className="empty-state",
            ),
        ]
    )
