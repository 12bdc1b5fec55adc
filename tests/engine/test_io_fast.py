"""Tests of engine.io's fast TH1x/TH2x decoder: it reads exactly what uproot's full read gives.

The reference is the same file opened with ``open_dqm(path, fast=False)`` (uproot's
generic deserialisation); ``DQMFile.fallbacks`` shows whether the fast path was used.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uproot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from uproot.writing.identify import to_TAxis, to_TH1x, to_TH2x, to_TList, to_TObjString

from engine.io import open_dqm, write_dqm
from engine.io._fast import FAST_CLASSES, read_key
from engine.types import HistData

STORAGES = [np.float32, np.float64, np.int32, np.int16, np.int8]
ROOT_CLASS = {np.float32: "F", np.float64: "D", np.int32: "I", np.int16: "S", np.int8: "C"}
GDIR = "DQMData/Run 7/Sub/Run summary/"


def assert_identical(fast: HistData, full: HistData) -> None:
    """Every field equal: arrays bit for bit (NaN == NaN), same dtype and shape."""
    for name in ("path", "run", "title", "kind", "labels", "axis_titles", "bin_entries"):
        assert getattr(fast, name) == getattr(full, name), name
    assert fast.entries == full.entries or (np.isnan(fast.entries) and np.isnan(full.entries))
    assert fast.variances is not None
    assert full.variances is not None
    for a, b in [(fast.values, full.values), (fast.variances, full.variances)]:
        assert a.dtype == b.dtype == np.float64
        assert a.shape == b.shape
        assert a.tobytes() == b.tobytes()
    assert len(fast.edges) == len(full.edges)
    for a, b in zip(fast.edges, full.edges, strict=True):
        assert a.dtype == np.float64
        assert a.tobytes() == b.tobytes()


def read_both(path: Path) -> tuple[dict[str, tuple[HistData, HistData]], int]:
    """{path: (fast, full)} for every histogram in the file, and the fast reader's fallbacks."""
    with open_dqm(path) as fast, open_dqm(path, fast=False) as full:
        pairs = {n: (fast.read(n), full.read(n)) for n in fast.list_histograms("")}
        assert full.fallbacks == 0
        return pairs, fast.fallbacks


def decode_directly(path: Path, full_path: str) -> HistData:
    """The fast decoder alone on one key (no fallback possible)."""
    directory, _, name = full_path.rpartition("/")
    with uproot.open(path) as f:
        return read_key(f[directory].key(name), full_path, 7)


def sample_hists(make_hist: Callable[..., HistData]) -> dict[str, HistData]:
    rng = np.random.default_rng(11)
    many = [f"bin {i} label" for i in range(12)]
    return {
        "A/plain1d": make_hist(rng.poisson(30, 40), title="plain", axis_titles=("x", "y")),
        "A/varbins1d": make_hist(
            rng.poisson(5, 4), edges=[[-2.0, 0.0, 0.5, 3.0, 100.0]], title="variable"
        ),
        "A/labels1d": make_hist(
            rng.poisson(5, 12), labels=[many], title="ü long " + "t" * 300, axis_titles=("é",)
        ),
        "A/partial1d": make_hist(rng.poisson(5, 5), labels=[("", "two", "", "", "five")]),
        "A/empty1d": make_hist(np.zeros(7), title=""),
        "A/weighted1d": make_hist(
            [3.0, -1.0, 0.0, 7.0], variances=[2.5, 0.5, 0.0, -1.0], entries=123.0
        ),
        "B/plain2d": make_hist(
            rng.poisson(20, (15, 9)),
            edges=[np.linspace(-1, 2, 16), np.linspace(0, 9, 10)],
            axis_titles=("ix", "iy"),
        ),
        "B/labels2d": make_hist(
            rng.poisson(3, (4, 3)), labels=[("W-2", "W-1", "W0", "W+1"), ("", "RB2", "")]
        ),
        "B/ylabels2d": make_hist(rng.poisson(3, (2, 3)), labels=[None, ("a", "b", "c")]),
        "B/varbins2d": make_hist(
            rng.poisson(3, (3, 2)), edges=[[0.0, 1.0, 5.0, 6.0], [-1.0, 0.0, 10.0]]
        ),
        "B/empty2d": make_hist(np.zeros((3, 4))),
    }


@pytest.mark.parametrize("storage", STORAGES, ids=lambda t: f"TH{ROOT_CLASS[t]}")
def test_fast_read_equals_full_read_for_every_storage(
    tmp_path: Path, make_hist: Callable[..., HistData], storage: type
) -> None:
    hists = {GDIR + k: h for k, h in sample_hists(make_hist).items()}
    if storage in (np.float32, np.float64):  # integer storage cannot hold them
        odd = [np.nan, np.inf, -0.0, 1e-300, -2.0]
        hists[GDIR + "A/nonfinite"] = make_hist(odd, variances=odd[::-1], entries=np.nan)
    path = tmp_path / "f.root"
    write_dqm(path, hists, float_type=storage)
    pairs, fallbacks = read_both(path)
    assert fallbacks == 0
    assert len(pairs) == len(hists)
    for fast, full in pairs.values():
        assert_identical(fast, full)
    with uproot.open(path) as f:
        classes = {c for _, c in f.iterclassnames(recursive=True) if c.startswith("TH")}
    assert classes == {f"TH1{ROOT_CLASS[storage]}", f"TH2{ROOT_CLASS[storage]}"}
    assert classes <= set(FAST_CLASSES)
    for key in ("A/labels1d", "B/labels2d", "B/plain2d"):
        assert_identical(decode_directly(path, GDIR + key), pairs[GDIR + key][1])


def test_fast_read_keeps_labels_titles_and_negative_variances(
    tmp_path: Path, make_hist: Callable[..., HistData]
) -> None:
    """Spot checks against known numbers, not only against uproot."""
    hists = {GDIR + k: h for k, h in sample_hists(make_hist).items()}
    path = tmp_path / "f.root"
    write_dqm(path, hists, float_type=np.float64)
    with open_dqm(path) as f:
        lab = f.read(GDIR + "A/labels1d")
        w = f.read(GDIR + "A/weighted1d")
        two = f.read(GDIR + "B/labels2d")
        assert f.fallbacks == 0
    assert lab.labels == (tuple(f"bin {i} label" for i in range(12)),)
    assert lab.title == "ü long " + "t" * 300
    assert lab.axis_titles == ("é", "")
    np.testing.assert_array_equal(w.values, [3.0, -1.0, 0.0, 7.0])
    np.testing.assert_array_equal(w.variances, [2.5, 0.5, 0.0, 0.0])  # negative -> 0
    assert w.entries == 123.0
    assert two.labels == (("W-2", "W-1", "W0", "W+1"), ("", "RB2", ""))
    np.testing.assert_array_equal(two.values, hists[GDIR + "B/labels2d"].values)


def test_files_from_uproots_own_writer(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    path = tmp_path / "np.root"
    with uproot.recreate(path) as f:
        f["d/h1"] = np.histogram(rng.normal(size=500), bins=25)
        f["d/h2"] = np.histogram2d(rng.normal(size=500), rng.normal(size=500), bins=(7, 5))
        f["d/hvar"] = np.histogram(rng.normal(size=50), bins=[-3.0, -1.0, 0.0, 0.1, 4.0])
    pairs, fallbacks = read_both(path)
    assert fallbacks == 0
    assert len(pairs) == 3
    for fast, full in pairs.values():
        assert_identical(fast, full)
        assert fast.values.sum() > 0


def _th1(**extra: Any) -> Any:
    data = np.array([0.0, 1.0, 2.0, 3.0, 0.5], dtype=np.float32)
    args: dict[str, Any] = {
        "fEntries": 6.0,
        "fTsumw": 6.0,
        "fTsumw2": 6.0,
        "fTsumwx": 0.0,
        "fTsumwx2": 0.0,
        "fSumw2": np.array([0.0, 1.0, 4.0, 9.0, 0.25]),
        "fXaxis": to_TAxis("xaxis", "x", 3, 0.0, 3.0),
    }
    args.update(extra)
    return to_TH1x("h", "title", data, **args)


def test_members_the_fast_path_skips_or_handles(tmp_path: Path) -> None:
    """Fitted functions, a filled buffer, contours, options, no fSumw2: still fast, same."""
    path = tmp_path / "members.root"
    with uproot.recreate(path) as f:
        f["d/functions"] = _th1(fFunctions=to_TList([to_TObjString("fit"), to_TObjString("x")]))
        f["d/buffer"] = _th1(fBufferSize=3, fBuffer=np.array([1.0, 2.0, 3.0]))
        f["d/contour"] = _th1(fContour=np.array([0.5, 1.5]), fOption="E1 " * 100)
        f["d/nosumw2"] = _th1(fSumw2=np.zeros(0))
        f["d/timeformat"] = _th1(
            fXaxis=to_TAxis("xaxis", "x", 3, 0.0, 3.0, fTimeFormat="%H:%M " * 60)
        )
        f["d/th2nosumw2"] = to_TH2x(
            "h2", "t", np.arange(20, dtype=np.float64) - 5, 0, 0, 0, 0, 0, 0, 0, 0,
            np.zeros(0), to_TAxis("xaxis", "", 3, 0, 1), to_TAxis("yaxis", "", 2, 0, 1),
        )  # fmt: skip
    pairs, fallbacks = read_both(path)
    assert fallbacks == 0
    assert len(pairs) == 6
    for fast, full in pairs.values():
        assert_identical(fast, full)
    assert pairs["d/nosumw2"][0].variances is not None
    np.testing.assert_array_equal(pairs["d/nosumw2"][0].variances, [1.0, 2.0, 3.0])


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    storage=st.sampled_from(STORAGES),
    shape=st.one_of(
        st.tuples(st.integers(1, 40)), st.tuples(st.integers(1, 12), st.integers(1, 12))
    ),
    seed=st.integers(0, 2**16),
    labelled=st.booleans(),
    variable=st.booleans(),
)
def test_random_histograms_fast_equals_full(
    tmp_path: Path,
    make_hist: Callable[..., HistData],
    storage: type,
    shape: tuple[int, ...],
    seed: int,
    labelled: bool,
    variable: bool,
) -> None:
    rng = np.random.default_rng(seed)
    values = rng.integers(-3, 100, shape).astype(np.float64)
    edges = [
        np.cumsum(rng.uniform(0.1, 5.0, n + 1)) if variable else np.linspace(-1.5, 2.5, n + 1)
        for n in shape
    ]
    labels = [[f"L{i}" if rng.random() < 0.7 else "" for i in range(n)] for n in shape]
    h = make_hist(
        values,
        edges=edges,
        variances=rng.normal(10, 10, shape),
        labels=labels if labelled else (),
        title="t" * int(rng.integers(0, 400)),
    )
    path = tmp_path / f"r{seed}.root"
    write_dqm(path, {GDIR + "h": h}, float_type=storage)
    pairs, fallbacks = read_both(path)
    assert fallbacks == 0
    assert_identical(*pairs[GDIR + "h"])
