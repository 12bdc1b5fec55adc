"""Plugins layer: the multi-scale region scan — AutoDQM's beta-binomial test applied to
data and references summed into segments, blocks, rows and columns at several scales.

A drop spread over many low-count bins is ~1 sigma per bin but many sigma once summed.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from engine.types import ComparisonResult, FloatArray, HistData, Status
from plugins._common import no_reference_reason, result, skipped, usable_refs
from plugins.beta_binomial import max_pull_norm, pulls_multi

IntArray = NDArray[np.intp]


@dataclass(frozen=True, slots=True, eq=False)
class Cells:
    """Every cell scanned on one bin shape (built once per shape; arrays read-only).

    A *layout* tiles the histogram with cells of one size (``wx x wy`` bins) and one
    offset; ``corners`` index the four corners of each cell in the flattened
    ``(nx + 1, ny + 1)`` integral image (sum = ``[1] - [2] - [3] + [0]``); ``bounds`` are
    ``x0, x1, y0, y1`` (half-open); ``layout`` the layout of each cell; ``members[k]`` the
    cell of every bin in layout ``k``.
    """

    shape: tuple[int, int]
    names: tuple[str, ...]
    widths: tuple[tuple[int, int], ...]
    corners: IntArray
    bounds: IntArray
    layout: IntArray
    members: IntArray


def _widths(n: int, lo: int, hi: int) -> list[int]:
    """Powers of two from ``lo`` up to ``hi``, narrower than the axis (``n`` bins)."""
    return [1 << k for k in range(1, 31) if lo <= 1 << k <= hi and 1 << k < n]


def _starts(n: int, width: int, offset: int) -> IntArray:
    """First bins of the cells of ``width`` bins (the first is the partial ``[0, offset)``)."""
    first = np.arange(offset, n, width)
    return first if offset == 0 else np.concatenate(([0], first))


#: Cells of fewer bins than this are not shifted: regions that small are the per-bin
#: test's, and shifting them would cost as much as every other layout together.
MIN_SHIFTED_CELL = 8


def _offsets(n: int, w: int, area: int, slide: bool) -> tuple[int, ...]:
    return (0, w // 2) if slide and 1 < w < n and area >= MIN_SHIFTED_CELL else (0,)


def _layouts(
    nx: int, ny: int, max_width: int, max_block: int, slide: bool, singles: bool
) -> list[tuple[int, int, int, int, str]]:
    """``(wx, wy, ox, oy, name)`` of every layout (see :func:`cells`)."""
    out = [(1, 1, 0, 0, "single bin")] if singles else []
    if ny == 1:  # 1D
        return out + [(w, 1, o, 0, f"{w}-bin group")
                      for w in _widths(nx, 2, max_width) for o in _offsets(nx, w, w, slide)]  # fmt: skip
    out += [(w, 1, o, 0, f"{w}x1 segment")
           for w in _widths(nx, 4, max_width) for o in _offsets(nx, w, w, slide)]  # fmt: skip
    out += [(1, w, 0, o, f"1x{w} segment")
            for w in _widths(ny, 4, max_width) for o in _offsets(ny, w, w, slide)]  # fmt: skip
    for w in _widths(min(nx, ny), 2, max_block):  # shifted diagonally only: half the cost
        out += [(w, w, o, o, f"{w}x{w} block") for o in _offsets(min(nx, ny), w, w * w, slide)]
    if nx > 1:
        out += [(nx, 1, 0, 0, "whole row"), (1, ny, 0, 0, "whole column")]
    return out


@functools.lru_cache(maxsize=256)
def cells(shape: tuple[int, ...], max_width: int = 64, max_block: int = 8,
          slide: bool = True, singles: bool = False) -> Cells:  # fmt: skip
    """The cells scanned on a histogram of ``shape`` (cached; pure).

    1D: groups of 2, 4, 8 ... adjacent bins. 2D: row segments ``w x 1`` and column
    segments ``1 x w`` (w = 4, 8, 16 ...: two bins side by side gain little over the
    per-bin test and would double the cost), square blocks ``w x w`` (w = 2 ...
    ``max_block``), whole rows and whole columns; widths are powers of two, narrower
    than their axis and at most ``max_width``. With ``slide`` every cell size of at least
    ``MIN_SHIFTED_CELL`` bins also comes shifted by half a cell (blocks: diagonally), so a
    region straddling a cell border is not split in two. With ``singles`` every bin is
    also a cell of its own, in layout 0.

    Args:
        shape: Bin shape ``(nx,)`` or ``(nx, ny)``.
        max_width: Widest segment, in bins.
        max_block: Widest square block, in bins.
        slide: Add the half-cell shifted layouts.
        singles: Add the layout of single bins first.

    Returns:
        The :class:`Cells` (2D arrays; a 1D shape is taken as ``(nx, 1)``).
    """
    nx, ny = (shape[0], 1) if len(shape) == 1 else (shape[0], shape[1])
    names, widths, corners, bounds, layout, members = [], [], [], [], [], []
    n_cells = 0
    for k, (wx, wy, ox, oy, name) in enumerate(
        _layouts(nx, ny, max_width, max_block, slide, singles)
    ):
        sx, sy = _starts(nx, wx, ox), _starts(ny, wy, oy)
        ex, ey = np.append(sx[1:], nx), np.append(sy[1:], ny)
        x0, y0 = (a.ravel() for a in np.meshgrid(sx, sy, indexing="ij"))
        x1, y1 = (a.ravel() for a in np.meshgrid(ex, ey, indexing="ij"))
        names.append(name)
        widths.append((wx, wy))
        stride = ny + 1
        corners.append(np.stack([x0 * stride + y0, x1 * stride + y1,
                                 x0 * stride + y1, x1 * stride + y0]))  # fmt: skip
        bounds.append(np.stack([x0, x1, y0, y1]))
        layout.append(np.full(x0.size, k))
        lx = np.repeat(np.arange(sx.size), ex - sx)
        ly = np.repeat(np.arange(sy.size), ey - sy)
        members.append((n_cells + lx[:, None] * sy.size + ly[None, :]).ravel())
        n_cells += x0.size
    empty = np.zeros((4, 0), dtype=np.intp)
    out = Cells(
        shape=(nx, ny),
        names=tuple(names),
        widths=tuple(widths),
        corners=np.concatenate(corners, axis=1).astype(np.intp) if corners else empty,
        bounds=np.concatenate(bounds, axis=1).astype(np.intp) if bounds else empty,
        layout=np.concatenate(layout).astype(np.intp) if layout else np.zeros(0, np.intp),
        members=np.stack(members).astype(np.intp) if members else np.zeros((0, nx * ny), np.intp),
    )
    for arr in (out.corners, out.bounds, out.layout, out.members):
        arr.flags.writeable = False
    return out


def check_cell_sizes(comparator: str, max_width: int, max_block: int) -> None:
    """Raise ``ValueError`` unless the widest segment and block allow any cell at all."""
    if max_width < 2 or max_block < 1:
        msg = (
            f"{comparator}: expected max_width >= 2 and max_block >= 1 (bins), found "
            f"max_width={max_width!r}, max_block={max_block!r}"
        )
        raise ValueError(msg)


def cell_sums(counts: FloatArray, grid: Cells) -> FloatArray:
    """Sums of ``counts`` (``(m, nx, ny)``) over every cell, shape ``(m, nCells)``.

    From the integral image: four look-ups per cell whatever its size (exact for counts
    below 2^53).
    """
    m = counts.shape[0]
    nx, ny = grid.shape
    integral = np.zeros((m, nx + 1, ny + 1))
    np.cumsum(counts.reshape(m, nx, ny), axis=1, out=integral[:, 1:, 1:])
    np.cumsum(integral[:, 1:, 1:], axis=2, out=integral[:, 1:, 1:])
    flat = integral.reshape(m, -1)
    c = grid.corners
    out: FloatArray = flat.take(c[1], axis=1)
    out += flat.take(c[0], axis=1)
    out -= flat.take(c[2], axis=1)
    out -= flat.take(c[3], axis=1)
    return out


def _clean(values: FloatArray) -> FloatArray:
    """Rounded counts with non-finite and negative bins as 0 (as beta_binomial uses them)."""
    r: FloatArray = np.asarray(values, dtype=np.float64).round()
    if r.size == 0 or (r.min() >= 0.0 and r.max() < math.inf):
        return r
    with np.errstate(invalid="ignore"):
        return np.where(~np.isfinite(r) | (r < 0), 0.0, r)


def _signed(x: float) -> str:
    """'+5.2' or '\u22126.2' (a true minus sign)."""
    return f"{x:+.1f}".replace("-", "\u2212")


def _range_text(axis: str, lo: int, hi: int, labels: tuple[str, ...] | None) -> str:
    """'x 12-15' (0-based bin indices, inclusive; an en dash), with end bins' labels if any."""
    txt = f"{axis} {lo}" if lo == hi else f"{axis} {lo}\u2013{hi}"
    if labels and hi < len(labels):
        txt += f" ({labels[lo]})" if lo == hi else f" ({labels[lo]}\u2013{labels[hi]})"
    return txt


@dataclass(frozen=True, slots=True)
class RegionScan:
    """Multi-scale region scan: beta-binomial pulls of cells of summed bins.

    Data and references are summed over the cells of :func:`cells` (1D: groups of 2, 4,
    8 ... adjacent bins; 2D: row and column segments of 2, 4, 8 ... bins, 2x2 to 8x8
    blocks, whole rows and whole columns; every size also shifted by half a cell). Each
    cell is judged with AutoDQM's beta-binomial probability of its data content given the
    reference's (:func:`plugins.beta_binomial.pulls_multi`, several references combined),
    which gives a signed pull in sigma. All cells go through one call, as the bins of one
    histogram made of the ``L`` layouts side by side (``L`` times the entries). A cell's
    probability then depends only on its own content, the reference's and the
    data/reference totals, as in a single layout, except that the binomial factor
    ``1 - f`` of a cell holding a fraction ``f`` of the entries becomes ``1 - f / L``:
    the cell is treated as a Poisson count, slightly conservative for large cells.

    Tolerance: ``tol`` is the same *relative* floor at every scale: a cell's content is
    trusted to ``tol`` at best (``1/tol^2`` effective reference entries), whatever its
    size. Run-to-run systematics are smooth distortions of the shape (a percent or so,
    over many bins), coherent within a cell, so they do not average out when bins are
    summed; a floor shrinking with the cell (``tol / sqrt(k)``, right only for
    independent per-bin jitter) would let a 1 % wobble of a 1e6-entry row read as 10
    sigma.

    Look-elsewhere correction: the most extreme cell pull ``x`` among the ``N`` cells
    with entries (all scales and offsets) becomes the pull whose one-cell tail
    probability is ``N q(x)`` (``1 - (1 - q)^N`` above 0.01), AutoDQM's correction with
    cells in place of bins. Overlapping cells are positively correlated, so this is a
    Bonferroni bound: for the same ``pull_cut`` a healthy histogram's false-alarm
    probability is at most that of ``beta_binomial``'s ``max_pull`` (the ~5x more cells
    cost ~0.2 sigma near 10 sigma).

    Scores: ``max_pull`` (corrected, signed, sigma), ``raw_pull`` (the worst cell's own
    pull), ``cells`` (N), ``deviation`` (relative data/reference difference of the worst
    cell), ``width_x``/``width_y`` (its size in bins). ``score = |max_pull| / pull_cut``,
    judged against ``threshold = 1``. Arrays: ``pulls`` (each bin: the pull of its most
    significant cell) and ``region`` (1 on the bins of the worst cell, else 0). Empty data
    with non-empty references is flagged. Profiles are scanned on their per-bin entries.
    """

    name: ClassVar[str] = "region_scan"
    plot_kind: ClassVar[str] = "overlay"
    dims: ClassVar[tuple[int, ...]] = (1, 2)

    pull_cut: float = 10.0
    min_entries: int = 1
    tol: float = 0.01
    exact_z: bool = False
    max_width: int = 64
    max_block: int = 8
    slide: bool = True

    def __post_init__(self) -> None:
        if not (isinstance(self.pull_cut, int | float) and 0 < self.pull_cut < math.inf):
            msg = f"region_scan: pull_cut must be a positive number, found {self.pull_cut!r}"
            raise ValueError(msg)
        if not (self.tol >= 0 and math.isfinite(self.tol)) or self.min_entries < 0:
            msg = (
                f"region_scan: expected tol >= 0 and min_entries >= 0, found "
                f"tol={self.tol!r}, min_entries={self.min_entries!r}"
            )
            raise ValueError(msg)
        check_cell_sizes(self.name, self.max_width, self.max_block)

    def compare(self, data: HistData, refs: Sequence[HistData]) -> ComparisonResult:
        """Judge ``data`` against ``refs``; see the class docstring for the scores."""
        kept, dropped = usable_refs(data, refs)
        d = _clean(data.counts)
        r = _clean(np.stack([ref.counts for ref in kept])) if kept else np.zeros((0, *d.shape))
        filled = r.reshape(r.shape[0], d.size).sum(axis=1) > 0
        dropped += [f"run {ref.run}: no entries after rounding"
                    for ref, ok in zip(kept, filled, strict=True) if not ok]  # fmt: skip
        runs = [ref.run for ref, ok in zip(kept, filled, strict=True) if ok]
        if not runs:
            return skipped(self.name, data, no_reference_reason(dropped))
        r = r[filled]
        notes = [f"ignored {msg}" for msg in dropped]
        n, n_ref = float(d.sum()), len(runs)
        if n <= 0:
            total = f"{float(r.sum()) / n_ref:.0f}"
            refs_txt = f"reference has {total}" if n_ref == 1 else f"references have {total} "
            reason = f"no entries in data, {refs_txt}" + (f"(mean of {n_ref})" if n_ref > 1 else "")
            zeros = {"pulls": np.zeros(d.shape), "region": np.zeros(d.shape)}
            return result(self.name, data, Status.FLAGGED, score=1.0, threshold=1.0,
                          reason="; ".join([reason, *notes]), arrays=zeros)  # fmt: skip
        if n < self.min_entries:
            return skipped(self.name, data, f"{n:.0f} entries < min_entries={self.min_entries}")
        grid = cells(d.shape, self.max_width, self.max_block, self.slide)
        if not grid.names:
            return skipped(self.name, data, f"{d.size} bins: too few to group into cells")

        sums = cell_sums(np.concatenate([d[None], r]), grid)
        dc, rc = sums[0], sums[1:]
        pulls, rw = pulls_multi(dc, rc, self.tol, self.exact_z)
        n_cells = int(np.count_nonzero(sums.sum(axis=0)))
        max_pull, worst = max_pull_norm(pulls, max(n_cells, 1))
        x0, x1, y0, y1 = (int(v) for v in grid.bounds[:, worst])
        k = int(grid.layout[worst])
        (wx, wy), scale = grid.widths[k], grid.names[k]
        dev = float(dc[worst] / rw[worst] - 1.0) if rw[worst] > 0 else 0.0

        # each bin's most significant cell among its cells in every layout
        pick = np.abs(pulls).take(grid.members).argmax(axis=0)
        best = pulls.take(grid.members[pick, np.arange(d.size)]).reshape(d.shape)
        region = np.zeros(grid.shape)
        region[x0:x1, y0:y1] = 1.0

        pull_bad = abs(max_pull) > self.pull_cut
        spans = [(x0, x1)] if d.ndim == 1 else [(x0, x1), (y0, y1)]
        where = ", ".join(
            _range_text(ax, lo, hi - 1, data.labels[i] if i < len(data.labels) else None)
            for i, (ax, (lo, hi)) in enumerate(zip("xy", spans, strict=False))
        )
        against = f"against run{'s' if n_ref > 1 else ''} {', '.join(map(str, runs))}"
        reason = (
            f"bins {where} ({scale}) are {abs(dev):.0%} {'high' if dev > 0 else 'low'}: "
            f"{_signed(max_pull)}\u03c3 {'>' if pull_bad else '≤'} {self.pull_cut:g} after "
            f"look-elsewhere over {n_cells:,} cells ({_signed(float(pulls[worst]))}\u03c3 "
            f"alone), {against}"
        )
        scores = {
            "max_pull": max_pull,
            "raw_pull": float(pulls[worst]),
            "cells": float(n_cells),
            "deviation": dev,
            "width_x": float(wx),
            "width_y": float(wy if d.ndim == 2 else 0),
        }
        return result(
            self.name, data, Status.FLAGGED if pull_bad else Status.OK,
            score=abs(max_pull) / self.pull_cut, threshold=1.0,
            reason="; ".join([reason, *notes]), scores=scores,
            arrays={"pulls": best, "region": region.reshape(d.shape)},
        )  # fmt: skip
