"""`autodqm demo`: generates the sample data once, then compares every certified run."""

from __future__ import annotations

import json

from engine.cli import main


def test_demo_generates_then_compares(tmp_path, capsys) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--dir", str(out), "--runs", "6", "--refs", "2", "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert "generated 6 runs" in captured.err
    reports = json.loads(captured.out)
    golden = {int(r) for r in json.loads((out / "golden.json").read_text())}
    assert {r["data_run"] for r in reports} <= golden
    assert {r["subsystem"] for r in reports} == {"CSC", "DT", "RPC", "EMTF"}
    for rep in reports:
        assert rep["data_run"] not in rep["reference_runs"]
        assert 1 <= len(rep["reference_runs"]) <= 2
        assert set(rep["reference_runs"]) <= golden
        assert rep["results"]
    truth = json.loads((out / "truth.json").read_text())
    flagged = {
        (r["data_run"], r["subsystem"], x["histogram"])
        for r in reports
        for x in r["results"]
        if x["status"] == "flagged"
    }
    strong = {
        (t["run"], t["subsystem"], t["histogram"])
        for t in truth
        if t["level"] == "strong" and t["run"] in {r["data_run"] for r in reports}
    }
    assert strong <= flagged
    # second call reuses the data set
    assert main(["demo", "--dir", str(out), "--refs", "2"]) == 0
    captured = capsys.readouterr()
    assert "generated" not in captured.err
    assert "run " in captured.out
