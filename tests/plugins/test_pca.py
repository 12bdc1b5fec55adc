"""pca / autodqm_ml_pca: skipped without a model; with a model trained here, judge shapes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from engine.errors import ConfigError
from engine.registry import Registry
from engine.types import HistData, Status
from plugins.pca import PCA, AutoDQMMLPCA

EDGES = np.linspace(-4.0, 4.0, 51)
N_COMP = 4


def h1(values: object, run: int = 1) -> HistData:
    v = np.asarray(values, dtype=np.float64)
    edges = (EDGES if v.size == EDGES.size - 1 else np.arange(v.size + 1.0),)
    return HistData(path="Digis/hWireTBin", run=run, values=v, variances=None, edges=edges)


def good_run(rng: np.random.Generator, entries: int = 100_000) -> np.ndarray:
    """A 'good' histogram: a Gaussian whose centre and width drift a little run to run."""
    x = rng.normal(rng.uniform(-0.2, 0.2), rng.uniform(0.9, 1.1), entries)
    return np.histogram(x, EDGES)[0].astype(float)


@pytest.fixture(scope="module")
def model() -> dict[str, object]:
    """Trained with numpy SVD on 200 good runs, as AutoDQM-ML trains scikit-learn's PCA."""
    rng = np.random.default_rng(42)
    train = np.array([good_run(rng) for _ in range(200)])
    train /= train.sum(axis=1, keepdims=True)
    mean = train.mean(axis=0)
    _, _, vt = np.linalg.svd(train - mean, full_matrices=False)
    comps = vt[:N_COMP]
    reco = (train - mean) @ comps.T @ comps + mean
    sse = ((train - reco) ** 2).sum(axis=1)
    return {
        "components_": comps.tolist(),
        "mean_": mean.tolist(),
        "n_components_": N_COMP,
        "sse_cut": float(2 * sse.max()),
    }


def test_without_a_model_is_skipped() -> None:
    h = h1(good_run(np.random.default_rng(0)))
    for cls in (PCA, AutoDQMMLPCA):
        res = cls().compare(h, [])
        assert res.status is Status.SKIPPED
        assert res.reason == "no trained PCA model configured for Digis/hWireTBin"
    res = AutoDQMMLPCA(model="models/CSC/hWireTBin.json").compare(h, [])
    assert res.status is Status.SKIPPED
    assert res.reason.endswith(
        "(model files are not read; give components and mean in the config, or use history_pca)"
    )


def test_healthy_run_is_ok(model: dict[str, object]) -> None:
    comp = AutoDQMMLPCA.from_model(model)
    for seed in range(5):
        res = comp.compare(h1(good_run(np.random.default_rng(100 + seed))), [])
        assert res.status is Status.OK, res.reason
        assert 0 <= res.score <= 1
    res = comp.compare(h1(good_run(np.random.default_rng(7))), [])
    assert res.scores["sse"] == pytest.approx(6.712122e-06, rel=1e-6)
    assert res.score == pytest.approx(res.scores["sse"] / comp.sse_cut)  # type: ignore[operator]


def test_distorted_run_is_flagged_with_location(model: dict[str, object]) -> None:
    comp = AutoDQMMLPCA.from_model(model)
    d = good_run(np.random.default_rng(8))
    d[22:25] = 0.0  # three dead channels near the peak
    res = comp.compare(h1(d), [])
    assert res.status is Status.FLAGGED
    assert res.score > 1
    assert res.reason.endswith("components, largest residual at bin 24 [x -0.16 to 0]")
    np.testing.assert_allclose(res.arrays["ref"], res.arrays["reco"] * d.sum())
    assert res.arrays["reco"].sum() == pytest.approx(1.0, abs=0.05)


def test_legacy_pca_reports_the_root_of_the_sse(model: dict[str, object]) -> None:
    d = h1(good_run(np.random.default_rng(7)))
    ml = AutoDQMMLPCA.from_model(model).compare(d, [])
    root_cut = math.sqrt(float(model["sse_cut"]))  # type: ignore[arg-type]
    legacy = PCA.from_model(model, sse_cut=root_cut).compare(d, [])
    assert legacy.scores["sse"] == pytest.approx(math.sqrt(ml.scores["sse"]))
    assert legacy.status is ml.status is Status.OK
    one = PCA.from_model(model, n_components=1, sse_cut=1e-9).compare(d, [])
    assert one.scores["sse"] > legacy.scores["sse"]
    assert "with 1 components" in one.reason


def test_legacy_good_bins(model: dict[str, object]) -> None:
    keep = tuple(range(5, 45))
    comps = np.asarray(model["components_"])[:, keep]
    mean = np.asarray(model["mean_"])[list(keep)]
    comp = PCA(components=tuple(map(tuple, comps)), mean=tuple(mean), good_bins=keep, sse_cut=1.0)
    res = comp.compare(h1(good_run(np.random.default_rng(9))), [])
    assert res.status is Status.OK
    assert np.all(res.arrays["reco"][:5] == 0)
    assert np.all(res.arrays["reco"][45:] == 0)
    assert np.all(res.arrays["reco"][5:45] != 0)


def test_too_few_entries_empty_and_wrong_binning(model: dict[str, object]) -> None:
    comp = AutoDQMMLPCA.from_model(model)
    few = comp.compare(h1(good_run(np.random.default_rng(10), entries=500)), [])
    assert few.status is Status.SKIPPED
    assert few.reason.endswith("entries < min_entries=10000")
    empty = comp.compare(h1(np.zeros(50)), [])
    assert empty.status is Status.FLAGGED
    assert empty.reason == "no entries in data, and the model was trained on non-empty histograms"
    ref = h1(good_run(np.random.default_rng(11)), 2)
    assert (
        comp.compare(h1(np.zeros(50)), [ref]).reason == "no entries in data, references have 99996"
    )
    wrong = comp.compare(h1(np.ones(30) * 1000), [])
    assert wrong.status is Status.SKIPPED
    assert wrong.reason == "the model expects 50 bins, the histogram has 30"


def test_unchanged_by_normalisation(model: dict[str, object]) -> None:
    comp = AutoDQMMLPCA.from_model(model)
    d = good_run(np.random.default_rng(12))
    a, b = comp.compare(h1(d), []), comp.compare(h1(5 * d), [])
    assert a.scores["sse"] == pytest.approx(b.scores["sse"], rel=1e-12)


def test_model_parameters_are_checked() -> None:
    with pytest.raises(ValueError, match="a model needs sse_cut, a positive number; got None"):
        AutoDQMMLPCA(components=((1.0, 0.0),), mean=(0.5, 0.5))
    with pytest.raises(ValueError, match="mean must have 2 entries"):
        AutoDQMMLPCA(components=((1.0, 0.0),), mean=(0.5,), sse_cut=1.0)
    with pytest.raises(ValueError, match=r"n_components must be 1\.\.1 or None, got 3"):
        PCA(components=((1.0, 0.0),), mean=(0.5, 0.5), sse_cut=1.0, n_components=3)
    reg = Registry()
    reg.register(PCA)
    reg.register(AutoDQMMLPCA)
    with pytest.raises(ConfigError, match="unknown parameter 'sse_percentil'"):
        reg.build("pca", {"sse_percentil": 5})
    assert reg.build("autodqm_ml_pca", {}) == AutoDQMMLPCA()


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, 50, elements=st.floats(0, 1e9)))
def test_outputs_always_finite(values: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    comps = np.linalg.qr(rng.normal(size=(50, 3)))[0].T
    comp = AutoDQMMLPCA(
        components=tuple(map(tuple, comps)),
        mean=tuple(np.full(50, 0.02)),
        sse_cut=1e-3,
        min_entries=0,
    )
    res = comp.compare(h1(values), [])
    assert math.isfinite(res.score)
    assert res.score >= 0
    assert all(math.isfinite(v) for v in res.scores.values())
    assert all(np.all(np.isfinite(a)) for a in res.arrays.values())
