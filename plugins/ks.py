"""Plugins layer: ``ks_test``, the binned two-sample Kolmogorov-Smirnov distance (1D)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.stats import kstwobign

from engine.types import ComparisonResult, HistData, Status
from plugins._common import no_reference_reason, result, skipped, too_few_entries, usable_refs
from plugins.pull_values import bin_location


@dataclass(frozen=True, slots=True)
class KSTest:
    """Two-sample Kolmogorov-Smirnov test on binned 1D distributions.

    ``ks = max |cumsum(D)/n - cumsum(R)/N|`` over the bins (a fraction of entries, 0 to
    1), with the asymptotic p-value ``kstwobign.sf(ks * sqrt(n*N/(n+N)))``. On binned
    data the p-value is conservative (it is exact only for continuous samples).

    AutoDQM's ``ks_test`` ran ``scipy.stats.kstest`` on the two arrays of *bin contents*,
    which compares the sets of contents and ignores where they sit: two histograms with the
    same contents in a different bin order scored 0. This comparator uses the cumulative
    distributions instead, so the numbers differ from AutoDQM's and its cut 0.35 does not
    carry over; the default cut 0.09 is the ROOT-era tool's.

    With several references the data is judged against the closest one (the smallest
    distance; its ``N`` gives the p-value): a histogram is flagged only when it differs
    from every reference, so one atypical or itself-broken reference run can neither
    raise a false alarm nor, as a pooled sum would, drag the reference shape towards it.

    Flagged when the data has at least ``min_entries`` entries and ``ks > ks_cut``;
    ``score = ks / ks_cut``.
    """

    name: ClassVar[str] = "ks_test"
    plot_kind: ClassVar[str] = "overlay"
    dims: ClassVar[tuple[int, ...]] = (1,)

    ks_cut: float = 0.09
    min_entries: float = 10_000

    def __post_init__(self) -> None:
        if not (isinstance(self.ks_cut, int | float) and 0 < self.ks_cut <= 1):
            msg = f"ks_test: ks_cut must be a number in (0, 1], got {self.ks_cut!r}"
            raise ValueError(msg)
        if not (isinstance(self.min_entries, int | float) and self.min_entries >= 0):
            msg = f"ks_test: min_entries must be a number >= 0, got {self.min_entries!r}"
            raise ValueError(msg)

    def compare(self, data: HistData, refs: Sequence[HistData]) -> ComparisonResult:
        """Compare ``data`` with its closest usable reference; see the class docstring."""
        if data.ndim != 1:
            return skipped(self.name, data, f"needs a 1D histogram, got {data.ndim}D")
        usable, dropped = usable_refs(data, refs)
        if not usable:
            return skipped(self.name, data, no_reference_reason(dropped))
        d = np.rint(np.asarray(data.counts, dtype=np.float64))
        rs = np.rint(np.stack([np.asarray(x.counts, dtype=np.float64) for x in usable]))
        totals = rs.sum(axis=1)
        n = float(d.sum())
        if 0 < n < self.min_entries:
            return too_few_entries(self.name, data, n, self.min_entries)
        if not np.any(totals > 0):  # references with entries that round to nothing
            return skipped(self.name, data, "no usable reference: rounded reference is empty")
        runs = [x.run for x, t in zip(usable, totals, strict=True) if t > 0]
        rs, totals = rs[totals > 0], totals[totals > 0]
        cdf_rs = np.cumsum(rs, axis=1) / totals[:, None]
        if n <= 0:
            # Treated as maximally incompatible: the data distribution does not exist.
            ks, p, best = 1.0, 0.0, 0
            cdf_diff = -cdf_rs[0]
        else:
            diffs = np.cumsum(d) / n - cdf_rs
            dists = np.max(np.abs(diffs), axis=1)
            best = int(np.argmin(dists))
            ks, cdf_diff = float(dists[best]), diffs[best]
            n_b = float(totals[best])
            p = float(kstwobign.sf(ks * np.sqrt(n * n_b / (n + n_b))))
        r, n_ref = rs[best], float(totals[best])
        against = (
            f"run {runs[best]}"
            if len(runs) == 1
            else f"run {runs[best]}, the closest of {len(runs)} references"
        )
        arrays = {"ref": r * (n / n_ref), "cdf_diff": cdf_diff}
        score = ks / self.ks_cut
        scores = {"ks": ks, "p": p}
        if n <= 0:
            return result(
                self.name,
                data,
                Status.FLAGGED,
                score=max(score, 1.0),
                threshold=1.0,
                reason=(
                    f"no entries in data, references have {totals[0]:.0f} (run {runs[0]})"
                    if len(runs) == 1
                    else f"no entries in data, references have {totals.mean():.0f} on average "
                    f"(runs {', '.join(map(str, runs))})"
                ),
                scores=scores,
                arrays=arrays,
            )
        k = int(np.argmax(np.abs(cdf_diff)))
        cmp = ">" if ks > self.ks_cut else "<="
        reason = (
            f"KS distance {ks:.3g} {cmp} {self.ks_cut:g} (p = {p:.3g}) at the upper edge of "
            f"{bin_location(data, (k,))}, against {against}"
        )
        return result(
            self.name,
            data,
            Status.FLAGGED if ks > self.ks_cut else Status.OK,
            score=score,
            threshold=1.0,
            reason=reason,
            scores=scores,
            arrays=arrays,
        )
