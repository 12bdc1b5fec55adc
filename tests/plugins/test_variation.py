"""Tests of plugins.variation (variation_scan) and its numerics in plugins._variance."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from scipy import stats

from engine.errors import ConfigError
from engine.registry import build_registry
from engine.types import HistData, HistKind, Status
from plugins._variance import Normal, lookelsewhere, run_cut, tail_sigmas
from plugins.multiscale import cells
from plugins.variation import VariationScan, shift_flows

MINUS = "\u2212"


def _h(values: object, run: int = 1, *, kind: HistKind | None = None,
       variances: np.ndarray | None = None, bin_entries: np.ndarray | None = None,
       labels: tuple[tuple[str, ...] | None, ...] = ()) -> HistData:  # fmt: skip
    v = np.asarray(values, dtype=np.float64)
    edges = tuple(np.arange(n + 1, dtype=np.float64) for n in v.shape)
    if kind is None:
        kind = HistKind.TH2 if v.ndim == 2 else HistKind.TH1
    return HistData(path="Dir/h", run=run, values=v, variances=variances, edges=edges,
                    kind=kind, bin_entries=bin_entries, labels=labels)  # fmt: skip


def _runs(rng: np.random.Generator, lam: np.ndarray, k: int, jitter: float = 0.005,
          noisy: dict[int, float] | None = None) -> list[np.ndarray]:  # fmt: skip
    """``k`` Poisson runs around ``lam`` with a per-bin relative jitter, and bins whose
    rate scatters more from run to run (``noisy``: flat index -> relative spread)."""
    out = []
    for _ in range(k):
        f = 1.0 + rng.normal(0.0, jitter, lam.shape)
        for i, s in (noisy or {}).items():
            f.flat[i] *= 1.0 + rng.normal(0.0, s)
        out.append(rng.poisson(lam * np.clip(f, 0.0, None)).astype(np.float64))
    return out


def _compare(data: np.ndarray, refs: list[np.ndarray], **kw: object) -> object:
    comp = VariationScan(**kw)  # type: ignore[arg-type]
    return comp.compare(_h(data), [_h(r, run=10 + i) for i, r in enumerate(refs)])


# --- numerics ----------------------------------------------------------------------------


def test_poisson_tail_is_exact_mid_p() -> None:
    # no learned part, variance = mean: the negative binomial becomes Poisson
    mu = np.array([2.0, 2.0, 30.0])
    normal = Normal(mu, mu.copy(), np.zeros(3), np.zeros(3), np.zeros(1), 7.0)
    z = tail_sigmas(np.array([10.0, 0.0, 50.0]), normal, counts=True)
    pois = stats.poisson
    p_up = pois.sf(9, 2.0) - 0.5 * pois.pmf(10, 2.0)
    p_down = 0.5 * pois.pmf(0, 2.0)
    # the larger of the discrete and the t tail is kept: never more significant than Poisson
    assert z[0] == pytest.approx(-stats.norm.ppf(p_up), rel=1e-4)
    # below the mean the Gaussian tail is the larger here: the conservative one is kept
    assert p_down < stats.norm.cdf(-math.sqrt(2.0))
    assert z[1] == pytest.approx(-math.sqrt(2.0), rel=1e-4)
    assert z[2] > 0


def test_learned_part_gets_student_tails() -> None:
    # all of the variance learned with 3 degrees of freedom: t(3), not Gaussian
    normal = Normal(np.zeros(1), np.ones(1), np.ones(1), np.ones(1), np.ones(1), 3.0)
    z = float(tail_sigmas(np.array([6.0]), normal, counts=False)[0])
    assert z == pytest.approx(-stats.norm.ppf(stats.t.sf(6.0, 3)), rel=1e-6)
    assert z < 3.0


def test_lookelsewhere_and_run_cut() -> None:
    assert lookelsewhere(5.0, 1) == pytest.approx(5.0)
    # two-sided p of 5 sigma times 100 trials, back to sigma
    q = 100 * 2 * stats.norm.sf(5.0)
    assert lookelsewhere(-5.0, 100) == pytest.approx(stats.norm.ppf(q / 2))
    assert run_cut(0.01, 10, 5.0) == 5.0  # the floor
    big = run_cut(0.01, 10**6, 5.0)
    assert big == pytest.approx(-stats.norm.ppf(0.01 / 2e6))
    assert big > 5.0


def test_shift_flows_match_a_moved_histogram() -> None:
    x = np.arange(60) + 0.5
    dens = np.exp(-0.5 * ((x - 30) / 8) ** 2)
    moved = np.exp(-0.5 * ((x - 30.01) / 8) ** 2)
    grid = cells((60,), singles=True)
    flows = shift_flows(dens, grid, [0])
    single = grid.layout == 0
    inner = flows[single][1:-1] * 0.01  # the end bins also lose what leaves the axis
    assert inner == pytest.approx(np.abs(moved - dens)[1:-1], rel=0.03, abs=1e-6)
    # a cell's flow is through its two borders only: the 30-bin half is the half-peak
    half = np.flatnonzero((grid.bounds[0] == 0) & (grid.bounds[1] == 32))
    assert flows[half] == pytest.approx(0.5 * (dens[31] + dens[32]) - 0.5 * dens[0])
    assert shift_flows(dens, grid, []) == pytest.approx(np.zeros(flows.size))


# --- the comparator ----------------------------------------------------------------------


def test_registered_and_checked() -> None:
    reg = build_registry()
    assert isinstance(reg.build("variation_scan", {"z_cut": 6}), VariationScan)
    with pytest.raises(ConfigError, match="bad alpha"):
        reg.build("variation_scan", {"alpha": 2})
    with pytest.raises(ConfigError, match="max_width"):
        reg.build("variation_scan", {"max_width": 1})


def test_identical_runs_are_ok_and_finite() -> None:
    d = np.full((12, 8), 500.0)
    res = _compare(d, [d, d, d])
    assert res.status is Status.OK
    assert all(math.isfinite(v) for v in res.scores.values())
    assert res.scores["max_pull"] == pytest.approx(0.0, abs=1e-6)
    for arr in res.arrays.values():
        assert np.isfinite(arr).all()
        assert arr.shape == d.shape


def test_healthy_runs_rarely_pass_the_cut() -> None:
    rng = np.random.default_rng(7)
    lam = np.outer(np.linspace(50, 400, 40), np.ones(10))
    worst = []
    for _ in range(60):
        runs = _runs(rng, lam, 5)
        worst.append(abs(_compare(runs[0], runs[1:]).scores["max_pull"]))
    assert max(worst) < 5.0
    assert np.median(worst) < 2.0


def test_only_reference_shapes_and_statistics_matter() -> None:
    rng = np.random.default_rng(3)
    lam = np.linspace(100, 1000, 50)
    runs = _runs(rng, lam, 4)
    a = _compare(runs[0], runs[1:])
    b = _compare(runs[0], runs[:0:-1])  # order of the references
    c = _compare(runs[0], [3 * r for r in runs[1:]])  # 3x the reference statistics
    assert a.scores["max_pull"] == pytest.approx(b.scores["max_pull"], rel=1e-9)
    assert a.status is c.status is Status.OK
    assert abs(a.scores["max_pull"] - c.scores["max_pull"]) < 0.5


def test_a_hot_bin_is_flagged_with_where_and_against_what() -> None:
    rng = np.random.default_rng(11)
    lam = np.full(100, 5000.0)
    runs = _runs(rng, lam, 5)
    data = runs[0].copy()
    data[37] *= 1.3
    res = _compare(data, runs[1:])
    assert res.status is Status.FLAGGED
    assert res.reason.startswith("bin x 37 (single bin) holds")
    assert re.search(r"are normal \(\+(29|30|31)%\)", res.reason)
    # five runs jittering by 0.5 %: the 1 % floor is what the references allow
    assert "±1.0% (the floor: the references vary less) from runs 10, 11, 12, 13" in res.reason
    assert res.arrays["region"][37] == 1.0
    assert res.score == pytest.approx(abs(res.scores["max_pull"]) / res.scores["cut"])


def test_a_weak_region_is_found_in_2d() -> None:
    rng = np.random.default_rng(5)
    lam = np.full((64, 6), 300.0)
    runs = _runs(rng, lam, 5)
    data = runs[0].copy()
    data[16:32, 2] *= 0.85  # 15 % over 16 bins: ~2.6 sigma per bin, far more summed
    res = _compare(data, runs[1:])
    assert res.status is Status.FLAGGED
    assert res.scores["deviation"] < -0.1
    assert "y 2" in res.reason
    assert MINUS in res.reason
    bins = res.arrays["region"].nonzero()
    assert set(bins[1]) == {2}
    assert bins[0].min() >= 16
    assert bins[0].max() < 32


def test_a_bin_that_always_moves_is_allowed_to_and_a_steady_one_is_not() -> None:
    rng = np.random.default_rng(21)
    lam = np.full(60, 20000.0)
    data_noisy, data_steady = [], []
    for _ in range(20):
        runs = _runs(rng, lam, 7, noisy={10: 0.5})
        d = runs[0].copy()
        d[10] = lam[10] * 1.5  # within what bin 10 does from run to run
        data_noisy.append(_compare(d, runs[1:]).status)
        d = runs[0].copy()
        d[40] = lam[40] * 1.3  # a steady bin 30 % high: far outside its normal spread
        data_steady.append(_compare(d, runs[1:]).status)
    assert data_noisy.count(Status.FLAGGED) <= 2
    # the normal range drawn for each bin: wide where the references scatter, 1 % elsewhere
    res = _compare(runs[0], runs[1:])
    rel = res.arrays["band"] / res.arrays["expected"]
    assert rel[10] > 0.15
    assert np.median(rel) == pytest.approx(math.hypot(0.01, 1 / math.sqrt(20000)), rel=0.15)
    assert data_steady.count(Status.FLAGGED) == 20


def test_an_edge_that_moves_a_little_is_not_a_failure() -> None:
    rng = np.random.default_rng(2)
    x = np.arange(100) + 0.5

    def box(end: float) -> np.ndarray:
        return 1e6 * stats.norm.cdf((end - x) / 0.8) * stats.norm.cdf((x - 20) / 0.8) + 10

    refs = [rng.poisson(box(70 + rng.normal(0, 0.005))).astype(float) for _ in range(4)]
    data = rng.poisson(box(70.03)).astype(float)  # the falling edge 0.03 bins later
    assert _compare(data, refs).status is Status.OK
    assert _compare(data, refs, shift_tol=0.0).status is Status.FLAGGED


def test_empty_too_few_and_no_reference() -> None:
    ref = np.full(20, 50.0)
    res = _compare(np.zeros(20), [ref, ref])
    assert res.status is Status.FLAGGED
    assert res.reason.startswith("no entries in data, references have 1000 (mean of 2)")
    res = _compare(np.full(20, 1.0), [ref], min_entries=100)
    assert res.status is Status.SKIPPED
    assert "20 entries < min_entries=100" in res.reason
    res = VariationScan().compare(_h(ref), [_h(np.zeros(20), 2), _h(np.ones(7), 3)])
    assert res.status is Status.SKIPPED
    assert "no usable reference" in res.reason
    assert "run 2: no entries" in res.reason
    assert "run 3: binning" in res.reason


def test_one_reference_uses_the_fixed_tolerance() -> None:
    lam = np.full(30, 1e6)
    data = lam.copy()
    data[4] *= 1.03  # 3 % on 1e6 entries: 3 sigma of a 1 % tolerance
    assert _compare(data, [lam]).status is Status.OK
    assert _compare(data, [lam], tol=0.001, floor=0.001).status is Status.FLAGGED


def test_the_cut_follows_the_number_of_histograms() -> None:
    rng = np.random.default_rng(9)
    lam = np.full(50, 4000.0)
    runs = _runs(rng, lam, 5)
    data = runs[0].copy()
    data[20] = lam[20] * 1.15
    few = _compare(data, runs[1:], n_tests=10)
    many = _compare(data, runs[1:], n_tests=10**9)
    assert few.scores["max_pull"] == pytest.approx(many.scores["max_pull"])
    assert few.scores["cut"] == 5.0
    assert many.scores["cut"] > 6.5
    assert few.status is Status.FLAGGED
    assert many.status is Status.OK
    assert f"≤ {many.scores['cut']:.2g} after look-elsewhere" in many.reason
    assert _compare(data, runs[1:], z_cut=3.0).scores["cut"] == 3.0


def _eff(rng: np.random.Generator, eff: np.ndarray, entries: float, run: int) -> HistData:
    n = rng.poisson(np.full(eff.shape, entries)).astype(float)
    m = rng.binomial(n.astype(np.int64), np.clip(eff, 0, 1)) / np.maximum(n, 1)
    return _h(m, run, kind=HistKind.PROFILE2D if eff.ndim == 2 else HistKind.PROFILE,
              variances=m * (1 - m) / np.maximum(n, 1), bin_entries=n)  # fmt: skip


def test_profile_means_drop_in_a_region() -> None:
    rng = np.random.default_rng(4)
    eff = np.full((36, 4), 0.96)
    refs = [_eff(rng, eff, 2000, 10 + i) for i in range(4)]
    healthy = VariationScan().compare(_eff(rng, eff, 2000, 1), refs)
    assert healthy.status is Status.OK
    low = eff.copy()
    low[8:16, 1] *= 0.95  # 5 % lower efficiency in 8 chambers
    res = VariationScan().compare(_eff(rng, low, 2000, 1), refs)
    assert res.status is Status.FLAGGED
    assert "mean 0.9" in res.reason
    assert "y 1" in res.reason


def test_profiles_need_errors_in_the_references() -> None:
    rng = np.random.default_rng(4)
    eff = np.full(10, 0.9)
    plain = _h(np.full(10, 0.9), 5, kind=HistKind.PROFILE)
    res = VariationScan().compare(_eff(rng, eff, 500, 1), [plain])
    assert res.status is Status.SKIPPED
    assert "run 5: not a profile with errors" in res.reason


def test_the_prior_never_hides_a_cell_that_the_references_show_is_noisy() -> None:
    from plugins._variance import shrink

    raw = np.array([1e-4, 2e-4, 0.0, 0.09])  # the last cell moves by 30 % between references
    layout = np.zeros(4, dtype=np.intp)
    v, prior, dof = shrink(raw, np.ones(4), layout, 1, 4, 4.0, 1e-6, 1e-6)
    assert v[3] == pytest.approx(0.09)  # its own estimate, not pulled to the median
    assert dof[3] == 3.0  # and as uncertain as three degrees of freedom make it
    assert v[2] == pytest.approx((4 * prior[0] + 0) / 7)
    assert dof[2] == 7.0
