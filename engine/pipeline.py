"""Engine layer: the comparison pipeline of one subsystem of one run (pure part).

``plan``, ``compare_hists`` and ``run_comparison`` are pure functions of their inputs
(histogram arrays and config), so remote workers can run them; the file side is in
``engine.runner``.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from engine.config import HistConfig, SubsystemConfig, comparator_params
from engine.errors import DQMError
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
        """Results with ``status`` as it counts for the verdict (``verdict_status``)."""
        return sum(1 for r in self.results if r.verdict_status == status)


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


def total_entries(hists: Mapping[str, HistData]) -> float:
    """Entries of a run's histograms, summed (profiles: their per-bin entries)."""
    return float(sum(float(np.nansum(h.counts)) for h in hists.values()))


def with_exposure(hists: Mapping[str, HistData]) -> dict[str, HistData]:
    """Each histogram with the run's exposure: the entries of all of them (a rate that
    moves against the subsystem's other histograms is a change of rate)."""
    total = total_entries(hists)
    return {p: h if h.exposure == total else replace(h, exposure=total)
            for p, h in hists.items()}  # fmt: skip


def rate_spread(refs: Sequence[Mapping[str, HistData]]) -> float:
    """The median over histograms of the spread (ddof 1) of each one's log share of its
    run's exposure over ``refs`` (with exposures); nan with fewer than 2 references."""
    if len(refs) < 2:
        return math.nan
    spreads = []
    for path in refs[0]:
        runs = [r.get(path) for r in refs]
        n = np.array([np.nan if h is None else float(np.nansum(h.counts)) for h in runs])
        e = np.array([np.nan if h is None else h.exposure for h in runs])
        with np.errstate(all="ignore"):
            share = np.log(n / e)
        if np.all(np.isfinite(share)):
            spreads.append(float(np.std(share, ddof=1)))
    return float(np.median(spreads)) if spreads else math.nan


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
    out: list[tuple[str, bool]] = []
    for name, explicit in sub.tests(ph.config):
        ok = data.ndim in registry.get(name).dims
        if ok or explicit:
            out.append((name, ok))
    return out


def tests_per_comparator(sub: SubsystemConfig, the_plan: Plan) -> Counter[str]:
    """How many planned histograms each comparator is configured for (explicitly or by
    default): the ``n_tests`` of tests whose cut is corrected for looking at all of them.

    Counted from the whole plan, before anything is read, so that a plan split over
    workers judges every chunk with the same cut.
    """
    return Counter(name for ph in the_plan.hists for name, _ in sub.tests(ph.config))


def compare_hists(
    sub: SubsystemConfig,
    registry: Registry,
    the_plan: Plan,
    data: Mapping[str, HistData],
    refs: Sequence[Mapping[str, HistData]],
    *,
    n_tests: Mapping[str, int] | None = None,
    history: Mapping[str, Sequence[HistData]] | None = None,
) -> list[ComparisonResult]:
    """Run every configured comparator on every planned histogram (pure; no I/O).

    A histogram missing from a reference just drops that reference; one missing from
    every reference gives ``skipped`` results. A comparator that raises gives an
    ``error`` result and never stops the rest. A comparator with an ``n_tests``
    parameter gets the number of histograms it is configured for in this subsystem
    (``n_tests``, default :func:`tests_per_comparator` of ``the_plan``), so its cut is
    corrected for looking at all of them. A comparator that learns from a history
    (``learns_from = "history"``) gets ``history[path]`` when given (the service's last
    good runs), else the references (``autodqm compare``: it learns from all of them).
    """
    # One histogram's algebra is small (matrices of tens of runs): BLAS threads only
    # contend with each other and with the worker processes, several times slower.
    with threadpool_limits(limits=1, user_api="blas"):
        work: list[tuple[PlannedHist, HistData, list[HistData], list[tuple[str, bool]]]] = []
        refs = [with_exposure(r) for r in refs]
        spread = rate_spread(refs)
        data = {p: replace(h, rate_spread=spread) for p, h in with_exposure(data).items()}
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
            work.append((ph, d, rs, _comparators_for(sub, ph, d, registry)))
        counts = tests_per_comparator(sub, the_plan) if n_tests is None else n_tests
        learns = {n: getattr(registry.get(n), "learns_from", "references") == "history"
                  for n in counts}  # fmt: skip
        out = []
        for ph, d, rs, comps in work:
            past = None if history is None or ph.concat else history.get(ph.path)
            for name, applies in comps:
                given = past if learns.get(name) and past is not None else rs
                n_given = len(given) if given is past else len(refs)
                out.append(_run_one(sub, registry, ph, name, applies, d, given, n_given,
                                    counts.get(name, 1)))  # fmt: skip
        return out


def _run_one(
    sub: SubsystemConfig,
    registry: Registry,
    ph: PlannedHist,
    name: str,
    applies: bool,
    data: HistData,
    refs: Sequence[HistData],
    n_refs_given: int,
    n_tests: int = 1,
) -> ComparisonResult:
    base = ComparisonResult(name, ph.path, Status.SKIPPED, 0.0, None, entries=data.total)
    if not applies:
        return _with(base, reason=f"{name} does not apply to a {data.ndim}D {data.kind} histogram")
    if not refs:
        why = "none given" if n_refs_given == 0 else f"missing in all {n_refs_given} reference runs"
        return _with(base, reason=f"no usable reference: {why}")
    try:
        params = comparator_params(sub, ph.config, ph.path, name, registry)
        if "n_tests" in registry.params(name):
            params["n_tests"] = max(n_tests, 1)
        comp = registry.build(name, params)
        res = comp.compare(data, refs)
    except DQMError as err:
        return _with(base, status=Status.ERROR, reason=str(err))
    except Exception as err:  # boundary: one comparator never stops the run
        logger.exception("%s on %s/%s failed", name, sub.name, ph.path)
        return _with(
            base, status=Status.ERROR, reason=f"{name} failed: {type(err).__name__}: {err}"
        )
    if name not in sub.deciders(ph.config):
        res = _with(res, decides=False)
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


def run_comparison(
    sub: SubsystemConfig, registry: Registry, inputs: Inputs,
    *, history: Mapping[str, Sequence[HistData]] | None = None,
) -> SubsystemReport:  # fmt: skip
    """The pure part: compare the read inputs and package the report (``history``: see
    :func:`compare_hists`)."""
    if inputs.data_run in inputs.reference_runs:
        msg = f"reference runs {list(inputs.reference_runs)} include the data run {inputs.data_run}"
        raise DQMError(msg)
    results = compare_hists(sub, registry, inputs.plan, inputs.data, inputs.refs, history=history)
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
