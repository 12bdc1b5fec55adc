"""Engine layer: the scheduler's jobs — what runs when (``plan_jobs``), the job functions,
and the per-(run, subsystem) state machine as pure functions on :class:`JobState`.

States: ``queued → fetching → comparing → done``; any step can end in ``failed``, which
is retried (``next_try`` = now + backoff·2^(attempts-1)) until ``max_attempts``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from engine.errors import DQMError
from engine.store_records import JobState, JobStatus
from engine.times import parse_iso, utc_iso, utcnow

if TYPE_CHECKING:
    from engine.service import Service
    from engine.service_config import ServiceConfig

logger = logging.getLogger(__name__)

QUEUED, FETCHING, COMPARING, DONE, FAILED = JobStatus
STATES: tuple[str, ...] = tuple(JobStatus)
#: States a job is in while some process works on it (back to queued after a crash).
ACTIVE: tuple[str, ...] = (FETCHING, COMPARING)
#: Allowed moves of :func:`advance` (``fail`` and ``requeue`` work from any state).
MOVES: Mapping[str, str] = {
    QUEUED: FETCHING,
    FAILED: FETCHING,
    FETCHING: COMPARING,
    COMPARING: DONE,
}
#: Seconds between runs of the "work" job (it also drains right after each poll).
WORK_SECONDS = 2.0


# -- the state machine (pure) -----------------------------------------------------------------
def new_job(run: int, subsystem: str, dataset: str, now: datetime) -> JobState:
    """A fresh job in state ``queued``."""
    return JobState(run, subsystem, dataset, QUEUED, 0, "", "", utc_iso(now))


def advance(job: JobState, now: datetime) -> JobState:
    """The next state of a job that is making progress (queued/failed → fetching → comparing → done).

    Raises:
        DQMError: the move is not allowed (e.g. a done job, or a failed job given up on).
    """
    nxt = MOVES.get(job.state)
    if nxt is None or (job.state == FAILED and not job.next_try):
        msg = (
            f"job {job.run}/{job.subsystem}: cannot move on from state {job.state!r}"
            f"{' (gave up after ' + str(job.attempts) + ' attempts)' if job.state == FAILED else ''}; "
            "requeue it (autodqm process RUN --force)"
        )
        raise DQMError(msg)
    error = job.error if nxt != DONE else ""
    next_try = "" if nxt == DONE else job.next_try
    return replace(job, state=nxt, error=error, next_try=next_try, updated=utc_iso(now))


def fail(
    job: JobState, error: str, now: datetime, *, max_attempts: int, backoff_seconds: float
) -> JobState:
    """A failed attempt: ``attempts + 1`` and a retry time, or none once ``max_attempts`` is reached.

    The retry comes after ``backoff_seconds · 2^(attempts-1)`` (30 s, 60 s, 120 s ...).
    """
    attempts = job.attempts + 1
    if attempts >= max_attempts:
        next_try = ""
        error = f"{error} (gave up after {attempts} attempts)"
    else:
        next_try = utc_iso(now + timedelta(seconds=backoff_seconds * 2 ** (attempts - 1)))
    return replace(
        job, state=FAILED, attempts=attempts, next_try=next_try, error=error, updated=utc_iso(now)
    )


def interrupted(job: JobState, now: datetime, *, max_attempts: int) -> JobState:
    """A job found ``fetching``/``comparing`` at start-up: its process died. Back to queued.

    The interruption counts as an attempt, so a job that kills its process every time
    (say, out of memory) ends ``failed`` instead of looping forever.
    """
    if job.state not in ACTIVE:
        return job
    if job.attempts + 1 >= max_attempts:
        return fail(job, "interrupted", now, max_attempts=max_attempts, backoff_seconds=0)
    return replace(
        job,
        state=QUEUED,
        attempts=job.attempts + 1,
        next_try="",
        error=f"interrupted while {job.state}",
        updated=utc_iso(now),
    )


def requeue(job: JobState, now: datetime, why: str = "") -> JobState:
    """Back to ``queued`` with a clean slate (forced recompute, stale config, manual retry)."""
    return replace(job, state=QUEUED, attempts=0, next_try="", error=why, updated=utc_iso(now))


def is_due(job: JobState, now: datetime) -> bool:
    """Whether a worker should take the job now: queued, or failed with its retry time come."""
    if job.state == QUEUED:
        return True
    return job.state == FAILED and bool(job.next_try) and parse_iso(job.next_try) <= now


def due(jobs: Iterable[JobState], now: datetime) -> list[JobState]:
    """The jobs to take now, newest run first (people look at the latest run first)."""
    return sorted((j for j in jobs if is_due(j, now)), key=lambda j: (-j.run, j.subsystem))


# -- what the scheduler runs -----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class JobSpec:
    """One APScheduler interval job: ``func`` ("module:name") called with ``kwargs``."""

    id: str
    func: str
    seconds: float
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    run_at_start: bool = True
    max_instances: int = 1


def source_names(config: ServiceConfig) -> list[str]:
    """The certification sources of a service config (one today: its ``[certification]``)."""
    return [str(getattr(config.certification, "name", "") or config.certification.kind)]


def plan_jobs(config: ServiceConfig) -> list[JobSpec]:
    """The scheduler's jobs for a service config (pure; no I/O).

    One ``poll:<name>`` job per certification source every ``poll_seconds``; a ``work``
    job (every ``WORK_SECONDS``, at most the poll interval) that drains the queue with
    the service's bounded pool of ``[scheduler] workers`` threads; a ``deliver`` job
    that sends due alert messages every ``[alerts] retry_seconds`` (at most the poll
    interval, at least 1 s).
    """
    poll = float(config.certification.poll_seconds)
    specs = [
        JobSpec(f"poll:{name}", "engine.jobs:poll", poll, {"source_name": name})
        for name in source_names(config)
    ]
    # A second "work" instance finds the drain running and returns at once (the running
    # drain takes the new jobs): no "skipped: maximum number of instances" warnings.
    specs.append(JobSpec("work", "engine.jobs:work", min(WORK_SECONDS, poll), max_instances=2))
    retry = float(getattr(config.alerts, "retry_seconds", 60))
    specs.append(JobSpec("deliver", "engine.jobs:deliver", min(retry, max(poll, 1.0))))
    return specs


def poll(service: Service, source_name: str, now: datetime | None = None) -> None:
    """Job ``poll:<name>``: read the certification source and queue the new jobs."""
    now = now or utcnow()
    try:
        service.poll(source_name, now)
    except Exception:  # a job's top: log, keep the scheduler alive
        logger.exception("poll %s failed; next try in one poll interval", source_name)


def work(service: Service, now: datetime | None = None) -> None:
    """Job ``work``: process every due job with the worker pool, then deliver alerts."""
    try:
        done = service.drain(now)
        if done:
            service.deliver_alerts(now)
    except Exception:  # a job's top: log, keep the scheduler alive
        logger.exception("work: draining the queue failed")


def deliver(service: Service, now: datetime | None = None) -> None:
    """Job ``deliver``: send pending and retry failed alert deliveries."""
    try:
        service.deliver_alerts(now)
    except Exception:  # a job's top: log, keep the scheduler alive
        logger.exception("deliver: sending alerts failed")
