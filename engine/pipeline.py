"""Engine layer: the comparison pipeline of one subsystem of one run.

``plan`` and ``compare_hists`` are pure functions of their inputs (histogram arrays and
config), so remote workers can run them; ``read_inputs`` is the only part doing I/O.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from engine.config import HistConfig, SubsystemConfig, comparator_params
from engine.errors import DQMError, FileFormatError
from engine.io import DQMFile, open_dqm, run_from_filename
from engine.reader import ReadTask, read_many
from engine.registry import Registry
from engine.types import ComparisonResult, HistData, HistKind, Status

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PlannedHist:
    """One histogram to compare: its config entry and path below ``main_gdir``."""

    config: HistConfig
    path: str
    concat: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Plan:
    """What a subsystem comparison will look at, decided from the data file's contents."""

    hists: tuple[PlannedHist, ...]
    missing: tuple[str, ...]

    @property
    def paths(self) -> list[str]:
        """Every histogram path to read (including ``concatenate`` partners), in order."""
        seen: dict[str, None] = {}
        for h in self.hists:
            seen.setdefault(h.path)
            for c in h.concat:
                seen.setdefault(c)
        return list(seen)


@dataclass(frozen=True, slots=True)
class SubsystemReport:
    """Every result of one subsystem of one data run (the ``autodqm compare`` contract)."""

    subsystem: str
    data_run: int
    reference_runs: tuple[int, ...]
    results: tuple[ComparisonResult, ...]
    missing: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def to_dict(self, *, with_arrays: bool = False) -> dict[str, Any]:
        """JSON-safe dict as DESIGN.md's ``autodqm compare --format json``."""
        return {
            "data_run": self.data_run,
            "reference_runs": list(self.reference_runs),
            "subsystem": self.subsystem,
            "results": [r.to_dict(with_arrays=with_arrays) for r in self.results],
            "missing": list(self.missing),
        }

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status is status)


def plan(sub: SubsystemConfig, expand: Callable[[str, str], list[str]]) -> Plan:
    """Expand the config's histogram paths against what the data file holds.

    Args:
        sub: the subsystem config.
        expand: ``expand(directory, pattern)`` lists the matching histogram names in a
            directory below ``main_gdir`` (``DQMFile.expand`` bound to the run's gdir).

    Returns:
        The histograms to compare (each once, first config entry wins) and the config
        paths that matched nothing.
    """
    hists: list[PlannedHist] = []
    missing: list[str] = []
    taken: set[str] = set()
    for hc in sub.hists:
        directory, _, pattern = hc.path.rpartition("/")
        names = expand(directory, pattern)
        if not names:
            missing.append(hc.path)
            continue
        for name in names:
            path = f"{directory}/{name}" if directory else name
            if path in taken:
                continue
            taken.add(path)
            hists.append(PlannedHist(hc, path, tuple(hc.concatenate)))
    return Plan(tuple(hists), tuple(missing))


def _concatenated(main: HistData, parts: Sequence[HistData | None]) -> HistData:
    """Append the bins of ``parts`` to ``main`` as one flat 1D histogram."""
    arrays = [main.counts.ravel()] + [p.counts.ravel() for p in parts if p is not None]
    values = np.concatenate(arrays).astype(np.float64)
    return HistData(
        path=main.path,
        run=main.run,
        values=values,
        variances=values.copy(),
        edges=(np.arange(values.size + 1, dtype=np.float64),),
        title=main.title,
        kind=HistKind.TH1,
        entries=float(values.sum()),
    )


def _comparators_for(
    sub: SubsystemConfig, ph: PlannedHist, data: HistData, registry: Registry
) -> list[tuple[str, bool]]:
    """(comparator name, applies) pairs; a default comparator that does not apply is left out."""
    explicit = ph.config.comparators is not None
    names = ph.config.comparators if explicit else sub.comparators
    out: list[tuple[str, bool]] = []
    for name in names or ():
        cls = registry.get(name)
        applies_fn = getattr(cls, "applies", None)
        ok = data.ndim in cls.dims if applies_fn is None else bool(applies_fn(data))
        if ok or explicit:
            out.append((name, ok))
    return out


def compare_hists(
    sub: SubsystemConfig,
    registry: Registry,
    the_plan: Plan,
    data: Mapping[str, HistData],
    refs: Sequence[Mapping[str, HistData]],
) -> list[ComparisonResult]:
    """Run every configured comparator on every planned histogram (pure; no I/O).

    A histogram missing from a reference just drops that reference; one missing from
    every reference gives ``skipped`` results. A comparator that raises gives an
    ``error`` result and never stops the rest.
    """
    results: list[ComparisonResult] = []
    for ph in the_plan.hists:
        d = data.get(ph.path)
        if d is None:
            continue
        rs = [r[ph.path] for r in refs if ph.path in r]
        if ph.concat:
            d = _concatenated(d, [data.get(c) for c in ph.concat])
            rs = [
                _concatenated(ref[ph.path], [ref.get(c) for c in ph.concat])
                for ref in refs
                if ph.path in ref
            ]
        for name, applies in _comparators_for(sub, ph, d, registry):
            results.append(_run_one(sub, registry, ph, name, applies, d, rs, len(refs)))
    return results


def _run_one(
    sub: SubsystemConfig,
    registry: Registry,
    ph: PlannedHist,
    name: str,
    applies: bool,
    data: HistData,
    refs: Sequence[HistData],
    n_refs_given: int,
) -> ComparisonResult:
    base = ComparisonResult(name, ph.path, Status.SKIPPED, 0.0, None, entries=data.total)
    if not applies:
        return _with(base, reason=f"{name} does not apply to a {data.ndim}D {data.kind} histogram")
    if not refs:
        why = "none given" if n_refs_given == 0 else f"missing in all {n_refs_given} reference runs"
        return _with(base, reason=f"no usable reference: {why}")
    try:
        comp = registry.build(name, comparator_params(sub, ph.config, ph.path, name, registry))
        res = comp.compare(data, refs)
    except DQMError as err:
        return _with(base, status=Status.ERROR, reason=str(err))
    except Exception as err:  # boundary: one comparator never stops the run
        logger.exception("%s on %s/%s failed", name, sub.name, ph.path)
        return _with(
            base, status=Status.ERROR, reason=f"{name} failed: {type(err).__name__}: {err}"
        )
    if len(refs) < n_refs_given:
        lost = n_refs_given - len(refs)
        note = f"{lost} of {n_refs_given} reference runs lack this histogram"
        res = _with(res, reason=f"{res.reason}; {note}" if res.reason else note)
    return res


def _with(res: ComparisonResult, **changes: Any) -> ComparisonResult:
    return replace(res, **changes)


@dataclass(frozen=True, slots=True)
class Inputs:
    """Histogram arrays read for one comparison: data and each reference, by path."""

    data_run: int
    reference_runs: tuple[int, ...]
    plan: Plan
    data: Mapping[str, HistData]
    refs: tuple[Mapping[str, HistData], ...]
    notes: tuple[str, ...] = ()
    errors: Mapping[str, str] = field(default_factory=dict)


def file_run(f: DQMFile) -> int:
    """The run of a DQM file: its ``DQMData/Run N`` directory, else its file name."""
    run = f.run if f.run is not None else run_from_filename(f.path.name)
    if run is None:
        msg = f"{f.path}: cannot tell the run number (no 'DQMData/Run N' directory, file name not DQM_V0001_R000NNNNNN...); pass it explicitly"
        raise FileFormatError(msg)
    return run


def read_inputs(
    sub: SubsystemConfig,
    data_path: str | os.PathLike[str],
    ref_paths: Sequence[str | os.PathLike[str]],
    *,
    data_run: int | None = None,
    ref_runs: Sequence[int] | None = None,
    workers: int | None = None,
) -> Inputs:
    """Open the files, plan from the data file and read every needed histogram.

    Raises:
        FileFormatError: a file is missing, not ROOT, truncated, or the data file has no
            directory for this subsystem.
        DQMError: run numbers are inconsistent.
    """
    if ref_runs is not None and len(ref_runs) != len(ref_paths):
        msg = f"{len(ref_runs)} reference run numbers given for {len(ref_paths)} reference files"
        raise DQMError(msg)
    notes: list[str] = []
    with open_dqm(data_path) as f:
        run = data_run if data_run is not None else file_run(f)
        gdir = sub.gdir(run)
        if not f.has_dir(gdir.rstrip("/")):
            msg = f"{Path(data_path).name}: run {run} has no {sub.name} histograms (no directory {gdir!r})"
            raise FileFormatError(msg)
        the_plan = plan(sub, lambda d, p: f.expand(gdir + d if d else gdir.rstrip("/"), p))
    paths = tuple(the_plan.paths)
    tasks = [ReadTask(str(data_path), gdir, run, paths)]
    runs: list[int] = []
    for i, rp in enumerate(ref_paths):
        with open_dqm(rp) as rf:
            rrun = ref_runs[i] if ref_runs is not None else file_run(rf)
            rgdir = sub.gdir(rrun)
            if not rf.has_dir(rgdir.rstrip("/")):
                notes.append(f"reference run {rrun} has no {sub.name} histograms")
        runs.append(rrun)
        tasks.append(ReadTask(str(rp), rgdir, rrun, paths))
    data, *refs = read_many(tasks, workers)
    for r, res in zip(runs, refs, strict=True):
        notes.extend(f"reference run {r}: {msg}" for msg in res.errors.values())
    return Inputs(
        run,
        tuple(runs),
        the_plan,
        data.hists,
        tuple(r.hists for r in refs),
        tuple(notes),
        errors=data.errors,
    )


def run_comparison(sub: SubsystemConfig, registry: Registry, inputs: Inputs) -> SubsystemReport:
    """The pure part: compare the read inputs and package the report."""
    if inputs.data_run in inputs.reference_runs:
        msg = f"reference runs {list(inputs.reference_runs)} include the data run {inputs.data_run}"
        raise DQMError(msg)
    results = compare_hists(sub, registry, inputs.plan, inputs.data, inputs.refs)
    results.extend(
        ComparisonResult("read", path, Status.ERROR, 0.0, None, reason=msg)
        for path, msg in inputs.errors.items()
    )
    return SubsystemReport(
        subsystem=sub.name,
        data_run=inputs.data_run,
        reference_runs=inputs.reference_runs,
        results=tuple(results),
        missing=inputs.plan.missing,
        notes=inputs.notes,
    )
