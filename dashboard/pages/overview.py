"""Dashboard layer: the overview page (``/``) — latest runs by subsystems, worst status per cell.

Refreshes itself (30 s; 10 s in kiosk mode). ``?kiosk=1``: big type, no navigation, and
the highlighted subsystem column rotates every 15 s. ``?runs=N``: how many runs (≤ 200).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, dcc, html, no_update

from dashboard import ids, queries, state
from dashboard.components import cell_model, fmt_time, status_mark
from dashboard.pages.notfound import guarded
from engine.store import StoreError
from engine.store_records import JobStatus

logger = logging.getLogger(__name__)

DEFAULT_RUNS = 20
MAX_RUNS = 200
REFRESH_MS = 30_000
KIOSK_REFRESH_MS = 10_000
ROTATE_MS = 15_000
JOB_WORDS = {"queued": "queued", "fetching": "fetching", "comparing": "comparing"}


def _flag(value: Any) -> bool:
    return str(value).lower() in ("1", "true", "yes", "on")


@guarded
def layout(kiosk: str | None = None, runs: str | None = None, **_query: Any) -> html.Div:
    """The overview; the first paint is rendered here, the intervals refresh it."""
    options = {
        "kiosk": _flag(kiosk),
        "limit": queries.parse_limit(runs, DEFAULT_RUNS, MAX_RUNS, "runs"),
    }
    matrix, banner, status = render(options, 0)
    return html.Div(
        [
            dcc.Store(id=ids.OVERVIEW_OPTIONS, data=options),
            dcc.Interval(
                id=ids.OVERVIEW_REFRESH,
                interval=KIOSK_REFRESH_MS if options["kiosk"] else REFRESH_MS,
            ),
            dcc.Interval(id=ids.OVERVIEW_ROTATE, interval=ROTATE_MS, disabled=not options["kiosk"]),
            html.Div(banner, id=ids.OVERVIEW_BANNER),
            html.H1("Overview", className="page-title"),
            html.Div(status, id=ids.OVERVIEW_STATUS, className="overview-status"),
            html.Div(matrix, id=ids.OVERVIEW_MATRIX, className="matrix-wrap"),
        ],
        className="overview" + (" overview-kiosk" if options["kiosk"] else ""),
    )


@callback(
    Output(ids.OVERVIEW_MATRIX, "children"),
    Output(ids.OVERVIEW_BANNER, "children"),
    Output(ids.OVERVIEW_STATUS, "children"),
    Input(ids.OVERVIEW_REFRESH, "n_intervals"),
    Input(ids.OVERVIEW_ROTATE, "n_intervals"),
    State(ids.OVERVIEW_OPTIONS, "data"),
    prevent_initial_call=True,
)
def refresh(
    _n_refresh: int | None, n_rotate: int | None, options: dict[str, Any] | None
) -> tuple[Any, Any, Any]:
    """Re-read the store: matrix, alert banner and status line (kept if the store fails)."""
    try:
        return render(options or {}, n_rotate or 0)
    except StoreError as err:
        logger.warning("overview refresh: %s", err)
        when = datetime.now(UTC).strftime("%H:%M:%S")
        return no_update, no_update, f"⚠ the results store is not reachable ({when} UTC): {err}"


def render(options: dict[str, Any], n_rotate: int) -> tuple[Any, Any, Any]:
    """(matrix, banner, status line) for ``options`` (kiosk, limit) and rotation step."""
    st = state.get()
    limit = int(options.get("limit", DEFAULT_RUNS))
    model = queries.overview(st, limit)
    subs: list[str] = model["subsystems"]
    kiosk = bool(options.get("kiosk"))
    highlight = subs[n_rotate % len(subs)] if kiosk and subs else None
    now = datetime.now(UTC).strftime("%H:%M:%S")
    last_poll = fmt_time(st.last_poll()) or "never"
    parts = [f"refreshed {now} {state.TIMEZONE}", f"last certification poll: {last_poll}"]
    if highlight:
        parts.append(f"highlighted: {highlight} ({subs.index(highlight) + 1}/{len(subs)})")
    if not model["runs"]:
        matrix: Any = _empty(st, last_poll)
    else:
        parts.insert(0, f"latest {len(model['runs'])} runs, newest first")
        matrix = _matrix(model, highlight)
    return matrix, banner(st), " · ".join(parts)


def _empty(st: state.AppState, last_poll: str) -> html.Div:
    waiting = st.store.count_jobs((JobStatus.QUEUED, JobStatus.FETCHING, JobStatus.COMPARING))
    extra = f" {waiting} jobs are waiting to be processed." if waiting else ""
    return html.Div(
        [
            html.P(
                "No run stored yet — the scheduler has not processed any certified run; "
                f"last poll: {last_poll}.{extra}",
                className="empty-state",
            ),
            html.P(
                "Start it with `autodqm scheduler --config FILE`, or store one run with "
                "`autodqm process RUN --config FILE`.",
                className="text-muted",
            ),
        ]
    )


def _cell(run: int, sub: str, summary: dict[str, Any] | None, job: str | None) -> Any:
    m = cell_model(summary)
    text = m["text"]
    if summary is None and job:
        text = "job failed" if job == "failed" else JOB_WORDS.get(job, job)
    status = "error" if summary is None and job == "failed" else m["status"]
    children: list[Any] = [status_mark(status, text)]
    if m["detail"]:
        children.append(html.Span(m["detail"], className="cell-detail"))
    if m["stale"]:
        children.append(html.Span("stale: config changed", className="cell-stale"))
    return dcc.Link(children, href=f"/run/{run}/{sub}", className="cell-link")


def _matrix(model: dict[str, Any], highlight: str | None) -> html.Table:
    subs: list[str] = model["subsystems"]
    head = [html.Th("Run", scope="col")] + [
        html.Th(s, scope="col", className="hl" if s == highlight else None) for s in subs
    ]
    rows = []
    for run, summary in model["runs"]:
        created = max((str(v.get("created", "")) for v in summary.values()), default="")
        cells: list[Any] = [
            html.Th(
                [
                    dcc.Link(str(run), href=f"/run/{run}"),
                    html.Span(fmt_time(created), className="cell-detail"),
                ],
                scope="row",
                className="run-cell",
            )
        ]
        for sub in subs:
            entry = summary.get(sub)
            status = cell_model(entry)["status"]
            job = model["jobs"].get(f"{run}/{sub}")
            cls = f"cell st-bg-{status}" + (" hl" if sub == highlight else "")
            cells.append(html.Td(_cell(run, sub, entry, job), className=cls))
        rows.append(html.Tr(cells))
    return html.Table(
        [html.Thead(html.Tr(head)), html.Tbody(rows)],
        className="table matrix",
    )


def banner(st: state.AppState) -> Any:
    """The unacknowledged-alert banner (None when every alert is acknowledged)."""
    unacked = st.store.alerts(limit=6, unacked_only=True)
    if not unacked:
        return None
    shown = ", ".join(f"run {a.run} {a.subsystem} ({a.n_flagged} flagged)" for a in unacked[:5])
    more = " and more" if len(unacked) > 5 else ""
    count = f"{len(unacked)}+" if len(unacked) > 5 else str(len(unacked))
    return dbc.Alert(
        [
            html.Strong(f"⚠ {count} unacknowledged alert{'s' if len(unacked) != 1 else ''}: "),
            f"{shown}{more}. ",
            dcc.Link("Open the alerts page →", href="/alerts", className="alert-link"),
        ],
        color="danger",
        className="alert-banner",
    )
