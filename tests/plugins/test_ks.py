"""ks_test: binned two-sample Kolmogorov-Smirnov distance (and AutoDQM's defect, fixed)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.stats import ks_2samp, kstest, kstwobign

from engine.types import HistData, HistKind, Status
from plugins.ks import KSTest

EDGES = np.linspace(-5.0, 5.0, 101)


def h1(values: object, run: int = 1, edges: np.ndarray | None = None) -> HistData:
    v = np.asarray(values, dtype=np.float64)
    e = np.linspace(0.0, 1.0, v.size + 1) if edges is None else edges
    return HistData(path="Segments/hSnhits", run=run, values=v, variances=None, edges=(e,))


def sample(seed: int, size: int, loc: float = 0.0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(loc, 1.0, size)
    return np.histogram(x, EDGES)[0].astype(float)


def test_identical_is_ok() -> None:
    d = sample(1, 50_000)
    res = KSTest().compare(h1(d, edges=EDGES), [h1(d, 2, EDGES)])
    assert res.status is Status.OK
    assert res.scores == {"ks": 0.0, "p": 1.0}
    assert res.score == 0.0
    assert res.threshold == 1.0


def test_same_distribution_is_ok_and_pinned() -> None:
    res = KSTest().compare(h1(sample(1, 50_000), edges=EDGES), [h1(sample(2, 80_000), 2, EDGES)])
    assert res.status is Status.OK
    assert res.scores["ks"] == pytest.approx(0.0048325, abs=1e-9)
    assert res.scores["p"] == pytest.approx(0.468856, abs=1e-6)
    assert res.reason.endswith("against run 2")


def test_shifted_distribution_is_flagged_with_location() -> None:
    # A mean shift of 0.3 width: the CDFs differ by 2*Phi(0.15) - 1 = 0.119 at the midpoint.
    d, r = sample(3, 100_000, loc=0.3), sample(4, 100_000)
    res = KSTest().compare(h1(d, edges=EDGES), [h1(r, 2, EDGES)])
    assert res.status is Status.FLAGGED
    assert res.scores["ks"] == pytest.approx(0.11623, abs=1e-9)
    assert res.scores["p"] == 0.0  # underflows: sqrt(n_eff) * ks = 26
    assert res.score == pytest.approx(res.scores["ks"] / 0.09)
    assert "> 0.09" in res.reason
    assert "at the upper edge of bin 50 [x 0 to 0.1]" in res.reason


def test_reordered_bins_are_flagged_unlike_autodqm() -> None:
    # Same multiset of bin contents in a different order: AutoDQM ran kstest on the
    # contents and scored 0. The binned CDFs here are very different.
    r = sample(5, 60_000)
    d = r[::-1].copy()
    d = np.roll(d, 20)
    assert sorted(d) == sorted(r)
    assert kstest(r, d).statistic == 0.0  # what AutoDQM computed
    res = KSTest().compare(h1(d, edges=EDGES), [h1(r, 2, EDGES)])
    assert res.status is Status.FLAGGED
    assert res.scores["ks"] > 0.5


def test_statistic_equals_unbinned_ks_on_integer_data() -> None:
    rng = np.random.default_rng(6)
    x, y = rng.poisson(20, 20_000), rng.poisson(20.3, 30_000)
    edges = np.arange(-0.5, 60.5)
    d, r = np.histogram(x, edges)[0], np.histogram(y, edges)[0]
    res = KSTest().compare(h1(d, edges=edges), [h1(r, 2, edges)])
    assert res.scores["ks"] == pytest.approx(ks_2samp(x, y).statistic, rel=1e-12)
    n_eff = 20_000 * 30_000 / 50_000
    assert res.scores["p"] == pytest.approx(kstwobign.sf(res.scores["ks"] * math.sqrt(n_eff)))


def test_too_few_entries_is_skipped() -> None:
    d = sample(7, 412)
    res = KSTest().compare(h1(d, edges=EDGES), [h1(sample(8, 9000), 2, EDGES)])
    assert res.status is Status.SKIPPED
    assert res.reason == "412 entries < min_entries=10000"


def test_empty_data_is_flagged() -> None:
    r = sample(9, 20_000)
    res = KSTest().compare(h1(np.zeros_like(r), edges=EDGES), [h1(r, 3, EDGES)])
    assert res.status is Status.FLAGGED
    assert res.reason == "no entries in data, references have 20000 (run 3)"
    assert res.scores == {"ks": 1.0, "p": 0.0}
    assert res.score > 1.0


def test_mismatched_binning_and_2d_are_skipped() -> None:
    d = sample(10, 20_000)
    res = KSTest().compare(h1(d, edges=EDGES), [h1(d[:50], 2)])
    assert res.status is Status.SKIPPED
    assert res.reason.startswith("no usable reference: run 2: binning (50,)")
    flat = h1(d)  # same shape, different edges
    assert KSTest().compare(h1(d, edges=EDGES), [flat]).status is Status.SKIPPED
    h2 = HistData(
        path="h",
        run=1,
        values=np.ones((3, 3)),
        variances=None,
        edges=(np.arange(4.0), np.arange(4.0)),
        kind=HistKind.TH2,
    )
    assert KSTest().compare(h2, [h2]).reason == "needs a 1D histogram, got 2D"


def test_unchanged_by_reference_normalisation() -> None:
    d, r = sample(11, 30_000, loc=0.05), sample(12, 30_000)
    one = KSTest().compare(h1(d, edges=EDGES), [h1(r, 2, EDGES)])
    seven = KSTest().compare(h1(d, edges=EDGES), [h1(7 * r, 2, EDGES)])
    assert one.scores["ks"] == pytest.approx(seven.scores["ks"], rel=1e-12)
    np.testing.assert_allclose(one.arrays["cdf_diff"], seven.arrays["cdf_diff"], atol=1e-12)
    np.testing.assert_allclose(one.arrays["ref"], seven.arrays["ref"], rtol=1e-12)
    assert one.arrays["ref"].sum() == pytest.approx(d.sum())
    assert one.status is seven.status


def test_several_references_the_closest_decides() -> None:
    d = sample(13, 40_000, loc=0.2)
    refs = [sample(14, 10_000), sample(15, 30_000, loc=0.19), sample(16, 5_000)]
    res = KSTest().compare(h1(d, edges=EDGES), [h1(r, i, EDGES) for i, r in enumerate(refs)])
    alone = [KSTest().compare(h1(d, edges=EDGES), [h1(r, i, EDGES)]) for i, r in enumerate(refs)]
    assert res.scores["ks"] == min(a.scores["ks"] for a in alone)
    assert res.scores == alone[1].scores
    assert "against run 1, the closest of 3 references" in res.reason


def test_one_broken_reference_raises_no_alarm() -> None:
    d = sample(20, 40_000)
    good = [sample(21, 30_000), sample(22, 30_000), sample(23, 30_000)]
    broken = sample(24, 30_000, loc=1.0)  # a reference run that itself had a shifted peak
    refs = [h1(r, i, EDGES) for i, r in enumerate([*good, broken])]
    assert KSTest().compare(h1(d, edges=EDGES), refs).status is Status.OK
    shifted = sample(25, 40_000, loc=0.5)
    assert KSTest().compare(h1(shifted, edges=EDGES), refs).status is Status.FLAGGED


def test_profiles_use_their_entries() -> None:
    entries = sample(17, 30_000)
    means = np.random.default_rng(0).normal(0, 0.01, entries.size)  # rounding would empty it
    prof = HistData(
        path="p",
        run=1,
        values=means,
        variances=None,
        edges=(EDGES,),
        kind=HistKind.PROFILE,
        bin_entries=entries,
    )
    res = KSTest().compare(prof, [prof])
    assert res.status is Status.OK
    assert res.entries == 30_000


def test_bad_cut_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"ks_cut must be a number in \(0, 1\], got 1.5"):
        KSTest(ks_cut=1.5)


@settings(max_examples=80, deadline=None)
@given(
    st.integers(1, 40).flatmap(
        lambda n: st.tuples(
            hnp.arrays(np.float64, n, elements=st.floats(0, 1e9)),
            hnp.arrays(np.float64, n, elements=st.floats(0, 1e9)),
        )
    )
)
def test_outputs_always_finite(pair: tuple[np.ndarray, np.ndarray]) -> None:
    d, r = pair
    res = KSTest(min_entries=0).compare(h1(d), [h1(r, 2)])
    assert math.isfinite(res.score)
    assert res.score >= 0
    assert all(math.isfinite(v) for v in res.scores.values())
    if res.status is not Status.SKIPPED:
        assert 0 <= res.scores["ks"] <= 1
        assert 0 <= res.scores["p"] <= 1
        for a in res.arrays.values():
            assert a.shape == d.shape
            assert np.all(np.isfinite(a))
