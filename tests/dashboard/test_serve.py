"""Starting the dashboard: ``dashboard.wsgi`` from the environment, and ``autodqm serve``."""

from __future__ import annotations

import importlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from dashboard.app import create_app
from dashboard.wsgi import build
from engine.service_config import load_service_config
from engine.settings import ROOT
from engine.store import Store


def test_wsgi_import_builds_nothing(tmp_path: Path) -> None:
    code = "import dashboard.wsgi, threading; print(threading.active_count())"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert out.stdout.strip() == "1"
    assert list(tmp_path.iterdir()) == []
    assert hasattr(importlib.import_module("dashboard.wsgi"), "build")


def test_wsgi_from_settings_env(tmp_path: Path, store: Store) -> None:
    app = build({"AUTODQM_CACHE_DIR": str(tmp_path / "store")})
    body = app.server.test_client().get("/api/v1/health").get_json()
    assert body["runs"] == 3


def test_wsgi_from_service_config(service_toml: Path, store: Store) -> None:
    app = build({"AUTODQM_CONFIG": str(service_toml)})
    client = app.server.test_client()
    assert client.get("/api/v1/runs").get_json()["runs"] == [357102, 357101, 357100]


def test_ack_goes_through_the_service_layer(service_toml: Path, store: Store) -> None:
    app = create_app(load_service_config(service_toml), store)
    client = app.server.test_client()
    resp = client.post("/api/v1/alerts/357102-CSC/ack", json={"by": "bob"})
    assert resp.status_code == 200
    assert store.get_alert("357102-CSC").acked_by == "bob"  # type: ignore[union-attr]
    assert app.server.extensions["autodqm"]._service is not None
    assert store.audit(1)[0]["by"] == "bob"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _health(port: int, proc: subprocess.Popen[str]) -> tuple[dict[str, object], str]:
    """``/api/v1/health`` once it answers (within 60 s), and the ``Server`` header."""
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=2) as r:
                return json.loads(r.read()), r.headers.get("Server", "")
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the dashboard did not answer in 60 s"
            time.sleep(0.2)


def test_autodqm_serve_answers_http(service_toml: Path, store: Store) -> None:
    store.close()
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "serve", "--config", str(service_toml),
         "--port", str(port)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        body, server = _health(port, proc)
        assert body["runs"] == 3
        assert server == "waitress"  # the production server, never Flask's development one
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            assert r.status == 200
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert f"http://127.0.0.1:{port}/" in err
    assert "development server" not in err


def test_gunicorn_serves_the_wsgi_app_with_two_workers(service_toml: Path, store: Store) -> None:
    """The README's deployment command (the ``deploy`` extra's gunicorn)."""
    store.close()
    port = _free_port()
    gunicorn = Path(sys.executable).parent / "gunicorn"
    proc = subprocess.Popen(
        [str(gunicorn), "-w", "2", "-b", f"127.0.0.1:{port}", "dashboard.wsgi:server"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "AUTODQM_CONFIG": str(service_toml)},
    )  # fmt: skip
    try:
        body, server = _health(port, proc)
        assert body["runs"] == 3
        assert server.startswith("gunicorn")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/runs", timeout=5) as r:
            assert json.loads(r.read())["runs"] == [357102, 357101, 357100]
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert err.count("Booting worker") == 2


def test_serve_with_a_bad_config_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[storage]\ncache_dirr = 'x'\n")
    out = subprocess.run(
        [sys.executable, "-m", "engine.cli", "serve", "--config", str(bad)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1
    assert "bad.toml" in out.stderr
