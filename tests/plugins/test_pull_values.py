"""pull_values: AutoDQM's 2D pull test (normalisation, asymmetric errors, verdicts)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.special import gammaincinv
from scipy.stats import chi2 as chi2_dist

from engine.errors import ConfigError
from engine.registry import Registry
from engine.types import HistData, HistKind, Status
from plugins._numerics import (
    POISSON_EXACT_BELOW,
    POISSON_TABLE_SIZE,
    Q_HIGH,
    Q_LOW,
    poisson_side_error,
)
from plugins.pull_values import PullValues, poisson_error, poisson_errors


def h2(values: object, run: int = 1, *, labels: tuple = ()) -> HistData:
    v = np.asarray(values, dtype=np.float64)
    edges = (np.linspace(0.0, 1.0, v.shape[0] + 1), np.arange(v.shape[1] + 1, dtype=float))
    return HistData(
        path="Occupancy/hORecHits",
        run=run,
        values=v,
        variances=None,
        edges=edges,
        kind=HistKind.TH2,
        labels=labels,
    )


def autodqm_errors(m: np.ndarray) -> np.ndarray:
    """AutoDQM's formula, verbatim maths: nan (m <= 0) becomes 0."""
    with np.errstate(invalid="ignore"):
        lo_hi = np.array(chi2_dist.interval(0.6827, 2 * m)) / 2 - 1 - m
    return np.nan_to_num(np.abs(lo_hi))


@pytest.fixture
def lam() -> np.ndarray:
    return np.random.default_rng(7).uniform(80, 160, size=(40, 30))


def test_identical_is_ok(lam: np.ndarray) -> None:
    d = np.random.default_rng(1).poisson(lam)
    res = PullValues().compare(h2(d), [h2(d, 2)])
    assert res.status is Status.OK
    assert res.scores == {"chi2": 0.0, "max_pull": 0.0}
    assert res.score == 0.0
    assert res.threshold == 1.0


def test_same_distribution_is_ok_and_pinned(lam: np.ndarray) -> None:
    rng = np.random.default_rng(2)
    res = PullValues().compare(h2(rng.poisson(lam)), [h2(rng.poisson(lam), 2)])
    assert res.status is Status.OK
    assert res.scores["chi2"] == pytest.approx(1.004655, abs=1e-6)
    assert res.scores["max_pull"] == pytest.approx(3.315589, abs=1e-6)
    assert "against run 2" in res.reason


def test_data_scaled_to_a_bigger_reference_keeps_autodqm_chi2(lam: np.ndarray) -> None:
    # AutoDQM scales the data to the reference and then treats it as Poisson counts, so
    # with a reference 3x larger the data errors are sqrt(3) too small and chi2 ~ 2.
    rng = np.random.default_rng(2)
    res = PullValues().compare(h2(rng.poisson(lam)), [h2(rng.poisson(3 * lam), 2)])
    assert res.status is Status.OK
    assert res.scores["chi2"] == pytest.approx(2.100650, abs=1e-6)
    assert res.scores["max_pull"] == pytest.approx(4.767122, abs=1e-6)


def test_hot_bin_is_flagged_with_location(lam: np.ndarray) -> None:
    rng = np.random.default_rng(3)
    d = rng.poisson(lam).astype(float)
    d[12, 3] += 50 * np.sqrt(lam[12, 3])
    res = PullValues().compare(h2(d), [h2(rng.poisson(lam), 2)])
    assert res.status is Status.FLAGGED
    assert res.scores["max_pull"] > 20
    assert res.score == pytest.approx(res.scores["max_pull"] / 20)
    assert "> 20 at bin (12, 3) [x 0.3 to 0.325, y 3 to 4]" in res.reason


def test_five_sigma_shift_is_flagged_with_a_cut_of_five(lam: np.ndarray) -> None:
    rng = np.random.default_rng(4)
    d = rng.poisson(lam).astype(float)
    ref = rng.poisson(lam).astype(float)
    assert PullValues(pull_cut=5).compare(h2(d), [h2(ref, 2)]).status is Status.OK
    d[5, 5] = ref[5, 5] + 6 * np.sqrt(2 * ref[5, 5])  # data and reference errors
    res = PullValues(pull_cut=5).compare(h2(d), [h2(ref, 2)])
    assert res.status is Status.FLAGGED
    assert "at bin (5, 5)" in res.reason


def test_dead_region_is_flagged_by_chi2_default_cuts(lam: np.ndarray) -> None:
    rng = np.random.default_rng(5)
    d = rng.poisson(10 * lam).astype(float)
    d[:, :10] = 0  # a third of the detector is off
    res = PullValues().compare(h2(d), [h2(rng.poisson(10 * lam), 2)])
    assert res.status is Status.FLAGGED
    assert res.scores["max_pull"] > 20
    assert res.scores["chi2"] == pytest.approx(450.0457, abs=1e-3)


def test_too_few_entries_is_skipped() -> None:
    d = np.full((4, 5), 20.0)
    res = PullValues().compare(h2(d), [h2(d, 2)])
    assert res.status is Status.SKIPPED
    assert res.reason == "400 entries < min_entries=10000"


def test_empty_data_is_flagged(lam: np.ndarray) -> None:
    ref = np.rint(lam)
    res = PullValues().compare(h2(np.zeros_like(lam)), [h2(ref, 9)])
    assert res.status is Status.FLAGGED
    assert res.reason.startswith(f"no entries in data, references have {ref.sum():.0f}")
    assert res.score >= 1.0
    assert math.isfinite(res.scores["max_pull"])


def test_mismatched_binning_is_skipped() -> None:
    res = PullValues().compare(h2(np.ones((4, 5))), [h2(np.ones((5, 4)), 2)])
    assert res.status is Status.SKIPPED
    assert res.reason.startswith("no usable reference: run 2: binning (5, 4)")
    assert PullValues().compare(h2(np.ones((4, 5))), []).reason == "no usable reference: none given"


def test_1d_is_skipped() -> None:
    h = HistData(path="h", run=1, values=np.ones(5), variances=None, edges=(np.arange(6.0),))
    res = PullValues().compare(h, [h])
    assert res.status is Status.SKIPPED
    assert res.reason == "needs a 2D histogram, got 1D"


def test_reference_scale_changes_neither_verdict_nor_location(lam: np.ndarray) -> None:
    rng = np.random.default_rng(6)
    d = rng.poisson(lam).astype(float)
    d[20, 7] += 300
    ref = rng.poisson(lam).astype(float)
    one = PullValues(pull_cut=5).compare(h2(d), [h2(ref, 2)])
    four = PullValues(pull_cut=5).compare(h2(d), [h2(4 * ref, 2)])
    assert one.status is four.status is Status.FLAGGED
    assert one.reason.split(" at ")[1].split(",")[0] == four.reason.split(" at ")[1].split(",")[0]
    np.testing.assert_allclose(one.arrays["ref"], four.arrays["ref"], rtol=1e-12)
    assert one.arrays["ref"].sum() == pytest.approx(d.sum())


def test_errors_match_autodqm_formula_including_zero_and_fractions() -> None:
    m = np.array([0.0, -2.0, 0.25, 1.0, 3.7, 12.0, 49.9, 50.0, 133.3, 2.0e4, 7.5e6])
    low, high = poisson_errors(m)
    want = autodqm_errors(m)
    np.testing.assert_allclose(low, want[0], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(high, want[1], rtol=1e-6, atol=1e-9)
    assert low[0] == high[0] == low[1] == 0.0
    dense = np.logspace(-3, 18, 4000)  # across the exact / refined-approximation boundaries
    np.testing.assert_allclose(np.array(poisson_errors(dense)), autodqm_errors(dense), rtol=1e-6)


def test_asymmetric_error_choice_data_low_ref_high_when_data_above() -> None:
    d, r = np.array([[30.0, 10.0]]), np.array([[10.0, 30.0]])
    res = PullValues(min_entries=0).compare(h2(d), [h2(r, 2)])
    e10, e30 = autodqm_errors(np.array(10.0)), autodqm_errors(np.array(30.0))
    expected = 20 / np.sqrt(e30[0] ** 2 + e10[1] ** 2)  # data-low, ref-high
    np.testing.assert_allclose(res.arrays["pulls"], [[expected, -expected]], rtol=1e-7)
    assert expected == pytest.approx(2.948445, abs=1e-6)
    assert expected != pytest.approx(20 / np.sqrt(40))  # not the symmetric sqrt(m) choice
    assert res.scores["chi2"] == pytest.approx(expected**2)


def test_norm_type_row_and_col() -> None:
    # [x, y] indexing: a "row" is one y index across x.
    d = np.array([[10.0, 0.0], [30.0, 0.0]])
    r = np.array([[20.0, 5.0], [60.0, 7.0]])
    row = PullValues(norm_type="row", min_entries=0).compare(h2(d), [h2(r, 2)])
    np.testing.assert_allclose(row.arrays["pulls"][:, 0], 0.0, atol=1e-12)  # scaled by 2
    e_low = autodqm_errors(r[:, 1])[0]
    np.testing.assert_allclose(row.arrays["pulls"][:, 1], -r[:, 1] / e_low, rtol=1e-7)
    np.testing.assert_allclose(row.arrays["ref"], [[10.0, 5.0], [30.0, 7.0]])  # row 1 unscaled
    col = PullValues(norm_type="col", min_entries=0).compare(h2(d), [h2(r, 2)])
    np.testing.assert_allclose(
        col.arrays["ref"], [[20 / 2.5, 5 / 2.5], [60 * 30 / 67, 7 * 30 / 67]]
    )
    # A zero reference row leaves the data row unscaled too (as in AutoDQM).
    zero_ref = PullValues(norm_type="row", min_entries=0).compare(
        h2([[4.0, 1.0], [4.0, 1.0]]), [h2([[0.0, 1.0], [0.0, 1.0]], 2)]
    )
    np.testing.assert_allclose(zero_ref.arrays["ref"], [[0.0, 1.0], [0.0, 1.0]])
    assert zero_ref.arrays["pulls"][0, 0] > 0


def test_closest_usable_reference_decides_and_is_named() -> None:
    d = np.full((3, 3), 2000.0)
    bumped = d.copy()
    bumped[1, 1] += 500.0
    res = PullValues().compare(h2(d), [h2(np.ones((2, 2)), 5), h2(bumped, 6), h2(d, 7)])
    assert "against run 7 (the closest of 2 references)" in res.reason
    assert res.scores["chi2"] == 0.0


def test_one_broken_reference_raises_no_alarm(lam: np.ndarray) -> None:
    rng = np.random.default_rng(3)
    data = rng.poisson(lam).astype(float)
    good = [rng.poisson(lam).astype(float) for _ in range(3)]
    broken = rng.poisson(lam).astype(float)
    broken[2, :] = 0.0  # a reference run that itself had a dead row
    refs = [h2(r, i + 2) for i, r in enumerate([broken, *good])]
    assert PullValues().compare(h2(data), refs).status is Status.OK
    hot = data.copy()
    hot[4, 5] *= 10.0
    assert PullValues().compare(h2(hot), refs).status is Status.FLAGGED


def test_labels_appear_in_reason(lam: np.ndarray) -> None:
    d = np.rint(lam)
    d[1, 2] += 2000
    labels = (None, tuple(f"ring {i}" for i in range(30)))
    res = PullValues().compare(h2(d, labels=labels), [h2(np.rint(lam), 2, labels=labels)])
    assert "bin (1, 2) [x 0.025 to 0.05, y 'ring 2']" in res.reason


def test_bad_parameters_fail_at_config_time() -> None:
    with pytest.raises(ValueError, match=r"norm_type must be one of .* got 'diag'"):
        PullValues(norm_type="diag")
    reg = Registry()
    reg.register(PullValues)
    with pytest.raises(ConfigError, match="norm_type"):
        reg.build("pull_values", {"norm_type": "rows"})
    assert reg.build("pull_values", {"norm_type": "col"}) == PullValues(norm_type="col")


@settings(max_examples=60, deadline=None)
@given(
    st.tuples(st.integers(1, 6), st.integers(1, 6)).flatmap(
        lambda s: st.tuples(
            hnp.arrays(np.float64, s, elements=st.floats(0, 1e7)),
            hnp.arrays(np.float64, s, elements=st.floats(0, 1e7)),
        )
    ),
    st.sampled_from(["all", "row", "col"]),
)
def test_outputs_always_finite(pair: tuple[np.ndarray, np.ndarray], norm: str) -> None:
    d, r = pair
    res = PullValues(min_entries=0, norm_type=norm).compare(h2(d), [h2(r, 2)])
    assert res.status in (Status.OK, Status.FLAGGED, Status.SKIPPED)
    assert math.isfinite(res.score)
    assert res.score >= 0
    assert all(math.isfinite(v) for v in res.scores.values())
    for a in res.arrays.values():
        assert a.shape == d.shape
        assert np.all(np.isfinite(a))


# --- the fast Poisson errors (plugins._numerics.poisson_side_error) -------------------------


def exact_error(m: np.ndarray, q: float) -> np.ndarray:
    """The exact formula with scipy: |gammaincinv(m, q) - 1 - m|, 0 where m <= 0."""
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(np.abs(gammaincinv(m, q) - 1.0 - m))


@pytest.mark.parametrize("high", [False, True])
def test_fast_errors_match_scipy_from_1e_minus_3_to_1e9(high: bool) -> None:
    size = float(POISSON_TABLE_SIZE)
    m = np.concatenate(
        [
            np.logspace(-3, 9, 100_001),
            np.linspace(POISSON_EXACT_BELOW, size + 5, 50_001),  # the whole grid range
            np.arange(0.0, 2 * size),  # whole numbers on both sides of the table's end
            [size - 1e-9, size + 1e-9, POISSON_EXACT_BELOW - 1e-12],
        ]
    )
    q = Q_HIGH if high else Q_LOW
    got, want = poisson_side_error(m, np.full(m.shape, high)), exact_error(m, q)
    rel = np.abs(got - want) / np.where(want > 0, want, 1.0)
    assert rel.max() <= 1e-9  # measured 3.5e-10 (cubic grid), 5e-11 (series)
    whole = (m == np.floor(m)) & (m < size)
    assert np.array_equal(got[whole], want[whole])  # the table holds scipy's values
    small = (m < POISSON_EXACT_BELOW) & ~whole
    assert np.array_equal(got[small], want[small])  # and below 2 it is scipy itself


def test_fast_errors_shapes_sides_and_non_positive() -> None:
    m = np.array([[0.0, -3.0, np.nan], [7.25, 7.25, 3e6]])
    high = np.array([[True, False, True], [False, True, True]])
    got = poisson_side_error(m, high)
    assert got.shape == (2, 3)
    assert list(got[0]) == [0.0, 0.0, 0.0]
    assert got[1, 0] == pytest.approx(exact_error(np.array(7.25), Q_LOW), rel=1e-9)
    assert got[1, 1] == pytest.approx(exact_error(np.array(7.25), Q_HIGH), rel=1e-9)
    assert got[1, 2] == pytest.approx(exact_error(np.array(3e6), Q_HIGH), rel=1e-9)
    # a scalar side broadcasts over every bin
    m2 = np.array([5.5, 40.5, 2e3])
    np.testing.assert_allclose(
        poisson_side_error(m2, np.array(True)), exact_error(m2, Q_HIGH), rtol=1e-9
    )


def test_poisson_error_other_quantiles_use_scipy() -> None:
    m = np.array([0.0, 0.5, 3.0, 40.5, 5e4])
    q = np.array([0.3, 0.3, Q_LOW, 0.9, Q_HIGH])
    got = poisson_error(m, q)
    want = [exact_error(m[i : i + 1], float(q[i]))[0] for i in range(m.size)]
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=0.0)
