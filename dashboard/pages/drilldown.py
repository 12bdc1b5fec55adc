"""Dashboard layer: ``/run/<run>/<subsystem>/<histogram path>`` — one histogram's drill-down.

Data vs references (or the 2D pull / data / reference maps) from the DQM files, the
scores and the verdict in words, the trend across recent runs, and verdict buttons.
A Dash path variable also matches ``/``, so the page takes the whole rest of the URL
and splits it itself (:func:`split_path`); ``?comparator=NAME`` picks the tab.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
from typing import Any
from urllib.parse import unquote

import dash_bootstrap_components as dbc
import numpy as np
from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update

from dashboard import drill_view, histdata, ids, queries, state
from dashboard.components import status_mark
from dashboard.figures import figure_for, trend
from dashboard.pages.notfound import guarded
from dashboard.pages.subsystem import hist_href
from dashboard.state import BadInput
from dashboard.verdicts import VERDICTS, acting_user, set_verdict, stored_verdict
from engine import outliers
from engine.types import ComparisonResult

logger = logging.getLogger(__name__)

TREND_RUNS = 30


def split_path(
    run: str | None, subsystem: str | None, histogram: str | None
) -> tuple[str, str, str]:
    """(run, subsystem, histogram) of the URL: Dash's greedy template groups joined back
    with ``/`` and split at the first two; each part percent-decoded."""
    rest = "/".join(p for p in (run, subsystem, histogram) if p is not None)
    parts = rest.split("/", 2)
    if len(parts) < 3 or not parts[2]:
        msg = f"{rest!r}: expected /run/<run>/<subsystem>/<histogram path>"
        raise BadInput(msg, 404)
    return unquote(parts[0]), unquote(parts[1]), unquote(parts[2])


def _results(
    st: state.AppState, number: int, subsystem: str, path: str
) -> tuple[Any, list[ComparisonResult]]:
    record = queries.require_report(st, number, subsystem)
    results = [r for r in record.results if r.path == path]
    if not results:
        paths = sorted({r.path for r in record.results})
        close = difflib.get_close_matches(path, paths, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        msg = (
            f"run {number} {record.subsystem} has no result for histogram {path!r}{hint} "
            f"(it has {len(paths)} histograms; see /run/{number}/{record.subsystem})"
        )
        raise BadInput(msg, 404)
    return record, queries.by_severity(tuple(results))


def render_panel(
    st: state.AppState,
    number: int,
    subsystem: str,
    path: str,
    comparator: str,
    found: tuple[Any, list[ComparisonResult]] | None = None,
) -> list[Any]:
    """The panel of one comparator: reads store + files, builds with the pure builders
    (``found``: the record and results the layout already read)."""
    record, results = found or _results(st, number, subsystem, path)
    r = next((x for x in results if x.comparator == comparator), results[0])
    arrays = st.store.get_arrays(number, record.subsystem, path).get(r.comparator, {})
    r = dataclasses.replace(r, arrays={k: np.array(v, dtype=float) for k, v in arrays.items()})
    sub = histdata.subsystem_config(st, record.subsystem)
    inputs = histdata.load_inputs(st, sub, record.dataset, number, record.reference_runs, path)
    figure = None
    if inputs.data is not None:
        opts = histdata.plot_options(st, sub, path, r.comparator)
        figure = figure_for(
            histdata.plot_kind(st, r.comparator), inputs.data, inputs.refs, r, **opts
        )
    points = st.store.history(record.subsystem, path, r.comparator, last=TREND_RUNS)
    trend_fig = trend([(p[0], str(p[1]), p[2]) for p in points], threshold=r.threshold)
    trend_fig.update_layout(margin={"t": 30})  # no title: the heading above names it
    links = drill_view.trend_links(number, record.subsystem, path, r.comparator, points, hist_href)
    verdict = stored_verdict(st, number, record.subsystem, path, r.comparator)
    return drill_view.panel(
        r,
        figure,
        inputs.problems,
        trend_fig,
        links,
        verdict,
        run=number,
        subsystem=record.subsystem,
    )


@guarded
def layout(
    run: str | None = None,
    subsystem: str | None = None,
    histogram: str | None = None,
    comparator: str | None = None,
    **_query: Any,
) -> html.Div:
    """The drill-down of one histogram of one run and subsystem."""
    st = state.get()
    run_s, sub_s, path = split_path(run, subsystem, histogram)
    number = queries.parse_run(run_s)
    record, results = _results(st, number, sub_s, path)
    sub = record.subsystem
    chosen = next(
        (r.comparator for r in results if r.comparator == comparator), results[0].comparator
    )
    tabs = dcc.Tabs(
        [
            dcc.Tab(
                label=f"{r.comparator} · {r.status if r.decides or r.status != 'flagged' else 'over its cut'}",
                value=r.comparator,
                className="drill-tab",
                selected_className="drill-tab-on",
            )
            for r in results
        ],
        id=ids.DRILL_TABS,
        value=chosen,
        className="drill-tabs",
    )
    buttons = [
        dbc.Button(text, id={"type": ids.DRILL_VERDICT_BTN, "verdict": key}, n_clicks=0,
                   color="secondary", outline=True, size="sm", className="me-2")
        for key, text in VERDICTS.items()
    ] + [dbc.Button("clear", id={"type": ids.DRILL_VERDICT_BTN, "verdict": ""}, n_clicks=0,
                    color="link", size="sm")]  # fmt: skip
    refs = ", ".join(map(str, record.reference_runs)) or "none"
    verdict = outliers.combine(sub, results)
    return html.Div(
        [
            dcc.Store(id=ids.DRILL_CONTEXT, data={"run": number, "subsystem": sub, "path": path}),
            dcc.Store(id=ids.DRILL_USER_STORE, storage_type="local"),
            dcc.Location(id=ids.DRILL_NAV, refresh="callback-nav"),
            html.H1(
                [
                    dcc.Link(f"Run {number}", href=f"/run/{number}"),
                    " · ",
                    dcc.Link(sub, href=f"/run/{number}/{sub}"),
                    " · ",
                    html.Span(path, className="drill-path"),
                ],
                className="page-title",
            ),
            html.P(
                [status_mark(str(verdict.status)), " ", verdict.summary],
                className="drill-overall",
            ),
            html.P(
                f"Data run {number} against reference runs {refs} — "
                f"{record.reference_reason or 'no reason stored'}.",
                className="references",
            ),
            tabs,
            dcc.Loading(
                html.Div(
                    render_panel(st, number, sub, path, chosen, (record, results)),
                    id=ids.DRILL_PANEL,
                    className="drill-panel",
                ),
                delay_show=300,
            ),
            html.Div(
                [
                    html.Span("Your verdict on this result:", className="me-2"),
                    *buttons,
                    dbc.Label("Your name", html_for=ids.DRILL_USER, className="ms-3 me-1 mb-0"),
                    dbc.Input(
                        id=ids.DRILL_USER,
                        placeholder="Your name",
                        type="text",
                        className="drill-user",
                    ),
                    html.Span(
                        id=ids.DRILL_VERDICT_MSG, className="drill-verdict-msg", role="alert"
                    ),
                ],
                className="drill-verdict-bar",
            ),
        ],
        id=ids.DRILL_ROOT,
    )


@callback(
    Output(ids.DRILL_PANEL, "children"),
    Input(ids.DRILL_TABS, "value"),
    State(ids.DRILL_CONTEXT, "data"),
    prevent_initial_call=True,
)
def switch_comparator(comparator: str | None, context: dict[str, Any] | None) -> Any:
    """A comparator tab → its panel."""
    if not context or not comparator:
        return no_update
    try:
        return render_panel(
            state.get(), int(context["run"]), context["subsystem"], context["path"], comparator
        )
    except BadInput as err:
        return html.P(str(err), className="empty-state")


@callback(
    Output(ids.DRILL_VERDICT, "children"),
    Output(ids.DRILL_VERDICT_MSG, "children"),
    Input({"type": ids.DRILL_VERDICT_BTN, "verdict": ALL}, "n_clicks"),
    State(ids.DRILL_USER, "value"),
    State(ids.DRILL_CONTEXT, "data"),
    State(ids.DRILL_TABS, "value"),
    prevent_initial_call=True,
)
def give_verdict(
    clicks: list[int | None],
    typed: str | None,
    context: dict[str, Any] | None,
    comparator: str | None,
) -> tuple[Any, Any]:
    """A verdict button → stored through the service layer → the stored verdict shown."""
    trigger = ctx.triggered_id
    if not context or not comparator or not isinstance(trigger, dict) or not any(clicks or ()):
        return no_update, no_update
    st = state.get()
    try:
        who = acting_user(typed)
        got = set_verdict(
            st,
            int(context["run"]),
            context["subsystem"],
            context["path"],
            comparator,
            str(trigger.get("verdict", "")),
            who,
        )
    except BadInput as err:
        return no_update, str(err)
    return drill_view.verdict_view(got).children, "saved" if got else "verdict cleared"


@callback(
    Output(ids.DRILL_USER, "value"),
    Output(ids.DRILL_USER_STORE, "data"),
    Input(ids.DRILL_USER, "value"),
    Input(ids.DRILL_USER_STORE, "data"),
)
def remember_user(typed: str | None, stored: str | None) -> tuple[Any, Any]:
    """Keep the typed name in the browser (local storage) and fill it in on the next visit."""
    if ctx.triggered_id == ids.DRILL_USER:
        return no_update, (typed or "").strip()[:80]
    return (stored or ""), no_update


@callback(
    Output(ids.DRILL_NAV, "href"),
    Input(ids.DRILL_TREND, "clickData"),
    State(ids.DRILL_CONTEXT, "data"),
    State(ids.DRILL_TABS, "value"),
    prevent_initial_call=True,
)
def open_trend_point(click: dict[str, Any] | None, context: dict[str, Any] | None,
                     comparator: str | None) -> Any:  # fmt: skip
    """A clicked trend point → that run's drill-down."""
    try:
        run = int(str((click or {})["points"][0]["x"]))
    except (KeyError, IndexError, TypeError, ValueError):
        return no_update
    if not context or run == context.get("run"):
        return no_update
    return hist_href(run, context["subsystem"], context["path"], comparator)
