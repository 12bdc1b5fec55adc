"""Dashboard layer: ``/run/<run>/<subsystem>`` — the outlier grid, most severe first.

An AG Grid (community: sort, filter, pagination) over the stored report read without
arrays; a quick-filter box and status / comparator filters set the grid's own filter
state, so filtering a 2,000-histogram subsystem never goes back to the server.
Query parameters ``?status=flagged&comparator=ks_test&q=text`` preset the filters.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import Input, Output, Patch, callback, dcc, html

from dashboard import ids, queries, state
from dashboard.components import STATUS_ORDER, fmt_time, status_mark
from dashboard.pages.notfound import guarded
from dashboard.verdicts import words
from engine.store import SubsystemRecord

PAGE_SIZE = 50
#: Status filter choices: value → (label, AG Grid text-filter condition).
STATUS_FILTERS: Mapping[str, tuple[str, dict[str, str] | None]] = {
    "": ("any status", None),
    "not_ok": ("not ok (flagged, error, skipped)", {"type": "notEqual", "filter": "ok"}),
    **{s: (s, {"type": "equals", "filter": s}) for s in STATUS_ORDER},
}
NEIGHBOUR_SCAN = 50

COLUMNS: list[dict[str, Any]] = [
    {"field": "status", "headerName": "Status", "cellRenderer": "StatusMark", "width": 120,
     "comparator": {"function": "statusOrder"}, "filter": "agTextColumnFilter"},
    {"field": "histogram", "headerName": "Histogram", "cellRenderer": "HistLink", "flex": 2,
     "minWidth": 220, "filter": "agTextColumnFilter", "tooltipField": "histogram"},
    {"field": "comparator", "headerName": "Comparator", "width": 140,
     "filter": "agTextColumnFilter"},
    {"field": "score", "headerName": "Severity (\u00d7 cut)", "width": 150, "type": "numericColumn",
     "filter": "agNumberColumnFilter",
     "valueFormatter": {"function": "params.value == null ? '—' : d3.format('.3~g')(params.value)"}},
    {"field": "scores", "headerName": "Scores", "flex": 1, "minWidth": 180,
     "filter": "agTextColumnFilter", "tooltipField": "scores"},
    {"field": "entries", "headerName": "Entries", "width": 110, "type": "numericColumn",
     "filter": "agNumberColumnFilter",
     "valueFormatter": {"function": "params.value == null ? '—' : d3.format(',.0f')(params.value)"}},
    {"field": "reason", "headerName": "Reason", "flex": 3, "minWidth": 260,
     "filter": "agTextColumnFilter", "tooltipField": "reason"},
    {"field": "verdict", "headerName": "Verdict", "width": 130, "filter": "agTextColumnFilter"},
]  # fmt: skip


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


def _fmt(x: float) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.3g}"


def hist_href(run: int, subsystem: str, path: str, comparator: str | None = None) -> str:
    """The drill-down URL of a histogram (path parts percent-encoded, ``/`` kept)."""
    url = f"/run/{run}/{quote(subsystem, safe='')}/{quote(path, safe='/')}"
    return url + (f"?comparator={quote(comparator, safe='')}" if comparator else "")


def grid_rows(
    record: SubsystemRecord, verdicts: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The grid's rowData: one row per result, most severe first (pure)."""
    rows = []
    for r in queries.by_severity(record.results):
        v = verdicts.get(r.path, {}).get(r.comparator)
        rows.append(
            {
                "id": f"{r.path}\x1f{r.comparator}",
                "status": str(r.status),
                "histogram": r.path,
                "href": hist_href(record.run, record.subsystem, r.path, r.comparator),
                "comparator": r.comparator,
                "score": _num(r.score),
                "scores": " · ".join(f"{k} {_fmt(x)}" for k, x in r.scores.items()),
                "entries": _num(r.entries),
                "reason": r.reason,
                "verdict": words(str(v["verdict"])) if v else "",
            }
        )
    return rows


def filter_model(status: str | None, comparator: str | None) -> dict[str, Any]:
    """AG Grid ``filterModel`` for the status and comparator choices (pure)."""
    model: dict[str, Any] = {}
    cond = STATUS_FILTERS.get(status or "", ("", None))[1]
    if cond is not None:
        model["status"] = {"filterType": "text", **cond}
    if comparator:
        model["comparator"] = {"filterType": "text", "type": "equals", "filter": comparator}
    return model


def neighbours(st: state.AppState, run: int, subsystem: str) -> tuple[int | None, int | None]:
    """(previous, next) stored runs that have ``subsystem`` results (None at the ends)."""
    runs = st.store.runs()  # newest first
    older = [r for r in runs if r < run][:NEIGHBOUR_SCAN]
    newer = [r for r in reversed(runs) if r > run][:NEIGHBOUR_SCAN]

    def first(candidates: list[int]) -> int | None:
        return next((r for r in candidates if subsystem in (st.store.run_summary(r) or {})), None)

    return first(older), first(newer)


def _nav(run: int, sub: str, prev: int | None, nxt: int | None) -> html.Nav:
    def link(r: int | None, text: str) -> Any:
        if r is None:
            return html.Span(f"{text} (none stored)", className="text-muted")
        return dcc.Link(f"{text}: run {r}", href=f"/run/{r}/{sub}")

    return html.Nav(
        [
            link(prev, "← previous"),
            " · ",
            link(nxt, "next →"),
            " · ",
            "Export: ",
            html.A("CSV", href=f"/api/v1/runs/{run}/{sub}?format=csv"),
            " · ",
            html.A("JSON", href=f"/api/v1/runs/{run}/{sub}"),
        ],
        id=ids.RUNSUB_NAV,
        className="runsub-nav small",
    )


def _filters(record: SubsystemRecord, status: str, comparator: str, q: str) -> dbc.Row:
    comps = sorted({r.comparator for r in record.results})
    return dbc.Row(
        [
            dbc.Col(
                [
                    dbc.Label(
                        "Quick filter", html_for=ids.RUNSUB_QUICK, className="visually-hidden"
                    ),
                    dbc.Input(
                        id=ids.RUNSUB_QUICK,
                        type="search",
                        value=q,
                        debounce=True,
                        placeholder="filter: histogram, reason, comparator …",
                    ),
                ],
                md=5,
            ),
            dbc.Col(
                dcc.Dropdown(
                    id=ids.RUNSUB_STATUS,
                    value=status,
                    clearable=False,
                    options=[{"label": lbl, "value": k} for k, (lbl, _) in STATUS_FILTERS.items()],
                ),
                md=3,
            ),
            dbc.Col(
                dcc.Dropdown(
                    id=ids.RUNSUB_COMPARATOR,
                    value=comparator or None,
                    placeholder="any comparator",
                    options=[{"label": c, "value": c} for c in comps],
                ),
                md=3,
            ),
        ],
        className="g-2 mb-2 runsub-filters",
    )


@guarded
def layout(
    run: str | None = None,
    subsystem: str | None = None,
    status: str | None = None,
    comparator: str | None = None,
    q: str | None = None,
    **_query: Any,
) -> html.Div:
    """One subsystem of one run: counts, references and why, provenance, the outlier grid."""
    st = state.get()
    number = queries.parse_run(run)
    record = queries.require_report(st, number, subsystem or "")
    sub = record.subsystem
    status = status if status is not None and status in STATUS_FILTERS else ""
    rows = grid_rows(record, st.store.verdicts(number, sub))
    counts = dict.fromkeys(STATUS_ORDER, 0)
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    prov = record.provenance
    stale = st.store.is_stale(number, sub)
    refs = ", ".join(f"{r}" for r in record.reference_runs) or "none"
    grid = dag.AgGrid(
        id=ids.RUNSUB_GRID,
        rowData=rows,
        columnDefs=COLUMNS,
        defaultColDef={"sortable": True, "resizable": True, "filter": True},
        getRowId="params.data.id",
        filterModel=filter_model(status, comparator),
        dashGridOptions={
            "pagination": True,
            "paginationPageSize": PAGE_SIZE,
            "paginationPageSizeSelector": [20, 50, 100, 500],
            "domLayout": "autoHeight",
            "quickFilterText": q or "",
            "tooltipShowDelay": 300,
            "animateRows": False,
            "enableCellTextSelection": True,
        },
        className="ag-theme-quartz runsub-grid",
    )
    empty = html.P(
        f"Run {number} has no {sub} results stored (config paths that matched no histogram: "
        f"{len(record.missing)}).",
        className="empty-state",
    )
    prev, nxt = neighbours(st, number, sub)
    return html.Div(
        [
            html.H1(
                [dcc.Link(f"Run {number}", href=f"/run/{number}"), f" · {sub}"],
                className="page-title",
            ),
            html.P(
                [status_mark(s, f"{counts[s]} {s}", className="me-3") for s in STATUS_ORDER],
                className="counts",
            ),
            html.P(
                [
                    html.Strong("References: "),
                    f"runs {refs} — ",
                    record.reference_reason or "no reason stored",
                    ".",
                ],
                className="references",
            ),
            html.P(
                f"Dataset {record.dataset}. Compared {fmt_time(prov.created)} with config "
                f"{prov.config_path or '?'} (digest {prov.config_digest[:12] or '?'}), code "
                f"{prov.code_version or '?'}. "
                + (
                    f"{len(record.missing)} config paths matched no histogram. "
                    if record.missing
                    else ""
                )
                + (
                    "Stale: the subsystem config changed since; a new comparison is queued."
                    if stale
                    else ""
                ),
                className="provenance",
            ),
            _nav(number, sub, prev, nxt),
            _filters(record, status, comparator or "", q or ""),
            grid if rows else empty,
        ],
        id=ids.RUNSUB_TABLE,
    )


@callback(
    Output(ids.RUNSUB_GRID, "filterModel"),
    Input(ids.RUNSUB_STATUS, "value"),
    Input(ids.RUNSUB_COMPARATOR, "value"),
    prevent_initial_call=True,
)
def set_filters(status: str | None, comparator: str | None) -> dict[str, Any]:
    """Status and comparator choices → the grid's filter state."""
    return filter_model(status, comparator)


@callback(
    Output(ids.RUNSUB_GRID, "dashGridOptions"),
    Input(ids.RUNSUB_QUICK, "value"),
    prevent_initial_call=True,
)
def set_quick_filter(text: str | None) -> Patch:
    """The quick-filter box → the grid's ``quickFilterText`` (matches every column)."""
    patch = Patch()
    patch["quickFilterText"] = text or ""
    return patch
