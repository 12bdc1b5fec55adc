"""Plugins layer: ``variation_scan``, bins and regions judged against the normal run-to-run
variation learned from the spread among the references, with a cut that follows from
how many histograms the subsystem has (look-elsewhere over the run).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from engine.types import ComparisonResult, FloatArray, HistData, Status
from plugins._common import (
    has_profile_errors,
    no_reference_reason,
    result,
    skipped,
    too_few_entries,
    usable_refs,
)
from plugins._variance import (
    Normal,
    RunLevelCut,
    learn_counts,
    learn_means,
    lookelsewhere,
    tail_sigmas,
)
from plugins.multiscale import (
    Cells,
    _clean,
    _range_text,
    _signed,
    cell_sums,
    cells,
    check_cell_sizes,
)


def shift_flows(density: FloatArray, grid: Cells, axes: Sequence[int]) -> FloatArray:
    """How much of ``density`` each cell gains or loses when everything moves by one bin.

    For a move of ``delta`` bins along an axis, a cell's content changes by about
    ``delta`` times the density at its lower border minus that at its upper border
    (border densities: the mean of the two bins they separate; half the edge bin at the
    histogram's ends). Returns the root-sum-square over ``axes`` of those per-bin flows,
    one per cell, from integral images (no loop over cells).
    """
    nx, ny = grid.shape
    f = density.reshape(nx, ny)
    x0, x1, y0, y1 = grid.bounds
    total = np.zeros(grid.bounds.shape[1])
    for axis in axes:
        g = f if axis == 0 else f.T
        border = np.zeros((g.shape[0] + 1, g.shape[1]))
        border[1:-1] = 0.5 * (g[:-1] + g[1:])
        border[0], border[-1] = 0.5 * g[0], 0.5 * g[-1]
        run = np.zeros((border.shape[0], border.shape[1] + 1))
        np.cumsum(border, axis=1, out=run[:, 1:])
        a0, a1, b0, b1 = (x0, x1, y0, y1) if axis == 0 else (y0, y1, x0, x1)
        flow = (run[a0, b1] - run[a0, b0]) - (run[a1, b1] - run[a1, b0])
        total += flow * flow
    return np.sqrt(total)


@dataclass(frozen=True, slots=True)
class _Scan:
    """One histogram's cells judged: per-cell sigmas and what the text needs."""

    z: FloatArray
    used: np.ndarray
    observed: FloatArray
    normal: Normal
    unit: str  # "entries" (counts) or "mean"
    floor: float  # the smallest spread allowed (same units as normal.sigma)


@dataclass(frozen=True, slots=True)
class VariationScan(RunLevelCut):
    """Bins and regions outside the normal run-to-run variation learned from references.

    Every bin, and data and references summed into the cells of
    :func:`plugins.multiscale.cells` (1D: groups of 2-64 bins; 2D: row and column segments,
    blocks, whole rows and columns; half-cell shifts), is compared with what the
    references say is normal *for that cell*:

    - Counts (TH1, TH2; a profile without errors: its entries): each reference's share
      ``R_i/N_i`` of a cell scatters with its Poisson variance plus a run-to-run variance
      ``(s f)^2``. ``s`` is estimated per cell from the references' spread
      (DerSimonian-Laird) and shrunk towards the median of its cell size (``prior_dof``
      pseudo-degrees of freedom, floored at ``floor``; ``tol`` when there is one
      reference and nothing to learn), so a bin that moves from run to run in the
      references is allowed to, and a steady one is held to its steadiness.
    - Profiles (TProfile, TProfile2D): the entries-weighted mean of each cell against the
      references' means, with their errors and the learned absolute spread (at least
      ``mean_tol`` of the root-mean-square reference mean: efficiencies are steadier from
      run to run than counts). Cells with fewer than ``min_bin_entries`` entries are left
      out.
    - Edges may move: ``shift_tol`` (bins) of a shift along each axis without bin labels
      is allowed for, as the content it moves across each cell's borders
      (:func:`shift_flows`), so a steep edge that moves by a twentieth of a bin between
      runs is not a failure (moved peaks are ``moments``' to find).

    The tail probability of each cell's deviation is Student's t, whose degrees of
    freedom say how well the spread is known, or for small counts the negative binomial,
    whichever is larger; it is quoted as Gaussian sigma. The most significant cell is
    corrected for the number of cells looked at (Bonferroni, ``max_pull``), and that is
    judged against a cut that makes a false flag from this test on a healthy run of the
    subsystem no likelier than ``alpha``: ``Phi^-1(1 - alpha / (2 n_tests))`` for the
    ``n_tests`` histograms the pipeline gives this test, and never below ``min_cut``.
    ``z_cut`` fixes the cut instead.

    Scores: ``max_pull`` (sigma, corrected, signed), ``raw_pull`` (the worst cell alone),
    ``cells``, ``deviation`` (worst cell: relative difference for counts, absolute for
    means), ``spread`` (its learned run-to-run spread, same units), ``cut`` (sigma).
    ``score = |max_pull| / cut`` against ``threshold = 1``. Arrays: ``pulls`` (each bin
    alone), ``expected`` and ``band`` (each bin's normal content and one-sigma normal
    range; for profiles ``ref_mean`` and ``ref_error``, the names the profile plot
    draws) and ``region`` (1 on the worst cell's bins). Empty data with non-empty
    references is flagged.
    """

    name: ClassVar[str] = "variation_scan"
    plot_kind: ClassVar[str] = "overlay"
    dims: ClassVar[tuple[int, ...]] = (1, 2)

    min_entries: float = 1
    min_bin_entries: float = 10
    prior_dof: float = 4.0
    floor: float = 0.01
    tol: float = 0.01
    shift_tol: float = 0.05
    mean_tol: float = 0.003
    max_width: int = 64
    max_block: int = 8
    slide: bool = True

    def __post_init__(self) -> None:
        checks = {
            **self.cut_checks(),
            "prior_dof": 0 < self.prior_dof < math.inf,
            "floor": 0 <= self.floor < math.inf,
            "shift_tol": 0 <= self.shift_tol < math.inf,
            "mean_tol": 0 < self.mean_tol < math.inf,
            "tol": 0 < self.tol < math.inf,
            "min_entries": self.min_entries >= 0,
            "min_bin_entries": self.min_bin_entries >= 0,
        }
        for key, ok in checks.items():
            if not ok:
                msg = f"variation_scan: bad {key} {getattr(self, key)!r}"
                raise ValueError(msg)
        check_cell_sizes(self.name, self.max_width, self.max_block)

    def compare(self, data: HistData, refs: Sequence[HistData]) -> ComparisonResult:
        """Judge ``data`` against ``refs``; see the class docstring for the scores."""
        means = has_profile_errors(data)
        kept, dropped = usable_refs(data, [r for r in refs if has_profile_errors(r) or not means])
        dropped += [f"run {r.run}: not a profile with errors" for r in refs
                    if means and not has_profile_errors(r)]  # fmt: skip
        d = _clean(data.counts)
        r = _clean(np.stack([x.counts for x in kept])) if kept else np.zeros((0, *d.shape))
        filled = r.reshape(r.shape[0], d.size).sum(axis=1) > 0
        dropped += [f"run {x.run}: no entries after rounding"
                    for x, ok in zip(kept, filled, strict=True) if not ok]  # fmt: skip
        kept = [x for x, ok in zip(kept, filled, strict=True) if ok]
        if not kept:
            return skipped(self.name, data, no_reference_reason(dropped))
        notes = [f"ignored {msg}" for msg in dropped]
        runs = [x.run for x in kept]
        n = float(d.sum())
        if n <= 0:
            total = float(r[filled].sum()) / len(kept)
            reason = (f"no entries in data, references have {total:.0f}"
                      + (f" (mean of {len(kept)})" if len(kept) > 1 else ""))  # fmt: skip
            zeros = {"pulls": np.zeros(d.shape), "region": np.zeros(d.shape)}
            return result(self.name, data, Status.FLAGGED, score=1.0, threshold=1.0,
                          reason="; ".join([reason, *notes]), arrays=zeros)  # fmt: skip
        if n < self.min_entries:
            return too_few_entries(self.name, data, n, self.min_entries)
        grid = cells(d.shape, self.max_width, self.max_block, self.slide, singles=True)
        scan = self._means(data, kept, grid) if means else self._counts(data, d, r[filled], grid)
        if not scan.used.any():
            why = f"no cell has >= {self.min_bin_entries:g} entries in data and references"
            return skipped(self.name, data, why)
        return self._judge(data, scan, grid, runs, notes)

    def _counts(self, data: HistData, d: FloatArray, r: FloatArray, grid: Cells) -> _Scan:
        sums = cell_sums(np.concatenate([d[None], r]), grid)
        totals = r.reshape(r.shape[0], -1).sum(axis=1)
        known: FloatArray | float = 0.0
        if self.shift_tol > 0:
            mean_frac = (r / totals.reshape((-1,) + (1,) * d.ndim)).mean(axis=0)
            free = [i for i in range(d.ndim) if not (i < len(data.labels) and data.labels[i])]
            known = (self.shift_tol * shift_flows(mean_frac, grid, free)) ** 2
        normal = learn_counts(sums[1:], totals, float(d.sum()), grid.layout, len(grid.names),
                              prior_dof=self.prior_dof, floor=self.floor, fallback=self.tol,
                              known=known)  # fmt: skip
        used = sums.sum(axis=0) > 0
        z = np.where(used, tail_sigmas(sums[0], normal, counts=True), 0.0)
        return _Scan(z, used, sums[0], normal, "entries", self.floor)

    def _means(self, data: HistData, refs: Sequence[HistData], grid: Cells) -> _Scan:
        hists = [data, *refs]
        w = np.stack([np.clip(np.nan_to_num(h.counts), 0.0, None) for h in hists])
        m = np.stack([np.nan_to_num(h.values) for h in hists])
        v = np.stack([np.clip(np.nan_to_num(np.asarray(h.variances)), 0.0, None) for h in hists])
        scale = float(np.sqrt(np.mean(m[1:][w[1:] > 0] ** 2))) if (w[1:] > 0).any() else 1.0
        scale = scale if scale > 0 else 1.0
        v = np.maximum(v, (scale / (w + 1.0)) ** 2)  # a mean of 1.0 from 3 entries is not exact
        k = len(hists)
        sums = cell_sums(np.concatenate([w, w * m, w * w * v]), grid)
        big_w, s1, s2 = sums[:k], sums[k : 2 * k], sums[2 * k :]
        ok = big_w >= max(self.min_bin_entries, 1e-300)
        safe = np.where(ok, big_w, 1.0)
        mean, err2 = s1 / safe, s2 / (safe * safe)
        normal = learn_means(mean[1:], err2[1:], ok[1:], grid.layout, len(grid.names),
                             prior_dof=self.prior_dof, floor=self.mean_tol * scale,
                             fallback=self.mean_tol * scale)  # fmt: skip
        used = ok[0] & ok[1:].any(axis=0)
        z = tail_sigmas(mean[0], normal, counts=False, extra_var=err2[0])
        return _Scan(np.where(used, z, 0.0), used, mean[0], normal, "mean", self.mean_tol * scale)

    def _judge(self, data: HistData, scan: _Scan, grid: Cells, runs: list[int],
               notes: list[str]) -> ComparisonResult:  # fmt: skip
        n_cells = int(np.count_nonzero(scan.used))
        worst = int(np.argmax(np.abs(scan.z)))
        max_pull = lookelsewhere(float(scan.z[worst]), n_cells)
        cut = self.cut
        bad = abs(max_pull) > cut
        nrm = scan.normal
        obs, exp, sd = (
            float(scan.observed[worst]),
            float(nrm.expected[worst]),
            float(nrm.sigma[worst]),
        )
        counts = scan.unit == "entries"
        dev = (obs / exp - 1.0 if exp > 0 else 0.0) if counts else obs - exp
        x0, x1, y0, y1 = (int(v) for v in grid.bounds[:, worst])
        k = int(grid.layout[worst])
        spans = [(x0, x1)] if data.ndim == 1 else [(x0, x1), (y0, y1)]
        where = ", ".join(
            _range_text(ax, lo, hi - 1, data.labels[i] if i < len(data.labels) else None)
            for i, (ax, (lo, hi)) in enumerate(zip("xy", spans, strict=False))
        )
        plural = "s" if x1 - x0 > 1 or y1 - y0 > 1 else ""
        if counts:
            what = (f"hold{'' if plural else 's'} {obs:,.0f} entries where "
                    f"{exp:,.0f} ± {math.sqrt(float(nrm.var[worst])):,.0f} are normal "
                    f"({dev:+.0%})")  # fmt: skip
            spread_txt = f"±{sd:.1%}"
        else:
            what = (f"{'have' if plural else 'has'} mean {obs:.4g} where {exp:.4g} ± "
                    f"{math.sqrt(float(nrm.var[worst])):.2g} is normal")  # fmt: skip
            spread_txt = f"±{sd:.2g}"
        refs_txt = f"run{'s' if len(runs) > 1 else ''} {', '.join(map(str, runs))}"
        at_floor = sd <= scan.floor * (1.0 + 1e-9)
        how = "(the floor: the references vary less) from" if at_floor else "learned from"
        reason = (
            f"bin{plural} {where} ({grid.names[k]}) {what}: {_signed(max_pull)}\u03c3 "
            f"{'>' if bad else '≤'} {cut:.2g} after look-elsewhere over {n_cells:,} cells "
            f"({_signed(float(scan.z[worst]))}\u03c3 alone); normal run-to-run spread "
            f"{spread_txt} {how} {refs_txt}"
        )
        singles = grid.layout == 0
        shape = data.values.shape
        region = np.zeros(grid.shape)
        region[x0:x1, y0:y1] = 1.0
        centre, band = (
            nrm.expected[singles].reshape(shape),
            np.sqrt(nrm.var[singles]).reshape(shape),
        )
        names = ("expected", "band") if counts else ("ref_mean", "ref_error")
        arrays = {"pulls": scan.z[singles].reshape(shape), names[0]: centre, names[1]: band,
                  "region": region.reshape(shape)}  # fmt: skip
        scores = {"max_pull": max_pull, "raw_pull": float(scan.z[worst]),
                  "cells": float(n_cells), "deviation": dev, "spread": sd, "cut": cut}  # fmt: skip
        return result(self.name, data, Status.FLAGGED if bad else Status.OK,
                      score=abs(max_pull) / cut, threshold=1.0,
                      reason="; ".join([reason, *notes]), scores=scores,
                      arrays=arrays)  # fmt: skip
