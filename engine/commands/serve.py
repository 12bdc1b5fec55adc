"""Engine layer: ``autodqm serve --config FILE`` — the dashboard over the results store.

Serves with waitress, a production WSGI server (a runtime dependency). The dashboard (dash) is imported inside :func:`run`, never at import time, so
the engine stays free of the web stack. For several worker
processes use gunicorn (``pip install 'autodqm[deploy]'``) on ``dashboard.wsgi:server``
with ``AUTODQM_CONFIG=FILE``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import waitress

from engine.registry import build_registry
from engine.service_config import load_service_config
from engine.settings import Settings
from engine.store import open_store

NAME = "serve"
HELP = "serve the dashboard and the REST API (default http://127.0.0.1:8050)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, required=True, help="service config (TOML)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8050, help="port to listen on")
    p.add_argument("--threads", type=int, default=8, help="waitress worker threads")


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    registry = build_registry(load_external=settings.load_external_plugins)
    config = load_service_config(args.config, registry)
    store = open_store(config.storage.cache_dir)
    from dashboard.app import create_app  # the web stack only when serving

    app = create_app(config, store, registry=registry)
    url = f"http://{args.host}:{args.port}/"
    sys.stderr.write(f"autodqm dashboard on {url} (store {config.storage.cache_dir})\n")
    waitress.serve(app.server, host=args.host, port=args.port, threads=args.threads)
    return 0
