"""autodqm engine: everything that is not the web UI. Never imports dash or plotly."""

from __future__ import annotations

__version__ = "0.1.0"
