"""`autodqm compare`: the contract of DESIGN.md, and every bad input of this layer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main

GDIR = "DQMData/Run {run}/CSC/Run summary/CSCOfflineMonitor/"
RNG = np.random.default_rng(7)
SHAPE = np.exp(-0.5 * ((np.arange(40) - 20) / 6.0) ** 2) * 1000 + 20


def fname(run: int) -> str:
    return f"DQM_V0001_R{run:09d}__SingleMuon__Run2022C-PromptReco-v1__DQMIO.root"


def write_config(
    tmp_path: Path, hists: list[dict[str, object]], name: str = "CSC", **extra: object
) -> Path:
    cfg = {"main_gdir": "DQMData/Run {0}/CSC/Run summary/CSCOfflineMonitor/", "hists": hists}
    cfg.update(extra)
    p = tmp_path / f"{name}.json"
    p.write_text(json.dumps(cfg))
    return p


@pytest.fixture
def runs(root_file, make_hist):
    """A data run (357130) with one shifted 1D histogram, and two reference runs."""

    def one(run: int, *, shifted: bool = False, empty: bool = False, skip: str = "") -> Path:
        rng = np.random.default_rng(run)
        shape = np.roll(SHAPE, 8) if shifted else SHAPE
        hists = {
            "Segments/hSnhits": rng.poisson(SHAPE).astype(float),
            "Segments/hSTimeCombined": rng.poisson(shape).astype(float),
            "recHits/hRHGlobalp1": np.zeros(40) if empty else rng.poisson(SHAPE).astype(float),
            "Occupancy/hORecHits": rng.poisson(np.full((36, 20), 200.0)).astype(float),
        }
        g = GDIR.format(run=run)
        content = {g + k: make_hist(v, run, path=k) for k, v in hists.items() if k != skip}
        return root_file(content, name=fname(run))

    return one


def run_cli(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_contract(tmp_path, runs, capsys) -> None:
    cfg = write_config(
        tmp_path,
        [
            {"path": "Segments/hS*"},
            {"path": "recHits/hRHGlobalp1"},
            {"path": "Occupancy/hORecHits", "norm_type": "row"},
            {"path": "Segments/hSTimeVsZ"},
        ],
        comparators=["beta_binomial", "ks_test", "pull_values"],
    )
    data, r1, r2 = runs(357130, shifted=True), runs(357100), runs(357101)
    code, out, err = run_cli(
        capsys, "compare", data, r1, r2, "--subsystem", cfg, "--format", "json"
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["data_run"] == 357130
    assert doc["reference_runs"] == [357100, 357101]
    assert doc["subsystem"] == "CSC"
    assert doc["missing"] == ["Segments/hSTimeVsZ"]
    by = {(r["histogram"], r["comparator"]): r for r in doc["results"]}
    # 1D histograms get beta_binomial and ks_test, the 2D one beta_binomial and pull_values;
    # the deciding (calibrated) tests run on every histogram they apply to
    one_d = ("Segments/hSTimeCombined", "Segments/hSnhits", "recHits/hRHGlobalp1")
    deciding = ("history_pca", "variation_scan", "moments")
    assert set(by) == {
        *((h, c) for h in one_d for c in ("beta_binomial", "ks_test", *deciding)),
        ("Occupancy/hORecHits", "beta_binomial"),
        ("Occupancy/hORecHits", "pull_values"),
        ("Occupancy/hORecHits", "history_pca"),
        ("Occupancy/hORecHits", "variation_scan"),
    }
    assert {c for (_, c), r in by.items() if r["decides"]} == set(deciding)
    for r in doc["results"]:
        assert set(r) >= {"histogram", "comparator", "status", "scores", "reason", "entries"}
        assert r["status"] in {"ok", "flagged", "skipped", "error"}
    assert by[("Segments/hSTimeCombined", "beta_binomial")]["status"] == "flagged"
    assert by[("Segments/hSTimeCombined", "ks_test")]["status"] == "flagged"
    assert set(by[("Segments/hSTimeCombined", "beta_binomial")]["scores"]) == {"chi2", "max_pull"}
    assert set(by[("Segments/hSTimeCombined", "ks_test")]["scores"]) >= {"ks"}
    assert by[("Segments/hSnhits", "beta_binomial")]["status"] == "ok"
    assert by[("Segments/hSnhits", "beta_binomial")]["entries"] == pytest.approx(
        SHAPE.sum(), rel=0.05
    )


def test_table_is_sorted_by_severity(tmp_path, runs, capsys) -> None:
    cfg = write_config(tmp_path, [{"path": "Segments/*"}], comparators=["beta_binomial"])
    code, out, _ = run_cli(
        capsys,
        "compare",
        runs(357130, shifted=True),
        runs(357100),
        "--subsystem",
        cfg,
        "--format",
        "table",
    )
    assert code == 0
    rows = [line for line in out.splitlines() if line[:1] in "✗!○✓"]
    assert rows[0].startswith("✗ flagged")
    assert "hSTimeCombined" in rows[0]
    assert rows[-1].startswith("✓ ok")


def test_empty_data_histogram_is_flagged(tmp_path, runs, capsys) -> None:
    cfg = write_config(tmp_path, [{"path": "recHits/hRHGlobalp1"}], comparators=["beta_binomial"])
    code, out, _ = run_cli(
        capsys,
        "compare",
        runs(357130, empty=True),
        runs(357100),
        "--subsystem",
        cfg,
        "--format",
        "json",
    )
    assert code == 0
    (res,) = [r for r in json.loads(out)["results"] if r["comparator"] == "beta_binomial"]
    assert res["status"] == "flagged"
    assert "no entries in data" in res["reason"]


def test_histogram_missing_in_references(tmp_path, runs, capsys) -> None:
    cfg = write_config(tmp_path, [{"path": "Segments/hSnhits"}], comparators=["beta_binomial"])
    data = runs(357130)
    r_with, r_without = runs(357100), runs(357101, skip="Segments/hSnhits")
    code, out, _ = run_cli(
        capsys, "compare", data, r_with, r_without, "--subsystem", cfg, "--format", "json"
    )
    assert code == 0
    (res,) = [r for r in json.loads(out)["results"] if r["comparator"] == "beta_binomial"]
    assert res["status"] == "ok"
    assert "1 of 2 reference runs lack this histogram" in res["reason"]
    code, out, _ = run_cli(
        capsys, "compare", data, r_without, "--subsystem", cfg, "--format", "json"
    )
    (res,) = [r for r in json.loads(out)["results"] if r["comparator"] == "beta_binomial"]
    assert res["status"] == "skipped"
    assert "no usable reference" in res["reason"]


def test_mismatched_binning_skips(tmp_path, root_file, make_hist, capsys) -> None:
    cfg = write_config(tmp_path, [{"path": "h"}], comparators=["beta_binomial"])
    d = root_file(
        {GDIR.format(run=2) + "h": make_hist(np.ones(10) * 50, 2, path="h")}, name=fname(2)
    )
    r = root_file(
        {GDIR.format(run=1) + "h": make_hist(np.ones(12) * 50, 1, path="h")}, name=fname(1)
    )
    code, out, _ = run_cli(capsys, "compare", d, r, "--subsystem", cfg, "--format", "json")
    assert code == 0
    (res,) = [r for r in json.loads(out)["results"] if r["comparator"] == "beta_binomial"]
    assert res["status"] == "skipped"
    assert "binning" in res["reason"]


def test_comparators_override(tmp_path, runs, capsys) -> None:
    cfg = write_config(tmp_path, [{"path": "Segments/hSnhits"}])
    code, out, _ = run_cli(
        capsys,
        "compare",
        runs(357130),
        runs(357100),
        "--subsystem",
        cfg,
        "--comparators",
        "ks_test",
        "--format",
        "json",
    )
    assert code == 0
    assert [r["comparator"] for r in json.loads(out)["results"]] == ["ks_test"]
    code, _, err = run_cli(
        capsys, "compare", runs(357130), runs(357100), "--subsystem", cfg, "--comparators", "ks"
    )
    assert code == 2
    assert "unknown comparator 'ks'" in err
    assert "ks_test" in err


def test_run_overrides(tmp_path, runs, capsys) -> None:
    cfg = write_config(tmp_path, [{"path": "Segments/hSnhits"}], comparators=["beta_binomial"])
    code, out, _ = run_cli(
        capsys,
        "compare",
        runs(357130),
        runs(357100),
        "--subsystem",
        cfg,
        "--data-run",
        "357130",
        "--ref-runs",
        "357100",
        "--format",
        "json",
    )
    assert code == 0
    assert json.loads(out)["reference_runs"] == [357100]


def one_line_error(capsys, *args: object) -> str:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1, err
    return err


def test_bad_inputs_give_one_line_errors(tmp_path, runs, capsys) -> None:
    cfg = write_config(tmp_path, [{"path": "Segments/hSnhits"}], comparators=["beta_binomial"])
    data, ref = runs(357130), runs(357100)
    err = one_line_error(capsys, "compare", tmp_path / "nope.root", ref, "--subsystem", cfg)
    assert "nope.root" in err
    text = tmp_path / "notroot.root"
    text.write_text("<html>404 Not Found</html>")
    assert "notroot.root" in one_line_error(capsys, "compare", text, ref, "--subsystem", cfg)
    cut = tmp_path / fname(357131)
    cut.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    assert fname(357131) in one_line_error(capsys, "compare", cut, ref, "--subsystem", cfg)
    assert "abc" in one_line_error(
        capsys, "compare", data, ref, "--subsystem", cfg, "--data-run", "abc"
    )
    err = one_line_error(
        capsys, "compare", data, ref, "--subsystem", "CSCC", "--config-dir", tmp_path
    )
    assert "'CSCC'" in err
    assert "'CSC'" in err
    err = one_line_error(capsys, "compare", data, data, "--subsystem", cfg)
    assert "357130" in err
    other = write_config(
        tmp_path, [{"path": "h"}], name="RPC", main_gdir="DQMData/Run {0}/RPC/Run summary/"
    )
    err = one_line_error(capsys, "compare", data, ref, "--subsystem", other)
    assert "no RPC histograms" in err
    bad = tmp_path / "Bad.json"
    bad.write_text('{"main_gdir": "x/", "hists": [{"path": "h", "norm_tpye": "row"}]}')
    err = one_line_error(capsys, "compare", data, ref, "--subsystem", bad)
    assert "Bad.json" in err
    assert "norm_type" in err


def test_decoded_files_are_kept_in_the_store_unless_told_not(tmp_path, runs, capsys) -> None:
    import diskcache

    cfg = write_config(tmp_path, [{"path": "Segments/hSnhits"}], comparators=["ks_test"])
    data, r1, r2 = runs(357130), runs(357101), runs(357102)
    off = tmp_path / "off"
    code, out_off, _ = run_cli(capsys, "compare", data, r1, r2, "-s", cfg, "--no-store",
                               "--store", off, "--format", "json")  # fmt: skip
    assert code == 0
    assert not off.exists()
    store = tmp_path / "kept"
    for _ in range(2):  # decoded, then read back from the store: the same answer
        code, out, _ = run_cli(capsys, "compare", data, r1, r2, "-s", cfg, "--store", store,
                               "--format", "json")  # fmt: skip
        assert code == 0
        assert json.loads(out) == json.loads(out_off)
    with diskcache.Cache(str(store)) as c:
        kept = sorted(Path(k[2]).name for k in c.iterkeys() if k[0] == "file_contents")
    assert kept == sorted(p.name for p in (data, r1, r2))
