"""Tests of engine.io: ROOT round trips, listing, globbing, scalars and bad-input errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import uproot

from engine.errors import FileFormatError, HistogramNotFound
from engine.io import HISTOGRAM_CLASSES, open_dqm, run_from_filename, write_dqm
from engine.types import HistData, HistKind

RUN = 357130
GDIR = f"DQMData/Run {RUN}/CSC/Run summary/"
NAME = f"DQM_V0001_R000{RUN}__SingleMuon__Run2022C-PromptReco-v1__DQMIO.root"
RNG_SEED = 20240607


def assert_same(got: HistData, want: HistData, *, rtol: float = 0.0) -> None:
    """Every field of a histogram read back equals what was written."""
    assert got.kind == want.kind
    assert got.title == want.title
    assert got.values.shape == want.values.shape
    np.testing.assert_allclose(got.values, want.values, rtol=rtol, atol=0)
    assert want.variances is not None
    assert got.variances is not None
    np.testing.assert_allclose(got.variances, want.variances, rtol=max(rtol, 1e-12))
    assert len(got.edges) == len(want.edges)
    for g, w in zip(got.edges, want.edges, strict=True):
        np.testing.assert_array_equal(g, w)
    want_labels = want.labels + (None,) * (want.ndim - len(want.labels))
    assert got.labels == want_labels
    assert got.axis_titles == (*want.axis_titles, "", "")[:2]
    assert got.entries == want.entries
    if want.is_profile:
        assert got.bin_entries is not None
        np.testing.assert_allclose(got.bin_entries, want.bin_entries, rtol=1e-12)
    else:
        assert got.bin_entries is None
    for arr in (got.values, got.variances, *got.edges):
        assert arr.dtype == np.float64


@pytest.fixture
def sample(make_hist) -> dict[str, HistData]:
    """One histogram of every kind, with titles, labels and irregular binning."""
    rng = np.random.default_rng(RNG_SEED)
    xe = np.array([0.0, 0.5, 2.0, 2.5, 7.0])  # 4 variable-width x bins
    ye = np.array([-3.0, -1.0, 0.0, 4.0, 4.5, 10.0, 11.0])  # 6 variable-width y bins
    n1 = rng.integers(0, 30, 12).astype(float)
    n1[[0, 5]] = 0  # empty profile bins read back as mean 0, error 0
    m1 = np.where(n1 > 0, rng.normal(3.0, 2.0, 12), 0.0)
    v1 = np.where(n1 > 0, rng.uniform(0.01, 0.5, 12), 0.0)
    n2 = rng.integers(0, 9, (4, 6)).astype(float)
    m2 = np.where(n2 > 0, rng.normal(-1.0, 1.0, (4, 6)), 0.0)
    v2 = np.where(n2 > 0, rng.uniform(0.01, 0.5, (4, 6)), 0.0)
    return {
        "Occupancy/hORecHits": make_hist(
            rng.poisson(40, 10).astype(np.float32),
            RUN,
            variances=rng.uniform(1, 90, 10).astype(np.float32),
            title="Rec hits per chamber",
            axis_titles=("chamber", "hits"),
            labels=[("ME+1/1", "", "ME+1/3", "", "", "", "", "", "", "ME-4/2")],
        ),
        "Occupancy/hVarWidth": make_hist(
            [1.0, 2.0, 3.0], RUN, edges=[[0.0, 1.0, 10.0, 100.0]], title="variable x"
        ),
        "Digis/hStripMap": make_hist(
            rng.poisson(7, (4, 6)).astype(np.float32),
            RUN,
            edges=[xe, ye],
            title="strip map",
            axis_titles=("station", "ring"),
            labels=[("S1", "S2", "S3", "S4"), None],
        ),
        "Timing/pTime": make_hist(
            m1,
            RUN,
            kind=HistKind.PROFILE,
            variances=v1,
            bin_entries=n1,
            edges=[np.linspace(-5.0, 7.0, 13)],
            title="mean time",
            axis_titles=("bx", "t [ns]"),
        ),
        "Timing/pTimeMap": make_hist(
            m2,
            RUN,
            kind=HistKind.PROFILE2D,
            variances=v2,
            bin_entries=n2,
            edges=[xe, ye],
            title="mean time map",
            labels=[None, ("a", "b", "c", "d", "e", "f")],
        ),
    }


@pytest.fixture
def sample_file(root_file, sample) -> Path:
    """The sample histograms plus DQM scalars and a non-histogram object."""
    strings = [
        (GDIR + "EventInfo", f"<iRun>i={RUN}</iRun>"),
        (GDIR + "EventInfo", "<fReportSummary>f=0.975</fReportSummary>"),
        (GDIR + "EventInfo", "<sRunType>s=pp run/collisions</sRunType>"),
        (GDIR + "Occupancy", "<nNote>s=not a histogram</nNote>"),
    ]
    return root_file({GDIR + k: h for k, h in sample.items()}, name=NAME, strings=strings)


# -- round trips -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "rel", ["Occupancy/hORecHits", "Occupancy/hVarWidth", "Digis/hStripMap", "Timing/pTime"]
)
def test_round_trip_each_kind(sample_file, sample, rel) -> None:
    with open_dqm(sample_file) as f:
        got = f.read(GDIR + rel)
    assert got.path == GDIR + rel
    assert got.run == RUN
    assert_same(got, sample[rel], rtol=1e-12 if sample[rel].is_profile else 0.0)


def test_round_trip_profile2d(sample_file, sample) -> None:
    with open_dqm(sample_file) as f:
        got = f.read(GDIR + "Timing/pTimeMap", path="pTimeMap", run=5)
    assert (got.path, got.run) == ("pTimeMap", 5)
    assert_same(got, sample["Timing/pTimeMap"], rtol=1e-12)


def test_class_names_on_disk(sample_file) -> None:
    with open_dqm(sample_file) as f:
        assert f.keys(GDIR + "Timing") == [("pTime", "TProfile"), ("pTimeMap", "TProfile2D")]
        assert dict(f.keys(GDIR + "Digis")) == {"hStripMap": "TH2F"}


def test_float32_precision_and_float64_storage(root_file, make_hist, tmp_path) -> None:
    values = np.array([0.1, 1.0 / 3.0, 12345.678, 2.5e-8])
    h = make_hist(values, title="t")
    f32 = root_file({"d/h": h}, name="f32.root")
    f64 = tmp_path / "f64.root"
    write_dqm(f64, {"d/h": h}, float_type=np.float64)
    with open_dqm(f32) as a, open_dqm(f64) as b:
        assert a.keys("d") == [("h", "TH1F")]
        assert b.keys("d") == [("h", "TH1D")]
        np.testing.assert_array_equal(a.read("d/h").values, values.astype(np.float32))
        np.testing.assert_array_equal(b.read("d/h").values, values)
        np.testing.assert_array_equal(a.read("d/h").variances, values)  # fSumw2 is double


@pytest.mark.parametrize(("dtype", "letter"), [(np.int32, "I"), (np.int16, "S"), (np.int8, "C")])
def test_integer_storage_classes(tmp_path, make_hist, dtype, letter) -> None:
    h1 = make_hist([1.0, 5.0, 7.0])
    h2 = make_hist([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    path = tmp_path / "ints.root"
    write_dqm(path, {"h1": h1, "h2": h2}, float_type=dtype)
    with open_dqm(path) as f:
        assert f.keys("") == [("h1", f"TH1{letter}"), ("h2", f"TH2{letter}")]
        assert f"TH1{letter}" in HISTOGRAM_CLASSES
        assert_same(f.read("h1", path="h"), h1)
        assert_same(f.read("h2", path="h"), h2)


def test_2d_orientation_against_uproot_own_writer(tmp_path) -> None:
    """A histogram written by uproot itself (checked against ROOT) reads as [x, y]."""
    path = tmp_path / "np2d.root"
    xe, ye = np.array([0.0, 1.0, 3.0]), np.array([0.0, 1.0, 2.0, 5.0])
    counts, _, _ = np.histogram2d([0.5, 2.0, 2.0], [1.5, 4.0, 4.0], bins=(xe, ye))
    with uproot.recreate(path) as out:
        out["h"] = (counts, xe, ye)
    with open_dqm(path) as f:
        got = f.read("h")
    assert got.kind == HistKind.TH2
    assert got.values.shape == (2, 3)
    assert got.values[0, 1] == 1.0  # x bin 1, y bin 2
    assert got.values[1, 2] == 2.0
    assert got.values.sum() == 3.0
    np.testing.assert_array_equal(got.edges[0], xe)
    np.testing.assert_array_equal(got.edges[1], ye)


def test_written_2d_layout_as_uproot_reads_it(sample_file, sample) -> None:
    """Our writer's cell order is ROOT's: uproot's reader (ROOT-checked) agrees."""
    with uproot.open(sample_file) as raw:
        h = raw[GDIR + "Digis/hStripMap"]
        np.testing.assert_array_equal(h.values(), sample["Digis/hStripMap"].values)
        assert h.member("fXaxis").member("fNbins") == 4


def test_labels_carry_root_bin_numbers(sample_file) -> None:
    """ROOT shows a label only if its TObjString's fUniqueID is its 1-based bin."""
    with uproot.open(sample_file) as raw:
        labels = raw[GDIR + "Occupancy/hORecHits"].member("fXaxis").member("fLabels")
        assert [(str(s), s.member("@fUniqueID")) for s in labels] == [
            ("ME+1/1", 1),
            ("ME+1/3", 3),
            ("ME-4/2", 10),
        ]


def test_profile_statistics_match_fills(tmp_path, make_hist) -> None:
    """Written sums equal what ROOT accumulates from unit-weight fills of the same samples."""
    samples = [np.array([1.0, 2.0, 4.0]), np.array([10.0]), np.array([-1.0, 1.0])]
    n = np.array([len(s) for s in samples], dtype=float)
    mean = np.array([s.mean() for s in samples])
    err2 = np.array([s.var() / len(s) for s in samples])  # ROOT: spread / sqrt(N)
    path = tmp_path / "prof.root"
    write_dqm(path, {"p": make_hist(mean, kind=HistKind.PROFILE, variances=err2, bin_entries=n)})
    with uproot.open(path) as raw:
        p = raw["p"]
        np.testing.assert_allclose(p.values(), mean, rtol=1e-12)
        np.testing.assert_allclose(p.errors(), np.sqrt(err2), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(np.asarray(p.member("fSumw2"))[1:-1], [21.0, 100.0, 2.0])
        np.testing.assert_allclose(np.asarray(p.member("fBinEntries"))[1:-1], n)


def test_profile_needs_bin_entries(tmp_path, make_hist) -> None:
    with pytest.raises(ValueError, match="bin_entries"):
        write_dqm(tmp_path / "p.root", {"p": make_hist([1.0, 2.0], kind=HistKind.PROFILE)})
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path, make_hist) -> None:
    path = tmp_path / "out.root"
    write_dqm(path, {"h": make_hist([1.0, 2.0])})
    before = path.read_bytes()
    bad = make_hist([1.0, 2.0], edges=[[0.0, 1.0, 2.0, 3.0]])  # 3 bins of edges, 2 values
    with pytest.raises(ValueError, match="does not match edges"):
        write_dqm(path, {"h": make_hist([5.0]), "bad": bad})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.root"]


def test_failure_while_writing_removes_temp_file(tmp_path, make_hist) -> None:
    path = tmp_path / "out.root"
    write_dqm(path, {"h": make_hist([1.0, 2.0])})
    before = path.read_bytes()
    with pytest.raises(TypeError):  # 'h' is a histogram, so it cannot be a directory too
        write_dqm(path, {"h": make_hist([5.0])}, strings=[("h", "<iRun>i=1</iRun>")])
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.root"]


# -- listing, globbing, scalars, runs ----------------------------------------------------


def test_scalars_with_slash_in_key_names(sample_file) -> None:
    with open_dqm(sample_file) as f:
        assert f.scalars(GDIR + "EventInfo") == {
            "iRun": RUN,
            "fReportSummary": 0.975,
            "sRunType": "pp run/collisions",
        }
        assert f.keys(GDIR + "EventInfo")[0] == (
            "<fReportSummary>f=0.975</fReportSummary>",
            "TObjString",
        )
        assert f.scalars(GDIR + "Digis") == {}
        assert f.scalars(GDIR + "NoSuchDir") == {}


def test_scalar_parsing_edge_cases(root_file, make_hist) -> None:
    strings = [
        ("d", "<iBad>i=12x</iBad>"),  # not an int: kept as text
        ("d", "<fNeg>f=-2e-3</fNeg>"),
        ("d", "<sEmpty>s=</sEmpty>"),
        ("d", "<iMismatch>i=1</iOther>"),  # not a scalar key
        ("d", "plain string key"),
    ]
    path = root_file({"d/h": make_hist([1.0])}, name="s.root", strings=strings)
    with open_dqm(path) as f:
        assert f.scalars("d") == {"iBad": "12x", "fNeg": -2e-3, "sEmpty": ""}
        assert len(f.keys("d")) == 6


def test_keys_sorted_direct_children(sample_file) -> None:
    with open_dqm(sample_file) as f:
        assert f.keys(GDIR + "Occupancy") == [
            ("<nNote>s=not a histogram</nNote>", "TObjString"),
            ("hORecHits", "TH1F"),
            ("hVarWidth", "TH1F"),
        ]
        assert [n for n, _ in f.keys(GDIR)] == ["Digis", "EventInfo", "Occupancy", "Timing"]


@pytest.mark.parametrize(
    ("directory", "pattern", "expected"),
    [
        (GDIR + "Occupancy", "h*", ["hORecHits", "hVarWidth"]),
        (GDIR + "Occupancy", "*Hits", ["hORecHits"]),
        (GDIR + "Occupancy", "*", ["hORecHits", "hVarWidth"]),  # the TObjString is no histogram
        (GDIR + "Occupancy", "H*", []),  # case-sensitive
        (GDIR + "Occupancy", "hORecHits", ["hORecHits"]),
        (GDIR + "Occupancy", "hNothing", []),
        (GDIR, "Timing/p*Map", ["Timing/pTimeMap"]),
        (GDIR, "Timing/*", ["Timing/pTime", "Timing/pTimeMap"]),
        (GDIR + "Missing", "h*", []),
        (GDIR + "Missing", "hORecHits", []),
    ],
)
def test_expand(sample_file, directory, pattern, expected) -> None:
    with open_dqm(sample_file) as f:
        assert f.expand(directory, pattern) == expected


def test_list_histograms_recursive(sample_file) -> None:
    with open_dqm(sample_file) as f:
        assert f.list_histograms(GDIR) == [
            "Digis/hStripMap",
            "Occupancy/hORecHits",
            "Occupancy/hVarWidth",
            "Timing/pTime",
            "Timing/pTimeMap",
        ]
        assert f.list_histograms(GDIR + "Timing") == ["pTime", "pTimeMap"]
        assert f.list_histograms(GDIR + "EventInfo") == []
        assert f.list_histograms(GDIR + "Missing") == []


def test_has_dir(sample_file) -> None:
    with open_dqm(sample_file) as f:
        assert f.has_dir(GDIR)
        assert f.has_dir("DQMData/")
        assert not f.has_dir(GDIR + "Occupancy/hORecHits")  # a histogram, not a directory
        assert not f.has_dir(GDIR + "Nope")


def test_run_from_directory(root_file, make_hist) -> None:
    path = root_file({"DQMData/Run 42/CSC/Run summary/h": make_hist([1.0])}, name="plain.root")
    with open_dqm(path) as f:
        assert f.run == 42
        assert f.read("DQMData/Run 42/CSC/Run summary/h").run == 42


def test_no_run_directory_gives_none_and_run_zero(root_file, make_hist) -> None:
    path = root_file({"top/h": make_hist([1.0])}, name="norun.root")
    with open_dqm(path) as f:
        assert f.run is None
        assert f.read("top/h").run == 0
        assert f.read("top/h", run=7).run == 7


@pytest.mark.parametrize(
    ("name", "run"),
    [
        (NAME, RUN),
        ("/eos/x/000357xx/DQM_V0001_R000357130__ZeroBias__Run2022C-Express-v1__DQMIO.root", RUN),
        ("DQM_V0001_CSC_R000357130.root", RUN),
        ("DQM_V0001_R000000001__A__B__DQMIO.root", 1),
        ("histos_357130.root", None),
        ("DQM_V0001_R0357130.root", None),
        ("", None),
    ],
)
def test_run_from_filename(name, run) -> None:
    assert run_from_filename(name) == run


# -- bad input -------------------------------------------------------------------------


def assert_one_line_naming(err: pytest.ExceptionInfo[BaseException], path: Path) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    assert str(path) in msg
    return msg


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"hello, this is a text file\n", "not a ROOT file"),
        (b"<!DOCTYPE html><html><body>403 Forbidden</body></html>", "not a ROOT file"),
        (b'{"error": "not found"}', "not a ROOT file"),
        (b"", "empty file"),
        (b"roo", "not a ROOT file"),
    ],
    ids=["text", "html", "json", "zero-bytes", "three-bytes"],
)
def test_not_a_root_file(tmp_path, content, needle) -> None:
    path = tmp_path / "bad.root"
    path.write_bytes(content)
    with pytest.raises(FileFormatError) as err:
        open_dqm(path)
    assert needle in assert_one_line_naming(err, path)


def test_missing_file(tmp_path) -> None:
    path = tmp_path / "absent.root"
    with pytest.raises(FileFormatError) as err:
        open_dqm(str(path))
    assert "no such file" in assert_one_line_naming(err, path)


def test_directory_instead_of_file(tmp_path) -> None:
    with pytest.raises(FileFormatError) as err:
        open_dqm(tmp_path)
    assert "is a directory" in assert_one_line_naming(err, tmp_path)


def test_truncated_file(sample_file) -> None:
    data = sample_file.read_bytes()
    sample_file.write_bytes(data[: len(data) // 2])
    with pytest.raises(FileFormatError) as err:
        open_dqm(sample_file)
    assert "truncated" in assert_one_line_naming(err, sample_file)


def test_corrupt_object_bytes(sample_file) -> None:
    """Garbage inside one histogram's compressed payload fails that read only."""
    with uproot.open(sample_file) as raw:
        key = raw.key(GDIR + "Digis/hStripMap")
        start, size = key.data_cursor.index, key.data_compressed_bytes
    data = bytearray(sample_file.read_bytes())
    data[start + 9 : start + size] = b"\xff" * (size - 9)  # keep the 9-byte block header
    sample_file.write_bytes(bytes(data))
    with open_dqm(sample_file) as f:
        with pytest.raises(FileFormatError) as err:
            f.read(GDIR + "Digis/hStripMap")
        assert "Digis/hStripMap" in assert_one_line_naming(err, sample_file)
        assert f.read(GDIR + "Occupancy/hORecHits").values.shape == (10,)


def test_missing_histogram_suggests_close_match(sample_file) -> None:
    with open_dqm(sample_file) as f, pytest.raises(HistogramNotFound) as err:
        f.read(GDIR + "Occupancy/hORecHit")
    msg = assert_one_line_naming(err, sample_file)
    assert "'hORecHits'" in msg
    assert err.value.close == ("hORecHits",)
    assert err.value.path == GDIR + "Occupancy/hORecHit"
    assert isinstance(err.value, KeyError)


def test_histogram_in_missing_directory(sample_file) -> None:
    with open_dqm(sample_file) as f, pytest.raises(HistogramNotFound) as err:
        f.read(f"DQMData/Run {RUN}/RPC/Run summary/h")
    assert_one_line_naming(err, sample_file)


def test_non_histogram_object(sample_file) -> None:
    with open_dqm(sample_file) as f, pytest.raises(FileFormatError) as err:
        f.read(GDIR + f"EventInfo/<iRun>i={RUN}</iRun>")
    msg = assert_one_line_naming(err, sample_file)
    assert "TObjString" in msg
    assert "iRun" in msg


def test_missing_directory_suggests_close_match(sample_file) -> None:
    with open_dqm(sample_file) as f, pytest.raises(FileFormatError) as err:
        f.keys(GDIR + "Ocupancy")
    msg = assert_one_line_naming(err, sample_file)
    assert repr(GDIR + "Occupancy") in msg


def test_close_releases_file(sample_file) -> None:
    f = open_dqm(sample_file)
    f.close()
    f.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        f.read(GDIR + "Occupancy/hORecHits")
    with open_dqm(sample_file) as g:
        assert g.run == RUN


def test_import_does_not_pull_in_dash_or_plotly() -> None:
    code = "import sys, engine.io; print(sorted(m for m in ('dash', 'plotly') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.stdout.strip() == "[]"
