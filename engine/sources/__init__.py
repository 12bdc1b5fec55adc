"""Engine layer: data sources — where runs and their DQM files come from."""

from __future__ import annotations

from engine.sources.local import LocalSource, RunFile

__all__ = ["LocalSource", "RunFile"]
