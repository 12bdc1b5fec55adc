"""``autodqm demo`` live: sample data, scheduler and dashboard in one process, runs being
certified over time; a screenshot of the live overview in headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from engine.settings import ROOT

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--force-prefers-reduced-motion",
]  # fmt: skip

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, r.read()


def _runs(base: str) -> list[int]:
    return list(json.loads(_get(base + "/api/v1/runs")[1])["runs"])


def _screenshot(base: str, tmp_path: Path) -> None:
    """The live overview in headless Chromium, saved like the other browser tests do
    (in a thread of its own: the browser tests' session may hold this thread's loop)."""
    if not Path(CHROMIUM).exists():
        return
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return
    with ThreadPoolExecutor(1) as pool:
        pool.submit(_shoot, sync_playwright, base, tmp_path).result(timeout=60)


def _shoot(sync_playwright: Any, base: str, tmp_path: Path) -> None:
    errors: list[str] = []
    shot = tmp_path / "demo_live_overview.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.set_default_timeout(15_000)
            page.goto(base + "/")
            page.locator("#overview-matrix table.matrix").wait_for()
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert shot.stat().st_size > 5_000
    extra = os.environ.get("AUTODQM_SCREENSHOTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(extra) / shot.name)


def test_demo_certifies_runs_over_time_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    data = tmp_path / "demo"
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "demo", "--dir", str(data), "--runs", "8",
         "--port", str(port), "--interval", "1"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 45
        while True:  # the data is generated first (a few seconds), then the dashboard answers
            try:
                status, body = _get(base + "/api/v1/health")
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "autodqm demo did not answer in 45 s"
                time.sleep(0.3)
        assert status == 200
        assert json.loads(body)["status"] == "ok"
        seen: list[int] = []
        while len(seen) < 2 or not (seen[-1] >= 3 and seen[-1] > seen[-2]):
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, f"runs stored over time: {seen}"
            n = len(_runs(base))
            if not seen or n != seen[-1]:
                seen.append(n)
            time.sleep(0.3)
        status, page = _get(base + "/")
        assert status == 200
        assert b"autodqm" in page
        _screenshot(base, tmp_path)
        certified = json.loads((tmp_path / "demo-service" / "golden.json").read_text())
        assert set(certified) <= set(json.loads((data / "golden.json").read_text()))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"autodqm demo did not stop within 10 s of SIGTERM: {err[-2000:]}")
    assert proc.returncode == 0, err[-2000:]
    assert out.startswith(f"autodqm demo: dashboard at {base} — ")
    assert "runs certified so far, one more every 1 s (Ctrl-C to stop)" in out
