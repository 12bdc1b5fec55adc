"""Engine layer: the service — the one place every state change of the monitoring loop goes through.

The scheduler, the ``autodqm process`` command and (later) the dashboard call
:class:`Service`; each state-changing method is a single entry point a later access
check (SSO roles) can wrap, and :meth:`Service.process` does its comparison through the
pure ``engine.runner.compare_files`` (a unit a remote worker could run).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from engine import jobs
from engine.alerts import Deliverer, DeliveryReport, build_alert
from engine.errors import DQMError
from engine.history import Decoded, History, compact, expand
from engine.jobs import ACTIVE, DONE, FAILED, QUEUED
from engine.provenance import code_version
from engine.references import RefChoice
from engine.registry import Registry, build_registry
from engine.service_config import (
    ServiceConfig,
    load_service_config,
    make_certification,
    make_source,
)
from engine.service_people import PeopleActions
from engine.service_queue import QueueUpkeep
from engine.service_work import (
    Watched,
    choose_references,
    compare_contents,
    decode,
    file_of,
    load_watched,
)
from engine.settings import Settings
from engine.sources.base import RunFile, Source
from engine.store import JobState, Store, SubsystemRecord, open_store
from engine.times import utc_iso, utcnow
from engine.types import HistData, Status

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PollResult:
    """What one poll found: runs certified for the first time, and the jobs it queued."""

    source: str
    new_runs: tuple[int, ...]
    queued: tuple[JobState, ...] = field(default=())
    ignored: tuple[int, ...] = field(default=())


class Service(QueueUpkeep, PeopleActions):
    """The monitoring loop: certification → jobs → fetch → compare → store → alerts.

    Args:
        config: The service config (``load_service_config``).
        store: The results store (``open_store``); safe to share between threads.
        registry: The comparator registry the subsystem configs are checked against.
        now: The clock (a callable returning an aware UTC datetime); every method also
            takes ``now`` to override it.
        source: The data source (default: ``make_source(config)``; local directories
            are read in place, DQM GUI files go to the file cache in ``storage.data_dir``).
    """

    def __init__(
        self,
        config: ServiceConfig,
        store: Store,
        registry: Registry,
        *,
        now: Callable[[], datetime] = utcnow,
        source: Source | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.history = History(store, config.scheduler.history_runs)
        self.registry = registry
        self.clock = now
        self.source = source if source is not None else make_source(config)
        self.watched: dict[str, Watched] = load_watched(config, registry)
        self.version = code_version()
        self._claim = threading.Lock()
        self._draining = threading.Lock()
        self._delivering = threading.Lock()
        self._stop = threading.Event()
        self._unpolled: dict[str, set[int]] = {}
        self._files: dict[str, threading.Lock] = {}

    @property
    def workers(self) -> int:
        """Jobs processed at the same time (``[scheduler] workers``)."""
        return max(1, self.config.scheduler.workers)

    def _fail(self, job: JobState, error: str, now: datetime) -> JobState:
        c = self.config.scheduler
        return jobs.fail(job, error, now, max_attempts=c.max_attempts,
                         backoff_seconds=c.backoff_seconds)  # fmt: skip

    def stop(self) -> None:
        """Ask running drains to stop after their current job (for a clean shutdown)."""
        self._stop.set()

    # -- certification ---------------------------------------------------------------------
    def poll(self, source_name: str, now: datetime | None = None) -> PollResult:
        """Poll a certification source and queue a job per (new certified run, subsystem).

        On the first poll (no stored state) every certified run is processed, newest
        first — or, with ``[scheduler] backfill = N`` > 0, only the newest N; the older
        ones are remembered as ignored (``autodqm process RUN`` does them on demand)
        and still serve as references.
        The state is stored before jobs are queued; queuing is a reconciliation (every
        certified, not ignored run with a DQM file and no job gets one), so a crash in
        between, or a run whose file appears after its certification, loses nothing.
        """
        now = self._now(now)
        if source_name not in jobs.source_names(self.config):
            msg = f"no certification source {source_name!r} (configured: {jobs.source_names(self.config)})"
            raise DQMError(msg)
        raw = self.store.get_cert_state(source_name)
        cert = make_certification(self.config, raw)
        update = cert.poll(now)
        ignored = {int(r) for r in (raw or {}).get("ignored", ())}
        n = self.config.scheduler.backfill
        if raw is None and n > 0:
            newest = sorted(update.all_runs, reverse=True)[:n]
            ignored = set(update.all_runs) - set(newest)
            if ignored:
                logger.info(
                    "%s: first poll; processing the newest %d of %d certified runs",
                    source_name, len(newest), len(update.all_runs),
                )  # fmt: skip
        state = {**cert.state.to_dict(), "ignored": sorted(ignored)}
        self.store.put_cert_state(source_name, state)
        queued = self.reconcile(set(cert.state.seen) - ignored, now)
        self.requeue_stale(now, mark=False)
        if update.new_runs or queued:
            logger.info(
                "poll %s: %d new certified runs, %d jobs queued",
                source_name, len(update.new_runs), len(queued),
            )  # fmt: skip
        return PollResult(
            source_name, tuple(update.new_runs), tuple(queued), tuple(sorted(ignored))
        )

    def certified_runs(self, now: datetime | None = None) -> set[int]:
        """Every run the certification sources have reported (a source never polled is
        read once per service, without storing its state: ``autodqm process``)."""
        runs: set[int] = set()
        for name in jobs.source_names(self.config):
            raw = self.store.get_cert_state(name)
            if raw is not None:
                runs |= {int(r) for r in raw.get("seen", {})}
                continue
            if name not in self._unpolled:
                cert = make_certification(self.config, None)
                self._unpolled[name] = set(cert.poll(self._now(now)).all_runs)
            runs |= self._unpolled[name]
        return runs

    # -- the queue -------------------------------------------------------------------------
    def enqueue(
        self, run: int, subsystem: str, dataset: str | None = None, force: bool = False,
        now: datetime | None = None,
    ) -> JobState:  # fmt: skip
        """Queue (run, subsystem). A done or running job stays as it is unless ``force``;
        a failed one is queued again with its attempts reset.

        Raises:
            DQMError: ``subsystem`` is not watched by the service config.
        """
        now = self._now(now)
        w = self.watch(subsystem)
        with self._claim:
            old = self.store.get_job(run, subsystem)
            if old is None:
                job = jobs.new_job(run, subsystem, dataset or w.dataset, now)
            elif force or old.state == FAILED:
                job = jobs.requeue(old, now, "forced" if force else "")
            else:
                return old
            if not self.store.replace_job(job, expect=old):  # another process was first
                return self.store.get_job(run, subsystem) or job
        return job

    def watch(self, subsystem: str) -> Watched:
        """The watched subsystem called ``subsystem``; a DQMError names the watched ones."""
        try:
            return self.watched[subsystem]
        except KeyError:
            known = ", ".join(sorted(self.watched)) or "none"
            msg = f"{self.config.path}: subsystem {subsystem!r} is not watched (watched: {known})"
            raise DQMError(msg) from None

    def _take(self, now: datetime) -> JobState | None:
        with self._claim:
            for job in jobs.due(self.store.jobs(states=(QUEUED, FAILED)), now):
                taken = jobs.advance(job, now)
                # one conditional update: of several processes on this store, one wins
                if self.store.replace_job(taken, expect=job):
                    return taken
        return None

    def process_next(self, now: datetime | None = None) -> JobState | None:
        """Take the newest due job (queued, or failed with its retry time come) and run it."""
        job = self._take(self._now(now))
        return None if job is None else self._run(job, now)

    def process(self, run: int, subsystem: str, now: datetime | None = None) -> JobState:
        """Process (run, subsystem) now, in this thread (backfill). A done job is left as it
        is: :meth:`enqueue` with ``force=True`` first to recompute it."""
        job = self.enqueue(run, subsystem, now=now)
        if job.state == DONE:
            return job
        with self._claim:
            t = self._now(now)
            job = jobs.advance(jobs.requeue(job, t) if job.state in ACTIVE else job, t)
            self.store.put_job(job)
        return self._run(job, now)

    def drain(self, now: datetime | None = None) -> int:
        """Run every due job with ``[scheduler] workers`` threads; the number of jobs run.

        Returns 0 at once when another drain is already running in this process (it
        picks up whatever was queued meanwhile).
        """
        if not self._draining.acquire(blocking=False):
            return 0
        try:
            with ThreadPoolExecutor(self.workers, thread_name_prefix="autodqm-worker") as pool:
                return sum(pool.map(lambda _: self._drain_worker(now), range(self.workers)))
        finally:
            self._draining.release()

    def _drain_worker(self, now: datetime | None) -> int:
        n = 0
        while not self._stop.is_set() and self.process_next(now) is not None:
            n += 1
        return n

    # -- one job ----------------------------------------------------------------------------
    def files(self, w: Watched) -> dict[int, RunFile]:
        """The DQM file of each run of a watched dataset."""
        return self.source.runs(w.series, w.sample, w.processing)

    def _run(self, job: JobState, now: datetime | None) -> JobState:
        w = self.watch(job.subsystem)
        try:
            files = self.files(w)
            rf = file_of(files, job.run, w)
            certified = self.certified_runs(now)
            data = self._contents(w, rf, job.run)
            choice, refs = self._references(w, job.run, certified, files)
            past = self._past(w, job.run, certified, files, data)
            job = jobs.advance(job, self._now(now))
            self.store.put_job(job)
            t = self._now(now)
            record = compare_contents(
                w, self.registry, job.run, data, refs, past, choice, now=t, version=self.version
            )
            self.store.put_report(record)
            bad = {r.path for r in record.results if r.verdict_status is Status.FLAGGED}
            self.history.mark_judged(w.dataset, w.name, job.run, bad)
            self._alert(record, t)
            job = jobs.advance(job, t)
        except Exception as err:  # a job's top: the job fails, the service goes on
            if isinstance(err, DQMError):
                logger.warning("job %s failed: %s", job.key, err)
            else:
                logger.exception("job %s failed unexpectedly", job.key)
            job = self._fail(job, str(err) or type(err).__name__, self._now(now))
        self.store.put_job(job)
        logger.info("job %s: %s%s", job.key, job.state, f" ({job.error})" if job.error else "")
        return job

    def _contents(self, w: Watched, rf: RunFile, run: int) -> Decoded:
        """A run's histograms of one subsystem: from the store when it was decoded before,
        else fetched, decoded once and stored."""
        stored = self.history.contents(w.dataset, w.name, run, w.config.digest)
        if stored is not None:
            return stored
        decoded = decode(w, self._fetch(rf), run)
        self.history.put_contents(w.dataset, w.name, run, decoded, w.config.digest)
        # what the store holds (float32), so that a recomputation sees the same numbers
        return Decoded({p: expand(compact(h)) for p, h in decoded.hists.items()}, decoded.errors)

    def _references(
        self, w: Watched, run: int, certified: set[int], files: dict[int, RunFile]
    ) -> tuple[RefChoice, list[Mapping[str, HistData]]]:
        """The references by the watch's policy, and their contents. A chosen run found to
        have low statistics once decoded is replaced, and the choice made again."""
        for _ in range(5):
            low = self.history.low_stats(w.dataset, w.name)
            choice = choose_references(self.store, w, run, certified, files, low)
            refs = [self._contents(w, files[r], r).hists for r in choice.runs]
            if not set(choice.runs) & self.history.low_stats(w.dataset, w.name):
                break
        return choice, refs

    def _past(
        self, w: Watched, run: int, certified: set[int], files: dict[int, RunFile],
        data: Decoded,
    ) -> dict[str, list[HistData]]:  # fmt: skip
        """The history of each histogram of ``run``. The first time (fewer stored runs than
        the history holds), the latest certified runs before it are decoded and stored: the
        backfill from the data source. A run that cannot be read is left out."""
        want = self.history.runs - len(self.history.runs_for(w.dataset, w.name, run))
        if want > 0:
            known = self.history.indexed(w.dataset, w.name) | {run}
            for r in sorted((certified & set(files)) - known, reverse=True):
                if want <= 0 or r > run:
                    continue
                try:
                    self._contents(w, files[r], r)
                    want -= 1
                except DQMError as err:
                    logger.warning("history of %s: run %d left out: %s", w.name, r, err)
        return self.history.history(w.dataset, w.name, run, data.hists)

    def _fetch(self, rf: RunFile) -> Path:
        """``source.fetch``, one download per file at a time: the subsystems of a run
        (and runs sharing references) wait for the file cache instead of downloading
        the same file in parallel."""
        key = str(rf.url or rf.path)
        with self._claim:
            lock = self._files.setdefault(key, threading.Lock())
        with lock:
            return self.source.fetch(rf)

    def close(self) -> None:
        """Close the store's database connections (they reopen when used again)."""
        self.store.close()

    def _alert(self, record: SubsystemRecord, now: datetime) -> None:
        """Record the alert of a report, once: an existing alert is never replaced."""
        if self.store.get_alert(f"{record.run}-{record.subsystem}") is not None:
            return
        silences = self.store.silences(active_at=utc_iso(now))
        alert = build_alert(record, self.config.alerts, silences, now)
        if alert is not None:
            self.store.put_alert(alert)
            logger.info("alert %s: %d flagged", alert.id, alert.n_flagged)

    # -- alerts and people ----------------------------------------------------------------------
    def deliver_alerts(self, now: datetime | None = None) -> DeliveryReport:
        """Send what is due (one message per run and channel); never raises.

        One delivery at a time in this process, so no message goes out twice.
        """
        with self._delivering:
            return Deliverer(self.store, self.config.alerts, self.clock).deliver_pending(now)


def open_service(config_path: str | Path, *, now: Callable[[], datetime] = utcnow) -> Service:
    """The service a config file describes: config checked, store opened, sources built.

    Raises:
        ConfigError: the config (or a subsystem config) is invalid; StoreError: the
            store cannot be opened.
    """
    settings = Settings.from_env()
    registry = build_registry(load_external=settings.load_external_plugins)
    config = load_service_config(config_path, registry)
    return Service(config, open_store(config.storage.cache_dir), registry, now=now)
