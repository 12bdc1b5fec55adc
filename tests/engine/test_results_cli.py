"""`autodqm results RUN --config FILE`: what the store holds, as JSON or a table; bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main
from engine.provenance import make_provenance
from engine.store import SubsystemRecord, open_store
from engine.types import ComparisonResult, Status

SUBSYSTEM = {
    "main_gdir": "DQMData/Run {0}/CSC/Run summary/CSCOfflineMonitor/",
    "hists": [{"path": "Segments/hSnhits"}],
}
CONFIG = """\
[storage]
cache_dir = "cache"
[source]
kind = "local"
path = "demo"
[certification]
kind = "golden_json"
path = "demo/golden.json"
[[watch]]
series = "Run2022"
sample = "SingleMuon"
subsystems = ["CSC", "RPC"]
config_dir = "subs"
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "subs").mkdir()
    for name in ("CSC", "RPC"):
        (tmp_path / "subs" / f"{name}.json").write_text(json.dumps(SUBSYSTEM))
    (tmp_path / "svc.toml").write_text(CONFIG)
    return tmp_path


def store_run(site: Path, run: int, sub: str, digest: str = "abc") -> SubsystemRecord:
    results = (
        ComparisonResult("beta_binomial", "Segments/hSnhits", Status.FLAGGED, 12.5, 1.0,
                         "chi2 12.5 > 1", {"chi2": 12.5, "max_pull": 6.1}, 5000.0,
                         {"pulls": np.arange(4.0)}),
        ComparisonResult("ks_test", "Segments/hSnhits", Status.OK, 0.1, 0.35, "", {"ks": 0.1}, 5000.0),
    )  # fmt: skip
    prov = make_provenance(
        digest, site / "subs" / f"{sub}.json", [run - 2, run - 1], "the 2 before"
    )
    rec = SubsystemRecord(run, sub, "Run2022/SingleMuon", (run - 2, run - 1), "the 2 before",
                          prov, results, ("Segments/hGone",))  # fmt: skip
    store = open_store(site / "cache")
    store.put_report(rec)
    store.close()
    return rec


def run_cli(site: Path, *args: str) -> int:
    return main(["results", *args, "--config", str(site / "svc.toml")])


def test_json_one_object_per_subsystem(site: Path, capsys) -> None:
    store_run(site, 357130, "CSC")
    store_run(site, 357130, "RPC", digest="old")
    s = open_store(site / "cache")
    s.mark_stale("RPC", "new")
    s.close()
    assert run_cli(site, "357130", "--format", "json") == 0
    out = json.loads(capsys.readouterr().out)
    assert [o["subsystem"] for o in out] == ["CSC", "RPC"]
    csc = out[0]
    assert set(csc) == {
        "data_run", "reference_runs", "subsystem", "results", "missing", "provenance",
        "stale", "reference_reason",
    }  # fmt: skip
    assert csc["data_run"] == 357130
    assert csc["reference_runs"] == [357128, 357129]
    assert csc["missing"] == ["Segments/hGone"]
    assert csc["reference_reason"] == "the 2 before"
    assert csc["stale"] is False
    assert out[1]["stale"] is True
    first = csc["results"][0]
    assert first["histogram"] == "Segments/hSnhits"
    assert first["comparator"] == "beta_binomial"
    assert first["status"] == "flagged"
    assert first["scores"] == {"chi2": 12.5, "max_pull": 6.1}
    assert first["entries"] == 5000
    assert "arrays" not in first
    assert csc["provenance"]["config_digest"] == "abc"
    assert csc["provenance"]["created"].endswith("Z")
    assert csc["provenance"]["code_version"].startswith("0.1.0")


def test_json_one_subsystem(site: Path, capsys) -> None:
    store_run(site, 357130, "CSC")
    store_run(site, 357130, "RPC")
    assert run_cli(site, "357130", "--subsystem", "RPC", "--format", "json") == 0
    assert [o["subsystem"] for o in json.loads(capsys.readouterr().out)] == ["RPC"]


def test_table(site: Path, capsys) -> None:
    store_run(site, 357130, "CSC", digest="old")
    s = open_store(site / "cache")
    s.mark_stale("CSC", "new")
    s.close()
    assert run_cli(site, "357130") == 0
    out = capsys.readouterr().out
    assert "CSC run 357130 vs 357128, 357129: 1 flagged, 0 error, 0 skipped, 1 ok" in out
    assert "✗ flagged" in out
    assert "Segments/hSnhits" in out
    assert "? missing Segments/hGone" in out
    assert "references: the 2 before" in out
    assert "provenance: config " in out
    assert "STALE" in out


def test_nothing_stored_for_the_run(site: Path, capsys) -> None:
    for run in (357100, 357129, 357131):
        store_run(site, run, "CSC")
    assert run_cli(site, "357130") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err == (
        f"autodqm results: error: run 357130: nothing stored in {site / 'cache'} "
        "(stored runs: 3 from 357100 to 357131 latest; closest: 357100, 357129, 357131)\n"
    )


def test_no_store_yet(site: Path, capsys) -> None:
    assert run_cli(site, "357130") == 2
    err = capsys.readouterr().err
    assert f"run 357130: nothing stored in {site / 'cache'} (no results store there yet" in err
    assert not (site / "cache").exists()  # reading never creates the store


def test_unknown_subsystem_for_the_run(site: Path, capsys) -> None:
    store_run(site, 357130, "CSC")
    assert run_cli(site, "357130", "--subsystem", "CSX") == 2
    err = capsys.readouterr().err
    assert "run 357130: no CSX results stored" in err
    assert "(stored subsystems: CSC) (did you mean 'CSC'?)" in err


@pytest.mark.parametrize("bad", ["abc", "-5", "0", "357130.5"])
def test_run_not_a_number_is_a_one_line_usage_error(site: Path, capsys, bad: str) -> None:
    assert run_cli(site, bad) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"run number must be a positive integer, got {bad!r}" in err


def test_bad_service_config_is_one_line(site: Path, capsys) -> None:
    (site / "svc.toml").write_text(CONFIG.replace("[storage]", "[storag]"))
    assert run_cli(site, "357130") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "storag: unknown section (did you mean 'storage'?)" in err


def test_config_is_required(capsys) -> None:
    assert main(["results", "357130"]) == 2
    assert "--config" in capsys.readouterr().err
