"""Dashboard layer: the REST API under ``/api/v1`` (JSON; read-only except acknowledging).

Bad input gets a JSON error ``{"error": "...", "status": 4xx}`` (a run that is not a
number → 400; an unknown run, subsystem, histogram or alert → 404 with a hint); a
genuine bug is logged and answered with a JSON 500, never an HTML traceback.
"""

from __future__ import annotations

import csv
import difflib
import io
import logging
from typing import Any

import flask
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from dashboard import queries, state
from dashboard.state import BadInput
from engine.store import StoreError, SubsystemRecord

logger = logging.getLogger(__name__)

PREFIX = "/api/v1"
ENDPOINTS = (
    "GET /api/v1/runs?limit=&before=",
    "GET /api/v1/runs/<run>",
    "GET /api/v1/runs/<run>/<subsystem>?format=json|csv",
    "GET /api/v1/runs/<run>/<subsystem>/<histogram path>",
    "GET /api/v1/outliers/<run>?limit=",
    "GET /api/v1/alerts?unacked=1&limit=&run=",
    'POST /api/v1/alerts/<id>/ack {"by": "name"}',
    "GET /api/v1/health",
)
#: What the arrays endpoint can give; the bin contents stay in the DQM files.
ARRAYS_NOTE = (
    "arrays are the per-bin arrays the comparators stored (e.g. pulls, ref_weighted); "
    "the data and reference bin contents are not stored: they are read from the DQM files"
)

bp = flask.Blueprint("autodqm_api", __name__, url_prefix=PREFIX)


def register(server: flask.Flask) -> None:
    """Add the API blueprint to a Flask server (once)."""
    if "autodqm_api" not in server.blueprints:
        server.register_blueprint(bp)


def _error(status: int, message: str) -> flask.Response:
    resp = flask.jsonify({"error": message, "status": status})
    resp.status_code = status
    return resp


@bp.errorhandler(BadInput)
def _bad_input(err: BadInput) -> flask.Response:
    return _error(err.status, str(err))


@bp.errorhandler(StoreError)
def _store_error(err: StoreError) -> flask.Response:
    logger.error("API %s: store error: %s", flask.request.path, err)
    return _error(503, f"the results store is not available: {err}")


@bp.errorhandler(Exception)
def _bug(err: Exception) -> flask.Response:
    if isinstance(err, HTTPException):
        return _error(err.code or 400, err.description or str(err))
    logger.error("API %s failed", flask.request.path, exc_info=err)
    return _error(500, "internal error (logged on the server); the request may be retried")


# -- runs ----------------------------------------------------------------------------------
@bp.get("/runs")
def runs() -> Any:
    st = state.get()
    limit = queries.parse_limit(flask.request.args.get("limit"), 50, 1000)
    raw_before = flask.request.args.get("before")
    before = queries.parse_run(raw_before) if raw_before else None
    page = st.store.runs(limit=limit, before=before)
    nxt = f"{PREFIX}/runs?limit={limit}&before={page[-1]}" if len(page) == limit else None
    return {"runs": page, "limit": limit, "before": before, "next": nxt}


@bp.get("/runs/<run>")
def run_summary(run: str) -> Any:
    st = state.get()
    number = queries.parse_run(run)
    summary = queries.require_run(st, number)
    alerts = [a.id for a in st.store.alerts(run=number)]
    return {"run": number, "subsystems": summary, "alerts": alerts}


@bp.get("/outliers/<run>")
def run_outliers(run: str) -> Any:
    """The run's flagged histograms of every subsystem, most severe first, in words."""
    st = state.get()
    number = queries.parse_run(run)
    limit = queries.parse_limit(flask.request.args.get("limit"), 100, 10_000)
    ranked = queries.run_outliers(queries.run_reports(st, number))
    return {
        "run": number,
        "flagged": len(ranked),
        "outliers": [v.to_dict() for v in ranked[:limit]],
        "limit": limit,
    }


def _record_json(st: state.AppState, record: SubsystemRecord) -> dict[str, Any]:
    d = record.to_dict()
    return {
        "data_run": record.run,
        "reference_runs": d["reference_runs"],
        "subsystem": record.subsystem,
        "dataset": record.dataset,
        "reference_reason": record.reference_reason,
        "results": [r.to_dict() for r in queries.by_severity(record.results)],
        "missing": d["missing"],
        "notes": d["notes"],
        "provenance": d["provenance"],
        "stale": st.store.is_stale(record.run, record.subsystem),
        "verdicts": st.store.verdicts(record.run, record.subsystem),
    }


def _csv(st: state.AppState, record: SubsystemRecord) -> flask.Response:
    results = queries.by_severity(record.results)
    score_names = sorted({k for r in results for k in r.scores})
    prov = record.provenance
    stale = st.store.is_stale(record.run, record.subsystem)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        ["run", "subsystem", "dataset", "histogram", "comparator", "status", "score",
         "threshold", "entries", "reason", *(f"score_{n}" for n in score_names),
         "reference_runs", "config_digest", "code_version", "created", "stale"]
    )  # fmt: skip
    for r in results:
        d = r.to_dict()
        w.writerow(
            [record.run, record.subsystem, record.dataset, d["histogram"], d["comparator"],
             d["status"], d["score"], d["threshold"], d["entries"], d["reason"],
             *(d["scores"].get(n) for n in score_names),
             " ".join(map(str, record.reference_runs)), prov.config_digest,
             prov.code_version, prov.created, stale]
        )  # fmt: skip
    name = f"autodqm_run{record.run}_{record.subsystem}.csv"
    return flask.Response(
        buf.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@bp.get("/runs/<run>/<subsystem>")
def run_subsystem(run: str, subsystem: str) -> Any:
    st = state.get()
    fmt = flask.request.args.get("format", "json").lower()
    if fmt not in ("json", "csv"):
        msg = f"format={fmt!r}: expected json or csv"
        raise BadInput(msg, 400)
    record = queries.require_report(st, queries.parse_run(run), subsystem)
    return _csv(st, record) if fmt == "csv" else _record_json(st, record)


@bp.get("/runs/<run>/<subsystem>/<path:histogram>")
def histogram(run: str, subsystem: str, histogram: str) -> Any:
    st = state.get()
    record = queries.require_report(st, queries.parse_run(run), subsystem)
    results = [r for r in record.results if r.path == histogram]
    if not results:
        paths = sorted({r.path for r in record.results})
        close = difflib.get_close_matches(histogram, paths, n=3)
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        msg = (
            f"run {record.run} {record.subsystem} has no result for histogram "
            f"{histogram!r}{hint}; it has {len(paths)} histograms"
        )
        raise BadInput(msg, 404)
    arrays = st.store.get_arrays(record.run, record.subsystem, histogram)
    return {
        "data_run": record.run,
        "subsystem": record.subsystem,
        "histogram": histogram,
        "reference_runs": list(record.reference_runs),
        "results": [r.to_dict() for r in results],
        "arrays": arrays,
        "available": {comp: sorted(v) for comp, v in arrays.items()},
        "note": ARRAYS_NOTE,
    }


# -- alerts --------------------------------------------------------------------------------
@bp.get("/alerts")
def alerts() -> Any:
    st = state.get()
    args = flask.request.args
    unacked = args.get("unacked", "0").lower() in ("1", "true", "yes")
    limit = queries.parse_limit(args.get("limit"), 100, 1000)
    run = queries.parse_run(args["run"]) if args.get("run") else None
    found = st.store.alerts(limit=limit, unacked_only=unacked, run=run)
    return {"alerts": [a.to_dict() for a in found], "limit": limit}


@bp.post("/alerts/<alert_id>/ack")
def ack(alert_id: str) -> Any:
    body = flask.request.get_json(silent=True)
    by = body.get("by") if isinstance(body, dict) else None
    if not isinstance(by, str) or not by.strip():
        msg = 'expected a JSON body {"by": "<who acknowledges>"} with a non-empty name'
        raise BadInput(msg, 400)
    alert = state.get().ack_alert(alert_id, by.strip(), via="api")
    if alert is None:
        msg = f"no alert {alert_id!r} (alert ids are <run>-<subsystem>, see GET {PREFIX}/alerts)"
        raise BadInput(msg, 404)
    return alert.to_dict()


# -- health and the rest -------------------------------------------------------------------
@bp.get("/health")
def health() -> Any:
    st = state.get()
    try:
        n = len(st.store.runs())
        last_poll = st.last_poll()
    except StoreError as err:
        resp = flask.jsonify({"status": "error", "store": f"not reachable: {err}"})
        resp.status_code = 503
        return resp
    return {
        "status": "ok",
        "store": "reachable",
        "runs": n,
        "last_poll": last_poll or None,
        "time_zone": state.TIMEZONE,
        "version": st.version,
    }


@bp.get("")
@bp.get("/")
def index() -> Any:
    return {"endpoints": list(ENDPOINTS)}


@bp.route("/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def unknown(rest: str) -> Any:
    adapter = flask.current_app.url_map.bind_to_environ(flask.request.environ)
    for method in ("GET", "POST"):
        if method == flask.request.method:
            continue
        try:
            endpoint, _ = adapter.match(method=method)
        except (NotFound, MethodNotAllowed):
            continue
        if endpoint != "autodqm_api.unknown":
            return _error(405, f"{flask.request.method} is not allowed here; use {method}")
    return _error(404, f"no API endpoint {PREFIX}/{rest}; endpoints: " + "; ".join(ENDPOINTS))
