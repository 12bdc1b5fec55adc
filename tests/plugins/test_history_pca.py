"""history_pca: the normal variation learned from a history of good runs, calibrated cuts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.types import HistData, HistKind, Status
from plugins._lowrank import choose_rank, counts_series
from plugins._scores import calibrate, sigma_of_log_p
from plugins.history_pca import HistoryPCA

X = np.arange(60, dtype=float)
EDGES = (np.arange(61, dtype=float),)


def _shape(width: float = 8.0, tail: float = 0.0) -> np.ndarray:
    """A peak on a sloped background; ``tail`` moves the background (a common mode)."""
    return np.exp(-0.5 * ((X - 30) / width) ** 2) + 0.05 * (1 + tail * (X - 30) / 30)


def _runs(n: int, rng: np.random.Generator, total: float = 2e5) -> list[HistData]:
    """Runs whose background slope and peak width wander together by tens of Poisson sigma."""
    out = []
    for i in range(n):
        s = _shape(width=8.0 * (1 + 0.03 * rng.normal()), tail=0.3 * rng.normal())
        v = rng.poisson(total * s / s.sum()).astype(float)
        out.append(HistData("h", 100 + i, v, v.copy(), EDGES, entries=float(v.sum())))
    return out


def _like(h: HistData, values: np.ndarray, run: int = 999) -> HistData:
    return HistData("h", run, values, values.copy(), EDGES, entries=float(values.sum()))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(11)


def test_healthy_runs_with_large_common_variation_are_ok(rng: np.random.Generator) -> None:
    comp = HistoryPCA(n_tests=600)
    runs = _runs(41, rng)
    flagged = [comp.compare(d, runs[i : i + 30]).status is Status.FLAGGED
               for i, d in zip(range(11), runs[30:], strict=True)]  # fmt: skip
    assert sum(flagged) == 0
    res = comp.compare(runs[40], runs[10:40])
    assert res.scores["rank"] >= 1  # the shared wander is learned as a common mode
    assert res.scores["history"] == 30
    assert "cut 4.1\u03c3 from alpha 0.01 over 600 histograms" in res.reason
    assert all(math.isfinite(v) for v in res.scores.values())


@pytest.mark.parametrize("kind", ["dead", "hot", "dip"])
def test_local_failures_are_flagged_with_where(kind: str, rng: np.random.Generator) -> None:
    comp = HistoryPCA(n_tests=600)
    runs = _runs(31, rng)
    v = runs[30].values.copy()
    if kind == "dead":
        v[20:24] = 0
    elif kind == "hot":
        v[45] *= 4
    else:
        v[10:28] = rng.binomial(v[10:28].astype(int), 0.85)
    res = comp.compare(_like(runs[30], v), runs[:30])
    assert res.status is Status.FLAGGED, res.reason
    assert res.score > 1
    assert res.reason.startswith("bins ")
    assert set(res.arrays) == {"pulls", "expected", "band"}
    assert res.arrays["expected"].shape == v.shape


def test_few_history_runs_are_more_conservative(rng: np.random.Generator) -> None:
    runs = _runs(31, rng)
    v = runs[30].values.copy()
    v[40:44] = rng.binomial(v[40:44].astype(int), 0.7)
    data = _like(runs[30], v)
    comp = HistoryPCA(n_tests=600)
    many, few = comp.compare(data, runs[:30]), comp.compare(data, runs[24:30])
    assert few.scores["sigma"] < many.scores["sigma"]


def test_too_short_a_history_is_skipped_and_empty_data_flagged(rng: np.random.Generator) -> None:
    comp = HistoryPCA()
    runs = _runs(5, rng)
    res = comp.compare(runs[4], runs[:3])
    assert res.status is Status.SKIPPED
    assert res.reason.startswith("history of 3 usable runs; at least 4 are needed")
    empty = comp.compare(_like(runs[4], np.zeros(60)), runs[:4])
    assert empty.status is Status.FLAGGED
    assert "no entries in data" in empty.reason


def test_unchanged_by_normalisation_of_the_history(rng: np.random.Generator) -> None:
    comp = HistoryPCA(n_tests=10)
    runs = _runs(21, rng)
    a = comp.compare(runs[20], runs[:20])
    b = comp.compare(runs[20], [_like(r, np.round(r.values * 3), r.run) for r in runs[:20]])
    assert a.status == b.status
    assert a.scores["sigma"] == pytest.approx(b.scores["sigma"], abs=0.5)


def test_low_statistics_data_is_judged_with_its_own_errors(rng: np.random.Generator) -> None:
    comp = HistoryPCA(n_tests=600)
    runs = _runs(31, rng)
    s = _shape()
    small = rng.poisson(300 * s / s.sum()).astype(float)  # a few lumisections
    assert comp.compare(_like(runs[30], small), runs[:30]).status is Status.OK


def test_2d_maps_and_profiles(rng: np.random.Generator) -> None:
    comp = HistoryPCA(n_tests=100)
    edges = (np.arange(11.0), np.arange(9.0))
    base = rng.uniform(500, 1500, (10, 8))
    maps = []
    for i in range(31):
        v = rng.poisson(base * (1 + 0.1 * rng.normal() * np.linspace(-1, 1, 10)[:, None]))
        maps.append(HistData("m", i, v.astype(float), v.astype(float), edges, kind=HistKind.TH2))
    ok = comp.compare(maps[30], maps[:30])
    assert ok.status is Status.OK, ok.reason
    dead = maps[30].values.copy()
    dead[3:5, 2:4] = 0
    bad = comp.compare(HistData("m", 30, dead, dead, edges, kind=HistKind.TH2), maps[:30])
    assert bad.status is Status.FLAGGED
    assert bad.reason.startswith("x ")
    # profiles: efficiencies with errors, one region drops by 10 %
    prof = []
    for i in range(31):
        mean = 0.95 + 0.005 * rng.normal() + rng.normal(0, 0.002, 20)
        n = np.full(20, 4000.0)
        prof.append(HistData("p", i, mean, np.full(20, 0.002**2), (np.arange(21.0),),
                             kind=HistKind.PROFILE, bin_entries=n))  # fmt: skip
    assert comp.compare(prof[30], prof[:30]).status is Status.OK
    low = prof[30].values.copy()
    low[5:9] -= 0.1
    drop = HistData("p", 30, low, prof[30].variances, (np.arange(21.0),),
                    kind=HistKind.PROFILE, bin_entries=prof[30].bin_entries)  # fmt: skip
    assert comp.compare(drop, prof[:30]).status is Status.FLAGGED


def test_extreme_failures_still_rank_in_log_space() -> None:
    loo = np.exp(np.random.default_rng(3).normal(0.0, 0.3, 30))
    sigmas = [calibrate(loo, s).sigma for s in (1e3, 1e6, 1e12, 1e100, 1e300)]
    assert sigmas == sorted(set(sigmas))  # no two tie: no p-value floor
    assert calibrate(loo, 1e300).sigma > calibrate(loo, 1e200).sigma
    assert sigma_of_log_p(math.log(0.5)) == pytest.approx(0.0, abs=1e-9)


def test_rank_is_chosen_by_cross_validation(rng: np.random.Generator) -> None:
    flat = np.stack([rng.poisson(np.full(40, 1000.0)) for _ in range(20)]).astype(float)
    assert choose_rank(counts_series(flat), 6) == 0  # pure noise: no common mode
    runs = np.stack([r.values for r in _runs(20, rng)])
    assert choose_rank(counts_series(runs), 6) >= 1


def test_bad_parameters_fail_at_build() -> None:
    with pytest.raises(ValueError, match="min_history"):
        HistoryPCA(min_history=2)


def test_a_change_of_rate_without_a_change_of_shape_is_judged(rng: np.random.Generator) -> None:
    from dataclasses import replace

    comp = HistoryPCA(n_tests=600)
    runs = _runs(31, rng)
    exposure = [float(r.values.sum()) * 20 * (1 + 0.02 * rng.normal()) for r in runs]
    runs = [replace(r, exposure=x) for r, x in zip(runs, exposure, strict=True)]
    same = comp.compare(runs[30], runs[:30])
    assert same.status is Status.OK
    assert abs(same.scores["rate"]) < 0.1
    half = rng.binomial(runs[30].values.astype(int), 0.6).astype(float)  # whole range -40 %
    res = comp.compare(replace(_like(runs[30], half), exposure=exposure[30]), runs[:30])
    assert res.status is Status.FLAGGED
    assert res.reason.startswith("rate: -39.9% in its share of the subsystem's entries")
    assert res.scores["rate"] == pytest.approx(-0.4, abs=0.03)
    # without exposures the shape alone is judged, and a pure rate change is not seen
    plain = comp.compare(_like(runs[30], half), [_like(r, r.values, r.run) for r in runs[:30]])
    assert "rate" not in plain.scores


def test_a_short_history_judges_the_rate_with_the_subsystems_spread(
    rng: np.random.Generator,
) -> None:
    from dataclasses import replace

    comp = HistoryPCA(n_tests=600)
    runs = _runs(4, rng)
    exposure = [float(r.values.sum()) * 20 * (1 + 0.01 * rng.normal()) for r in runs]
    runs = [replace(r, exposure=x) for r, x in zip(runs, exposure, strict=True)]
    low = rng.binomial(runs[3].values.astype(int), 0.3).astype(float)  # whole range -70 %
    data = replace(_like(runs[3], low), exposure=exposure[3])
    # three runs alone (t with 2 degrees of freedom) cannot reach the cut ...
    alone = comp.compare(data, runs[:3])
    assert alone.status is Status.OK
    assert "the shape is not judged (history of 3 usable runs; 4 are needed)" in alone.reason
    # ... the subsystem's typical spread of rates (a prior over its histograms) can
    res = comp.compare(replace(data, rate_spread=0.01), runs[:3])
    assert res.status is Status.FLAGGED
    assert res.reason.startswith("rate: -")
    assert res.scores["rate"] == pytest.approx(-0.7, abs=0.03)
    normal = comp.compare(replace(runs[3], rate_spread=0.01), runs[:3])
    assert normal.status is Status.OK
    # a prior never narrows a histogram whose own rate is known to wander more
    wide = [replace(r, exposure=r.exposure * (1 + 0.5 * (-1) ** i)) for i, r in enumerate(runs)]
    assert comp.compare(replace(wide[3], rate_spread=0.01), wide[:3]).status is Status.OK


def test_calibration_allows_for_drift_ahead_of_the_history(rng: np.random.Generator) -> None:
    """Each bin's share random-walks run after run: a new run lies beyond its history,
    which leave-one-out scores (runs on both sides) do not see; the calibration sample is
    scaled up for it, and never down."""
    comp = HistoryPCA(n_tests=600)
    walk = np.cumsum(rng.normal(0.0, 0.03, (31, 60)), axis=0)
    drifting = []
    for i in range(31):
        s = _shape() * np.exp(walk[i])
        v = rng.poisson(2e5 * s / s.sum()).astype(float)
        drifting.append(HistData("h", 100 + i, v, v.copy(), EDGES, entries=float(v.sum())))
    res = comp.compare(drifting[30], drifting[:30])
    assert res.status is Status.OK
    assert res.scores["ahead"] > 1.3
    calm = _runs(31, rng)
    assert 1.0 <= comp.compare(calm[30], calm[:30]).scores["ahead"] < 1.2
    few = comp.compare(calm[5], calm[:5])  # too few runs to score any ahead: no scaling
    assert few.scores["ahead"] == 1.0


def test_small_count_tails_match_the_negative_binomial() -> None:
    from scipy import stats

    from plugins._lowrank import _count_sigma

    mu = np.array([0.01, 3.0, 3.0, 20.0, 20.0, 40.0])
    c = np.array([1.0, 0.0, 9.0, 35.0, 8.0, 40.0])
    rel = np.array([0.0, 0.05, 0.05, 0.01, 0.01, 0.02])
    r = 1 / np.maximum(rel, 1e-9)
    p = r / (r + mu)
    pmf = stats.nbinom.pmf(c, r, p)
    upper = stats.nbinom.sf(c, r, p) + pmf / 2
    lower = stats.nbinom.cdf(c, r, p) - pmf / 2
    want = np.where(c >= mu, stats.norm.isf(upper), stats.norm.ppf(lower))
    want = np.where(c >= mu, np.maximum(want, 0), np.minimum(want, 0))
    np.testing.assert_allclose(_count_sigma(c, mu, rel), want, atol=1e-6)
    # far tails stay finite and ordered (no saturation at 8 sigma)
    far = _count_sigma(np.array([200.0, 400.0]), np.array([40.0, 40.0]), np.zeros(2))
    assert 8.5 < far[0] < far[1] < 40


def test_every_history_length_gives_a_finite_judgment(rng: np.random.Generator) -> None:
    comp = HistoryPCA(n_tests=600)
    runs = _runs(32, rng)
    for k in range(4, 32):
        res = comp.compare(runs[k], runs[:k])
        assert res.status is Status.OK, (k, res.reason)
        assert res.scores["history"] == k
        assert all(math.isfinite(v) for v in res.scores.values())
