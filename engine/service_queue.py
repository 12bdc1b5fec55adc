"""Engine layer: upkeep of the service's job queue — jobs for certified runs, and jobs
requeued after a crash (``kill -9`` mid-job) or a subsystem config change.

Mixed into :class:`engine.service.Service`; every write goes through the store.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from engine import jobs
from engine.jobs import ACTIVE, DONE, FAILED
from engine.service_config import ServiceConfig
from engine.service_work import Watched
from engine.sources.base import RunFile
from engine.store import JobState, Store

logger = logging.getLogger(__name__)


class QueueUpkeep:
    """Needs ``config``, ``store``, ``watched``, ``files(w)``, ``_now`` and the ``_claim`` lock."""

    config: ServiceConfig
    store: Store
    watched: dict[str, Watched]
    _claim: threading.Lock
    _now: Callable[[datetime | None], datetime]
    files: Callable[[Watched], dict[int, RunFile]]

    def reconcile(self, certified: set[int], now: datetime | None = None) -> list[JobState]:
        """Queue a job for each (certified run with a DQM file, watched subsystem) without one."""
        now = self._now(now)
        queued: list[JobState] = []
        with self._claim:
            have = {(j.run, j.subsystem) for j in self.store.jobs()}
            for w in self.watched.values():
                files = self.files(w)
                waiting = certified - set(files)
                if waiting:
                    logger.debug("%s: %d certified runs without a DQM file yet",
                                 w.dataset, len(waiting))  # fmt: skip
                for run in sorted(certified & set(files), reverse=True):
                    if (run, w.name) not in have:
                        job = jobs.new_job(run, w.name, w.dataset, now)
                        self.store.put_job(job)
                        queued.append(job)
        return queued

    def requeue_interrupted(self, now: datetime | None = None) -> list[JobState]:
        """Jobs left fetching/comparing by a process that died: back to queued (at start-up)."""
        now = self._now(now)
        out = []
        with self._claim:
            for job in self.store.jobs(states=ACTIVE):
                nxt = jobs.interrupted(job, now, max_attempts=self.config.scheduler.max_attempts)
                self.store.put_job(nxt)
                out.append(nxt)
        if out:
            logger.warning("requeued %d interrupted jobs: %s", len(out), [j.key for j in out])
        return out

    def requeue_stale(self, now: datetime | None = None, *, mark: bool = True) -> list[JobState]:
        """Queue again every stored report made with another version of its subsystem config.

        Args:
            now: Time of the change.
            mark: Mark stale reports first (at start-up; the configs do not change while
                the process runs, so a poll only queues what is marked).
        """
        now = self._now(now)
        out = []
        for w in self.watched.values():
            if mark:
                self.store.mark_stale(w.name, w.config.digest)
            for run in self.store.stale(w.name):
                with self._claim:
                    job = self.store.get_job(run, w.name)
                    if job is not None and job.state not in (DONE, FAILED):
                        continue
                    job = (jobs.new_job(run, w.name, w.dataset, now) if job is None
                           else jobs.requeue(job, now, "config changed"))  # fmt: skip
                    self.store.put_job(job)
                out.append(job)
        if out:
            logger.info("requeued %d jobs whose subsystem config changed", len(out))
        return out
