"""Engine layer: the results store's low-level access and its operational records.

Jobs, certification state, alerts and their deliveries, silences, the audit log,
ad-hoc comparisons and verdicts; :class:`engine.store.Store` adds the results. Every diskcache error becomes a
one-line :class:`StoreError`; multi-key updates run in one transaction.
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Self

import diskcache

from engine.store_records import Alert, JobState, Silence, StoreError
from engine.store_tables import JobTable
from engine.times import utc_iso

logger = logging.getLogger(__name__)

#: Version of the key layout: every key starts with ``(kind, SCHEMA, ...)``.
SCHEMA = 1


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return f"{type(err).__name__}: {text}"


class StoreBase:
    """One ``diskcache.Cache`` (no eviction: results are never dropped silently)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        with self._guard("open"):
            self._cache = diskcache.Cache(
                str(self.directory), eviction_policy="none", statistics=False
            )
            self._jobs = JobTable(self.directory, self._legacy_jobs)
            self._drop_legacy_jobs()

    def _legacy_jobs(self) -> list[JobState]:
        """Jobs kept by earlier versions in diskcache (an index and one value per job)."""
        index: dict[str, str] = self._cache.get(("jobs", SCHEMA), {})
        out = []
        for key in index:
            run, _, sub = key.partition("/")
            raw = self._cache.get(("job", SCHEMA, int(run), sub))
            if raw is not None:
                out.append(JobState.from_dict(raw))
        return out

    def _drop_legacy_jobs(self) -> None:
        index: dict[str, str] | None = self._cache.get(("jobs", SCHEMA))
        if index is None:
            return
        with self._cache.transact():
            for key in index:
                run, _, sub = key.partition("/")
                self._cache.delete(("job", SCHEMA, int(run), sub))
            self._cache.delete(("jobs", SCHEMA))

    def close(self) -> None:
        """Close the database connections (the store reopens them when used again)."""
        self._cache.close()
        self._jobs.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError, diskcache.Timeout) as err:
            full = "full" in str(err).lower() or getattr(err, "errno", None) == 28
            fix = (
                "free disk space or move storage.cache_dir; earlier records are intact"
                if full
                else "check the directory and that no other program holds the database"
            )
            msg = f"results store {self.directory}: cannot {what} ({_one_line(err)}); {fix}"
            raise StoreError(msg) from err

    @contextmanager
    def _tx(self, what: str) -> Iterator[None]:
        """One atomic update: all of it is written, or (on any error) none of it."""
        with self._guard(what), self._cache.transact():
            yield

    def _get(self, key: tuple[Any, ...], default: Any = None) -> Any:
        with self._guard(f"read {key[0]}"):
            return self._cache.get(key, default)

    def _set(self, key: tuple[Any, ...], value: Any) -> None:
        self._cache.set(key, value)

    def _delete(self, key: tuple[Any, ...]) -> None:
        self._cache.delete(key)

    def _update(self, key: tuple[Any, ...], fn: Callable[[Any], Any], default: Any) -> Any:
        """Read-modify-write of one key; call inside :meth:`_tx`."""
        value = fn(self._cache.get(key, default))
        self._set(key, value)
        return value


class OpsMixin(StoreBase):
    """Jobs, certification state, alerts, deliveries, silences, audit log, verdicts."""

    # -- jobs -------------------------------------------------------------------------
    def get_job(self, run: int, subsystem: str) -> JobState | None:
        with self._guard(f"read job {run}/{subsystem}"):
            return self._jobs.get(run, subsystem)

    def put_job(self, job: JobState) -> None:
        """Write a job state (one row of the jobs table)."""
        with self._guard(f"write job {job.key}"):
            self._jobs.put(job)

    def replace_job(self, job: JobState, expect: JobState | None) -> bool:
        """Write ``job`` only if the stored job is still ``expect`` (None: no job yet): a
        claim that exactly one of several processes wins. False when it lost."""
        with self._guard(f"claim job {job.key}"):
            return self._jobs.replace(job, expect)

    def jobs(self, states: Iterable[str] | None = None) -> list[JobState]:
        """Jobs in any of ``states`` (all when None), ordered by run then subsystem."""
        with self._guard("list jobs"):
            return self._jobs.select(states)

    def count_jobs(self, states: Iterable[str]) -> int:
        with self._guard("count jobs"):
            return self._jobs.count(states)

    # -- certification state ------------------------------------------------------------
    def get_cert_state(self, name: str) -> dict[str, Any] | None:
        raw = self._get(("cert", SCHEMA, name))
        return None if raw is None else dict(raw)

    def put_cert_state(self, name: str, state: dict[str, Any]) -> None:
        with self._guard(f"write certification state {name!r}"):
            self._set(("cert", SCHEMA, name), dict(state))

    # -- alerts and their deliveries ------------------------------------------------------
    def put_alert(self, alert: Alert) -> None:
        """Write an alert (replacing one with the same id) and index it once."""
        with self._tx(f"write alert {alert.id}"):
            self._set(("alert", SCHEMA, alert.id), alert.to_dict())
            self._update(
                ("alerts", SCHEMA), lambda ids: ids if alert.id in ids else [*ids, alert.id], []
            )

    def get_alert(self, alert_id: str) -> Alert | None:
        raw = self._get(("alert", SCHEMA, alert_id))
        return None if raw is None else Alert.from_dict(raw)

    def alerts(
        self, limit: int | None = None, unacked_only: bool = False, run: int | None = None
    ) -> list[Alert]:
        """Alerts, newest first; only unacknowledged ones, or one run's, if asked."""
        out: list[Alert] = []
        for alert_id in reversed(self._get(("alerts", SCHEMA), [])):
            if run is not None and not alert_id.startswith(f"{run}-"):
                continue
            alert = self.get_alert(alert_id)
            if alert is None or (unacked_only and alert.acked_by):
                continue
            out.append(alert)
            if limit is not None and len(out) >= limit:
                break
        return out

    def _change_alert(self, alert_id: str, what: str, **changes: Any) -> Alert | None:
        with self._tx(f"{what} alert {alert_id}"):
            raw = self._cache.get(("alert", SCHEMA, alert_id))
            if raw is None:
                return None
            alert = replace(Alert.from_dict(raw), **changes)
            self._set(("alert", SCHEMA, alert_id), alert.to_dict())
            return alert

    def ack_alert(self, alert_id: str, by: str, at: str | None = None) -> Alert | None:
        """Acknowledge an alert; the updated alert, or None if there is no such alert."""
        return self._change_alert(alert_id, "acknowledge", acked_by=by, acked_at=at or utc_iso())

    def set_alert_delivery(self, alert_id: str, channel: str, state: str) -> Alert | None:
        """Set one channel's delivery state of an alert, atomically (an ack is kept)."""
        with self._tx(f"update delivery of alert {alert_id}"):
            raw = self._cache.get(("alert", SCHEMA, alert_id))
            if raw is None:
                return None
            alert = Alert.from_dict(raw)
            alert = replace(alert, deliveries={**alert.deliveries, channel: state})
            self._set(("alert", SCHEMA, alert_id), alert.to_dict())
            return alert

    def get_delivery(self, run: int, channel: str, batch: int = 0) -> dict[str, Any] | None:
        """Delivery state of a run's message on a channel (``batch`` > 0: follow-ups)."""
        raw = self._get(("delivery", SCHEMA, int(run), channel, int(batch)))
        return None if raw is None else dict(raw)

    def put_delivery(self, run: int, channel: str, value: dict[str, Any], batch: int = 0) -> None:
        """Write a delivery state ({"state": "pending"|"sent <iso>"|..., "attempts", ...})."""
        key = (int(run), channel, int(batch))
        with self._tx(f"write delivery {key}"):
            self._set(("delivery", SCHEMA, *key), dict(value))
            self._update(
                ("deliveries", SCHEMA, int(run)),
                lambda ks: ks if [channel, batch] in ks else [*ks, [channel, int(batch)]],
                [],
            )

    def deliveries(self, run: int) -> dict[tuple[str, int], dict[str, Any]]:
        """Every delivery state of a run, by (channel, batch)."""
        out = {}
        for channel, batch in self._get(("deliveries", SCHEMA, int(run)), []):
            value = self.get_delivery(run, channel, batch)
            if value is not None:
                out[(channel, int(batch))] = value
        return out

    # -- silences -----------------------------------------------------------------------
    def add_silence(self, silence: Silence) -> str:
        """Store a silence; returns its id (a new one when ``silence.id`` is empty)."""
        sid = silence.id or uuid.uuid4().hex[:12]
        s = replace(silence, id=sid, created=silence.created or utc_iso())
        with self._tx(f"write silence {sid}"):
            self._set(("silence", SCHEMA, sid), s.to_dict())
            self._update(("silences", SCHEMA), lambda ids: ids if sid in ids else [*ids, sid], [])
        return sid

    def get_silence(self, silence_id: str) -> Silence | None:
        raw = self._get(("silence", SCHEMA, silence_id))
        return None if raw is None else Silence.from_dict(raw)

    def silences(
        self, active_at: str | None = None, include_removed: bool = False
    ) -> list[Silence]:
        """Silences, newest first: those active at ISO time ``active_at`` if given."""
        out = []
        for sid in reversed(self._get(("silences", SCHEMA), [])):
            s = self.get_silence(sid)
            if s is None or (s.removed_by and not include_removed):
                continue
            if active_at is None or s.active(active_at):
                out.append(s)
        return out

    def remove_silence(self, silence_id: str, by: str, at: str | None = None) -> Silence | None:
        """Lift a silence (kept, marked removed by ``by``); None if there is no such silence."""
        with self._tx(f"remove silence {silence_id}"):
            raw = self._cache.get(("silence", SCHEMA, silence_id))
            if raw is None:
                return None
            s = replace(Silence.from_dict(raw), removed_by=by, removed_at=at or utc_iso())
            self._set(("silence", SCHEMA, silence_id), s.to_dict())
            return s

    # -- audit log ----------------------------------------------------------------------
    def log(self, event: dict[str, Any]) -> dict[str, Any]:
        """Append "who did what" (``at`` added when missing); returns the stored event."""
        with self._tx("append to the audit log"):
            seq = self._cache.incr(("audit_seq", SCHEMA), 1, default=0)
            entry = {"at": utc_iso(), **event, "seq": seq}
            self._set(("audit", SCHEMA, seq), entry)
        return entry

    def audit(self, limit: int = 100) -> list[dict[str, Any]]:
        """The latest ``limit`` audit events, newest first."""
        last = int(self._get(("audit_seq", SCHEMA), 0))
        out = []
        for seq in range(last, max(0, last - limit), -1):
            entry = self._get(("audit", SCHEMA, seq))
            if entry is not None:
                out.append(dict(entry))
        return out

    # -- ad-hoc comparisons (the dashboard's /compare/<job>) ------------------------------
    def put_adhoc(self, job_id: str, record: dict[str, Any]) -> None:
        """Store the result of one ad-hoc comparison (inputs + report dict) under ``job_id``."""
        if not job_id:
            msg = "an ad-hoc comparison needs a non-empty job id"
            raise StoreError(msg)
        with self._guard(f"write ad-hoc comparison {job_id}"):
            self._set(("adhoc", SCHEMA, job_id), dict(record))

    def get_adhoc(self, job_id: str) -> dict[str, Any] | None:
        """The stored ad-hoc comparison ``job_id``, or None."""
        raw = self._get(("adhoc", SCHEMA, job_id))
        return None if raw is None else dict(raw)

    # -- verdicts -----------------------------------------------------------------------
    def put_verdict(
        self, run: int, subsystem: str, path: str, comparator: str, verdict: str, by: str, at: str
    ) -> None:
        """A person's verdict on one result (e.g. "good", "bad"); "" clears it."""

        def change(d: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
            per_path = dict(d.get(path, {}))
            if verdict:
                per_path[comparator] = {"verdict": verdict, "by": by, "at": at}
            else:
                per_path.pop(comparator, None)
            out = {**d, path: per_path}
            return {k: v for k, v in out.items() if v}

        with self._tx(f"write verdict {run}/{subsystem}/{path}"):
            self._update(("verdicts", SCHEMA, int(run), subsystem), change, {})

    def verdicts(self, run: int, subsystem: str) -> dict[str, dict[str, Any]]:
        """``{path: {comparator: {"verdict", "by", "at"}}}`` of one run and subsystem."""
        return dict(self._get(("verdicts", SCHEMA, int(run), subsystem), {}))
