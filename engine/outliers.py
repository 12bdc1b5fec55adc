"""Engine layer: one verdict per histogram from its comparators' results, in words, and
outliers ranked across comparators and subsystems (pure; no I/O).

Every comparator's ``score`` is its severity in units of its own cut (above 1 means it
flags), so scores of different tests rank together; a histogram's severity is the
largest over the tests that judged it, and among equally severe ones those flagged by
more tests come first.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.types import SEVERITY, ComparisonResult, Status


@dataclass(frozen=True, slots=True)
class HistogramVerdict:
    """The combined verdict of every comparator on one histogram.

    ``status``: flagged if any test flags it, else error if one failed, else ok if one
    judged it, else skipped;
    ``severity`` the largest score of a test that judged it (0 when none did); ``lead``
    the comparator behind that score (or behind the status when nothing was judged);
    ``flagged_by``/``judged_by`` the deciding tests that flagged it / gave a verdict;
    ``tests`` how many deciding tests ran on it; ``over_cut`` the tests that do not decide
    (AutoDQM's uncalibrated cuts) but are over their own cut.
    """

    subsystem: str
    path: str
    status: Status
    severity: float
    lead: str
    flagged_by: tuple[str, ...]
    judged_by: tuple[str, ...]
    tests: int
    reason: str
    over_cut: tuple[str, ...] = ()

    @property
    def rank(self) -> tuple[int, float, int]:
        """Sort key, most severe last (status as in the outlier tables)."""
        return (SEVERITY[self.status], self.severity, len(self.flagged_by))

    @property
    def summary(self) -> str:
        """The verdict in one or two sentences (see :func:`summarise`)."""
        return summarise(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "subsystem": self.subsystem,
            "histogram": self.path,
            "status": str(self.status),
            "severity": self.severity,
            "lead": self.lead,
            "flagged_by": list(self.flagged_by),
            "judged_by": list(self.judged_by),
            "tests": self.tests,
            "over_cut": list(self.over_cut),
            "reason": self.reason,
            "summary": self.summary,
        }


#: A histogram's status: the first of these that one of its results has.
_PRECEDENCE = (Status.FLAGGED, Status.ERROR, Status.OK, Status.SKIPPED)


def _score(r: ComparisonResult) -> float:
    return r.score if math.isfinite(r.score) else 0.0


def combine(subsystem: str, results: Sequence[ComparisonResult]) -> HistogramVerdict:
    """The verdict of one histogram from its comparators' results (all of one path)."""
    if not results:
        msg = "combine: no results"
        raise ValueError(msg)
    deciding = [r for r in results if r.decides] or list(results)
    judged = [r for r in deciding if r.status in (Status.OK, Status.FLAGGED)]
    flagged = [r for r in judged if r.verdict_status is Status.FLAGGED]
    over = [r for r in results if r.status is Status.FLAGGED and not r.decides]
    seen = {r.verdict_status for r in results}
    status = next(s for s in _PRECEDENCE if s in seen)
    if status is Status.OK and not judged:  # only tests that do not decide judged it
        status = Status.SKIPPED
    if status in (Status.FLAGGED, Status.OK):
        lead = max(flagged or judged, key=_score)
        severity = _score(lead)
    else:  # the test that failed, or the one that skipped it
        lead = next(r for r in results if r.status is status)
        severity = max((_score(r) for r in judged), default=0.0)
    return HistogramVerdict(
        subsystem=subsystem,
        path=results[0].path,
        status=status,
        severity=severity,
        lead=lead.comparator,
        flagged_by=tuple(r.comparator for r in sorted(flagged, key=_score, reverse=True)),
        judged_by=tuple(r.comparator for r in judged),
        tests=len(deciding),
        reason=lead.reason,
        over_cut=tuple(r.comparator for r in sorted(over, key=_score, reverse=True)),
    )


def by_histogram(subsystem: str, results: Iterable[ComparisonResult]) -> list[HistogramVerdict]:
    """One verdict per histogram path, most severe first (then by path)."""
    groups: dict[str, list[ComparisonResult]] = {}
    for r in results:
        groups.setdefault(r.path, []).append(r)
    verdicts = [combine(subsystem, rs) for rs in groups.values()]
    return rank(verdicts)


def rank(verdicts: Iterable[HistogramVerdict]) -> list[HistogramVerdict]:
    """Most severe first: status, then severity, then how many tests flagged it."""
    out = sorted(verdicts, key=lambda v: (v.subsystem, v.path))
    out.sort(key=lambda v: v.rank, reverse=True)
    return out


def across(
    reports: Mapping[str, Iterable[ComparisonResult]], *, only_flagged: bool = True
) -> list[HistogramVerdict]:
    """Histogram verdicts of several subsystems of one run, ranked together."""
    out: list[HistogramVerdict] = []
    for subsystem, results in reports.items():
        out.extend(by_histogram(subsystem, results))
    if only_flagged:
        out = [v for v in out if v.status is Status.FLAGGED]
    return rank(out)


def _names(names: Sequence[str]) -> str:
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]


def summarise(v: HistogramVerdict) -> str:
    """The verdict in words: how many tests flagged it, the most severe, and why.

    E.g. ``Flagged by 2 of 4 tests (variation_scan and beta_binomial); most severe:
    variation_scan at 3.1x its cut: bins x 12-15 ... learned from runs 357100, ...``.
    """
    n = v.tests
    tests = f"{n} deciding test{'s' if n != 1 else ''}"
    why = f": {v.reason}" if v.reason else ""
    also = (f" (over its own uncalibrated cut, not deciding: {_names(v.over_cut)})"
            if v.over_cut else "")  # fmt: skip
    if v.status is Status.FLAGGED:
        k = len(v.flagged_by)
        head = f"Flagged by {k} of {tests} ({_names(v.flagged_by)}){also}"
        return f"{head}; most severe: {v.lead} at {v.severity:.3g}\u00d7 its cut{why}"
    if v.status is Status.ERROR:
        return f"{v.lead} failed on this histogram{why}"
    if not v.judged_by:
        return f"Not judged by any of its {tests}: {v.lead} skipped it{why}"
    k = len(v.judged_by)
    return (f"Within normal variation for {k} of {tests}{also}; closest to a flag: {v.lead} "
            f"at {v.severity:.3g}\u00d7 its cut{why}")  # fmt: skip
