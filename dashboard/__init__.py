"""autodqm dashboard: the Dash web app (pages, callbacks, figure builders, REST API)."""

from __future__ import annotations
