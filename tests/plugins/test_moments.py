"""Tests of plugins.moments: mean and width against the references' jitter."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from engine.errors import ConfigError
from engine.registry import build_registry
from engine.types import HistData, HistKind, Status
from plugins.moments import Moments

EDGES = np.linspace(-10.0, 10.0, 81)


def _h(values: object, run: int = 1, labels: tuple[tuple[str, ...] | None, ...] = ()) -> HistData:
    v = np.asarray(values, dtype=np.float64)
    edges = (EDGES,) if v.ndim == 1 and v.size == 80 else tuple(
        np.arange(n + 1.0) for n in v.shape)  # fmt: skip
    kind = HistKind.TH2 if v.ndim == 2 else HistKind.TH1
    return HistData(path="h", run=run, values=v, variances=v, edges=edges, kind=kind,
                    labels=labels)  # fmt: skip


def _peak(rng: np.random.Generator, n: float, mu: float = 0.0, sigma: float = 2.0) -> np.ndarray:
    lam = n * np.diff(stats.norm.cdf(EDGES, mu, sigma))
    return rng.poisson(lam).astype(np.float64)


def _refs(rng: np.random.Generator, k: int = 4, n: float = 1e5) -> list[HistData]:
    # run-to-run jitter: 0.5 % of the width in position and in width
    return [_h(_peak(rng, n, rng.normal(0, 0.01), 2.0 * (1 + rng.normal(0, 0.005))), 10 + i)
            for i in range(k)]  # fmt: skip


def test_registered() -> None:
    assert isinstance(build_registry().build("moments", {"mean_tol": 0.02}), Moments)
    with pytest.raises(ConfigError, match="bad width_tol"):
        build_registry().build("moments", {"width_tol": 0})


def test_healthy_runs_are_ok() -> None:
    rng = np.random.default_rng(1)
    worst = max(abs(Moments().compare(_h(_peak(rng, 1e5)), _refs(rng)).scores["max_pull"])
                for _ in range(40))  # fmt: skip
    assert worst < 5.0


def test_a_small_shift_is_flagged_where_per_bin_tests_see_little() -> None:
    rng = np.random.default_rng(2)
    res = Moments().compare(_h(_peak(rng, 1e5, mu=0.3)), _refs(rng))  # 0.15 widths
    assert res.status is Status.FLAGGED
    assert res.scores["shift"] == pytest.approx(0.3, abs=0.05)
    assert abs(res.scores["mean_pull"]) > abs(res.scores["width_pull"])
    assert res.reason.startswith("mean 0.3")
    assert "learned from runs 10, 11, 12, 13" in res.reason


def test_a_wider_peak_is_flagged() -> None:
    rng = np.random.default_rng(3)
    res = Moments().compare(_h(_peak(rng, 1e5, sigma=2.16)), _refs(rng))  # 8 % wider
    assert res.status is Status.FLAGGED
    assert res.scores["width_ratio"] == pytest.approx(1.08, abs=0.02)
    assert "(+8" in res.reason or "(+7" in res.reason


def test_jittery_references_allow_more() -> None:
    rng = np.random.default_rng(4)
    loose = [_h(_peak(rng, 1e5, rng.normal(0, 0.3)), 10 + i) for i in range(6)]
    res = Moments().compare(_h(_peak(rng, 1e5, mu=0.3)), loose)
    assert res.status is Status.OK
    assert res.scores["max_pull"] < 3


def test_skips_and_empty() -> None:
    rng = np.random.default_rng(5)
    refs = _refs(rng)
    assert Moments().compare(_h(np.ones((4, 4))), refs).status is Status.SKIPPED
    labelled = _h(_peak(rng, 1e5), labels=(tuple(f"c{i}" for i in range(80)),))
    res = Moments().compare(labelled, refs)
    assert res.status is Status.SKIPPED
    assert "labelled" in res.reason
    res = Moments().compare(_h(_peak(rng, 500)), refs)
    assert res.status is Status.SKIPPED
    assert "min_entries=1000" in res.reason
    res = Moments().compare(_h(np.zeros(80)), refs)
    assert res.status is Status.FLAGGED
    assert res.reason.startswith("no entries in data")
    spike = np.zeros(80)
    spike[40] = 5000
    res = Moments().compare(_h(spike), [_h(spike, 2)])
    assert res.status is Status.SKIPPED
    assert "no width" in res.reason


def test_scores_are_finite_and_cut_follows_n_tests() -> None:
    rng = np.random.default_rng(6)
    res = Moments(n_tests=10**8).compare(_h(_peak(rng, 1e5)), _refs(rng))
    assert all(math.isfinite(v) for v in res.scores.values())
    assert res.scores["cut"] > 6.0
    assert res.score == pytest.approx(abs(res.scores["max_pull"]) / res.scores["cut"])
