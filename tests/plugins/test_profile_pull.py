"""profile_pull: bin-by-bin pulls of profile means, combined references, tolerance floor."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from engine.types import HistData, HistKind, Status
from plugins.profile_pull import ProfilePull

NBINS = 60
EDGES = np.linspace(-2.4, 2.4, NBINS + 1)


def prof(means: object, err: object, entries: object, run: int = 1) -> HistData:
    m = np.asarray(means, dtype=np.float64)
    edges = (EDGES,) if m.ndim == 1 else tuple(np.arange(s + 1.0) for s in m.shape)
    kind = HistKind.PROFILE if m.ndim == 1 else HistKind.PROFILE2D
    return HistData(
        path="Residuals/resVsEta",
        run=run,
        values=m,
        variances=np.broadcast_to(np.asarray(err, dtype=np.float64) ** 2, m.shape).copy(),
        edges=edges,
        kind=kind,
        bin_entries=np.broadcast_to(np.asarray(entries, dtype=np.float64), m.shape).copy(),
    )


def sampled(seed: int, truth: np.ndarray, sigma: float, entries: float, run: int = 1) -> HistData:
    """A profile filled with ``entries`` values per bin, each of spread ``sigma``."""
    err = np.full(truth.shape, sigma / math.sqrt(entries))
    means = np.random.default_rng(seed).normal(truth, err)
    return prof(means, err, entries, run)


TRUTH = 0.02 * np.sin(EDGES[:-1])  # a residual profile, mean near 0 (tol does little)


def test_identical_is_ok() -> None:
    h = sampled(1, TRUTH, 0.05, 400)
    res = ProfilePull().compare(h, [h])
    assert res.status is Status.OK
    assert res.scores == {"chi2": 0.0, "max_pull": 0.0}
    assert res.threshold == 1.0


def test_same_truth_is_ok_and_pinned() -> None:
    res = ProfilePull().compare(sampled(1, TRUTH, 0.05, 400), [sampled(2, TRUTH, 0.05, 900, 2)])
    assert res.status is Status.OK
    assert res.scores["chi2"] == pytest.approx(0.662926, abs=1e-6)
    assert res.scores["max_pull"] == pytest.approx(-2.005718, abs=1e-6)
    assert res.reason.endswith("over 60 bins, against run 2")


def test_pulls_have_unit_width_under_the_null() -> None:
    chi2 = [
        ProfilePull(tol=0.0)
        .compare(sampled(s, TRUTH, 0.05, 400), [sampled(s + 1000, TRUTH, 0.05, 900, 2)])
        .scores["chi2"]
        for s in range(100)
    ]
    assert np.mean(chi2) == pytest.approx(1.0, abs=0.05)  # 100 x 60 pulls: sd ~0.018


def test_five_sigma_shift_is_flagged() -> None:
    data, ref = sampled(3, TRUTH, 0.05, 400), sampled(4, TRUTH, 0.05, 400, 2)
    sigma = math.sqrt(2) * 0.05 / 20  # data and reference errors in quadrature
    shifted = prof(data.values + 5 * sigma, np.sqrt(data.variances), 400)
    res = ProfilePull().compare(shifted, [ref])
    assert res.status is Status.FLAGGED
    assert res.scores["chi2"] == pytest.approx(25, rel=0.25)
    assert "chi2" in res.reason
    assert "> 5 over 60 bins" in res.reason


def test_one_bad_bin_is_flagged_with_location() -> None:
    data, ref = sampled(5, TRUTH, 0.05, 400), sampled(6, TRUTH, 0.05, 400, 2)
    means = data.values.copy()
    means[7] -= 10 * math.sqrt(2) * 0.05 / 20
    res = ProfilePull().compare(prof(means, np.sqrt(data.variances), 400), [ref])
    assert res.status is Status.FLAGGED
    assert res.scores["max_pull"] < -6
    assert "at bin 7 [x -1.84 to -1.76]" in res.reason


def test_tolerance_floor_absorbs_small_relative_changes() -> None:
    eff = np.full(NBINS, 0.97)
    data = prof(eff * 0.995, 1e-4, 1e6)  # 0.5 % lower, with tiny errors
    ref = prof(eff, 1e-4, 1e6, 2)
    assert ProfilePull().compare(data, [ref]).status is Status.OK  # 1 % floor
    naive = ProfilePull(tol=0.0).compare(data, [ref])
    assert naive.status is Status.FLAGGED
    assert naive.scores["max_pull"] == pytest.approx(-0.97 * 0.005 / math.sqrt(2e-8))


def test_several_references_weighted_mean_and_spread() -> None:
    ones = np.ones(NBINS)
    r1, r2 = prof(1.0 * ones, 0.01, 100, 2), prof(1.2 * ones, 0.02, 300, 3)
    res = ProfilePull(tol=0.01).compare(prof(1.15 * ones, 0.01, 200), [r1, r2])
    np.testing.assert_allclose(res.arrays["ref_mean"], 1.15)
    w = np.array([100.0, 300.0])
    e_mean2 = (w**2 * [0.01**2, 0.02**2]).sum() / w.sum() ** 2
    spread2 = (w * (np.array([1.0, 1.2]) - 1.15) ** 2).sum() / (w.sum() - (w**2).sum() / w.sum())
    e_ref = math.sqrt(e_mean2 + spread2 + (0.01 * 1.15) ** 2)
    np.testing.assert_allclose(res.arrays["ref_error"], e_ref)
    assert res.status is Status.OK
    assert "against the weighted mean of runs 2, 3" in res.reason


def test_empty_bins_are_excluded() -> None:
    data, ref = sampled(7, TRUTH, 0.05, 400), sampled(8, TRUTH, 0.05, 400, 2)
    means, entries = data.values.copy(), np.full(NBINS, 400.0)
    means[3], entries[3] = 50.0, 0.0  # a garbage mean where nothing was filled
    ref_entries = np.full(NBINS, 400.0)
    ref_entries[9] = 4.0  # below min_bin_entries=10
    res = ProfilePull().compare(
        prof(means, np.sqrt(data.variances), entries),
        [prof(ref.values, np.sqrt(ref.variances), ref_entries, 2)],
    )
    assert res.status is Status.OK
    assert res.arrays["pulls"][3] == 0.0
    assert res.arrays["pulls"][9] == 0.0
    assert "over 58 bins" in res.reason


def test_non_profile_and_missing_parts_are_skipped() -> None:
    th1 = HistData(path="h", run=1, values=np.ones(NBINS), variances=None, edges=(EDGES,))
    res = ProfilePull().compare(th1, [th1])
    assert res.status is Status.SKIPPED
    assert res.reason == "profile_pull needs a TProfile/TProfile2D, got TH1"
    good = sampled(9, TRUTH, 0.05, 400)
    res = ProfilePull().compare(good, [th1])
    assert res.reason == "no usable reference: run 1: not a profile with per-bin entries and errors"


def test_too_few_entries_is_skipped() -> None:
    h = prof(np.zeros(NBINS), 0.1, 1.0)
    res = ProfilePull().compare(h, [prof(np.zeros(NBINS), 0.1, 50.0, 2)])
    assert res.status is Status.SKIPPED
    assert res.reason == "60 entries < min_entries=100"


def test_empty_data_is_flagged() -> None:
    ref = sampled(10, TRUTH, 0.05, 400, 4)
    res = ProfilePull().compare(prof(np.zeros(NBINS), 0.0, 0.0), [ref])
    assert res.status is Status.FLAGGED
    assert res.reason == "no entries in data, references have 24000 (run 4)"


def test_mismatched_binning_is_skipped() -> None:
    data = sampled(11, TRUTH, 0.05, 400)
    other = prof(np.zeros(10), 0.1, 100.0, 2)
    res = ProfilePull().compare(data, [other])
    assert res.status is Status.SKIPPED
    assert res.reason.startswith("no usable reference: run 2: binning (10,)")


def test_unchanged_by_reference_entries_scale() -> None:
    data = sampled(12, TRUTH, 0.05, 400)
    refs = [sampled(13, TRUTH, 0.05, 400, 2), sampled(14, TRUTH, 0.05, 900, 3)]
    scaled = [prof(r.values, np.sqrt(r.variances), 7 * r.bin_entries, r.run) for r in refs]
    a, b = ProfilePull().compare(data, refs), ProfilePull().compare(data, scaled)
    assert a.scores["chi2"] == pytest.approx(b.scores["chi2"], rel=1e-12)
    np.testing.assert_allclose(a.arrays["pulls"], b.arrays["pulls"], rtol=1e-12, atol=1e-15)


def test_2d_profile() -> None:
    truth = np.full((8, 6), 0.9)
    data = sampled(15, truth, 0.1, 500)
    ref = sampled(16, truth, 0.1, 500, 2)
    assert ProfilePull().compare(data, [ref]).status is Status.OK
    means = data.values.copy()
    means[2, 4] = 0.5
    res = ProfilePull().compare(prof(means, np.sqrt(data.variances), 500), [ref])
    assert res.status is Status.FLAGGED
    assert "at bin (2, 4) [x 2 to 3, y 4 to 5]" in res.reason
    assert res.arrays["pulls"].shape == (8, 6)


@settings(max_examples=80, deadline=None)
@given(
    st.integers(1, 12).flatmap(
        lambda n: st.lists(
            hnp.arrays(np.float64, n, elements=st.floats(-1e6, 1e6)), min_size=6, max_size=6
        )
    )
)
def test_outputs_always_finite(arrs: list[np.ndarray]) -> None:
    m_d, e_d, n_d, m_r, e_r, n_r = arrs
    edges = (np.arange(m_d.size + 1.0),)
    data = HistData(
        path="p",
        run=1,
        values=m_d,
        variances=e_d**2,
        edges=edges,
        kind=HistKind.PROFILE,
        bin_entries=np.abs(n_d),
    )
    ref = HistData(
        path="p",
        run=2,
        values=m_r,
        variances=e_r**2,
        edges=edges,
        kind=HistKind.PROFILE,
        bin_entries=np.abs(n_r),
    )
    res = ProfilePull(min_entries=0, min_bin_entries=0).compare(data, [ref, ref])
    assert math.isfinite(res.score)
    assert res.score >= 0
    assert all(math.isfinite(v) for v in res.scores.values())
    for a in res.arrays.values():
        assert a.shape == m_d.shape
        assert np.all(np.isfinite(a))
