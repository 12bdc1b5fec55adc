"""Dashboard layer: the alerts page (``/alerts``) — acknowledge, silence, and who did what.

Every change goes through the service layer (``AppState.ack_alert``/``silence``/
``unsilence`` → ``engine.service``), with the acting user from "Acting as"
(:mod:`dashboard.pages.identity`); without a name nothing changes and the page says
why. ``?unacked=1`` and ``?subsystem=NAME`` preset the filters.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, callback, ctx, dcc, html
from dash.exceptions import PreventUpdate

from dashboard import ids, state
from dashboard.components import fmt_time, plain_table, status_mark
from dashboard.pages import identity
from dashboard.pages.notfound import guarded
from engine.errors import DQMError
from engine.store import Alert
from engine.times import parse_iso, utc_iso

logger = logging.getLogger(__name__)

LIMIT = 200
AUDIT_LIMIT = 50
#: Silence durations offered: key → (label, length; None = "custom until").
DURATIONS: Mapping[str, tuple[str, timedelta | None]] = {
    "1h": ("1 hour", timedelta(hours=1)),
    "8h": ("8 hours", timedelta(hours=8)),
    "24h": ("24 hours", timedelta(hours=24)),
    "7d": ("7 days", timedelta(days=7)),
    "custom": ("until … (UTC)", None),
}
ANY = "*"


@dataclass(frozen=True, slots=True)
class SilenceForm:
    """What the "add a silence" form holds."""

    subsystem: str | None = ANY
    pattern: str | None = ANY
    duration: str | None = "8h"
    until: str | None = ""
    reason: str | None = ""


def _flag(value: Any) -> bool:
    return str(value).lower() in ("1", "true", "yes", "on")


@guarded
def layout(unacked: str | None = None, subsystem: str | None = None, **_q: Any) -> html.Div:
    """The alerts list with its filters, the silences with their form, the audit log."""
    st = state.get()
    sub = st.check_subsystem(subsystem) if subsystem else ""
    filters = {"unacked": _flag(unacked), "subsystem": sub}
    subs = st.known_subsystems()
    return html.Div(
        [
            html.H1("Alerts", className="page-title"),
            identity.widget(),
            html.Div(id=ids.ALERTS_MESSAGE, role="status"),
            dbc.Row(
                [
                    dbc.Col(
                        dbc.Checklist(
                            id=ids.ALERTS_UNACKED,
                            switch=True,
                            inline=True,
                            options=[{"label": "unacknowledged only", "value": "unacked"}],
                            value=["unacked"] if filters["unacked"] else [],
                        ),
                        width="auto",
                    ),
                    dbc.Col(
                        dcc.Dropdown(
                            id=ids.ALERTS_SUBSYSTEM,
                            clearable=False,
                            searchable=False,
                            options=[{"label": "all subsystems", "value": ""}]
                            + [{"label": s, "value": s} for s in subs],
                            value=sub,
                            style={"minWidth": "12rem"},
                        ),
                        width="auto",
                    ),
                ],
                className="g-3 align-items-center mb-2",
            ),
            html.Div(alert_list(st, filters), id=ids.ALERTS_LIST),
            html.H2("Silences", className="h5 mt-4"),
            silence_form(subs),
            html.Div(silence_table(st), id=ids.ALERTS_SILENCES),
            html.H2("Audit log — who did what", className="h5 mt-4"),
            html.Div(audit_table(st), id=ids.ALERTS_AUDIT),
        ],
        className="alerts-page",
    )


# -- rendering ---------------------------------------------------------------------------
def _delivery(alert: Alert) -> list[Any]:
    if alert.silenced_by:
        return [html.Div(f"silenced by {alert.silenced_by} — not sent", className="text-muted")]
    if not alert.deliveries:
        return [html.Div("no channel configured", className="text-muted")]
    out = []
    for channel, raw in alert.deliveries.items():
        word, _, rest = str(raw).partition(" ")
        when, sep, why = rest.partition(": ")
        shown = f"{word} {fmt_time(when)}{sep}{why}" if when[:2] == "20" else str(raw)
        out.append(html.Div(f"{channel}: {shown}"))
    return out


def _outliers(alert: Alert) -> html.Ul:
    items = []
    for t in alert.top:
        path = str(t.get("histogram", ""))
        href = f"/run/{alert.run}/{alert.subsystem}/{urllib.parse.quote(path, safe='/')}"
        score = t.get("score")
        items.append(
            html.Li(
                [
                    dcc.Link(path, href=href),
                    f" · {t.get('comparator', '')}"
                    + (f" {float(score):.3g}" if isinstance(score, (int, float)) else ""),
                ]
            )
        )
    return html.Ul(items, className="list-unstyled mb-0 small")


def _ack_cell(alert: Alert) -> Any:
    if alert.acked_by:
        return html.Span(
            f"✓ acknowledged by {alert.acked_by} {fmt_time(alert.acked_at)}", className="st st-ok"
        )
    return dbc.Button(
        "Acknowledge",
        id={"type": ids.ALERTS_ACK, "id": alert.id},
        size="sm",
        color="primary",
        title=f"acknowledge alert {alert.id}",
    )


def alert_list(st: state.AppState, filters: Mapping[str, Any]) -> Any:
    """The alerts matching ``filters`` (unacked, subsystem), newest first, as a table."""
    sub = str(filters.get("subsystem") or "")
    found = st.store.alerts(limit=LIMIT, unacked_only=bool(filters.get("unacked")))
    found = [a for a in found if not sub or a.subsystem == sub]
    if not found:
        what = "unacknowledged " if filters.get("unacked") else ""
        return html.P(
            f"No {what}alert{' of ' + sub if sub else ''} stored: no processed run had flagged "
            "histograms at or above the alert severity.",
            className="empty-state",
        )
    rows = [
        [
            html.Div(
                [
                    dcc.Link(f"run {a.run} · {a.subsystem}", href=f"/run/{a.run}/{a.subsystem}"),
                    html.Div(a.dataset, className="cell-detail"),
                ]
            ),
            fmt_time(a.created),
            status_mark("flagged", f"{a.n_flagged} flagged"),
            _outliers(a),
            _delivery(a),
            _ack_cell(a),
        ]
        for a in found
    ]
    header = ["Alert", "Created", "Flagged", "Top outliers", "Delivery", "Acknowledged"]
    return html.Div(
        [
            html.P(
                f"{len(found)} alert{'s' * (len(found) != 1)}, newest first",
                className="text-muted small mb-1",
            ),
            plain_table(header, rows, class_name="alerts-table"),
        ]
    )


def silence_form(subs: list[str]) -> dbc.Form:
    """Subsystem ("*" = all), histogram pattern, duration or custom end, reason."""
    opts = [{"label": "* (all subsystems)", "value": ANY}] + [
        {"label": s, "value": s} for s in subs
    ]
    durations = [{"label": label, "value": k} for k, (label, _) in DURATIONS.items()]
    field = "col-auto"
    return dbc.Form(
        dbc.Row(
            [
                html.Div(
                    [
                        dbc.Label("Subsystem", html_for=ids.SILENCE_SUBSYSTEM),
                        dcc.Dropdown(
                            id=ids.SILENCE_SUBSYSTEM,
                            options=opts,
                            value=ANY,
                            clearable=False,
                            style={"minWidth": "11rem"},
                        ),
                    ],
                    className=field,
                ),
                html.Div(
                    [
                        dbc.Label("Histogram pattern (fnmatch)", html_for=ids.SILENCE_PATTERN),
                        dbc.Input(id=ids.SILENCE_PATTERN, value=ANY, placeholder="Occupancy/*"),
                    ],
                    className=field,
                ),
                html.Div(
                    [
                        dbc.Label("For", html_for=ids.SILENCE_DURATION),
                        dcc.Dropdown(
                            id=ids.SILENCE_DURATION,
                            options=durations,
                            value="8h",
                            clearable=False,
                            searchable=False,
                            style={"minWidth": "9rem"},
                        ),
                    ],
                    className=field,
                ),
                html.Div(
                    [
                        dbc.Label("Until (custom, UTC)", html_for=ids.SILENCE_UNTIL),
                        dbc.Input(id=ids.SILENCE_UNTIL, placeholder="2026-05-01 18:00"),
                    ],
                    className=field,
                ),
                html.Div(
                    [
                        dbc.Label("Reason", html_for=ids.SILENCE_REASON),
                        dbc.Input(
                            id=ids.SILENCE_REASON, placeholder="why (e.g. known HV trip, ticket #)"
                        ),
                    ],
                    className="col",
                ),
                html.Div(
                    dbc.Button("Add silence", id=ids.SILENCE_ADD, color="secondary"),
                    className="col-auto align-self-end",
                ),
            ],
            className="g-2 mb-2",
        ),
        className="silence-form",
    )


def _left(until: str, now: datetime) -> str:
    seconds = (parse_iso(until) - now).total_seconds()
    hours = seconds / 3600
    return f"{hours:.1f} h left" if hours < 48 else f"{hours / 24:.1f} days left"


def silence_table(st: state.AppState, now: datetime | None = None) -> Any:
    """The silences active now, newest first, each with a "Lift" button."""
    now = now or datetime.now(UTC)
    active = st.store.silences(active_at=utc_iso(now))
    if not active:
        return html.P("No active silence: every alert is delivered.", className="text-muted")
    rows = [
        [
            s.subsystem,
            html.Code(s.pattern),
            [fmt_time(s.until), html.Span(_left(s.until, now), className="cell-detail")],
            s.by,
            s.reason or "—",
            fmt_time(s.created),
            dbc.Button(
                "Lift",
                id={"type": ids.ALERTS_LIFT, "id": s.id},
                size="sm",
                color="outline-secondary",
                title=f"lift silence {s.id} now",
            ),
        ]
        for s in active
    ]
    header = ["Subsystem", "Pattern", "Until", "Created by", "Reason", "Created", ""]
    return plain_table(header, rows, class_name="silences-table")


def describe(entry: Mapping[str, Any]) -> Any:
    """One audit entry in words."""
    action = str(entry.get("action", "?"))
    if action == "ack":
        return f"acknowledged alert {entry.get('alert', '?')}"
    if action == "silence":
        return (
            f"silenced {entry.get('subsystem')} / {entry.get('pattern')} until "
            f"{fmt_time(str(entry.get('until', '')))}: {entry.get('reason') or 'no reason'}"
        )
    if action == "unsilence":
        return f"lifted silence {entry.get('silence', '?')}"
    if action == "compare" and entry.get("job"):
        job = str(entry["job"])
        return ["ran the ad-hoc comparison ", dcc.Link(job, href=f"/compare/{job}")]
    rest = {k: v for k, v in entry.items() if k not in ("at", "by", "action", "seq")}
    return f"{action} " + ", ".join(f"{k}={v}" for k, v in rest.items())


def audit_table(st: state.AppState) -> Any:
    """The latest audit entries, newest first."""
    entries = st.store.audit(AUDIT_LIMIT)
    if not entries:
        return html.P("Nobody has acted yet.", className="text-muted")
    rows = [[fmt_time(str(e.get("at", ""))), str(e.get("by", "")), describe(e)] for e in entries]
    return plain_table(["When", "Who", "What"], rows, class_name="audit-table")


# -- actions -----------------------------------------------------------------------------
def parse_until(text: str | None, now: datetime) -> datetime:
    """A custom silence end typed as UTC (``2026-05-01 18:00``); BadInput if unusable."""
    raw = (text or "").strip()
    cleaned = raw.removesuffix("UTC").strip().removesuffix("Z").replace(" ", "T", 1)
    try:
        when = parse_iso(cleaned).astimezone(UTC) if cleaned else None
    except ValueError:
        when = None
    if when is None:
        msg = f"Until {raw!r}: expected a UTC date and time such as 2026-05-01 18:00"
        raise state.BadInput(msg)
    if when <= now:
        msg = f"Until {fmt_time(utc_iso(when))} is in the past (now {fmt_time(utc_iso(now))})"
        raise state.BadInput(msg)
    return when


def add_silence(st: state.AppState, user: str, form: SilenceForm, now: datetime) -> str:
    """Check the form and add the silence; the message to show. BadInput if unusable."""
    pattern = (form.pattern or "").strip()
    if not pattern:
        msg = "Histogram pattern: give an fnmatch pattern such as Occupancy/* (or * for all)"
        raise state.BadInput(msg)
    sub = form.subsystem or ANY
    if sub != ANY:
        sub = st.check_subsystem(sub)
    reason = (form.reason or "").strip()
    if not reason:
        msg = "Reason: say why alerts are silenced (people on shift read it)"
        raise state.BadInput(msg)
    key = form.duration or ""
    if key not in DURATIONS:
        msg = f"Duration {key!r}: choose one of {', '.join(DURATIONS)}"
        raise state.BadInput(msg)
    length = DURATIONS[key][1]
    until = now + length if length is not None else parse_until(form.until, now)
    sid = st.silence(sub, pattern, until, user, reason)
    return f"Silenced {sub} / {pattern} until {fmt_time(utc_iso(until))} (silence {sid})."


def handle(
    trigger: Any,
    typed_user: str | None,
    filters: Mapping[str, Any],
    form: SilenceForm,
    now: datetime | None = None,
) -> tuple[Any, Any, Any, Any]:
    """Do what ``trigger`` asks; (message, alert list, silences, audit log) to show."""
    st = state.get()
    now = now or datetime.now(UTC)
    kind = trigger.get("type") if isinstance(trigger, dict) else trigger
    message: Any = None
    if kind in (ids.ALERTS_ACK, ids.SILENCE_ADD, ids.ALERTS_LIFT):
        user = state.acting_user(typed_user, st)
        try:
            if not user:
                raise state.BadInput(identity.NO_NAME)
            if kind == ids.ALERTS_ACK:
                alert = st.ack_alert(str(trigger["id"]), user, via="dashboard")
                if alert is None:
                    msg = f"No alert {trigger['id']!r}: reload the page"
                    raise state.BadInput(msg, 404)
                text = f"Alert {alert.id} acknowledged by {user}."
            elif kind == ids.SILENCE_ADD:
                text = add_silence(st, user, form, now)
            else:
                st.unsilence(str(trigger["id"]), user)
                text = f"Silence {trigger['id']} lifted by {user}."
            message = dbc.Alert(text, color="success", dismissable=True)
        except DQMError as err:  # BadInput included: say what is wrong, change nothing
            message = dbc.Alert(f"Nothing changed: {err}", color="warning", dismissable=True)
    return message, alert_list(st, filters), silence_table(st, now), audit_table(st)


@callback(
    Output(ids.ALERTS_MESSAGE, "children"),
    Output(ids.ALERTS_LIST, "children"),
    Output(ids.ALERTS_SILENCES, "children"),
    Output(ids.ALERTS_AUDIT, "children"),
    Input(ids.ALERTS_UNACKED, "value"),
    Input(ids.ALERTS_SUBSYSTEM, "value"),
    Input({"type": ids.ALERTS_ACK, "id": ALL}, "n_clicks"),
    Input(ids.SILENCE_ADD, "n_clicks"),
    Input({"type": ids.ALERTS_LIFT, "id": ALL}, "n_clicks"),
    State(ids.USER_NAME, "value"),
    State(ids.SILENCE_SUBSYSTEM, "value"),
    State(ids.SILENCE_PATTERN, "value"),
    State(ids.SILENCE_DURATION, "value"),
    State(ids.SILENCE_UNTIL, "value"),
    State(ids.SILENCE_REASON, "value"),
    prevent_initial_call=True,
)
def act(
    unacked: list[str] | None,
    subsystem: str | None,
    _acks: list[int | None],
    _add: int | None,
    _lifts: list[int | None],
    user: str | None,
    s_sub: str | None,
    s_pattern: str | None,
    s_duration: str | None,
    s_until: str | None,
    s_reason: str | None,
) -> tuple[Any, Any, Any, Any]:
    """Filters, "Acknowledge", "Add silence" and "Lift": one callback, one re-render."""
    trigger = ctx.triggered_id
    buttons = (ids.ALERTS_ACK, ids.SILENCE_ADD, ids.ALERTS_LIFT)
    kind = trigger.get("type") if isinstance(trigger, dict) else trigger
    if kind in buttons and not ctx.triggered[0].get("value"):
        raise PreventUpdate  # a button that appeared with a re-render, not a click
    filters = {"unacked": "unacked" in (unacked or []), "subsystem": subsystem or ""}
    form = SilenceForm(s_sub, s_pattern, s_duration, s_until, s_reason)
    return handle(trigger, user, filters, form)
