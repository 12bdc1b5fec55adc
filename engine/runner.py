"""Engine layer: the file side of a comparison — open, plan, read, compare in parallel.

``compare_files`` splits the planned histograms into chunks; each chunk is read from
the data and reference files and compared in a worker process (see ``engine.reader.pool_context``). Each chunk is a pure function of its inputs, the same
unit a remote task queue would run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from engine.config import SubsystemConfig
from engine.errors import DQMError, FileFormatError
from engine.history import Decoded, FileContents
from engine.io import DQMFile, open_dqm, run_from_filename
from engine.pipeline import Inputs, Plan, SubsystemReport, compare_hists, plan, tests_per_comparator
from engine.reader import (
    PARALLEL_MIN_HISTS,
    ReadResult,
    ReadTask,
    default_workers,
    pool_context,
    read_many,
    read_task,
)
from engine.registry import Registry
from engine.types import ComparisonResult, Status

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Prepared:
    """What is known before reading any histogram: runs, directories, the plan."""

    data: ReadTask
    refs: tuple[ReadTask, ...]
    plan: Plan
    notes: tuple[str, ...]

    @property
    def reference_runs(self) -> tuple[int, ...]:
        return tuple(t.run for t in self.refs)


def file_run(f: DQMFile) -> int:
    """The run of a DQM file: its ``DQMData/Run N`` directory, else its file name."""
    run = f.run if f.run is not None else run_from_filename(f.path.name)
    if run is None:
        msg = (
            f"{f.path}: cannot tell the run number (no 'DQMData/Run N' directory, and the "
            "file name is not DQM_V0001_R000NNNNNN...); pass it with --data-run/--ref-runs"
        )
        raise FileFormatError(msg)
    return run


def prepare(
    sub: SubsystemConfig,
    data_path: str | os.PathLike[str],
    ref_paths: Sequence[str | os.PathLike[str]],
    *,
    data_run: int | None = None,
    ref_runs: Sequence[int] | None = None,
) -> Prepared:
    """Open every file, check runs and directories, and plan from the data file.

    Raises:
        FileFormatError: a file is missing, not ROOT, truncated, or the data file has no
            directory for this subsystem.
        DQMError: run numbers are inconsistent, or a reference is the data run.
    """
    if ref_runs is not None and len(ref_runs) != len(ref_paths):
        msg = f"{len(ref_runs)} reference run numbers given for {len(ref_paths)} reference files"
        raise DQMError(msg)
    with open_dqm(data_path) as f:
        run = data_run if data_run is not None else file_run(f)
        gdir = sub.gdir(run)
        if not f.has_dir(gdir.rstrip("/")):
            msg = f"{Path(data_path).name}: run {run} has no {sub.name} histograms (no directory {gdir!r})"
            raise FileFormatError(msg)
        the_plan = plan(sub, lambda d, p: f.expand(gdir + d if d else gdir.rstrip("/"), p))
    if not the_plan.hists:
        msg = (
            f"{Path(data_path).name}: none of the {len(sub.hists)} histogram paths of "
            f"{sub.source.name} is in run {run} (first: {sub.hists[0].path!r})"
            if sub.hists
            else f"{sub.source.name}: the config lists no histograms"
        )
        raise DQMError(msg)
    paths = tuple(the_plan.paths)
    notes: list[str] = []
    refs: list[ReadTask] = []
    for i, rp in enumerate(ref_paths):
        with open_dqm(rp) as rf:
            rrun = ref_runs[i] if ref_runs is not None else file_run(rf)
            rgdir = sub.gdir(rrun)
            if not rf.has_dir(rgdir.rstrip("/")):
                notes.append(f"reference run {rrun} has no {sub.name} histograms")
        refs.append(ReadTask(str(rp), rgdir, rrun, paths))
    if run in (t.run for t in refs):
        msg = f"reference runs {[t.run for t in refs]} include the data run {run}"
        raise DQMError(msg)
    return Prepared(ReadTask(str(data_path), gdir, run, paths), tuple(refs), the_plan, tuple(notes))


def read_inputs(
    sub: SubsystemConfig,
    data_path: str | os.PathLike[str],
    ref_paths: Sequence[str | os.PathLike[str]],
    *,
    data_run: int | None = None,
    ref_runs: Sequence[int] | None = None,
    workers: int | None = None,
) -> Inputs:
    """Prepare, then read every needed histogram into memory (see :func:`prepare`)."""
    prep = prepare(sub, data_path, ref_paths, data_run=data_run, ref_runs=ref_runs)
    data, *refs = read_many([prep.data, *prep.refs], workers)
    notes = list(prep.notes)
    for t, res in zip(prep.refs, refs, strict=True):
        notes.extend(f"reference run {t.run}: {msg}" for msg in res.errors.values())
    return Inputs(
        prep.data.run,
        prep.reference_runs,
        prep.plan,
        data.hists,
        tuple(r.hists for r in refs),
        tuple(notes),
        errors=data.errors,
    )


#: One input of a chunk: histograms already decoded (stored contents), or None to read.
Given = tuple[Decoded | None, ...]


def compare_chunk(
    sub: SubsystemConfig, registry: Registry, prep: Prepared, chunk: Plan,
    given: Given | None = None,
) -> tuple[list[ComparisonResult], list[str], list[ReadResult | None]]:  # fmt: skip
    """Read and compare one chunk of the plan (runs in a worker process); every chunk is
    judged with the cuts of the whole plan.

    ``given`` holds, per input (data first, then each reference), the stored contents of
    the chunk's paths, or None for an input read from its file here; what was read is
    returned (None for given inputs), so that it can be stored.
    """
    paths = tuple(chunk.paths)
    tasks = [prep.data, *prep.refs]
    given = given or (None,) * len(tasks)
    fresh = [None if g is not None else read_task(replace(t, paths=paths))
             for t, g in zip(tasks, given, strict=True)]  # fmt: skip
    inputs = [ReadResult(dict(g.hists), dict(g.errors)) if g is not None else f
              for g, f in zip(given, fresh, strict=True)]  # fmt: skip
    data, *refs = (r for r in inputs if r is not None)
    results = compare_hists(
        sub, registry, chunk, data.hists, [r.hists for r in refs],
        n_tests=tests_per_comparator(sub, prep.plan),
    )  # fmt: skip
    results.extend(
        ComparisonResult("read", path, Status.ERROR, 0.0, None, reason=msg)
        for path, msg in data.errors.items()
    )
    notes = [
        f"reference run {t.run}: {m}"
        for t, r in zip(prep.refs, refs, strict=True)
        for m in r.errors.values()
    ]
    return results, notes, fresh


def _subset(d: Decoded | None, paths: Sequence[str]) -> Decoded | None:
    if d is None:
        return None
    return Decoded({p: d.hists[p] for p in paths if p in d.hists},
                   {p: d.errors[p] for p in paths if p in d.errors})  # fmt: skip


def _chunks(the_plan: Plan, n: int) -> list[Plan]:
    size = -(-len(the_plan.hists) // n)
    return [Plan(the_plan.hists[i : i + size], ()) for i in range(0, len(the_plan.hists), size)]


def compare_files(
    sub: SubsystemConfig,
    registry: Registry,
    data_path: str | os.PathLike[str],
    ref_paths: Sequence[str | os.PathLike[str]],
    *,
    data_run: int | None = None,
    ref_runs: Sequence[int] | None = None,
    workers: int | None = None,
    contents: FileContents | None = None,
) -> SubsystemReport:
    """Compare a data file with reference files: the whole ``autodqm compare`` job.

    Large subsystems are split over ``workers`` processes (default: the cores, at most
    4); results come back in plan order, whatever the split. With ``contents`` (the
    results store's decoded files), a file read before is not decoded again, and every
    file read is kept there.
    """
    prep = prepare(sub, data_path, ref_paths, data_run=data_run, ref_runs=ref_runs)
    workers = default_workers() if workers is None else workers
    tasks = [prep.data, *prep.refs]
    paths = tuple(prep.plan.paths)
    stored = tuple(None if contents is None else contents.get(t.file, t.gdir, paths)
                   for t in tasks)  # fmt: skip
    reads = len(paths) * sum(1 for s in stored if s is None)
    if workers <= 1 or reads < PARALLEL_MIN_HISTS:
        parts = [compare_chunk(sub, registry, prep, prep.plan, stored)]
    else:
        chunks = _chunks(prep.plan, 4 * workers)
        with ProcessPoolExecutor(max_workers=workers, mp_context=pool_context()) as pool:
            futures = [
                pool.submit(compare_chunk, sub, registry, prep, c,
                            tuple(_subset(s, c.paths) for s in stored))
                for c in chunks
            ]  # fmt: skip
            parts = [f.result() for f in futures]
    results = [r for res, _, _ in parts for r in res]
    notes = list(prep.notes) + [n for _, ns, _ in parts for n in ns]
    if contents is not None:
        for i, t in enumerate(tasks):
            if stored[i] is None:
                got = ReadResult()
                for _, _, fresh in parts:
                    part = fresh[i]
                    if part is not None:
                        got.update(part)
                contents.put(t.file, t.gdir, paths, Decoded(got.hists, got.errors))
    logger.info(
        "%s run %d: %d results from %d histograms (%d of %d files decoded)",
        sub.name,
        prep.data.run,
        len(results),
        len(prep.plan.hists),
        sum(1 for s in stored if s is None),
        len(tasks),
    )
    return SubsystemReport(
        subsystem=sub.name,
        data_run=prep.data.run,
        reference_runs=prep.reference_runs,
        results=tuple(results),
        missing=prep.plan.missing,
        notes=tuple(notes),
    )
