"""Engine layer: the records the results store keeps (re-exported by ``engine.store``).

Frozen dataclasses with ``to_dict``/``from_dict``: the store holds only plain JSON-able dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from engine.errors import DQMError
from engine.pipeline import SubsystemReport
from engine.provenance import Provenance
from engine.times import parse_iso
from engine.types import SEVERITY, ComparisonResult, Status


class JobStatus(StrEnum):
    """States of a (run, subsystem) job, in the order a job goes through them."""

    QUEUED = "queued"
    FETCHING = "fetching"
    COMPARING = "comparing"
    DONE = "done"
    FAILED = "failed"

    def __repr__(self) -> str:  # messages quote a state as the word it is stored as
        return repr(self.value)


JOB_STATES: tuple[str, ...] = tuple(s.value for s in JobStatus)


class StoreError(DQMError):
    """The results store could not read or write (disk full, locked, corrupt database)."""


@dataclass(frozen=True, slots=True)
class SubsystemRecord:
    """Every result of one subsystem of one run, with its provenance (what is stored).

    ``results`` carry their arrays when written; :meth:`Store.get_report` gives them back
    without (the arrays are read per histogram with :meth:`Store.get_arrays`).
    """

    run: int
    subsystem: str
    dataset: str
    reference_runs: tuple[int, ...]
    reference_reason: str
    provenance: Provenance
    results: tuple[ComparisonResult, ...]
    missing: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @classmethod
    def from_report(
        cls, report: SubsystemReport, *, dataset: str, provenance: Provenance
    ) -> SubsystemRecord:
        """The record of a pipeline report; references and reason come from ``provenance``."""
        return cls(
            run=report.data_run,
            subsystem=report.subsystem,
            dataset=dataset,
            reference_runs=tuple(report.reference_runs),
            reference_reason=provenance.reference_reason,
            provenance=provenance,
            results=tuple(report.results),
            missing=tuple(report.missing),
            notes=tuple(report.notes),
        )

    def to_report(self) -> SubsystemReport:
        """The :class:`SubsystemReport` (e.g. for ``engine.commands.compare.format_table``)."""
        return SubsystemReport(
            self.subsystem, self.run, self.reference_runs, self.results, self.missing, self.notes
        )

    def summary(self) -> dict[str, Any]:
        """Counts per status, worst status and flagged histograms (the per-run summary cell),
        each result counted by its status for the verdict (a test that does not decide
        counts as ok)."""
        counts = {str(s): 0 for s in Status}
        for r in self.results:
            counts[str(r.verdict_status)] += 1
        worst = max((r.verdict_status for r in self.results), key=SEVERITY.__getitem__,
                    default=None)  # fmt: skip
        flagged = {r.path for r in self.results if r.verdict_status is Status.FLAGGED}
        return {
            "dataset": self.dataset,
            "counts": counts,
            "worst": str(worst) if worst is not None else "",
            "n_flagged": len(flagged),
            "n_results": len(self.results),
            "created": self.provenance.created,
            "config_digest": self.provenance.config_digest,
            "reference_runs": list(self.reference_runs),
            "stale": False,
        }

    def to_dict(self, *, with_arrays: bool = False) -> dict[str, Any]:
        return {
            "run": self.run,
            "subsystem": self.subsystem,
            "dataset": self.dataset,
            "reference_runs": list(self.reference_runs),
            "reference_reason": self.reference_reason,
            "provenance": self.provenance.to_dict(),
            "results": [r.to_dict(with_arrays=with_arrays) for r in self.results],
            "missing": list(self.missing),
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SubsystemRecord:
        return cls(
            run=int(d["run"]),
            subsystem=str(d["subsystem"]),
            dataset=str(d.get("dataset", "")),
            reference_runs=tuple(int(r) for r in d.get("reference_runs", ())),
            reference_reason=str(d.get("reference_reason", "")),
            provenance=Provenance.from_dict(d.get("provenance", {})),
            results=tuple(ComparisonResult.from_dict(r) for r in d.get("results", ())),
            missing=tuple(d.get("missing", ())),
            notes=tuple(d.get("notes", ())),
        )


@dataclass(frozen=True, slots=True)
class JobState:
    """Where the processing of one (run, subsystem) stands (the scheduler's state machine).

    ``next_try`` is the ISO time a failed job may be retried ("" = now); ``updated`` the
    ISO time of the last change.
    """

    run: int
    subsystem: str
    dataset: str
    state: str
    attempts: int = 0
    next_try: str = ""
    error: str = ""
    updated: str = ""

    def __post_init__(self) -> None:
        if self.state not in JOB_STATES:
            msg = (
                f"job {self.run}/{self.subsystem}: state {self.state!r} is not one of {JOB_STATES}"
            )
            raise ValueError(msg)
        object.__setattr__(self, "state", JobStatus(self.state))

    @property
    def key(self) -> str:
        return f"{self.run}/{self.subsystem}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> JobState:
        return cls(**{**d, "run": int(d["run"]), "attempts": int(d.get("attempts", 0))})


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert per (run, subsystem): ``id == f"{run}-{subsystem}"``.

    ``top`` holds the worst outliers as ``{"histogram", "comparator", "score", "reason"}``;
    ``deliveries`` maps a channel to ``"pending"``, ``"sent <iso>"`` or
    ``"failed <iso>: reason"``.
    """

    id: str
    run: int
    subsystem: str
    dataset: str
    created: str
    n_flagged: int
    top: tuple[dict[str, Any], ...]
    link: str
    deliveries: Mapping[str, str] = field(default_factory=dict)
    acked_by: str = ""
    acked_at: str = ""
    silenced_by: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["top"] = [dict(t) for t in self.top]
        d["deliveries"] = dict(self.deliveries)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Alert:
        return cls(
            **{
                **d,
                "run": int(d["run"]),
                "top": tuple(dict(t) for t in d.get("top", ())),
                "deliveries": dict(d.get("deliveries", {})),
            }
        )


@dataclass(frozen=True, slots=True)
class Silence:
    """No alert for ``subsystem`` ("*": all) on histograms matching ``pattern`` (fnmatch)
    until ``until`` (ISO). ``removed_by``/``removed_at`` are set when lifted early."""

    id: str
    subsystem: str
    pattern: str
    until: str
    by: str
    reason: str
    created: str
    removed_by: str = ""
    removed_at: str = ""

    def active(self, at: str) -> bool:
        """Whether it silences at ISO time ``at`` (not lifted, not expired)."""
        return not self.removed_by and parse_iso(at) < parse_iso(self.until)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Silence:
        return cls(**d)
