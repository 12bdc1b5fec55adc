"""Engine layer: the APScheduler 3.x wiring of the service's jobs (built here, never started here).

``build_scheduler`` adds the jobs of :func:`engine.jobs.plan_jobs`; starting is the
caller's business (``autodqm scheduler``: BlockingScheduler in its own process;
``autodqm demo``: a BackgroundScheduler next to the dashboard).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from engine.jobs import JobSpec, plan_jobs
from engine.service import Service
from engine.times import utcnow

logger = logging.getLogger(__name__)

#: A job that could not start on time (machine asleep, pool busy) still runs if this late.
MISFIRE_GRACE_SECONDS = 60


def resolve(spec: JobSpec) -> Callable[..., Any]:
    """The job function named by ``spec.func`` ("module:name")."""
    module, _, name = spec.func.partition(":")
    func: Callable[..., Any] = getattr(importlib.import_module(module), name)
    return func


def build_scheduler(
    service: Service, blocking: bool, *, now: Callable[[], datetime] = utcnow
) -> BaseScheduler:
    """A scheduler holding the service's jobs, not started.

    Each job runs in the scheduler's thread pool; a job never overlaps itself
    (``max_instances=1``; "work" allows a second instance that returns at once), missed
    runs coalesce into one, and a run up to ``MISFIRE_GRACE_SECONDS`` late still runs.
    The ``work`` job processes the queue with the service's bounded pool of
    ``[scheduler] workers`` threads. Every job first runs at start.

    Args:
        service: The service the jobs act on (passed to each job function).
        blocking: ``BlockingScheduler`` (its own process) or ``BackgroundScheduler``.
        now: The clock for the first run times.
    """
    specs = plan_jobs(service.config)
    threads = sum(s.max_instances for s in specs)
    executors = {"default": ThreadPoolExecutor(max_workers=threads)}
    defaults = {"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_SECONDS}
    cls = BlockingScheduler if blocking else BackgroundScheduler
    scheduler: BaseScheduler = cls(executors=executors, job_defaults=defaults, timezone="UTC")
    start = now()
    for spec in specs:
        first: dict[str, Any] = {"next_run_time": start} if spec.run_at_start else {}
        scheduler.add_job(
            resolve(spec),
            "interval",
            seconds=spec.seconds,
            id=spec.id,
            name=spec.id,
            args=(service,),
            kwargs=dict(spec.kwargs),
            replace_existing=True,
            max_instances=spec.max_instances,
            **first,
        )
        logger.debug("job %s every %g s", spec.id, spec.seconds)
    return scheduler
