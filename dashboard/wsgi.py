"""Dashboard layer: the WSGI entry point for gunicorn/waitress (``dashboard.wsgi:server``).

The app is built on first access of ``server`` (or ``app``), never at import: from the
service TOML named by ``AUTODQM_CONFIG`` if set (its ``[storage] cache_dir`` is the
results store, and alerts are acknowledged through the service layer), else from
``Settings.from_env()`` (the store in ``AUTODQM_CACHE_DIR``, read-only use)::

    AUTODQM_CONFIG=config/autodqm.toml gunicorn -w 2 -b 127.0.0.1:8050 dashboard.wsgi:server
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import Any

from dash import Dash

from engine.settings import Settings


def build(env: Mapping[str, str] | None = None) -> Dash:
    """The dashboard app configured from environment variables (see the module docstring)."""
    from dashboard.app import create_app
    from engine.registry import build_registry
    from engine.service_config import load_service_config
    from engine.store import open_store

    env = os.environ if env is None else env
    settings = Settings.from_env(env)
    registry = build_registry(load_external=settings.load_external_plugins)
    path = env.get("AUTODQM_CONFIG", "")
    if path:
        config = load_service_config(path, registry)
        return create_app(config, open_store(config.storage.cache_dir), registry=registry)
    return create_app(settings, open_store(settings.cache_dir), registry=registry)


@functools.cache
def _app() -> Dash:
    return build()


def __getattr__(name: str) -> Any:
    """``server`` (the Flask WSGI app) and ``app`` (the Dash app), built on first access."""
    if name == "app":
        return _app()
    if name == "server":
        return _app().server
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
