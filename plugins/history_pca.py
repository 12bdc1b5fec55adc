"""Plugins layer: ``history_pca``, a histogram judged against the normal variation learned from
its own history of good runs (common modes and each bin's spread), with a cut calibrated
on the history's leave-one-out scores.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from scipy import special

from engine.types import ComparisonResult, FloatArray, HistData, Status
from plugins._common import has_profile_errors, result, skipped, usable_refs
from plugins._lowrank import Series, choose_rank, counts_series, fit, means_series, residuals
from plugins._scores import Calibrated, calibrate, rate_change, sigma_of_log_p, statistics
from plugins._variance import RunLevelCut
from plugins.multiscale import _range_text

STAT_NAMES = ("worst window", "mean squared pull", "rate")


@dataclass(frozen=True, slots=True)
class _Shape:
    """One series' shape judgment: the model's rank, the scores and their calibration."""

    series: Series
    used: np.ndarray
    rank: int
    ahead: FloatArray
    stat: FloatArray
    corner: tuple[int, ...]
    size: int
    z: FloatArray
    fitted: FloatArray
    centre: FloatArray
    extra: FloatArray
    cals: list[Calibrated]


@dataclass(frozen=True, slots=True)
class HistoryPCA(RunLevelCut):
    """The data against a low-rank model of its history's normal run-to-run variation.

    Real run-to-run variation is tens to hundreds of Poisson sigmas and mostly shared by
    many bins (pile-up, luminosity, timing). It is modelled, per histogram, from the
    history runs given as references:

    - each run in model space: counts as the log of each bin's share of the run's entries
      (normalised, so a change of rate alone is not a change of shape), profile means as
      they are, each with its noise (Poisson, or the profile's errors);
    - common modes: principal components of the runs' whitened deviations from the median
      run, as many as cross-validation over runs and bins supports (at most ``rank_max``,
      and fewer with few runs), fitted to each run robustly (Huber), so a failed region
      does not pull them;
    - each bin's own residual spread beyond its noise, shrunk towards the median bin's.

    The data's pulls after its common modes are removed are scanned over windows (1D: runs
    of 1, 2, 4 ... bins; 2D: 1x1 to 8x8 squares, whole rows and columns) and summarised by
    two scores: the worst window and the mean squared pull. A third is the rate: the
    histogram's share of all the subsystem's entries in the run (``exposure``, set by the
    pipeline), against the history's shares, so a drop over the whole populated range that
    normalised shapes cannot see is judged too. The same shape scores of every
    history run, left out of the model in turn, calibrate them: a Student t on their logs
    (``k - 1`` degrees of freedom, predictive spread) gives each score's tail probability.
    Those scores are first scaled by how much worse the later history runs scored when
    judged, as a new run is, against the runs before them only (drift; never below 1).
    The smallest tail probability of the three, times three, is quoted as one-sided
    Gaussian sigma, computed in log space so the most extreme cases still rank. With few history runs the t is wide and the cut
    is reached later, never sooner.

    It is flagged above the run-level cut: ``-Phi^-1(alpha / n_tests)`` for the
    ``n_tests`` histograms it judges in the subsystem (``alpha``: false flags per healthy
    subsystem-run), never below ``min_cut``; ``z_cut`` fixes it. Fewer than
    ``min_history`` usable history runs: skipped. Empty data against a non-empty history:
    flagged.

    Scores: ``sigma`` (calibrated), ``cut``, ``window`` (worst window, pulls),
    ``chi2`` (mean squared pull), ``rank``, ``history`` (runs), ``ahead`` (the larger
    drift scale of the calibration sample), ``log10_p``.
    ``score = sigma / cut`` against ``threshold = 1``. Arrays: ``pulls``, ``expected``
    and ``band`` (the data's normal content per bin and its one-sigma range).
    """

    name: ClassVar[str] = "history_pca"
    plot_kind: ClassVar[str] = "overlay"
    dims: ClassVar[tuple[int, ...]] = (1, 2)
    #: The pipeline gives it the histogram's history of good runs (else the references).
    learns_from: ClassVar[str] = "history"
    min_cut: float = 4.0
    rank_max: int = 6
    min_history: int = 4
    min_entries: float = 1.0

    def __post_init__(self) -> None:
        checks = self.cut_checks()
        checks["rank_max"] = isinstance(self.rank_max, int) and self.rank_max >= 0
        checks["min_history"] = isinstance(self.min_history, int) and self.min_history >= 3
        checks["min_entries"] = self.min_entries >= 0
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            msg = f"history_pca: bad value of {', '.join(bad)}"
            raise ValueError(msg)

    @property
    def cut(self) -> float:
        """One-sided sigma the calibrated score must exceed."""
        if self.z_cut is not None:
            return float(self.z_cut)
        return max(self.min_cut, float(-special.ndtri(self.alpha / max(self.n_tests, 1))))

    def compare(self, data: HistData, refs: Sequence[HistData]) -> ComparisonResult:
        """Judge ``data`` against the model learned from ``refs`` (its history)."""
        kept, dropped = usable_refs(data, refs)
        kept = [r for r in kept if float(r.counts.sum()) >= self.min_entries]
        n = float(np.nansum(data.counts))
        if len(kept) < self.min_history:
            why = f"; {'; '.join(dropped)}" if dropped else ""
            rate = rate_change(data, kept) if n > 0 else None
            if rate is not None:
                return self._rate_only(data, len(kept), rate, why)
            return skipped(
                self.name, data,
                f"history of {len(kept)} usable runs; at least {self.min_history} are needed "
                f"to learn the normal variation{why}",
            )  # fmt: skip
        if n <= 0:
            ref_n = float(np.median([r.counts.sum() for r in kept]))
            return result(
                self.name, data, Status.FLAGGED, score=10.0, threshold=1.0,
                reason=f"no entries in data; its history has {ref_n:.0f} (median)",
                scores={"sigma": math.inf, "cut": self.cut},
            )  # fmt: skip
        if n < self.min_entries:
            return skipped(self.name, data, f"{n:.0f} entries < min_entries={self.min_entries:g}")
        return self._judge(data, kept)

    def _judge(self, data: HistData, hist: list[HistData]) -> ComparisonResult:
        profile = has_profile_errors(data) and all(has_profile_errors(r) for r in hist)
        runs = [*hist, data]
        shape = data.values.shape
        k = len(hist)
        counts = np.stack([np.nan_to_num(r.counts.ravel(), nan=0.0) for r in runs])
        filled = np.asarray(counts.sum(axis=0) > 0)
        totals = [float(np.nansum(r.counts)) for r in runs]
        by_counts = self._shape(counts_series(counts[:, filled]), filled, totals, shape, k)
        if profile:  # the means, and the entries per bin (a dead region has none)
            means = means_series(
                np.stack([r.values.ravel() for r in runs]),
                np.stack([np.asarray(r.variances).ravel() for r in runs]),
                np.stack([np.asarray(r.bin_entries).ravel() for r in runs]),
            )
            used: np.ndarray = np.asarray(np.isfinite(means.v).any(axis=0))
            means = Series(means.y[:, used], means.v[:, used])
            shapes = [self._shape(means, used, [None] * len(runs), shape, k), by_counts]
        else:
            shapes = [by_counts]
        rate = rate_change(data, hist)
        log_ps = [c.log_p for sh in shapes for c in sh.cals] + ([] if rate is None else [rate[0]])
        worst = int(np.argmin(log_ps))
        log_p = min(0.0, math.log(len(log_ps)) + log_ps[worst])
        sigma = sigma_of_log_p(log_p)
        cut = self.cut
        flagged = sigma > cut
        main = shapes[0]
        arrays = self._arrays(data, profile, main.used, main.z, main.centre + main.fitted,
                              main.extra + main.series.v[k])  # fmt: skip
        how = (f"cut {cut:.1f}\u03c3 from alpha {self.alpha:g} over {self.n_tests} histograms"
               if self.z_cut is None else f"cut {cut:.1f}\u03c3 (z_cut)")  # fmt: skip
        n_stats = len(main.cals)
        if worst < n_stats * len(shapes):
            sh, j = shapes[worst // n_stats], worst % n_stats
            what = " (entries per bin)" if profile and sh is by_counts else ""
            drift = (f" (x{sh.ahead[j]:.2f} for a run ahead of its history)"
                     if sh.ahead[j] > 1.005 else "")  # fmt: skip
            why = (
                f"{self._where(data, sh.corner, sh.size)}{what}: {sh.stat[0]:.1f}\u03c3 off the "
                f"normal variation (rank-{sh.rank} model of {k} history runs); {STAT_NAMES[j]} "
                f"{float(sh.stat[j]):.3g} against a typical {sh.cals[j].centre:.3g} in the "
                f"history's leave-one-out scores{drift}"
            )
        else:  # the rate
            assert rate is not None
            why = (f"rate: {rate[1]:+.1%} in its share of the subsystem's entries, where the "
                   f"{k} history runs vary by \u00b1{rate[2]:.1%}; the shape is "
                   f"{main.stat[0]:.1f}\u03c3 off normal in "
                   f"{self._where(data, main.corner, main.size)}")  # fmt: skip
        reason = f"{why} → {sigma:.1f}\u03c3 {'>' if flagged else '<='} {how}"
        return result(
            self.name, data, Status.FLAGGED if flagged else Status.OK,
            score=sigma / cut, threshold=1.0, reason=reason,
            scores={"sigma": sigma, "cut": cut, "window": float(main.stat[0]),
                    "chi2": float(main.stat[1]), "rank": float(main.rank), "history": float(k),
                    "ahead": max(float(np.max(sh.ahead)) for sh in shapes),
                    "log10_p": log_p / math.log(10),
                    **({} if rate is None else {"rate": rate[1]})},
            arrays=arrays,
        )  # fmt: skip

    def _shape(
        self, series: Series, used: np.ndarray, totals: Sequence[float | None],
        shape: tuple[int, ...], k: int,
    ) -> _Shape:  # fmt: skip
        """The data's shape scores against the model of the history (its first ``k`` runs
        of ``series``), calibrated on the history's leave-one-out scores."""
        y_h, v_h = series.y[:k], series.v[:k]
        rank = choose_rank(Series(y_h, v_h), self.rank_max)

        def score_of(train: np.ndarray, i: int, rank: int = rank) -> tuple[Any, ...]:
            model = fit(Series(y_h[train], v_h[train]), rank)
            z_used, fitted = residuals(model, series.y[i], series.v[i], totals[i])
            z = np.zeros(used.size)
            z[used] = z_used
            return *statistics(z, used, shape), z, fitted, model.centre, model.extra

        loo = np.array([score_of(np.arange(k) != i, i)[0] for i in range(k)])
        ahead = self._ahead_factor(loo, score_of, y_h, v_h)
        stat, corner, size, z, fitted, centre, extra = score_of(np.ones(k, bool), k)
        cals = [calibrate(loo[:, j] * ahead[j], float(stat[j])) for j in range(len(stat))]
        return _Shape(series, used, rank, ahead, stat, corner, size, z, fitted, centre, extra,
                      cals)  # fmt: skip

    def _rate_only(
        self, data: HistData, k: int, rate: tuple[float, float, float], why: str
    ) -> ComparisonResult:
        """Too short a history for the shape: the rate alone is judged."""
        log_p = min(0.0, rate[0])
        sigma = sigma_of_log_p(log_p)
        cut = self.cut
        flagged = sigma > cut
        reason = (
            f"rate: {rate[1]:+.1%} in its share of the subsystem's entries, where the {k} "
            f"history runs vary by \u00b1{rate[2]:.1%}; the shape is not judged (history "
            f"of {k} usable runs; {self.min_history} are needed){why} \u2192 {sigma:.1f}\u03c3 "
            f"{'>' if flagged else '<='} cut {cut:.1f}\u03c3"
        )
        return result(
            self.name, data, Status.FLAGGED if flagged else Status.OK,
            score=sigma / cut, threshold=1.0, reason=reason,
            scores={"sigma": sigma, "cut": cut, "history": float(k),
                    "log10_p": log_p / math.log(10), "rate": rate[1]},
        )  # fmt: skip

    def _ahead_factor(
        self, loo: FloatArray, score_of: Any, y_h: FloatArray, v_h: FloatArray
    ) -> FloatArray:
        """How much worse a run scores ahead of its history than inside it (>= 1 per score).

        A leave-one-out score judges a history run against runs on both sides of it in
        time; a new run is judged against runs before it only, so drift makes it score
        higher. Each of the latest quarter of the history's runs is also scored as it would
        have been when new: against a model (rank chosen afresh) of the runs before it, at
        least three quarters of the history, so that the ratio measures drift more than a
        smaller training set. The mean log
        ratio of these scores to the same runs' leave-one-out scores, when positive, scales
        the leave-one-out sample the cut is calibrated on.
        """
        k = len(loo)
        first = max(self.min_history, k - k // 4)
        if k - first < 2:
            return np.ones(loo.shape[1])
        ahead = np.array([
            score_of(np.arange(j), j, choose_rank(Series(y_h[:j], v_h[:j]), self.rank_max))[0]
            for j in range(first, k)
        ])  # fmt: skip
        shift = np.mean(np.log(ahead) - np.log(loo[first:]), axis=0)
        return np.asarray(np.exp(np.maximum(shift, 0.0)))

    @staticmethod
    def _arrays(
        data: HistData, profile: bool, used: np.ndarray, z: FloatArray,
        mean_y: FloatArray, var_y: FloatArray,
    ) -> dict[str, FloatArray]:  # fmt: skip
        shape = data.values.shape
        expected = np.zeros(used.size)
        band = np.zeros(used.size)
        if profile:
            expected[used], band[used] = mean_y, np.sqrt(var_y)
        else:
            share = np.exp(mean_y)
            total = float(np.nansum(data.counts))
            expected[used] = total * share / share.sum()
            band[used] = expected[used] * np.sqrt(var_y)
        return {"pulls": z.reshape(shape), "expected": expected.reshape(shape),
                "band": band.reshape(shape)}  # fmt: skip

    @staticmethod
    def _where(data: HistData, corner: tuple[int, ...], size: int) -> str:
        shape = data.values.shape
        labels = [*data.labels, None, None]
        if len(shape) == 1:
            return "bins " + _range_text("x", corner[0], corner[0] + size - 1, labels[0])[2:]
        x0, y0 = corner
        if size == 0:
            return (_range_text("y", y0, y0, labels[1]) + " (a whole row)" if x0 < 0
                    else _range_text("x", x0, x0, labels[0]) + " (a whole column)")  # fmt: skip
        return (_range_text("x", x0, x0 + size - 1, labels[0]) + ", "
                + _range_text("y", y0, y0 + size - 1, labels[1]))  # fmt: skip
