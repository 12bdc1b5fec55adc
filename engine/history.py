"""Engine layer: the history — compact contents of every processed run, kept in the results
store, and which of them are good enough to learn a histogram's normal variation from.

Each DQM file is decoded once: the contents of a run's histograms are stored when it is
processed (or when it is first needed as a reference or history run, the backfill), and
references and history are read from here afterwards. A run enters a histogram's history
when it was judged, had normal statistics, and that histogram was neither flagged by a
deciding test nor marked "real problem" by a person. Keys (in the results store):

- ``("contents", S, dataset, subsystem, run)``: ``{path: HistData}`` (float32 arrays).
- ``("judged", S, dataset, subsystem)``: ``{run: {"flagged": [...], "low_stats": bool,
  "entries": float, "judged": bool}}``.
- ``("file_contents", S, file, size, mtime_ns, gdir)``: a :class:`Decoded` of the paths
  ``autodqm compare`` has read from a file, kept by the file's identity (a changed file
  is decoded again); ``("file_contents_of", S, file)`` names the file's current key.
"""

from __future__ import annotations

import logging
import statistics as pystats
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from engine.pipeline import total_entries
from engine.store_ops import SCHEMA
from engine.store_records import StoreError
from engine.types import HistData

logger = logging.getLogger(__name__)

#: Runs kept in a histogram's history (the latest good ones).
HISTORY_RUNS = 30
#: A run with fewer entries than this fraction of the median of the runs before it has
#: low statistics: it is judged, but never a reference or a history run.
LOW_STATS_FRACTION = 0.2
#: A person's verdict that keeps a run out of the history of that histogram.
REAL_PROBLEM = "real_problem"


def _as(h: HistData, dtype: type) -> HistData:
    def cast(a: Any) -> Any:
        return None if a is None else np.asarray(a, dtype=dtype)

    return replace(h, values=cast(h.values), variances=cast(h.variances),
                   bin_entries=cast(h.bin_entries))  # fmt: skip


def compact(h: HistData) -> HistData:
    """``h`` with float32 arrays (half the bytes; counts and means keep 7 digits)."""
    return _as(h, np.float32)


def expand(h: HistData) -> HistData:
    """The float64 form the comparators compute with."""
    return _as(h, np.float64)


@dataclass(frozen=True, slots=True)
class Decoded:
    """What one DQM file holds for one subsystem: histograms by path, unreadable ones."""

    hists: Mapping[str, HistData]
    errors: Mapping[str, str] = field(default_factory=dict)


class History:
    """The history of one results store (composition: it holds the store)."""

    def __init__(self, store: Any, runs: int = HISTORY_RUNS) -> None:
        self.store = store
        self.runs = runs

    # -- contents -----------------------------------------------------------------------
    def contents(
        self, dataset: str, subsystem: str, run: int, digest: str | None = None
    ) -> Decoded | None:
        """The stored histograms of a run, or None when it was never decoded (or, with
        ``digest``, decoded for another version of the subsystem config)."""
        raw = self.store._get(("contents", SCHEMA, dataset, subsystem, int(run)))
        if raw is None or (digest is not None and raw.get("digest") != digest):
            return None
        return Decoded({p: expand(h) for p, h in raw["hists"].items()}, dict(raw["errors"]))

    def indexed(self, dataset: str, subsystem: str) -> set[int]:
        """Runs whose contents are stored (every one is in the index, low statistics too)."""
        return set(self._index(dataset, subsystem))

    def put_contents(
        self, dataset: str, subsystem: str, run: int, decoded: Decoded, digest: str = ""
    ) -> bool:
        """Store a run's decoded histograms; returns whether it has low statistics.

        Raises:
            StoreError: the write failed; nothing of it is stored.
        """
        entries = total_entries(decoded.hists)
        index = self._index(dataset, subsystem)
        before = [v["entries"] for r, v in index.items() if r < run and not v["low_stats"]]
        median = pystats.median(before[-self.runs :]) if before else 0.0
        low = bool(before) and entries < LOW_STATS_FRACTION * median
        old = index.get(int(run), {})
        entry = {"flagged": old.get("flagged", []), "low_stats": low, "entries": entries,
                 "judged": bool(old.get("judged"))}  # fmt: skip
        body = {"hists": {p: compact(h) for p, h in decoded.hists.items()},
                "errors": dict(decoded.errors), "digest": digest}  # fmt: skip
        with self.store._tx(f"store contents of run {run} {subsystem}"):
            self.store._set(("contents", SCHEMA, dataset, subsystem, int(run)), body)
            self.store._update(("judged", SCHEMA, dataset, subsystem),
                               lambda d: {**d, int(run): entry}, {})  # fmt: skip
        return low

    def mark_judged(self, dataset: str, subsystem: str, run: int, flagged: Iterable[str]) -> None:
        """Record that ``run`` was compared, and which of its histograms a deciding test
        flagged (they stay out of their history)."""

        def change(d: dict[int, Any]) -> dict[int, Any]:
            entry = {**d.get(int(run), {"low_stats": False, "entries": 0.0}),
                     "flagged": sorted(set(flagged)), "judged": True}  # fmt: skip
            return {**d, int(run): entry}

        with self.store._tx(f"mark run {run} {subsystem} judged"):
            self.store._update(("judged", SCHEMA, dataset, subsystem), change, {})

    def _index(self, dataset: str, subsystem: str) -> dict[int, dict[str, Any]]:
        raw = self.store._get(("judged", SCHEMA, dataset, subsystem), {})
        return {int(r): v for r, v in sorted(raw.items(), key=lambda kv: int(kv[0]))}

    def low_stats(self, dataset: str, subsystem: str) -> set[int]:
        """Runs known to have low statistics (never references, never history)."""
        return {r for r, v in self._index(dataset, subsystem).items() if v["low_stats"]}

    # -- history ------------------------------------------------------------------------
    def runs_for(self, dataset: str, subsystem: str, run: int) -> list[int]:
        """Runs with contents that may serve as history of ``run`` (latest last): not
        ``run``, normal statistics; those before it first, later ones only to fill up."""
        index = self._index(dataset, subsystem)
        ok = [r for r, v in index.items() if r != run and not v["low_stats"]]
        before = [r for r in ok if r < run]
        after = [r for r in ok if r > run]
        return (before + after[: max(0, self.runs - len(before))])[-self.runs :]

    def history(
        self, dataset: str, subsystem: str, run: int, paths: Iterable[str],
    ) -> dict[str, list[HistData]]:  # fmt: skip
        """Per histogram path, its history for ``run``: up to ``runs`` good runs' contents.

        A run is left out of a histogram's history when a deciding test flagged that
        histogram in it, or a person marked it a real problem.
        """
        index = self._index(dataset, subsystem)
        wanted = list(paths)
        out: dict[str, list[HistData]] = {p: [] for p in wanted}
        for r in reversed(self.runs_for(dataset, subsystem, run)):
            if all(len(v) >= self.runs for v in out.values()):
                break
            stored = self.contents(dataset, subsystem, r)
            if stored is None:
                continue
            contents = stored.hists
            bad = set(index.get(r, {}).get("flagged", ()))
            total = float(index.get(r, {}).get("entries", np.nan))
            verdicts = self.store.verdicts(r, subsystem)
            for p in wanted:
                h = contents.get(p)
                if h is None or p in bad or len(out[p]) >= self.runs:
                    continue
                if any(v.get("verdict") == REAL_PROBLEM for v in verdicts.get(p, {}).values()):
                    continue
                out[p].append(replace(h, exposure=total))
        return {p: v[::-1] for p, v in out.items()}


def file_key(path: str | Path, gdir: str) -> tuple[str, int, int, str]:
    """A DQM file's identity: resolved path, size and modification time (and the directory
    read): the same file unchanged has the same key."""
    real = Path(path).resolve()
    st = real.stat()
    return str(real), st.st_size, st.st_mtime_ns, gdir


class FileContents:
    """Decoded contents of DQM files by file identity, in the results store: each file
    that ``autodqm compare`` reads is decoded once, then read from here.

    A cache, never the record of a result: a store that cannot be read or written is
    logged once and the files are decoded as if it were empty.
    """

    def __init__(self, store: Any) -> None:
        self.store = store
        self._warned = False

    def _off(self, err: Exception) -> None:
        if not self._warned:
            logger.warning("decoded-contents cache unavailable, decoding files: %s", err)
            self._warned = True

    def get(self, path: str, gdir: str, paths: Iterable[str]) -> Decoded | None:
        """The stored contents of ``paths`` of the file, or None unless every one of them
        was read before (found, unreadable, or known to be missing)."""
        try:
            key = file_key(path, gdir)
            raw = self.store._get(("file_contents", SCHEMA, *key))
        except (OSError, StoreError) as err:
            self._off(err)
            return None
        if raw is None:
            return None
        wanted = list(paths)
        known = raw["read"]
        if any(p not in known for p in wanted):
            return None
        hists = {p: expand(raw["hists"][p]) for p in wanted if p in raw["hists"]}
        errors = {p: raw["errors"][p] for p in wanted if p in raw["errors"]}
        return Decoded(hists, errors)

    def put(self, path: str, gdir: str, paths: Iterable[str], decoded: Decoded) -> None:
        """Keep what was read of ``paths`` (merged with what is kept of the same file);
        the entry of an older version of the file is dropped."""
        try:
            key = file_key(path, gdir)
            name = ("file_contents_of", SCHEMA, key[0], gdir)
            with self.store._tx(f"store decoded contents of {key[0]}"):
                old_key = self.store._cache.get(name)
                old = self.store._cache.get(("file_contents", SCHEMA, *key)) if \
                    old_key == key else None  # fmt: skip
                body = old or {"hists": {}, "errors": {}, "read": set()}
                body["hists"].update({p: compact(h) for p, h in decoded.hists.items()})
                body["errors"].update(decoded.errors)
                body["read"] = set(body["read"]) | set(paths)
                if old_key is not None and tuple(old_key) != key:
                    self.store._delete(("file_contents", SCHEMA, *old_key))
                self.store._set(("file_contents", SCHEMA, *key), body)
                self.store._set(name, key)
        except (OSError, StoreError) as err:
            self._off(err)
