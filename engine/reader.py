"""Engine layer: read many histograms from several DQM files, in parallel processes.

Reading costs about 0.2 ms a histogram (decompression and decoding), so a
2,000-histogram subsystem against four references is split into per-file chunks
spread over worker processes.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from engine.errors import FileFormatError, HistogramNotFound
from engine.io import open_dqm
from engine.types import HistData

logger = logging.getLogger(__name__)

#: Below this many histograms in all, starting worker processes costs more than it saves.
PARALLEL_MIN_HISTS = 1500


@dataclass(frozen=True, slots=True)
class ReadTask:
    """Read ``paths`` (relative to ``gdir``) from the file at ``file``, labelled ``run``."""

    file: str
    gdir: str
    run: int
    paths: tuple[str, ...]


@dataclass(slots=True)
class ReadResult:
    """Histograms read, and per-path errors of histograms that exist but cannot be read."""

    hists: dict[str, HistData] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def update(self, other: ReadResult) -> None:
        self.hists.update(other.hists)
        self.errors.update(other.errors)


def read_task(task: ReadTask) -> ReadResult:
    """Read one task; a missing histogram is left out, an unreadable one recorded."""
    out = ReadResult()
    with open_dqm(task.file) as f:
        for p in task.paths:
            try:
                out.hists[p] = f.read(task.gdir + p, path=p, run=task.run)
            except HistogramNotFound:
                logger.debug("%s: %s not found", task.file, p)
            except FileFormatError as err:
                out.errors[p] = str(err)
    return out


def _split(tasks: Sequence[ReadTask], pieces: int) -> list[tuple[int, ReadTask]]:
    out: list[tuple[int, ReadTask]] = []
    for i, t in enumerate(tasks):
        n = max(1, min(pieces, len(t.paths) // 200))
        step = -(-len(t.paths) // n) if t.paths else 1
        out.extend(
            (i, ReadTask(t.file, t.gdir, t.run, t.paths[k : k + step]))
            for k in range(0, max(len(t.paths), 1), step)
        )
    return out


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def pool_context() -> multiprocessing.context.BaseContext:
    """How worker processes start: ``fork`` when this process runs no other thread.

    ``fork`` starts in milliseconds and does not re-import the caller's ``__main__``
    (so a plain script calling the engine works without an ``if __name__`` guard);
    forking a process that runs threads (the scheduler, a web server) can deadlock, so
    there ``forkserver`` is used.
    """
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("forkserver")


def read_many(tasks: Sequence[ReadTask], workers: int | None = None) -> list[ReadResult]:
    """Run ``tasks`` and return one result per task, in order.

    Uses ``workers`` processes (default: the number of cores, at most 4) when there is
    enough to read (see :func:`pool_context` for how they start).
    """
    workers = default_workers() if workers is None else workers
    total = sum(len(t.paths) for t in tasks)
    results = [ReadResult() for _ in tasks]
    if workers <= 1 or total < PARALLEL_MIN_HISTS:
        for i, t in enumerate(tasks):
            results[i] = read_task(t)
        return results
    chunks = _split(tasks, workers)
    with ProcessPoolExecutor(max_workers=workers, mp_context=pool_context()) as pool:
        for (i, _), res in zip(chunks, pool.map(read_task, [c for _, c in chunks]), strict=True):
            results[i].update(res)
    return results
