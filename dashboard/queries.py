"""Dashboard layer: store queries shared by pages and the REST API, with URL-part checks.

Each function reads a few store keys and returns plain data; bad input raises
:class:`~dashboard.state.BadInput` with the message a person sees (page or JSON).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from dashboard.state import AppState, BadInput
from engine import outliers
from engine.store import SubsystemRecord
from engine.store_records import JobStatus
from engine.types import SEVERITY, ComparisonResult

_RUN = re.compile(r"^\s*\d{1,9}\s*$")


def parse_run(text: str | int | None) -> int:
    """A run number from a URL part; :class:`BadInput` (400) when it is not one."""
    if isinstance(text, int):
        return text
    if text is None or not _RUN.match(text):
        msg = f"{text!r} is not a run number: expected a whole number such as 357130 (digits only)"
        raise BadInput(msg, 400)
    return int(text)


def parse_limit(text: str | None, default: int, maximum: int, name: str = "limit") -> int:
    """A positive count from the query parameter ``name``, at most ``maximum``."""
    if text is None or text == "":
        return default
    if not text.strip().isdigit() or int(text) < 1:
        msg = f"{name}={text!r}: expected a whole number from 1 to {maximum}"
        raise BadInput(msg, 400)
    return min(int(text), maximum)


def _stored_hint(state: AppState) -> str:
    runs = state.store.runs()
    if not runs:
        return (
            "no run is stored yet (the scheduler stores a run once it is certified and processed)"
        )
    return f"stored runs: {len(runs)}, from {runs[-1]} to {runs[0]} (latest {runs[0]})"


def require_run(state: AppState, run: int) -> dict[str, dict[str, Any]]:
    """The per-subsystem summary of a stored run; :class:`BadInput` (404) if not stored."""
    summary = state.store.run_summary(run)
    if summary is None:
        msg = f"run {run} has no stored results; {_stored_hint(state)}"
        raise BadInput(msg, 404)
    return summary


def require_report(state: AppState, run: int, subsystem: str) -> SubsystemRecord:
    """The stored record of (run, subsystem) without arrays, or :class:`BadInput` (404)."""
    subsystem = state.check_subsystem(subsystem)
    summary = require_run(state, run)
    record = state.store.get_report(run, subsystem)
    if record is None:
        job = state.store.get_job(run, subsystem)
        why = f" (its job is {job.state}{': ' + job.error if job.error else ''})" if job else ""
        have = ", ".join(sorted(summary)) or "none"
        msg = f"run {run} has no stored {subsystem} results{why}; stored for this run: {have}"
        raise BadInput(msg, 404)
    return record


def run_reports(
    state: AppState, run: int, summary: Mapping[str, Any] | None = None
) -> dict[str, SubsystemRecord]:
    """Every stored subsystem report of ``run`` (404 with a hint when it has none);
    ``summary``: the run's summary when the caller has already read it."""
    summary = require_run(state, run) if summary is None else summary
    reports = {sub: state.store.get_report(run, sub) for sub in sorted(summary)}
    return {sub: r for sub, r in reports.items() if r is not None}


def run_outliers(reports: Mapping[str, SubsystemRecord]) -> list[outliers.HistogramVerdict]:
    """The flagged histograms of every subsystem of a run, ranked together."""
    return outliers.across({sub: r.results for sub, r in reports.items()})


def by_severity(results: tuple[ComparisonResult, ...]) -> list[ComparisonResult]:
    """Results most severe first (status rank, then score), then by path."""
    return sorted(results, key=lambda r: (-SEVERITY[r.status], -_finite(r.score), r.path))


def _finite(x: float) -> float:
    return float("-inf") if math.isnan(x) else x  # nan sorts last


def overview(state: AppState, limit: int) -> dict[str, Any]:
    """The overview matrix: ``{"runs": [(run, {sub: summary})...], "subsystems", "jobs"}``.

    ``jobs`` maps ``"run/subsystem"`` to a job state for cells without stored results
    (queued, fetching, comparing, failed), so an empty cell says why it is empty.
    """
    rows = state.store.overview(limit)
    subs = state.configured_subsystems()
    for _, summary in rows:
        subs += [s for s in summary if s not in subs]
    shown = {r for r, _ in rows}
    jobs = {
        j.key: j.state
        for j in state.store.jobs(
            (JobStatus.QUEUED, JobStatus.FETCHING, JobStatus.COMPARING, JobStatus.FAILED)
        )
        if j.run in shown
    }
    return {"runs": rows, "subsystems": subs, "jobs": jobs}
