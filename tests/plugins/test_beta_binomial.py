"""Tests of plugins.beta_binomial: STATS.md test vectors, AutoDQM agreement, properties."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import special, stats

from engine.types import ComparisonResult, HistData, HistKind, Status
from plugins._common import same_binning
from plugins._numerics import LGAMMA_TABLE_SIZE, gammaln_int, stirling_gammaln
from plugins.beta_binomial import (
    BetaBinomial,
    fitted_cut,
    lookelsewhere_norm,
    max_pull_norm,
    prob_rel,
    pulls_multi,
    sigmas,
    trim_slice,
    window_slice,
)


def _h(
    values: object,
    run: int = 1,
    edges: tuple[np.ndarray, ...] | None = None,
    kind: HistKind | None = None,
    bin_entries: np.ndarray | None = None,
) -> HistData:
    v = np.asarray(values, dtype=np.float64)
    if edges is None:
        edges = tuple(np.arange(n + 1, dtype=np.float64) for n in v.shape)
    if kind is None:
        kind = HistKind.TH2 if v.ndim == 2 else HistKind.TH1
    return HistData(
        path="Dir/hist", run=run, values=v, variances=None, edges=edges, kind=kind,
        bin_entries=bin_entries,
    )  # fmt: skip


def _scipy_prob_rel(d: np.ndarray, r: np.ndarray, tol: float) -> np.ndarray:
    """STATS.md's ProbRel written directly with scipy.stats.betabinom.pmf (the slow path)."""
    n, big_n = d.sum(), r.sum()
    s = (1.0 + (r * tol**2) ** 2) ** -0.5
    r_t, n_t = np.round(s * r), np.round(s * big_n)
    nn = np.full_like(r, n)

    def pmf(k: np.ndarray) -> np.ndarray:
        return np.asarray(stats.betabinom.pmf(k, nn, r_t + 1, n_t - r_t + 1), dtype=np.float64)

    mu = n * r / big_n
    pmax = np.maximum(pmf(np.minimum(np.ceil(mu), n)), pmf(np.maximum(np.floor(mu), 0)))
    ratio = np.divide(pmf(d), pmax, out=np.zeros_like(mu), where=pmax > 0)
    return np.asarray(np.minimum(ratio, 1.0), dtype=np.float64)


SIGMA, DASH = "\u03c3", "\u2013"  # as the reasons spell them


# --- STATS.md test vectors -------------------------------------------------------------

D4 = np.array([10.0, 20, 30, 40])


def test_vector_one_reference() -> None:
    r = np.array([12.0, 18, 33, 37])
    assert prob_rel(D4, r) == pytest.approx([0.9406, 0.9193, 0.9131, 0.9033], abs=5e-5)
    pulls, _ = pulls_multi(D4, r)
    assert pulls == pytest.approx([-0.0745, 0.1013, -0.1091, 0.1215], abs=5e-5)
    res = BetaBinomial().compare(_h(D4), [_h(r, run=2)])
    assert res.scores["chi2"] == pytest.approx(0.01062, abs=5e-6)
    assert res.status is Status.OK


def test_vector_three_references() -> None:
    refs = np.array([[12.0, 18, 33, 37], [9, 22, 29, 41], [11, 19, 31, 39]])
    pulls, rw = pulls_multi(D4, refs)
    assert pulls == pytest.approx([-0.0502, 0.0564, -0.0491, 0.0456], abs=5e-5)
    assert rw == pytest.approx([10.641, 19.622, 30.859, 38.927], abs=6e-4)  # 38.92650
    res = BetaBinomial().compare(_h(D4), [_h(x, run=i) for i, x in enumerate(refs, 2)])
    assert res.arrays["ref_weighted"] == pytest.approx(rw)


def test_vector_dead_bin() -> None:
    d, r = np.array([100.0, 0, 100, 100]), np.full(4, 1000.0)
    pulls, _ = pulls_multi(d, r)
    assert pulls == pytest.approx([2.677, -12.416, 2.677, 2.677], abs=5e-4)
    res = BetaBinomial().compare(_h(d), [_h(r, run=2)])
    assert res.scores["chi2"] == pytest.approx(43.91, abs=5e-3)
    assert res.scores["max_pull"] == pytest.approx(-12.30, abs=5e-3)
    assert res.status is Status.FLAGGED
    assert res.score == pytest.approx(43.91 / 10, abs=1e-3)
    assert res.reason.startswith(f"chi2 = 43.91 > 10 and max pull = -12.30{SIGMA} > 10")
    assert f"worst bin x=1 at 1{DASH}2" in res.reason
    # the stored pulls are uncapped (pull_cap only scales the plots)
    assert res.arrays["pulls"][1] == pytest.approx(-12.416, abs=5e-4)


def test_vector_single_filled_bin() -> None:
    d, r = np.array([0.0, 0, 0, 0, 100]), np.full(5, 100.0)
    pulls, rw = pulls_multi(d, r)
    assert pulls == pytest.approx([-5.641] * 4 + [15.890], abs=5e-4)
    assert rw == pytest.approx([20.0] * 5)


@pytest.mark.parametrize(("tol", "pull"), [(0.0, 1.671), (0.05, 0.646)])
def test_vector_tolerance(tol: float, pull: float) -> None:
    pulls, _ = pulls_multi(np.array([1000.0, 1100]), np.array([1e5, 1e5]), tol=tol)
    assert pulls == pytest.approx([-pull, pull], abs=5e-4)


@pytest.mark.parametrize(
    ("x", "n", "expected"), [(5, 100, 4.024), (5, 1, 5.0), (3, 1000, 0.084), (-6, 1e4, -4.268)]
)
def test_vector_lookelsewhere(x: float, n: float, expected: float) -> None:
    assert lookelsewhere_norm(x, n) == pytest.approx(expected, abs=5e-4)


def test_lookelsewhere_edges() -> None:
    assert lookelsewhere_norm(0.0, 50) == 0.0
    assert math.isfinite(lookelsewhere_norm(1e6, 1e6))
    assert lookelsewhere_norm(-40, 1) == pytest.approx(-lookelsewhere_norm(37, 1))
    # the larger magnitude wins, with its sign and bin
    assert max_pull_norm(np.array([1.0, -3.0, 2.0]), 3)[1] == 1


# --- agreement with scipy.stats.betabinom ----------------------------------------------


@pytest.mark.parametrize("tol", [0.0, 0.01, 0.05])
@pytest.mark.parametrize("scale", [3.0, 300.0, 3e5])
def test_gammaln_path_agrees_with_scipy_betabinom(tol: float, scale: float) -> None:
    rng = np.random.default_rng(7)
    for _ in range(5):
        lam = rng.uniform(0, scale, 60)
        d = rng.poisson(lam).astype(np.float64)
        r = rng.poisson(lam * rng.uniform(0.2, 5)).astype(np.float64)
        d[rng.integers(0, 60, 3)] = 0.0  # a few dead bins
        r[rng.integers(0, 60, 3)] = 0.0
        expected = _scipy_prob_rel(d, r, tol)
        assert prob_rel(d, r, tol) == pytest.approx(expected, rel=1e-7, abs=1e-12)


def test_prob_rel_broadcasts_over_references() -> None:
    rng = np.random.default_rng(3)
    d = rng.poisson(50, 30).astype(np.float64)
    refs = rng.poisson(80, (4, 30)).astype(np.float64)
    stacked = prob_rel(d, refs)
    assert stacked.shape == (4, 30)
    for i in range(4):
        assert stacked[i] == pytest.approx(prob_rel(d, refs[i]), rel=1e-12)


def test_sigmas_matches_chi2_isf_and_exact_option() -> None:
    p = np.array([1.0, 0.5, 1e-3, 1e-50, 1e-300, 0.0])
    expected = np.sqrt(stats.chi2.isf(np.maximum(p, 1e-300), 1))
    assert sigmas(p) == pytest.approx(expected, rel=1e-10, abs=1e-12)
    tail = np.array([math.exp(-4.5)])  # the likelihood ratio of a 3 sigma deviation
    assert sigmas(tail, exact_z=True)[0] == pytest.approx(3.0, rel=1e-12)
    assert sigmas(tail)[0] == pytest.approx(2.54, abs=5e-3)  # STATS.md "Known property"


def test_exact_z_reads_a_three_sigma_tail_as_three() -> None:
    # binomial limit (huge reference, tol 0): sigma = 50, data 150 = 3 sigma above
    d, r = np.array([5150.0, 4850]), np.array([5e7, 5e7])
    exact, _ = pulls_multi(d, r, tol=0.0, exact_z=True)
    assert exact == pytest.approx([3.0, -3.0], abs=2e-3)
    default, _ = pulls_multi(d, r, tol=0.0)
    assert default == pytest.approx([2.54, -2.54], abs=5e-3)


def _slow_scores(d: np.ndarray, refs: list[np.ndarray], tol: float) -> tuple[float, float]:
    """chi2 and max_pull as STATS.md words them, with scipy.stats throughout."""
    p = np.array([np.maximum(_scipy_prob_rel(d, r, tol), 1e-300) for r in refs])
    z = np.sqrt(stats.chi2.isf(np.maximum(p.mean(axis=0), 1e-300), 1))
    rw = d.sum() * sum(r / r.sum() * pi for r, pi in zip(refs, p, strict=True)) / p.sum(axis=0)
    pulls = z * np.sign(d - rw)
    n_used = np.count_nonzero(d + sum(refs))

    def norm(x: float) -> float:
        q = stats.chi2.sf(min(abs(x), 37) ** 2, 1)
        qn = n_used * q if n_used * q < 0.01 else 1 - (1 - q) ** n_used
        return float(np.sign(x) * np.sqrt(stats.chi2.isf(max(qn, 1e-300), 1)))

    hi, lo = norm(pulls.max()), norm(pulls.min())
    return float(np.sum(pulls**2) / n_used), lo if abs(lo) > hi else hi


@pytest.mark.parametrize("shape", [(37,), (9, 11)])
def test_compare_agrees_with_a_slow_scipy_version(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(17)
    for tol in (0.0, 0.01):
        lam = rng.uniform(0, 400, shape)
        d = rng.poisson(lam * 1.1).astype(np.float64)
        refs = [rng.poisson(lam * k).astype(np.float64) for k in (0.5, 1.0, 3.0)]
        res = BetaBinomial(tol=tol).compare(_h(d), [_h(r, run=i) for i, r in enumerate(refs)])
        chi2, max_pull = _slow_scores(d.ravel(), [r.ravel() for r in refs], tol)
        assert res.scores["chi2"] == pytest.approx(chi2, rel=1e-6)
        assert res.scores["max_pull"] == pytest.approx(max_pull, rel=1e-6)


# --- comparator properties ---------------------------------------------------------------


def _gauss(n: float, mean: float = 0.0, bins: int = 40) -> np.ndarray:
    edges = np.linspace(-5, 5, bins + 1)
    return np.asarray(np.round(n * np.diff(stats.norm.cdf(edges, loc=mean))), dtype=np.float64)


def test_identical_data_and_reference_is_ok() -> None:
    h = _gauss(1e5)
    res = BetaBinomial().compare(_h(h), [_h(h, run=2)])
    assert res.status is Status.OK
    assert res.scores["chi2"] == pytest.approx(0.0, abs=1e-12)
    assert res.scores["max_pull"] == pytest.approx(0.0, abs=1e-12)
    assert res.reason == f"chi2 = 0.00 ≤ 10, max pull = 0.00{SIGMA} ≤ 10"
    assert res.threshold == 1.0
    assert res.score == pytest.approx(0.0, abs=1e-12)


def test_five_sigma_shift_is_flagged() -> None:
    res = BetaBinomial().compare(_h(_gauss(1e5, mean=5.0)), [_h(_gauss(1e5), run=2)])
    assert res.status is Status.FLAGGED
    assert res.score > 1.0
    assert "chi2 = " in res.reason
    assert "worst bin x=" in res.reason


def test_too_few_entries_is_skipped_with_the_count() -> None:
    d = np.zeros(10)
    d[3] = 412
    res = BetaBinomial(min_entries=1000).compare(_h(d), [_h(np.full(10, 100.0), run=2)])
    assert res.status is Status.SKIPPED
    assert res.reason == "412 entries < min_entries=1000"
    assert set(res.scores) == {"chi2", "max_pull"}


def test_reference_normalisation() -> None:
    rng = np.random.default_rng(11)
    lam = rng.uniform(5e5, 5e6, 50)
    d, r = rng.poisson(lam / 100).astype(np.float64), rng.poisson(lam).astype(np.float64)
    a = BetaBinomial().compare(_h(d), [_h(r, run=2)])
    b = BetaBinomial().compare(_h(d), [_h(7 * r, run=2)])
    # Rw is normalised to the data, so exactly invariant
    assert b.arrays["ref_weighted"] == pytest.approx(a.arrays["ref_weighted"], rel=1e-12)
    # The reference's statistics enter the beta-binomial, so pulls are not exactly invariant;
    # but tol caps a reference near 1/tol^2 = 1e4 per bin, so once every bin is well above
    # that, scaling it changes the pulls only by discreteness (a count in ~1e4).
    assert b.arrays["pulls"] == pytest.approx(a.arrays["pulls"], abs=5e-3)
    assert b.scores["chi2"] == pytest.approx(a.scores["chi2"], rel=1e-2)
    assert a.status is b.status


def test_all_outputs_finite_on_random_input() -> None:
    rng = np.random.default_rng(2024)
    comp = BetaBinomial(min_entries=0)
    for case in range(300):
        shape = [(0,), (1,), (5,), (30,), (120,), (7, 9)][case % 6]
        scale = 10.0 ** rng.integers(0, 10)
        d = rng.poisson(rng.uniform(0, 1, shape) * scale).astype(np.float64)
        if case % 5 == 0 and d.size:
            d.flat[rng.integers(0, d.size)] = [np.nan, np.inf, -np.inf, -3.0][case % 4]
        if case % 7 == 0:
            d[...] = 0.0
        refs = [
            _h(rng.poisson(rng.uniform(0, 1, shape) * scale).astype(np.float64), run=k)
            for k in range(int(rng.integers(0, 4)))
        ]
        if case % 11 == 0:
            refs.append(_h(np.ones(3), run=99))  # mismatched binning
        res = comp.compare(_h(d), refs)
        assert isinstance(res, ComparisonResult)
        assert math.isfinite(res.score)
        assert res.score >= 0
        assert math.isfinite(res.entries)
        assert all(math.isfinite(v) for v in res.scores.values())
        for arr in res.arrays.values():
            assert arr.shape == d.shape
            assert np.all(np.isfinite(arr))
        if res.status is not Status.OK:
            assert res.reason
        json.dumps(res.to_dict(with_arrays=True), allow_nan=False)


def test_huge_counts_single_bin_and_zero_bins() -> None:
    big = np.array([1e9, 2e9, 3e9])
    res = BetaBinomial().compare(_h(big), [_h(big * 1.0001, run=2)])
    assert res.status is Status.OK
    one = BetaBinomial().compare(_h([5.0]), [_h([8.0], run=2)])
    assert one.status is Status.OK
    assert one.scores["chi2"] == 0.0
    none = BetaBinomial().compare(_h(np.zeros(0)), [_h(np.zeros(0), run=2)])
    assert none.status is Status.SKIPPED
    assert none.reason.startswith("no usable reference")


def test_non_finite_bins_are_zero_and_mentioned() -> None:
    d = np.array([10.0, np.nan, 30, 40])
    res = BetaBinomial().compare(_h(d), [_h([12.0, 0, 33, 37], run=2)])
    ref = BetaBinomial().compare(_h([10.0, 0, 30, 40]), [_h([12.0, 0, 33, 37], run=2)])
    assert res.scores == ref.scores
    assert "1 non-finite or negative bin contents taken as 0" in res.reason
    assert res.entries == 80.0


def test_mismatched_binning_drops_the_reference() -> None:
    d = _gauss(1e4)
    good, bad = _h(d, run=2), _h(np.ones(7), run=3)
    res = BetaBinomial().compare(_h(d), [good, bad])
    assert res.status is Status.OK
    assert "ignored run 3: binning" in res.reason
    shifted_edges = _h(d, run=4, edges=(np.linspace(1, 41, 41),))
    none = BetaBinomial().compare(_h(d), [bad, shifted_edges, _h(np.zeros(40), run=5)])
    assert none.status is Status.SKIPPED
    assert none.reason.startswith("no usable reference: run 3: binning")
    assert "run 5: no entries" in none.reason


def test_reference_that_rounds_to_zero_is_dropped() -> None:
    res = BetaBinomial().compare(_h([5.0, 5.0]), [_h([0.3, 0.4], run=2)])
    assert res.status is Status.SKIPPED
    assert "run 2: no entries after rounding" in res.reason


@pytest.mark.parametrize("n_ref", [1, 3])
def test_empty_data_is_flagged(n_ref: int) -> None:
    refs = [_h(np.full((4, 5), 50.0 * (k + 1)), run=k + 2) for k in range(n_ref)]
    res = BetaBinomial(min_entries=10_000).compare(_h(np.zeros((4, 5))), refs)
    assert res.status is Status.FLAGGED
    assert res.score >= 1.0
    if n_ref == 1:
        assert res.reason == "no entries in data, reference has 1000"
    else:
        assert res.reason == "no entries in data, references have 2000 (mean of 3)"
    assert res.arrays["pulls"].shape == (4, 5)
    assert np.all(np.isfinite(res.arrays["pulls"]))


def test_two_dimensional_keeps_shapes_and_names_the_bin() -> None:
    rng = np.random.default_rng(5)
    lam = rng.uniform(100, 1000, (12, 8))
    r = rng.poisson(lam).astype(np.float64)
    d = rng.poisson(lam).astype(np.float64)
    d[4, 6] = 0.0  # a dead cell
    res = BetaBinomial().compare(_h(d), [_h(r, run=2), _h(rng.poisson(lam), run=3)])
    assert res.arrays["pulls"].shape == (12, 8)
    assert res.arrays["ref_weighted"].shape == (12, 8)
    assert res.status is Status.FLAGGED
    assert f"worst bin x=4, y=6 at 4{DASH}5, 6{DASH}7" in res.reason
    worst = np.unravel_index(np.argmin(res.arrays["pulls"]), d.shape)
    assert tuple(int(i) for i in worst) == (4, 6)


def test_profile_uses_bin_entries() -> None:
    entries = np.array([100.0, 200, 300, 400])
    means = np.array([0.97, 0.98, 0.99, 0.97])
    d = _h(means, kind=HistKind.PROFILE, bin_entries=entries)
    r = _h(means, run=2, kind=HistKind.PROFILE, bin_entries=entries * 1.5)
    res = BetaBinomial().compare(d, [r])
    plain = BetaBinomial().compare(_h(entries), [_h(entries * 1.5, run=2)])
    assert res.scores == plain.scores
    assert res.entries == 1000.0


def test_window_keeps_bins_with_lower_edge_inside() -> None:
    edges = np.arange(11.0)
    assert window_slice(edges, 2.0, 6.0) == (slice(2, 7), 5)
    assert window_slice(edges, None, None) == (slice(0, 10), 11)
    assert window_slice(edges, 2.5, None) == (slice(3, 10), 8)
    assert window_slice(edges, 9.5, 0.5) == (slice(0, 10), 11)  # out of range: not applied
    assert window_slice(edges[:4], 1.0, 2.0) == (slice(0, 3), 4)  # 4 edges: never


def test_window_in_compare() -> None:
    r = np.full(10, 1000.0)
    d = r.copy()
    d[[0, 1, 8, 9]] = [0.0, 3000, 0, 5000]  # broken outside [2, 7]
    plain = BetaBinomial().compare(_h(d), [_h(r, run=2)])
    windowed = BetaBinomial(xmin=2.0, xmax=7.0).compare(_h(d), [_h(r, run=2)])
    assert plain.status is Status.FLAGGED
    assert windowed.status is Status.OK
    assert np.all(windowed.arrays["pulls"][[0, 1, 8, 9]] == 0.0)
    assert np.all(windowed.arrays["ref_weighted"][[0, 1, 8, 9]] == 0.0)
    # a window where the data is empty is ignored, and the reason says so
    d2 = np.zeros(10)
    d2[:2] = 500.0
    ignored = BetaBinomial(xmin=5.0).compare(_h(d2), [_h(r, run=2)])
    assert "x window ignored" in ignored.reason
    assert ignored.scores == BetaBinomial().compare(_h(d2), [_h(r, run=2)]).scores


def test_trimming_of_empty_edges() -> None:
    filled = np.zeros(100)
    filled[40:50] = 1.0
    assert trim_slice(filled, 101) == slice(30, 51)  # one empty bin after, >= 20 bins kept
    filled = np.zeros(100)
    filled[:5] = 1.0
    assert trim_slice(filled, 101) == slice(0, 21)
    filled = np.zeros(100)
    filled[95:] = 1.0
    assert trim_slice(filled, 101) == slice(80, 101)  # 20 real bins: 80..99
    assert trim_slice(np.ones(19), 20) == slice(0, 19)  # <= 20 edges: never trimmed


def test_trimming_changes_no_number() -> None:
    rng = np.random.default_rng(9)
    r = np.zeros(100)
    r[30:60] = rng.poisson(500, 30)
    d = r.copy()
    d[45] += 2000
    a = BetaBinomial().compare(_h(d), [_h(r, run=2)])
    b = BetaBinomial(concatenated=True).compare(_h(d), [_h(r, run=2)])
    assert a.scores == pytest.approx(b.scores, rel=1e-12)
    assert a.status is b.status is Status.FLAGGED
    assert f"worst bin x=45 at 45{DASH}46" in a.reason


def test_thresholds_fit_arithmetic() -> None:
    assert fitted_cut((4.0, 2.0), 2) == 6.0
    comp = BetaBinomial(fit_chi2=(4.0, 2.0), fit_pull=(6.0, 3.0))
    assert comp.cuts(2) == pytest.approx((0.8 * 6.0, 12.0))
    assert BetaBinomial(fit_pull=(100.0, 10.0)).cuts(1) == (10.0, 36.0)  # capped at 36
    assert BetaBinomial(chi2_cut=3.0, pull_cut=4.0).cuts(5) == (3.0, 4.0)


def test_thresholds_fit_uses_usable_references() -> None:
    d, r = np.array([100.0, 0, 100, 100]), np.full(4, 1000.0)  # chi2 43.91, max pull -12.30
    refs = [_h(r, run=2), _h(r, run=3), _h(np.ones(2), run=4)]  # run 4 is dropped: nRef = 2
    loose = BetaBinomial(fit_chi2=(40.0, 5.0), fit_pull=(10.0, 3.0))  # cuts 36, 14
    res = loose.compare(_h(d), refs)
    assert res.status is Status.FLAGGED  # chi2 43.91 > 36
    assert res.score == pytest.approx(43.91 / 36.0, abs=1e-3)
    assert f"max pull = -12.30{SIGMA} ≤ 14" in res.reason
    looser = BetaBinomial(fit_chi2=(60.0, 5.0), fit_pull=(10.0, 3.0))  # cuts 44, 14
    assert looser.compare(_h(d), refs).status is Status.OK


def test_pull_cap_is_display_only() -> None:
    d, r = np.array([100.0, 0, 100, 100]), np.full(4, 1000.0)
    a = BetaBinomial(pull_cap=3.0).compare(_h(d), [_h(r, run=2)])
    b = BetaBinomial(pull_cap=50.0).compare(_h(d), [_h(r, run=2)])
    assert a.scores == b.scores
    assert a.status is b.status
    # the stored pulls are never capped: plots apply pull_cap to their colour scale
    assert a.arrays["pulls"] == pytest.approx([2.677, -12.416, 2.677, 2.677], abs=5e-4)
    assert b.arrays["pulls"] == pytest.approx(a.arrays["pulls"])


@pytest.mark.parametrize(
    "kwargs", [{"chi2_cut": 0.0}, {"pull_cut": -1.0}, {"pull_cap": math.nan}, {"tol": -0.1}]
)
def test_bad_parameters_raise(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="beta_binomial"):
        BetaBinomial(**kwargs)  # type: ignore[arg-type]


# --- the fast gammaln of whole numbers (plugins._numerics) ----------------------------------

T = LGAMMA_TABLE_SIZE


def test_gammaln_int_matches_scipy_over_a_wide_range() -> None:
    x = np.unique(np.concatenate([np.arange(1.0, 3 * T), np.round(np.logspace(5, 15, 20_000))]))
    got, want = gammaln_int(x), special.gammaln(x)
    # below the table size the values are scipy's own
    assert np.array_equal(got[x < T], want[x < T])
    err = np.abs(got - want)
    assert err[x < 2**20].max() <= 1e-9  # measured 9.3e-10 (one ulp of gammaln(2^20))
    assert np.all(err <= 2 * np.spacing(np.abs(want)))  # measured: bit-identical
    shaped = np.array([[1.0, 2.0], [T - 1.0, T + 1.0]])
    assert gammaln_int(shaped) == pytest.approx(special.gammaln(shaped), rel=1e-15)
    assert gammaln_int(np.zeros((0, 3))).shape == (0, 3)


def test_stirling_at_the_table_boundary() -> None:
    z = np.arange(T - 50.0, T + 50.0)
    assert np.abs(stirling_gammaln(z) - special.gammaln(z)).max() <= 1e-9
    assert np.array_equal(gammaln_int(z[z < T]), special.gammaln(z[z < T]))


@pytest.mark.parametrize("x", [float(T - 3), 1e6, 3.3e7, 1e9, 1e12])
@pytest.mark.parametrize("delta", [1, 7, 250])
def test_differences_of_large_values_as_accurate_as_scipy(x: float, delta: int) -> None:
    # gammaln(x + delta) - gammaln(x) = sum of log(x + i), i < delta: summed exactly
    exact = math.fsum(math.log(x + i) for i in range(delta))
    pair = np.array([x + delta, x])
    ours, theirs = np.diff(gammaln_int(pair)[::-1])[0], np.diff(special.gammaln(pair)[::-1])[0]
    ulp = float(np.spacing(special.gammaln(x + delta)))
    assert abs(theirs - exact) <= 4 * ulp
    assert abs(ours - exact) <= 4 * ulp


def test_tables_are_built_lazily_not_at_import() -> None:
    code = (
        "import plugins.beta_binomial, plugins.pull_values, plugins._numerics as c\n"
        "print(c._lgamma_table.cache_info().currsize, c._poisson_tables.cache_info().currsize)"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["0", "0"]


def test_same_binning_exact_and_close_edges() -> None:
    a = _h(np.ones(4), edges=(np.array([0.0, 0.1, 0.2, 0.3, 0.4]),))
    close = _h(np.ones(4), edges=(np.array([0.0, 0.1, 0.2, 0.3 + 1e-12, 0.4]),))
    far = _h(np.ones(4), edges=(np.array([0.0, 0.1, 0.2, 0.31, 0.4]),))
    assert same_binning(a, a)
    assert same_binning(a, _h(np.ones(4), edges=(a.edges[0].copy(),)))
    assert same_binning(a, close)
    assert not same_binning(a, far)
    assert not same_binning(a, _h(np.ones(5)))
