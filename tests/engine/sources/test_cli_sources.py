"""``autodqm runs`` and ``autodqm fetch`` against a local directory and the HTTPS server."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from engine.cli import main
from engine.sources.local import LocalSource

if TYPE_CHECKING:
    from conftest import HTTPSServer

REPO = Path(__file__).resolve().parents[3]
DATASET = ["--series", "Run2022", "--sample", "SingleMuon"]
RUNS = [357100, 357101, 357129, 357131, 357205]


def tls_args(server: HTTPSServer, cache: Path) -> list[str]:
    pki = server.pki
    return [
        "--source-url", server.url, "--cert", str(pki.client_cert), "--key",
        str(pki.client_key), "--ca", str(pki.ca), "--cache-dir", str(cache),
    ]  # fmt: skip


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_local_source_online_layout(dqm_tree: Path) -> None:
    runs = LocalSource(dqm_tree).runs("online", "CSC")
    assert sorted(runs) == [357100, 357131]
    assert runs[357131].subsystem == "CSC"
    assert runs[357131].path is not None
    assert runs[357131].path.name == "DQM_V0001_CSC_R000357131.root"
    assert sorted(LocalSource(dqm_tree).runs("online", "EMTF")) == [357100]


def test_runs_json_local(capsys: pytest.CaptureFixture[str], dqm_tree: Path) -> None:
    code, out, err = run_cli(
        capsys, "runs", *DATASET, "--data-dir", str(dqm_tree), "--format", "json"
    )
    assert (code, err) == (0, "")
    rows = json.loads(out)
    assert [r["run"] for r in rows] == RUNS
    assert set(rows[0]) >= {"run", "size", "date", "url", "certified"}
    assert all(r["certified"] is None for r in rows)
    assert rows[0]["url"].startswith("file://")
    assert rows[0]["size"] == Path(rows[0]["url"][len("file://") :]).stat().st_size
    assert rows[1]["processing"] == "Run2022C-PromptReco-v1"


def test_runs_json_https_with_golden_url(
    capsys: pytest.CaptureFixture[str], https_server: HTTPSServer, tmp_path: Path
) -> None:
    golden = https_server.url + "golden.json"
    code, out, err = run_cli(
        capsys, "runs", *DATASET, *tls_args(https_server, tmp_path), "--format", "json",
        "--golden", golden, "--processing", "Run2022C-PromptReco-v1",
    )  # fmt: skip
    assert (code, err) == (0, "")
    rows = json.loads(out)
    assert [(r["run"], r["certified"]) for r in rows] == [
        (357100, True), (357101, False), (357131, True),
    ]  # fmt: skip
    assert rows[0]["url"].startswith(https_server.url + "OfflineData/Run2022/SingleMuon/")
    assert rows[0]["date"].endswith("+00:00")


def test_runs_table(capsys: pytest.CaptureFixture[str], dqm_tree: Path) -> None:
    golden = str(dqm_tree / "golden.json")
    code, out, _ = run_cli(
        capsys, "runs", *DATASET, "--data-dir", str(dqm_tree), "--golden", golden
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["run", "size", "date", "processing", "certified"]
    assert lines[1].startswith("357100")
    assert "MB" in lines[1]
    assert "UTC" in lines[1]
    assert lines[1].endswith("✓ yes")
    assert lines[2].endswith("✗ no")
    assert lines[-1] == f"5 runs of Run2022/SingleMuon in {dqm_tree}, 2 certified"
    code, out, _ = run_cli(
        capsys, "runs", *DATASET, "--data-dir", str(dqm_tree), "--processing", "nope"
    )
    assert out == f"no runs of Run2022/SingleMuon with processing 'nope' in {dqm_tree}\n"


def test_fetch_local_prints_the_path_last(
    capsys: pytest.CaptureFixture[str], dqm_tree: Path
) -> None:
    code, out, err = run_cli(capsys, "fetch", "357101", *DATASET, "--data-dir", str(dqm_tree))
    assert (code, err) == (0, "")
    path = Path(out.splitlines()[-1])
    assert path.is_file()
    assert path.name == "DQM_V0001_R000357101__SingleMuon__Run2022C-PromptReco-v1__DQMIO.root"
    code, out, _ = run_cli(
        capsys, "fetch", "357101", *DATASET, "--data-dir", str(dqm_tree),
        "--processing", "Run2022C-10Dec2022-v1",
    )  # fmt: skip
    assert Path(out.splitlines()[-1]).name.endswith("__Run2022C-10Dec2022-v1__DQMIO.root")


def test_fetch_https(
    capsys: pytest.CaptureFixture[str], https_server: HTTPSServer, tmp_path: Path
) -> None:
    code, out, err = run_cli(capsys, "fetch", "357131", *DATASET, *tls_args(https_server, tmp_path))
    assert (code, err) == (0, "")  # stderr is not a terminal: no progress line
    path = Path(out.splitlines()[-1])
    assert path == tmp_path / "Run2022" / "SingleMuon" / https_server.name(357131)
    assert path.stat().st_size > 1000


@pytest.mark.parametrize(
    ("run", "message"),
    [
        ("357130", "run 357130 not found in Run2022/SingleMuon (closest: 357129, 357131)"),
        ("400000", "run 400000 not found in Run2022/SingleMuon (closest: 357205)"),
    ],
)
def test_fetch_unknown_run(
    capsys: pytest.CaptureFixture[str], https_server: HTTPSServer, tmp_path: Path, run: str,
    message: str,
) -> None:  # fmt: skip
    code, out, err = run_cli(capsys, "fetch", run, *DATASET, *tls_args(https_server, tmp_path))
    assert code == 2
    assert out == ""
    assert err == f"autodqm fetch: error: {message}\n"


@pytest.mark.parametrize("bad", ["abc", "0", "-5", "3.5"])
def test_fetch_bad_run_number(capsys: pytest.CaptureFixture[str], bad: str) -> None:
    code, out, err = run_cli(capsys, "fetch", bad, *DATASET, "--data-dir", ".")
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert f"run number must be a positive integer, got {bad!r}" in err


def test_fetch_without_a_source(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "fetch", "357100", *DATASET)
    assert code == 2
    assert err.startswith("autodqm fetch: error: no data source: pass --data-dir DIR")
    assert err.count("\n") == 1


def test_fetch_wrong_certificate_is_one_line(
    capsys: pytest.CaptureFixture[str], https_server: HTTPSServer, tmp_path: Path
) -> None:
    args = tls_args(https_server, tmp_path)
    args[args.index("--cert") + 1] = str(https_server.pki.other_cert)
    args[args.index("--key") + 1] = str(https_server.pki.other_key)
    code, out, err = run_cli(capsys, "fetch", "357100", *DATASET, *args)
    assert (code, out) == (2, "")
    assert "rejected the client certificate" in err
    assert err.count("\n") == 1
    assert [p for p in tmp_path.rglob("*") if p.is_file() and p.name != ".lock"] == []


def test_fetch_progress_on_a_terminal(https_server: HTTPSServer, tmp_path: Path) -> None:
    """In a real subprocess whose stderr is a pseudo-terminal."""
    master, slave = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "engine.cli", "fetch", "357100", *DATASET,
         *tls_args(https_server, tmp_path)],
        stdout=subprocess.PIPE, stderr=slave, env=env, timeout=60, check=False,
    )  # fmt: skip
    os.close(slave)
    progress = os.read(master, 10_000).decode()
    os.close(master)
    assert proc.returncode == 0, progress
    assert "\r" in progress
    assert "100%" in progress
    assert "MB" in progress
    last = proc.stdout.decode().splitlines()[-1]
    assert Path(last) == tmp_path / "Run2022" / "SingleMuon" / https_server.name(357100)
