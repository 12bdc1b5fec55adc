"""Engine layer: data sources — where runs and their DQM files come from."""

from __future__ import annotations

from engine.sources.base import Progress, RunFile, Source, processing_rank
from engine.sources.local import LocalSource

__all__ = ["LocalSource", "Progress", "RunFile", "Source", "processing_rank"]
