"""Core value types shared by every layer (engine, plugins, dashboard).

Frozen, slotted dataclasses holding plain numpy arrays: never uproot or plotly objects.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


class Status(StrEnum):
    """Verdict of one comparison; ordered by severity through :data:`SEVERITY`."""

    OK = "ok"
    FLAGGED = "flagged"
    SKIPPED = "skipped"
    ERROR = "error"


#: Higher is more severe: used to sort outlier tables and to colour summaries.
SEVERITY: Mapping[Status, int] = {
    Status.OK: 0,
    Status.SKIPPED: 1,
    Status.ERROR: 2,
    Status.FLAGGED: 3,
}


class HistKind(StrEnum):
    """ROOT histogram family, reduced to what the comparators care about."""

    TH1 = "TH1"
    TH2 = "TH2"
    PROFILE = "TProfile"
    PROFILE2D = "TProfile2D"


@dataclass(frozen=True, slots=True)
class HistData:
    """One histogram as plain arrays (made by ``engine.io`` or by tests).

    For plain histograms ``values`` are bin contents (counts). For profiles ``values`` are
    the per-bin means, ``variances`` the squared errors on those means and
    ``bin_entries`` the per-bin (effective) entries, which counting tests use.
    Arrays exclude under/overflow; 2D arrays are indexed ``[x, y]``.
    """

    path: str
    run: int
    values: FloatArray
    variances: FloatArray | None
    edges: tuple[FloatArray, ...]
    title: str = ""
    kind: HistKind = HistKind.TH1
    entries: float = math.nan
    bin_entries: FloatArray | None = None
    labels: tuple[tuple[str, ...] | None, ...] = ()
    axis_titles: tuple[str, ...] = ()
    #: The run's exposure the histogram's rate is measured against: set by the pipeline
    #: to the entries of all the subsystem's histograms in the run (nan when unknown).
    exposure: float = math.nan
    #: The subsystem's typical run-to-run spread of a histogram's log share of the
    #: exposure, over the references (median over its histograms): set by the pipeline on
    #: the data, a prior for a rate judged from few runs (nan when unknown).
    rate_spread: float = math.nan

    @property
    def ndim(self) -> int:
        return int(self.values.ndim)

    @property
    def is_profile(self) -> bool:
        return self.kind in (HistKind.PROFILE, HistKind.PROFILE2D)

    @property
    def counts(self) -> FloatArray:
        """What counting tests compare: contents, or a profile's per-bin entries."""
        if self.is_profile and self.bin_entries is not None:
            return self.bin_entries
        return self.values

    @property
    def total(self) -> float:
        return float(np.sum(self.counts))


def _json_float(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


@dataclass(frozen=True, slots=True)
class ComparisonResult:
    """Outcome of one comparator on one histogram.

    ``score`` is the comparator's primary severity number (always finite; larger is
    worse) and ``threshold`` the value it was judged against. ``scores`` holds every
    named score (``chi2``, ``max_pull``, ``ks`` ...), ``arrays`` the per-bin arrays the
    drill-down plots need (e.g. ``pulls``, ``ref_weighted``).
    """

    comparator: str
    path: str
    status: Status
    score: float
    threshold: float | None
    reason: str = ""
    scores: Mapping[str, float] = field(default_factory=dict)
    entries: float = 0.0
    arrays: Mapping[str, FloatArray] = field(default_factory=dict)
    decides: bool = True

    @property
    def verdict_status(self) -> Status:
        """The status as it counts for the verdict: a test that does not decide (AutoDQM's
        uncalibrated cuts, unless the config says so) shows that it is over its cut in
        ``status`` and its scores, but counts as ``ok``."""
        if self.status is Status.FLAGGED and not self.decides:
            return Status.OK
        return self.status

    def to_dict(self, *, with_arrays: bool = False) -> dict[str, Any]:
        """JSON-safe dict (the ``results[]`` element of the compare contract)."""
        out: dict[str, Any] = {
            "histogram": self.path,
            "comparator": self.comparator,
            "status": str(self.status),
            "score": _json_float(self.score),
            "threshold": None if self.threshold is None else _json_float(self.threshold),
            "scores": {k: _json_float(v) for k, v in self.scores.items()},
            "reason": self.reason,
            "entries": int(self.entries) if float(self.entries).is_integer() else self.entries,
            "decides": self.decides,
        }
        if with_arrays:
            out["arrays"] = {k: np.asarray(v).tolist() for k, v in self.arrays.items()}
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ComparisonResult:
        """Inverse of :meth:`to_dict` (non-finite numbers come back as ``nan``)."""
        arrays = {k: np.asarray(v, dtype=np.float64) for k, v in d.get("arrays", {}).items()}
        thr = d.get("threshold")
        return cls(
            comparator=d["comparator"],
            path=d["histogram"],
            status=Status(d["status"]),
            score=math.nan if d.get("score") is None else float(d["score"]),
            threshold=None if thr is None else float(thr),
            reason=d.get("reason", ""),
            scores={k: math.nan if v is None else float(v) for k, v in d["scores"].items()},
            entries=float(d.get("entries", 0.0)),
            arrays=arrays,
            decides=bool(d.get("decides", True)),
        )

    @property
    def severity(self) -> tuple[int, float]:
        """Sort key, most severe last: status rank (as it counts for the verdict), score."""
        return (SEVERITY[self.verdict_status], self.score)


#: The plot kinds the dashboard knows how to draw.
PLOT_KINDS = frozenset({"overlay", "pull_map", "profile", "none"})


@runtime_checkable
class Comparator(Protocol):
    """A statistical test: a frozen dataclass whose fields are its parameters."""

    name: ClassVar[str]
    plot_kind: ClassVar[str]
    #: Histogram dimensions the test applies to; others are not run by default.
    dims: ClassVar[tuple[int, ...]]
    # The rest of the contract (optional; checked by ``Registry.register``):
    # - ``learns_from: ClassVar[str]``: ``"references"`` (default) or ``"history"``, which
    #   makes the pipeline pass the histogram's history of good runs instead of the
    #   references (see ``engine.pipeline.compare_hists``);
    # - a field ``n_tests: int`` is set by the pipeline to the number of histograms the
    #   test judges in the subsystem, for a cut corrected for looking at all of them;
    # - ``HistData.exposure`` and ``HistData.rate_spread`` of the data are set by the
    #   pipeline (a rate against the subsystem's other histograms).

    def compare(self, data: HistData, refs: Sequence[HistData]) -> ComparisonResult: ...
