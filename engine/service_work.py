"""Engine layer: the work of one service job — what is watched, which references, the comparison.

``decode`` reads a run's file once; ``compare_contents`` is a pure function of (decoded
contents, config, references, history): the unit a remote worker (Celery) would run; the
service around it does the state changes.

Eligible references: certified runs (any certification source) with a DQM file in the
watched dataset, other than the data run; among them, runs whose stored report of the
same subsystem has flagged results are passed over with the reason "flagged" — a
reference with a defect would hide the same defect in the data run or flag a healthy
run. Runs not processed yet count as good. When every candidate is flagged (a lasting
change of the detector), the flagged ones are used anyway and the reason says so.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from engine.config import SubsystemConfig, find_subsystem, load_subsystem
from engine.errors import ConfigError, DQMError, FileFormatError
from engine.history import Decoded
from engine.io import open_dqm
from engine.pipeline import Inputs, Plan, SubsystemReport, plan, run_comparison
from engine.provenance import make_provenance
from engine.reader import ReadTask, read_task
from engine.references import Policy, RefChoice
from engine.registry import Registry
from engine.runmeta import RunMeta, meta_from_runfiles
from engine.service_config import ServiceConfig
from engine.sources.base import RunFile
from engine.store import Store, SubsystemRecord
from engine.types import HistData

logger = logging.getLogger(__name__)

#: previous_good looks at this many times ``count`` certified runs on each side at most.
NEAR_FACTOR = 5


@dataclass(frozen=True, slots=True)
class Watched:
    """One watched subsystem: its config, the dataset it is read from, its reference policy."""

    config: SubsystemConfig
    series: str
    sample: str
    policy: Policy
    processing: str | None = None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def dataset(self) -> str:
        return f"{self.series}/{self.sample}"


def load_watched(config: ServiceConfig, registry: Registry) -> dict[str, Watched]:
    """Every watched subsystem by name (configs as loaded by ``load_service_config``).

    Raises:
        ConfigError: a subsystem config is missing or invalid, or two watches list the
            same subsystem (a job is keyed by (run, subsystem)).
    """
    out: dict[str, Watched] = {}
    for i, w in enumerate(config.watches):
        for name in w.subsystems:
            sub = w.configs.get(name) or load_subsystem(
                find_subsystem(name, w.config_dir), registry
            )
            if sub.name in out:
                msg = (
                    f"{config.path}: watch[{i}].subsystems: {sub.name!r} is already watched in "
                    f"{out[sub.name].dataset}; list each subsystem in one watch"
                )
                raise ConfigError(msg)
            policy = w.policy_for(name)
            out[sub.name] = Watched(sub, w.series, w.sample, policy, w.processing)
    return out


def candidates(run: int, good: list[int], policy: Policy) -> list[int]:
    """The certified runs a policy may pick for ``run`` (bounds the store look-ups)."""
    if policy.name == "fixed":
        return [r for r in policy.runs if r in set(good)]
    span = policy.window if policy.name == "similar" else NEAR_FACTOR * policy.count
    before = [r for r in good if r < run][-span:]
    after = [r for r in good if r > run][:span]
    return before + after


def flagged(store: Store, run: int, subsystem: str) -> bool:
    """Whether the stored report of (run, subsystem) has flagged results."""
    summary = store.run_summary(run) or {}
    cell = summary.get(subsystem) or {}
    return bool(cell.get("n_flagged", 0))


def choose_references(
    store: Store, w: Watched, run: int, certified: set[int], files: Mapping[int, RunFile],
    low_stats: set[int] | frozenset[int] = frozenset(),
) -> RefChoice:  # fmt: skip
    """The reference runs of (run, subsystem) by the watch's policy (see the module docstring);
    runs known to have low statistics are never chosen."""
    good = sorted((certified & set(files)) - {run} - set(low_stats))
    near = candidates(run, good, w.policy)
    exclude = {r: "flagged" for r in near if flagged(store, r, w.name)}
    if w.policy.name == "fixed":
        exclude.update({r: "no certified DQM file" for r in w.policy.runs if r not in near})
    meta: dict[int, RunMeta] = {}
    if w.policy.name == "similar":
        meta = meta_from_runfiles({r: files[r] for r in [run, *near] if r in files})
    choice = w.policy.choose(run, near, meta, exclude)
    if not choice.runs and exclude:
        usable = {r: why for r, why in exclude.items() if why != "flagged"}
        again = w.policy.choose(run, near, meta, usable)
        if again.runs:
            why = f"{again.reason} (every candidate has flagged results; using them anyway)"
            choice = RefChoice(again.runs, why, again.policy)
    logger.debug("run %d %s: references %s (%s)", run, w.name, choice.runs, choice.reason)
    return choice


def file_of(files: Mapping[int, RunFile], run: int, w: Watched) -> RunFile:
    """The DQM file of ``run``; a DQMError (the job is retried later) if it is not listed."""
    if run not in files:
        msg = f"run {run} has no DQM file in {w.dataset} (not written yet?); retrying later"
        raise DQMError(msg)
    return files[run]


def decode(w: Watched, path: Path, run: int) -> Decoded:
    """Read every histogram the subsystem's config names from one DQM file (once).

    Raises:
        FileFormatError: the file is not a readable DQM file or has no directory for
            the subsystem.
    """
    sub = w.config
    gdir = sub.gdir(run)
    with open_dqm(path) as f:
        if not f.has_dir(gdir.rstrip("/")):
            msg = f"{path.name}: run {run} has no {sub.name} histograms (no directory {gdir!r})"
            raise FileFormatError(msg)
        the_plan = plan(sub, lambda d, p: f.expand(gdir + d if d else gdir.rstrip("/"), p))
    got = read_task(ReadTask(str(path), gdir, run, tuple(the_plan.paths)))
    return Decoded(got.hists, got.errors)


def stored_plan(sub: SubsystemConfig, paths: Iterable[str]) -> Plan:
    """The config's plan against the histogram paths a run holds (its stored contents)."""
    held = list(paths)

    def expand(directory: str, pattern: str) -> list[str]:
        prefix = f"{directory}/" if directory else ""
        names = [p[len(prefix) :] for p in held if p.startswith(prefix)]
        return sorted(n for n in names if "/" not in n and fnmatch.fnmatchcase(n, pattern))

    return plan(sub, expand)


def compare_contents(
    w: Watched, registry: Registry, run: int, data: Decoded, refs: list[Mapping[str, HistData]],
    history: Mapping[str, list[HistData]], choice: RefChoice, *, now: datetime, version: str,
) -> SubsystemRecord:  # fmt: skip
    """The record of one run from contents already decoded (pure: no I/O)."""
    the_plan = stored_plan(w.config, [*data.hists, *data.errors])
    if not the_plan.hists:
        msg = f"run {run} holds none of the {len(w.config.hists)} histograms of {w.name}"
        raise DQMError(msg)
    inputs = Inputs(run, tuple(choice.runs), the_plan, data.hists, tuple(refs),
                    errors=data.errors)  # fmt: skip
    report: SubsystemReport = run_comparison(w.config, registry, inputs, history=history)
    prov = make_provenance(
        w.config.digest, w.config.source, choice.runs, choice.reason, now=now, version=version
    )
    return SubsystemRecord.from_report(report, dataset=w.dataset, provenance=prov)
