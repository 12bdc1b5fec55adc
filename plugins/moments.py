"""Plugins layer: ``moments``, the position and width of a 1D distribution against the
normal run-to-run jitter of the references' (a peak that moves or broadens).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from engine.types import ComparisonResult, FloatArray, HistData, Status
from plugins._common import no_reference_reason, result, skipped, too_few_entries, usable_refs
from plugins._variance import RunLevelCut, learn_means, lookelsewhere, tail_sigmas
from plugins.multiscale import _clean, _signed

#: Shrinkage weight towards the (single) cell's own value: none, so the degrees of
#: freedom of the learned jitter are the references' alone.
_NO_PRIOR = 1e-9
_ONE_CELL = np.zeros(1, dtype=np.intp)


def _moments(counts: FloatArray, centres: FloatArray) -> tuple[float, float, float, float]:
    """``(mean, its variance, log RMS, its variance)`` of binned counts.

    Variances are the large-sample ones of independent entries: ``RMS^2 / n`` for the
    mean and ``(m4 / RMS^4 - 1) / (4 n)`` for ``ln RMS``.
    """
    n = float(counts.sum())
    mean = float(np.dot(counts, centres)) / n
    dev = centres - mean
    m2 = float(np.dot(counts, dev * dev)) / n
    m4 = float(np.dot(counts, dev**4)) / n
    if m2 <= 0:
        return mean, 0.0, -math.inf, 0.0
    return mean, m2 / n, 0.5 * math.log(m2), max(m4 / (m2 * m2) - 1.0, 0.0) / (4.0 * n)


@dataclass(frozen=True, slots=True)
class Moments(RunLevelCut):
    """Mean and RMS of a 1D histogram against the references' and their jitter.

    The data's mean and ``ln RMS`` (over the histogram's bins, at bin centres) are
    compared with the references' random-effects mean of each; the variance allowed is
    the data's and the references' statistical one, the run-to-run jitter learned from
    the spread of the references' values (DerSimonian-Laird; ``K - 1`` degrees of
    freedom, so a jitter learned from few references has Student-t tails), and at least
    ``mean_tol`` of the references' RMS for the mean and ``width_tol`` (relative) for the
    width. The more significant of the two, corrected for looking at two, is judged
    against the same run-level cut as ``variation_scan``: ``Phi^-1(1 - alpha /
    (2 n_tests))``, never below ``min_cut``, or ``z_cut`` when given.

    Where a per-bin test sees a moved peak as a small excess on one flank and a deficit
    on the other, this sees one number move: a shift of 0.15 peak widths is ~15 sigma
    for a 1 % jitter. Histograms with bin labels (categories) are skipped.

    Scores: ``max_pull`` (sigma, corrected, signed), ``mean_pull``, ``width_pull``,
    ``shift`` (data minus normal mean, axis units), ``width_ratio``, ``cut``.
    ``score = |max_pull| / cut`` against ``threshold = 1``.
    """

    name: ClassVar[str] = "moments"
    plot_kind: ClassVar[str] = "overlay"
    dims: ClassVar[tuple[int, ...]] = (1,)

    min_entries: float = 1000
    mean_tol: float = 0.01
    width_tol: float = 0.01

    def __post_init__(self) -> None:
        checks = {
            **self.cut_checks(),
            "min_entries": self.min_entries >= 0,
            "mean_tol": 0 < self.mean_tol < math.inf,
            "width_tol": 0 < self.width_tol < math.inf,
        }
        for key, ok in checks.items():
            if not ok:
                msg = f"moments: bad {key} {getattr(self, key)!r}"
                raise ValueError(msg)

    def compare(self, data: HistData, refs: Sequence[HistData]) -> ComparisonResult:
        """Judge ``data`` against ``refs``; see the class docstring for the scores."""
        if data.ndim != 1:
            return skipped(self.name, data, f"needs a 1D histogram, got {data.ndim}D")
        if data.labels and data.labels[0]:
            return skipped(self.name, data, "bins are labelled categories: no mean or width")
        kept, dropped = usable_refs(data, refs)
        d = _clean(data.counts)
        r = [_clean(x.counts) for x in kept]
        runs = [x.run for x, c in zip(kept, r, strict=True) if c.sum() > 0]
        r = [c for c in r if c.sum() > 0]
        if not r:
            return skipped(self.name, data, no_reference_reason(dropped))
        n = float(d.sum())
        if n <= 0:
            return result(self.name, data, Status.FLAGGED, score=1.0, threshold=1.0,
                          reason=f"no entries in data, references have "
                                 f"{np.mean([c.sum() for c in r]):.0f}")  # fmt: skip
        if n < self.min_entries:
            return too_few_entries(self.name, data, n, self.min_entries)
        e = np.asarray(data.edges[0], dtype=np.float64)
        centres = 0.5 * (e[1:] + e[:-1])
        md, vd, wd, vwd = _moments(d, centres)
        ref = np.array([_moments(c, centres) for c in r])  # (K, 4)
        if not (math.isfinite(wd) and np.isfinite(ref[:, 2]).all()):
            return skipped(self.name, data, "a histogram with all entries in one bin has no width")
        rms = float(np.exp(ref[:, 2]).mean())
        ok = np.ones((len(r), 1), dtype=bool)
        pulls, normals = [], []
        for obs, var, col, floor in ((md, vd, 0, self.mean_tol * rms),
                                     (wd, vwd, 2, self.width_tol)):  # fmt: skip
            normal = learn_means(ref[:, col : col + 1], ref[:, col + 1 : col + 2], ok, _ONE_CELL,
                                 1, prior_dof=_NO_PRIOR, floor=floor, fallback=floor)  # fmt: skip
            normals.append(normal)
            pulls.append(float(tail_sigmas(np.array([obs]), normal, counts=False,
                                           extra_var=var)[0]))  # fmt: skip
        worst = int(np.argmax(np.abs(pulls)))
        max_pull = lookelsewhere(pulls[worst], 2)
        cut = self.cut
        bad = abs(max_pull) > cut
        shift = md - float(normals[0].expected[0])
        ratio = math.exp(wd - float(normals[1].expected[0]))
        jitter = (f"normal jitter ±{float(normals[0].sigma[0]):.3g} in mean and "
                  f"±{float(normals[1].sigma[0]):.1%} in width")  # fmt: skip
        reason = (
            f"mean {md:.4g} vs {float(normals[0].expected[0]):.4g} normal (shift "
            f"{_signed(shift) if abs(shift) >= 0.05 else f'{shift:+.2g}'}, "
            f"{_signed(pulls[0])}\u03c3), RMS {math.exp(wd):.4g} ({ratio - 1:+.1%}, "
            f"{_signed(pulls[1])}\u03c3): {_signed(max_pull)}\u03c3 {'>' if bad else '≤'} "
            f"{cut:.2g}; {jitter} learned from run{'s' if len(runs) > 1 else ''} "
            f"{', '.join(map(str, runs))}"
        )
        notes = [f"ignored {msg}" for msg in dropped]
        scores = {"max_pull": max_pull, "mean_pull": pulls[0], "width_pull": pulls[1],
                  "shift": shift, "width_ratio": ratio, "cut": cut}  # fmt: skip
        return result(self.name, data, Status.FLAGGED if bad else Status.OK,
                      score=abs(max_pull) / cut, threshold=1.0,
                      reason="; ".join([reason, *notes]), scores=scores)  # fmt: skip
