"""Dashboard layer: the ad-hoc comparison (``/compare``) and its result (``/compare/<job>``).

The form offers the watched datasets and subsystems, the runs the data source has, and
reference runs pre-filled by the subsystem's reference policy (editable; "Suggest"
asks again). "Compare" runs as a Dash background callback (the app's
``DiskcacheManager``) with a progress bar and a cancel button; the result is stored
under a job id and shown at ``/compare/<job>``, a URL that can be shared. Query
parameters ``dataset``, ``subsystem``, ``run`` and ``refs`` (comma-separated) fill the form.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, dcc, html, no_update
from dash.exceptions import PreventUpdate

from dashboard import adhoc, ids, queries, state
from dashboard.components import STATUS_ORDER, fmt_time, plain_table, status_mark
from dashboard.pages import identity
from dashboard.pages.notfound import guarded
from engine.errors import DQMError
from engine.types import ComparisonResult

logger = logging.getLogger(__name__)


def _options(choices: adhoc.Choices, subsystem: str, certified: set[int]) -> list[dict[str, Any]]:
    runs = sorted(choices.files(subsystem), reverse=True)
    return [{"label": f"{r} · certified" if r in certified else str(r), "value": r} for r in runs]


def _warn(text: str) -> dbc.Alert:
    return dbc.Alert(text, color="warning", className="mb-2")


@guarded
def layout(
    dataset: str | None = None,
    subsystem: str | None = None,
    run: str | None = None,
    refs: str | None = None,
    **_q: Any,
) -> html.Div:
    """The form, filled from the query string or with the latest run and its suggestion."""
    st = state.get()
    choices = adhoc.Choices.of(st)
    service = st.service()
    assert service is not None
    datasets = choices.datasets()
    dataset = dataset if dataset in datasets else datasets[0]
    subs = choices.subsystems(dataset)
    subsystem = subsystem if subsystem in subs else subs[0]
    certified = service.certified_runs()
    options = _options(choices, subsystem, certified)
    message: Any = None
    run_value: Any = options[0]["value"] if options else None
    refs_value: list[Any] = []
    why = ""
    if run or refs:  # a shared or edited link: check it and say what is wrong
        ref_list = [r for r in (refs or "").split(",") if r.strip()]
        try:
            req = adhoc.check_request(choices, dataset, subsystem, run, ref_list)
            run_value, refs_value = req.data_run, list(req.ref_runs)
        except state.BadInput as err:
            message = _warn(str(err))
            run_value = int(run) if run and run.strip().isdigit() else run_value
            refs_value = [int(r) for r in ref_list if r.strip().isdigit()]
    if run_value is not None and not refs_value and message is None:
        try:
            refs_value, why = adhoc.suggest(st, choices, subsystem, int(run_value))
        except DQMError as err:
            why = f"No suggestion: {err}"
    return html.Div(
        [
            dcc.Location(id=ids.COMPARE_GO, refresh=True),  # loads /compare/<job> when done
            dcc.Store(id=ids.COMPARE_TOKEN, data=st.token),
            html.H1("Ad-hoc comparison", className="page-title"),
            html.P(
                "Compare one subsystem of a data run with reference runs of your choice; "
                "the result gets its own address you can share.",
                className="text-muted",
            ),
            identity.widget(),
            _form(datasets, dataset, subs, subsystem, options, run_value, refs_value, why),
            html.Div(
                dbc.Progress(
                    id=ids.COMPARE_PROGRESS,
                    value=0,
                    striped=True,
                    animated=True,
                    style={"height": "1.6rem"},
                ),
                id=ids.COMPARE_PROGRESS_WRAP,
                className="d-none",
            ),
            html.Div(message, id=ids.COMPARE_MESSAGE, role="status"),
        ],
        className="compare-page",
    )


def _field(label: str, for_id: str, control: Any, width: str = "col-md-3") -> html.Div:
    return html.Div([dbc.Label(label, html_for=for_id), control], className=width)


def _form(
    datasets: list[str],
    dataset: str,
    subs: list[str],
    subsystem: str,
    options: list[dict[str, Any]],
    run: Any,
    refs: list[Any],
    why: str,
) -> html.Div:
    return html.Div(
        [
            dbc.Row(
                [
                    _field(
                        "Dataset (series/sample)",
                        ids.COMPARE_DATASET,
                        dcc.Dropdown(
                            id=ids.COMPARE_DATASET, options=datasets, value=dataset, clearable=False
                        ),
                    ),
                    _field(
                        "Subsystem",
                        ids.COMPARE_SUBSYSTEM,
                        dcc.Dropdown(
                            id=ids.COMPARE_SUBSYSTEM, options=subs, value=subsystem, clearable=False
                        ),
                        "col-md-2",
                    ),
                    _field(
                        "Data run",
                        ids.COMPARE_RUN,
                        dcc.Dropdown(
                            id=ids.COMPARE_RUN,
                            options=options,
                            value=run,
                            searchable=True,
                            placeholder="type to search runs",
                        ),
                    ),
                ],
                className="g-3 mb-2",
            ),
            dbc.Row(
                [
                    _field(
                        "Reference runs",
                        ids.COMPARE_REFS,
                        dcc.Dropdown(
                            id=ids.COMPARE_REFS,
                            options=options,
                            value=refs,
                            multi=True,
                            placeholder="choose reference runs",
                        ),
                        "col-md-8",
                    ),
                    html.Div(
                        dbc.Button(
                            "Suggest",
                            id=ids.COMPARE_SUGGEST,
                            color="secondary",
                            outline=True,
                            title="the reference policy's choice",
                        ),
                        className="col-auto align-self-end",
                    ),
                ],
                className="g-3 mb-1",
            ),
            html.P(why, id=ids.COMPARE_REFS_WHY, className="small text-muted"),
            html.Div(
                [
                    dbc.Button("Compare", id=ids.COMPARE_START, color="primary", className="me-2"),
                    dbc.Button(
                        "Cancel", id=ids.COMPARE_CANCEL, color="outline-danger", disabled=True
                    ),
                ],
                className="mb-3",
            ),
        ],
        className="compare-form",
    )


@callback(
    Output(ids.COMPARE_SUBSYSTEM, "options"),
    Output(ids.COMPARE_SUBSYSTEM, "value"),
    Input(ids.COMPARE_DATASET, "value"),
    State(ids.COMPARE_SUBSYSTEM, "value"),
    prevent_initial_call=True,
)
def on_dataset(dataset: str | None, current: str | None) -> tuple[Any, Any]:
    """The subsystems watched in the chosen dataset."""
    subs = adhoc.Choices.of(state.get()).subsystems(dataset or "")
    return subs, current if current in subs else (subs[0] if subs else None)


@callback(
    Output(ids.COMPARE_RUN, "options"),
    Output(ids.COMPARE_REFS, "options"),
    Input(ids.COMPARE_SUBSYSTEM, "value"),
    prevent_initial_call=True,
)
def on_subsystem(subsystem: str | None) -> tuple[Any, Any]:
    """The runs the source has for the subsystem's dataset (newest first)."""
    st = state.get()
    choices = adhoc.Choices.of(st)
    if subsystem not in choices.watched:
        return [], []
    service = st.service()
    certified = service.certified_runs() if service is not None else set()
    options = _options(choices, str(subsystem), certified)
    return options, options


@callback(
    Output(ids.COMPARE_REFS, "value"),
    Output(ids.COMPARE_REFS_WHY, "children"),
    Input(ids.COMPARE_SUGGEST, "n_clicks"),
    Input(ids.COMPARE_RUN, "value"),
    Input(ids.COMPARE_SUBSYSTEM, "value"),
    prevent_initial_call=True,
)
def on_suggest(_n: int | None, run: Any, subsystem: str | None) -> tuple[Any, Any]:
    """The reference policy's choice for the data run (on "Suggest" or a new run)."""
    st = state.get()
    choices = adhoc.Choices.of(st)
    if run is None or subsystem not in choices.watched:
        return no_update, "Choose a subsystem and a data run to get suggested references."
    try:
        number = queries.parse_run(run if isinstance(run, int) else str(run))
        return adhoc.suggest(st, choices, str(subsystem), number)
    except DQMError as err:
        return no_update, f"No suggestion: {err}"


@callback(
    Output(ids.COMPARE_MESSAGE, "children"),
    Output(ids.COMPARE_GO, "href"),
    Input(ids.COMPARE_START, "n_clicks"),
    State(ids.COMPARE_TOKEN, "data"),
    State(ids.COMPARE_DATASET, "value"),
    State(ids.COMPARE_SUBSYSTEM, "value"),
    State(ids.COMPARE_RUN, "value"),
    State(ids.COMPARE_REFS, "value"),
    State(ids.USER_NAME, "value"),
    background=True,
    prevent_initial_call=True,
    interval=400,
    running=[
        (Output(ids.COMPARE_START, "disabled"), True, False),
        (Output(ids.COMPARE_CANCEL, "disabled"), False, True),
        (Output(ids.COMPARE_PROGRESS_WRAP, "className"), "mb-3", "d-none"),
    ],
    progress=[Output(ids.COMPARE_PROGRESS, "value"), Output(ids.COMPARE_PROGRESS, "label")],
    progress_default=[0, ""],
    cancel=[Input(ids.COMPARE_CANCEL, "n_clicks")],
)
def start(
    set_progress: Any,
    n_clicks: int | None,
    token: str | None,
    dataset: str | None,
    subsystem: str | None,
    run: Any,
    refs: list[Any] | None,
    user: str | None,
) -> tuple[Any, Any]:
    """Check, fetch, compare, store — in a background process; then go to the result."""
    if not n_clicks:
        raise PreventUpdate
    try:
        set_progress((2, "checking the inputs"))
        st = state.by_token(token)
        choices = adhoc.Choices.of(st, fresh_source=True)
        req = adhoc.check_request(choices, dataset, subsystem, run, refs or [])
        job = adhoc.run_comparison(st, set_progress, req, choices, state.acting_user(user, st))
    except DQMError as err:  # BadInput included: the inputs or the files are not usable
        return dbc.Alert(f"Cannot compare: {err}", color="warning"), no_update
    except Exception:  # the background job's top: a message, never a traceback
        logger.exception("ad-hoc comparison of %r %r failed", run, subsystem)
        text = "The comparison failed with an internal error (logged on the server)."
        return dbc.Alert(text, color="danger"), no_update
    done = dbc.Alert(
        ["Done: ", dcc.Link(f"/compare/{job}", href=f"/compare/{job}")], color="success"
    )
    return done, f"/compare/{job}"


# -- the result ---------------------------------------------------------------------------
def _score(x: float) -> str:
    return "—" if math.isnan(x) else f"{x:.3g}"


@guarded
def layout_result(job: str | None = None, **_q: Any) -> html.Div:
    """The stored result of an ad-hoc comparison, most severe first."""
    st = state.get()
    rec = adhoc.get_result(st, job)
    report = rec.get("report", {})
    results = queries.by_severity(
        tuple(ComparisonResult.from_dict(r) for r in report.get("results", ()))
    )
    counts = dict.fromkeys(STATUS_ORDER, 0)
    for r in results:
        counts[str(r.status)] = counts.get(str(r.status), 0) + 1
    refs = ", ".join(map(str, rec.get("reference_runs", [])))
    again = (
        f"/compare?dataset={rec.get('dataset', '')}&subsystem={rec.get('subsystem', '')}"
        f"&run={rec.get('data_run', '')}&refs={refs.replace(', ', ',')}"
    )
    rows = [
        [status_mark(str(r.status)), r.path, r.comparator, _score(r.score), r.reason or "—"]
        for r in results
    ]
    missing = report.get("missing", [])
    notes = rec.get("notes", [])
    return html.Div(
        [
            html.H1(
                f"Ad-hoc comparison · run {rec.get('data_run')} · {rec.get('subsystem')}",
                className="page-title",
            ),
            html.P(
                f"{rec.get('dataset', '')} · references {refs or 'none'} · compared "
                f"{fmt_time(str(rec.get('created', '')))} by {rec.get('by') or 'anonymous'} "
                f"in {float(rec.get('seconds', 0)):.1f} s",
                className="provenance",
            ),
            html.P(
                [status_mark(s, f"{counts[s]} {s}", className="me-3") for s in STATUS_ORDER],
                className="counts",
            ),
            html.P(
                [
                    "This result's address: ",
                    dcc.Link(f"/compare/{rec['job']}", href=f"/compare/{rec['job']}"),
                    " · ",
                    dcc.Link("compare again with these inputs", href=again),
                ],
                className="small",
            ),
            plain_table(["Status", "Histogram", "Comparator", "Score", "Reason"], rows)
            if rows
            else html.P("The comparison gave no result.", className="empty-state"),
            html.P(
                f"{len(missing)} configured histograms missing in the data run: "
                + ", ".join(missing[:10])
                + (" …" if len(missing) > 10 else ""),
                className="small text-muted",
            )
            if missing
            else None,
            html.Ul([html.Li(n) for n in notes], className="small") if notes else None,
        ],
        id=ids.COMPARE_RESULT,
    )
