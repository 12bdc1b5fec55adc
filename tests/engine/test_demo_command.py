"""`autodqm demo`: `--once` compares every certified run; the live mode's golden JSON and config."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from engine.certification import load_golden
from engine.cli import main
from engine.demo.live import (
    certified_count,
    certify_next,
    follow_data_set,
    seed_golden,
    service_dir,
    write_service_config,
)
from engine.service_config import load_service_config
from engine.settings import ROOT


def test_demo_generates_then_compares(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert (
        main(
            ["demo", "--once", "--dir", str(out), "--runs", "6", "--refs", "2", "--format", "json"]
        )
        == 0
    )
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
    assert main(["demo", "--once", "--dir", str(out), "--refs", "2"]) == 0
    captured = capsys.readouterr()
    assert "generated" not in captured.err
    assert "run " in captured.out


def _golden(path: Path, runs: list[int]) -> Path:
    path.write_text(json.dumps({str(r): [[1, 10 + i]] for i, r in enumerate(runs)}))
    return path


def test_the_live_golden_json_grows_one_run_at_a_time(tmp_path: Path) -> None:
    source = _golden(tmp_path / "all.json", [357100, 357103, 357104, 357108, 357110, 357111])
    target = tmp_path / "svc" / "golden.json"
    target.parent.mkdir()
    assert seed_golden(source, target, count=5) == 3  # at most half: some remain to certify
    assert sorted(load_golden(target)) == [357100, 357103, 357104]
    assert certify_next(str(source), str(target)) == 357108
    assert certify_next(str(source), str(target)) == 357110
    assert certified_count(target) == 5
    assert load_golden(target)[357110] == [(1, 14)]
    assert certify_next(str(source), str(target)) == 357111
    assert certify_next(str(source), str(target)) is None
    assert load_golden(target) == load_golden(source)
    # a restarted demo keeps what was certified
    assert seed_golden(source, target) == 6
    # an unreadable source is logged, not raised (the scheduler goes on)
    assert certify_next(str(tmp_path / "missing.json"), str(target)) is None


def test_the_live_store_follows_a_replaced_data_set(tmp_path: Path) -> None:
    """Results of replaced sample files are not kept; a restart on the same data keeps all."""
    data = tmp_path / "demo"
    data.mkdir()
    (data / "demo-data.json").write_text('{"seed": 1, "runs": 30}')
    svc = service_dir(data)
    svc.cache.mkdir(parents=True)  # an older demo's store, made before the copy existed
    (svc.cache / "cache.db").write_text("results")
    assert follow_data_set(svc, data) is False
    assert (svc.cache / "cache.db").is_file()
    _golden(svc.golden, [357102])
    assert follow_data_set(svc, data) is False  # a restart on the same data
    assert (svc.cache / "cache.db").is_file()
    assert svc.golden.is_file()
    (data / "demo-data.json").write_text('{"seed": 2, "runs": 12}')  # demo-data --force
    assert follow_data_set(svc, data) is True
    assert not svc.cache.exists()
    assert not svc.golden.exists()
    assert svc.data_set.read_text() == '{"seed": 2, "runs": 12}'
    assert follow_data_set(svc, data) is False


def test_the_live_service_config_loads_and_points_at_the_demo(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    data.mkdir()
    svc = service_dir(data)
    assert svc.directory == tmp_path / "demo-service"
    path = write_service_config(
        svc, data, ROOT / "config" / "subsystems", dashboard_url="http://127.0.0.1:9000",
        poll_seconds=2, workers=2,
    )  # fmt: skip
    cfg = load_service_config(path)
    assert cfg.source.kind == "local"
    assert cfg.source.path == data.resolve()
    assert cfg.certification.kind == "golden_json"
    assert cfg.certification.path == svc.golden
    assert cfg.certification.poll_seconds == 2
    assert cfg.storage.cache_dir == svc.cache
    (watch,) = cfg.watches
    assert watch.dataset == "Run2022/SingleMuon"
    assert set(watch.subsystems) == {"CSC", "DT", "RPC", "EMTF"}
    assert cfg.alerts.webhooks == ()
    assert cfg.alerts.email_to == ()
    assert cfg.alerts.dashboard_url == "http://127.0.0.1:9000"
    assert cfg.scheduler.workers == 2


def test_demo_rejects_a_non_positive_interval(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--dir", str(out), "--interval", "0"]) == 2
    assert "--interval" in capsys.readouterr().err
    assert not out.exists()


def test_demo_says_when_its_port_is_taken(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = ["demo", "--dir", str(out), "--runs", "3", "--port", str(port)]
        assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err
    assert "--port" in err
    # the data and the service config were written and stay for the next start
    assert (out / "golden.json").is_file()
    assert (tmp_path / "demo-service" / "autodqm.toml").is_file()
    assert (tmp_path / "demo-service" / "golden.json").is_file()
