"""Tests of plugins.multiscale: the cells, the region scan's properties and its false alarms."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.registry import build_registry
from engine.types import ComparisonResult, HistData, HistKind, Status
from plugins.beta_binomial import BetaBinomial, pulls_multi
from plugins.multiscale import RegionScan, cell_sums, cells

MINUS = "\u2212"


def _h(values: object, run: int = 1, kind: HistKind | None = None,
       bin_entries: np.ndarray | None = None) -> HistData:  # fmt: skip
    v = np.asarray(values, dtype=np.float64)
    edges = tuple(np.arange(n + 1, dtype=np.float64) for n in v.shape)
    if kind is None:
        kind = HistKind.TH2 if v.ndim == 2 else HistKind.TH1
    return HistData(path="Dir/h", run=run, values=v, variances=None, edges=edges, kind=kind,
                    bin_entries=bin_entries)  # fmt: skip


def _wobbled(rng: np.random.Generator, lam: np.ndarray, amp: float = 0.01) -> np.ndarray:
    """Poisson counts around ``lam`` times a smooth ~``amp`` run-to-run distortion per axis."""
    factor = np.ones(lam.shape)
    for axis, n in enumerate(lam.shape):
        t = (np.arange(n) + 0.5) / n
        a, ph = rng.normal(0.0, amp, 2), rng.uniform(0.0, 2 * np.pi, 2)
        f = 1.0 + a[0] * np.cos(np.pi * t + ph[0]) + a[1] * np.cos(2 * np.pi * t + ph[1])
        factor = factor * f.reshape([-1 if i == axis else 1 for i in range(lam.ndim)])
    return rng.poisson(lam * factor).astype(np.float64)


# --- the cells -------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(7,), (100,), (14, 4), (50, 12), (36, 20), (3, 1)])
def test_every_layout_covers_each_bin_once(shape: tuple[int, ...]) -> None:
    grid = cells(shape)
    counts = np.arange(1.0, math.prod(shape) + 1).reshape(1, *shape)
    sums = cell_sums(counts, grid)[0]
    per_layout = np.bincount(grid.layout, weights=sums, minlength=len(grid.names))
    assert per_layout == pytest.approx(np.full(len(grid.names), counts.sum()))
    x0, x1, y0, y1 = grid.bounds
    assert np.all(x1 > x0)
    assert np.all(y1 > y0)
    c2 = counts.reshape(grid.shape)
    brute = [c2[a:b, c:d].sum() for a, b, c, d in grid.bounds.T]
    assert sums == pytest.approx(brute)
    # members: each bin's cell in each layout contains the bin
    bins = np.arange(math.prod(grid.shape))
    bx, by = np.unravel_index(bins, grid.shape)
    cx = grid.members
    assert np.all((x0[cx] <= bx) & (bx < x1[cx]) & (y0[cx] <= by) & (by < y1[cx]))


def test_scales_and_shifts() -> None:
    names = set(cells((100,)).names)
    assert names == {f"{w}-bin group" for w in (2, 4, 8, 16, 32, 64)}
    grid = cells((50, 12))
    assert {"4x1 segment", "32x1 segment", "1x8 segment", "2x2 block", "8x8 block",
            "whole row", "whole column"} <= set(grid.names)  # fmt: skip
    assert grid.names.count("8x1 segment") == 2  # shifted by half a cell
    assert grid.names.count("4x1 segment") == 1  # too small to shift
    assert cells((1,)).names == ()


# --- the comparator's properties -------------------------------------------------------


def test_registered_and_documented_parameters() -> None:
    comp = build_registry().build("region_scan", {"pull_cut": 8.0})
    assert isinstance(comp, RegionScan)
    assert comp.pull_cut == 8.0


def test_identical_is_ok() -> None:
    rng = np.random.default_rng(1)
    d = rng.poisson(rng.uniform(10, 500, (40, 16))).astype(np.float64)
    res = RegionScan().compare(_h(d), [_h(d, run=2)])
    assert res.status is Status.OK
    assert res.scores["max_pull"] == pytest.approx(0.0, abs=1e-9)
    assert res.score == pytest.approx(0.0, abs=1e-9)
    assert res.threshold == 1.0


def test_regional_drop_of_five_sigma_per_bin_is_flagged_and_located() -> None:
    """16 adjacent bins each 5 sigma low: beta_binomial's per-bin test lets it through."""
    rng = np.random.default_rng(2)
    lam = np.full(200, 100.0)
    d = rng.poisson(lam).astype(np.float64)
    d[120:136] = rng.poisson(100.0 - 5 * math.sqrt(100.0), 16)
    refs = [_h(rng.poisson(10 * lam), run=k) for k in (11, 12, 13)]
    res = RegionScan().compare(_h(d), refs)
    assert res.status is Status.FLAGGED
    assert res.scores["max_pull"] < -10
    assert BetaBinomial().compare(_h(d), refs).status is Status.OK
    x = np.flatnonzero(res.arrays["region"])
    assert x[0] >= 120
    assert x[-1] <= 135
    assert x.size >= 8
    assert res.reason.startswith(f"bins x {x[0]}\u2013{x[-1]} (")
    assert f"% low: {MINUS}" in res.reason
    assert "after look-elsewhere over" in res.reason
    assert res.reason.endswith("against runs 11, 12, 13")
    assert res.scores["deviation"] == pytest.approx(-0.5, abs=0.1)
    assert res.arrays["pulls"][125] < -10  # its bins carry the region's pull
    assert abs(res.arrays["pulls"][20]) < 5
    assert res.arrays["pulls"].shape == d.shape


def test_thirty_percent_drop_over_an_8x8_block_of_20_count_bins() -> None:
    """~10 sigma once the 64 bins are summed, ~1 sigma per bin.

    After the look-elsewhere correction over ~2,000 cells that is ~9 sigma: flagged at a
    cut of 7 (the default, 10, is beta_binomial's), where beta_binomial sees nothing.
    """
    rng = np.random.default_rng(3)
    lam = np.full((32, 32), 20.0)
    d = rng.poisson(lam).astype(np.float64)
    d[8:16, 16:24] = rng.poisson(0.7 * 20.0, (8, 8))
    refs = [_h(rng.poisson(25 * lam), run=k) for k in (2, 3)]  # well measured references
    res = RegionScan(pull_cut=7.0).compare(_h(d), refs)
    bb = BetaBinomial(pull_cut=7.0).compare(_h(d), refs)
    assert bb.status is Status.OK
    assert abs(bb.scores["max_pull"]) < 2
    assert res.status is Status.FLAGGED
    assert res.scores["max_pull"] < -8
    assert res.scores["deviation"] == pytest.approx(-0.3, abs=0.05)
    region = np.argwhere(res.arrays["region"] > 0)
    assert tuple(region.min(axis=0)) == (8, 16)
    assert tuple(region.max(axis=0)) == (15, 23)
    assert "bins x 8\u201315, y 16\u201323 (8x8 block) are" in res.reason


def test_too_few_entries_is_skipped_with_the_count() -> None:
    res = RegionScan(min_entries=1000).compare(_h(np.full(10, 41.0)), [_h(np.full(10, 9.0), 2)])
    assert res.status is Status.SKIPPED
    assert res.reason == "410 entries < min_entries=1000"


def test_unchanged_by_reference_normalisation() -> None:
    rng = np.random.default_rng(4)
    lam = rng.uniform(20, 200, (30, 10))
    d = rng.poisson(lam).astype(np.float64)
    r = rng.poisson(50 * lam).astype(np.float64)
    a = RegionScan().compare(_h(d), [_h(r, run=2)])
    b = RegionScan().compare(_h(d), [_h(3 * r, run=2)])
    # tol caps a cell's reference near 1/tol^2 = 1e4 entries: once the reference is well
    # above that in every cell, its scale changes the pulls only through rounding
    assert b.arrays["pulls"] == pytest.approx(a.arrays["pulls"], abs=0.05)
    assert b.scores["max_pull"] == pytest.approx(a.scores["max_pull"], abs=0.05)
    assert a.status is b.status


def test_empty_data_is_flagged_with_the_usual_reason() -> None:
    refs = [_h(np.full((4, 5), 50.0 * (k + 1)), run=k + 2) for k in range(3)]
    res = RegionScan(min_entries=10_000).compare(_h(np.zeros((4, 5))), refs)
    assert res.status is Status.FLAGGED
    assert res.score >= 1.0
    assert res.reason == "no entries in data, references have 2000 (mean of 3)"
    one = RegionScan().compare(_h(np.zeros(8)), [_h(np.ones(8), run=2)])
    assert one.reason == "no entries in data, reference has 8"


def test_mismatched_binning_is_skipped() -> None:
    res = RegionScan().compare(_h(np.ones(10)), [_h(np.ones(12), run=2)])
    assert res.status is Status.SKIPPED
    assert res.reason.startswith("no usable reference: run 2: binning")
    both = RegionScan().compare(_h(np.ones(10)), [_h(np.ones(12), run=2), _h(np.ones(10), 3)])
    assert both.status is Status.OK
    assert "ignored run 2: binning" in both.reason


def test_profiles_are_scanned_on_their_entries() -> None:
    entries = np.full((12, 6), 200.0)
    dead = entries.copy()
    dead[0:6, 2] = 100.0  # half the entries of six bins of one row
    means = np.full((12, 6), 0.95)
    prof = HistKind.PROFILE2D
    res = RegionScan().compare(_h(means, kind=prof, bin_entries=dead),
                               [_h(means, run=2, kind=prof, bin_entries=entries)])  # fmt: skip
    assert res.status is Status.FLAGGED
    assert "y 2" in res.reason


def test_pulls_match_pulls_multi_on_one_layout() -> None:
    """A layout's cells get beta_binomial's pulls of the rebinned histogram (small f)."""
    rng = np.random.default_rng(6)
    lam = rng.uniform(50, 150, 256)
    d, r = rng.poisson(lam).astype(np.float64), rng.poisson(lam, (2, 256)).astype(np.float64)
    grid = cells((256,))
    sums = cell_sums(np.concatenate([d[None], r]), grid)
    batch, _ = pulls_multi(sums[0], sums[1:])
    two = grid.layout == grid.names.index("2-bin group")
    alone, _ = pulls_multi(d.reshape(-1, 2).sum(axis=1), r.reshape(2, -1, 2).sum(axis=2))
    # only the binomial factor (1 - f) differs, f = 2/256 here
    assert batch[two] == pytest.approx(alone, abs=0.02)


@settings(max_examples=60, deadline=None)
@given(
    shape=st.sampled_from([(1,), (2,), (5,), (33,), (3, 3), (9, 4), (17, 30)]),
    scale=st.sampled_from([0.0, 0.5, 3.0, 1e3, 1e8]),
    n_ref=st.integers(0, 3),
    seed=st.integers(0, 2**16),
    bad=st.sampled_from([None, math.nan, math.inf, -math.inf, -3.0]),
)
def test_finite_outputs_for_random_inputs(
    shape: tuple[int, ...], scale: float, n_ref: int, seed: int, bad: float | None
) -> None:
    rng = np.random.default_rng(seed)
    d = rng.poisson(rng.uniform(0, 1, shape) * scale).astype(np.float64)
    if bad is not None:
        d.flat[0] = bad
    refs = [_h(rng.poisson(rng.uniform(0, 1, shape) * scale).astype(np.float64), run=k)
            for k in range(n_ref)]  # fmt: skip
    res = RegionScan().compare(_h(d), refs)
    assert isinstance(res, ComparisonResult)
    assert math.isfinite(res.score)
    assert res.score >= 0
    assert all(math.isfinite(v) for v in res.scores.values())
    for arr in res.arrays.values():
        assert arr.shape == d.shape
        assert np.all(np.isfinite(arr))
    if res.status is not Status.OK:
        assert res.reason
    json.dumps(res.to_dict(with_arrays=True), allow_nan=False)


def _healthy_flags(comp: RegionScan, shape: tuple[int, ...], n: int) -> int:
    """Flags among ``n`` healthy histograms (3 to 3e4 entries per bin, a 1 % smooth
    run-to-run wobble on data and each of 4 references); fixed seed, deterministic."""
    rng = np.random.default_rng(20240)
    flagged = 0
    for _ in range(n):
        lam = 10 ** rng.uniform(0.5, 4.5) * np.exp(rng.normal(0.0, 0.5, shape))
        refs = [_h(_wobbled(rng, lam), run=k) for k in range(4)]
        flagged += comp.compare(_h(_wobbled(rng, lam)), refs).status is Status.FLAGGED
    return flagged


@pytest.mark.parametrize("shape", [(120,), (48, 16)])
def test_false_alarm_rate_on_healthy_samples(shape: tuple[int, ...]) -> None:
    """At most 0.5 % of 2,000 healthy histograms flagged (measured: 0)."""
    assert _healthy_flags(RegionScan(), shape, 2000) <= 10


def test_the_relative_floor_is_what_absorbs_the_wobble() -> None:
    """Without ``tol`` the same 1 % wobble of big summed cells flags ~6 % of them."""
    assert _healthy_flags(RegionScan(tol=0.0), (48, 16), 200) >= 5
