"""Engine layer: the results store — per-run summaries, per-histogram results, arrays, trends.

One ``diskcache.Cache`` made by :func:`open_store` (nothing at import time). Keys are
``(kind, SCHEMA, ...)``; values are plain JSON-able dicts. Layout (each reader is one
or a few key reads, whatever the number of stored results):

- ``("report", S, run, subsystem)``: the record without arrays (+ ``stale``).
- ``("arrays", S, run, subsystem, path)``: ``{comparator: {name: [...]}}`` (drill-down).
- ``("run", S, run)``: ``{subsystem: summary}`` (counts, worst, n_flagged, created, stale).
- ``("runs", S)``: sorted runs; ``("subsystems", S)``: sorted subsystem names.
- ``("by_subsystem", S, subsystem)``: ``{run: config digest}``; ``("stale", S, subsystem)``.
- ``("trend", S, subsystem, path, comparator)``: ``[[run, status, score, scores], ...]``.
"""

from __future__ import annotations

import bisect
import logging
import math
from pathlib import Path
from typing import Any

from engine.store_ops import SCHEMA, OpsMixin
from engine.store_records import (
    JOB_STATES,
    Alert,
    JobState,
    Silence,
    StoreError,
    SubsystemRecord,
)
from engine.types import Status

logger = logging.getLogger(__name__)

__all__ = [
    "JOB_STATES",
    "SCHEMA",
    "TREND_MAX",
    "Alert",
    "JobState",
    "Silence",
    "Store",
    "StoreError",
    "SubsystemRecord",
    "open_store",
]

#: Most runs kept in one trend (the latest): bounds the trend keys over years.
TREND_MAX = 5000

Trend = tuple[int, Status, float, dict[str, float]]


def open_store(path: str | Path) -> Store:
    """The results store in directory ``path`` (created if missing).

    Raises:
        StoreError: the directory or database cannot be opened (one line).
    """
    return Store(path)


def _insort(items: list[int], run: int) -> list[int]:
    i = bisect.bisect_left(items, run)
    if i < len(items) and items[i] == run:
        return items
    return [*items[:i], run, *items[i:]]


def _without(items: list[int], run: int) -> list[int]:
    return [r for r in items if r != run]


def _nan(x: float | None) -> float:
    return math.nan if x is None else float(x)


class Store(OpsMixin):
    """Results, staleness, jobs, certification state, alerts, silences, audit and verdicts.

    Thread- and process-safe: diskcache serialises writers through SQLite, and every
    multi-key update is one transaction, so a failed write leaves earlier records intact.
    """

    # -- writing results ----------------------------------------------------------------
    def put_report(self, record: SubsystemRecord) -> None:
        """Store one subsystem of one run (replacing what was stored for it).

        Raises:
            StoreError: the write failed (e.g. disk full); nothing of it is stored.
        """
        run, sub = int(record.run), record.subsystem
        body = record.to_dict(with_arrays=False)
        body["stale"] = False
        arrays: dict[str, dict[str, dict[str, list[float]]]] = {}
        points: dict[tuple[str, str], list[Any]] = {}
        for r in record.results:
            if r.arrays:
                arrays.setdefault(r.path, {})[r.comparator] = r.to_dict(with_arrays=True)["arrays"]
            d = r.to_dict()
            points[(r.path, r.comparator)] = [run, d["status"], d["score"], d["scores"]]
        with self._tx(f"store run {run} {sub}"):
            old = self._cache.get(("report", SCHEMA, run, sub))
            if old is not None:
                self._drop_extras(run, sub, old, set(arrays), set(points))
            self._set(("report", SCHEMA, run, sub), body)
            for path, per_comp in arrays.items():
                self._set(("arrays", SCHEMA, run, sub, path), per_comp)
            for (path, comp), point in points.items():
                self._update(("trend", SCHEMA, sub, path, comp), _with_point(point), [])
            summary = record.summary()
            self._update(("run", SCHEMA, run), lambda s: {**s, sub: summary}, {})
            self._update(("runs", SCHEMA), lambda rs: _insort(rs, run), [])
            self._update(
                ("subsystems", SCHEMA), lambda ss: ss if sub in ss else sorted([*ss, sub]), []
            )
            digest = record.provenance.config_digest
            self._update(("by_subsystem", SCHEMA, sub), lambda d: {**d, run: digest}, {})
            self._update(("stale", SCHEMA, sub), lambda rs: _without(rs, run), [])
        logger.debug("stored run %d %s: %d results", run, sub, len(record.results))

    def _drop_extras(
        self,
        run: int,
        sub: str,
        old: dict[str, Any],
        keep_arrays: set[str],
        keep_points: set[tuple[str, str]],
    ) -> None:
        """Remove the arrays and trend points of ``old`` the new record does not replace."""
        for res in old.get("results", ()):
            path, comp = res["histogram"], res["comparator"]
            if path not in keep_arrays:
                self._delete(("arrays", SCHEMA, run, sub, path))
            if (path, comp) not in keep_points:
                key = ("trend", SCHEMA, sub, path, comp)
                points = self._cache.get(key, [])
                self._set(key, [p for p in points if p[0] != run])

    def delete_report(self, run: int, subsystem: str) -> bool:
        """Remove one stored subsystem of a run from every index; False if not stored."""
        run = int(run)
        with self._tx(f"delete run {run} {subsystem}"):
            old = self._cache.get(("report", SCHEMA, run, subsystem))
            if old is None:
                return False
            self._drop_extras(run, subsystem, old, set(), set())
            self._delete(("report", SCHEMA, run, subsystem))
            left = dict(self._cache.get(("run", SCHEMA, run), {}).items())
            left.pop(subsystem, None)
            if left:
                self._set(("run", SCHEMA, run), left)
            else:
                self._delete(("run", SCHEMA, run))
                self._update(("runs", SCHEMA), lambda rs: _without(rs, run), [])
            self._update(
                ("by_subsystem", SCHEMA, subsystem),
                lambda d: {r: v for r, v in d.items() if r != run},
                {},
            )
            self._update(("stale", SCHEMA, subsystem), lambda rs: _without(rs, run), [])
        return True

    # -- reading results ----------------------------------------------------------------
    def runs(self, limit: int | None = None, before: int | None = None) -> list[int]:
        """Runs with stored results, newest first; only runs < ``before`` if given."""
        stored: list[int] = self._get(("runs", SCHEMA), [])
        end = len(stored) if before is None else bisect.bisect_left(stored, before)
        start = 0 if limit is None else max(0, end - limit)
        return stored[start:end][::-1]

    def subsystems(self) -> list[str]:
        """Every subsystem with stored results, sorted."""
        return list(self._get(("subsystems", SCHEMA), []))

    def run_summary(self, run: int) -> dict[str, dict[str, Any]] | None:
        """``{subsystem: {counts, worst, n_flagged, created, stale, ...}}`` or None."""
        raw = self._get(("run", SCHEMA, int(run)))
        return None if raw is None else dict(raw)

    def overview(
        self, limit: int = 20, before: int | None = None
    ) -> list[tuple[int, dict[str, dict[str, Any]]]]:
        """The latest ``limit`` runs with their summaries, newest first (the overview matrix)."""
        out = []
        for run in self.runs(limit, before):
            summary = self.run_summary(run)
            if summary is not None:
                out.append((run, summary))
        return out

    def get_report(self, run: int, subsystem: str) -> SubsystemRecord | None:
        """The stored record without arrays, or None."""
        raw = self._get(("report", SCHEMA, int(run), subsystem))
        return None if raw is None else SubsystemRecord.from_dict(raw)

    def is_stale(self, run: int, subsystem: str) -> bool:
        """Whether the stored record was made with another config than the current one."""
        raw = self._get(("report", SCHEMA, int(run), subsystem))
        return bool(raw and raw.get("stale"))

    def get_arrays(self, run: int, subsystem: str, path: str) -> dict[str, dict[str, list[float]]]:
        """``{comparator: {array name: values}}`` of one histogram ({} if none stored)."""
        return dict(self._get(("arrays", SCHEMA, int(run), subsystem, path), {}))

    def history(
        self,
        subsystem: str,
        path: str,
        comparator: str,
        last: int | None = None,
        before: int | None = None,
    ) -> list[Trend]:
        """Trend of one result across runs, oldest first: ``(run, status, score, scores)``.

        Args:
            subsystem: The subsystem.
            path: The histogram path below ``main_gdir``.
            comparator: The comparator name.
            last: Only the latest ``last`` runs.
            before: Only runs up to and including this one.
        """
        points = self._get(("trend", SCHEMA, subsystem, path, comparator), [])
        if before is not None:
            points = points[: bisect.bisect_right([p[0] for p in points], before)]
        if last is not None:
            points = points[-last:] if last > 0 else []
        return [
            (int(r), Status(s), _nan(sc), {k: _nan(v) for k, v in scs.items()})
            for r, s, sc, scs in points
        ]

    # -- staleness ----------------------------------------------------------------------
    def mark_stale(self, subsystem: str, digest: str) -> list[int]:
        """Mark stale exactly the subsystem's records made with a config digest != ``digest``.

        Records made with ``digest`` are (again) not stale. Returns the stale runs.
        """
        with self._tx(f"mark stale results of {subsystem}"):
            digests: dict[int, str] = self._cache.get(("by_subsystem", SCHEMA, subsystem), {})
            stale = sorted(r for r, d in digests.items() if d != digest)
            before = set(self._cache.get(("stale", SCHEMA, subsystem), []))
            for run in set(stale) ^ before:
                self._flag(run, subsystem, run in stale)
            self._set(("stale", SCHEMA, subsystem), stale)
        if stale:
            logger.info("%s: %d stored runs made with another config", subsystem, len(stale))
        return stale

    def _flag(self, run: int, subsystem: str, stale: bool) -> None:
        key = ("report", SCHEMA, run, subsystem)
        body = self._cache.get(key)
        if body is None:
            return
        self._set(key, {**body, "stale": stale})
        summary = self._cache.get(("run", SCHEMA, run), {})
        if subsystem in summary:
            summary[subsystem] = {**summary[subsystem], "stale": stale}
            self._set(("run", SCHEMA, run), summary)

    def stale(self, subsystem: str) -> list[int]:
        """Runs of ``subsystem`` whose stored records are stale (sorted)."""
        return list(self._get(("stale", SCHEMA, subsystem), []))


def _with_point(point: list[Any]) -> Any:
    """Trend updater: insert or replace ``point`` (by run), keep the latest TREND_MAX."""
    run = point[0]

    def change(points: list[list[Any]]) -> list[list[Any]]:
        runs = [p[0] for p in points]
        i = bisect.bisect_left(runs, run)
        if i < len(points) and runs[i] == run:
            out = [*points[:i], point, *points[i + 1 :]]
        else:
            out = [*points[:i], point, *points[i:]]
        return out[-TREND_MAX:]

    return change
