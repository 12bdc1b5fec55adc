"""Engine layer: what every data source offers (local directory, DQM GUI over HTTPS)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

#: ``progress(bytes_done, bytes_total)``, called while a file is being fetched.
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class RunFile:
    """One DQM file of a run, wherever it lives.

    ``path`` is set for files on a local disk, ``url`` for files on a server; ``size`` is
    the listed size in bytes and ``date`` the listed modification time (ISO 8601, UTC),
    both as the source reports them.
    """

    run: int
    series: str
    sample: str
    processing: str
    size: int
    path: Path | None = None
    url: str | None = None
    date: str = ""
    subsystem: str | None = None  # online files are per subsystem


def processing_rank(processing: str) -> tuple[int, str]:
    """Sort key: PromptReco first, then Express, then anything else (re-recos by name)."""
    if "PromptReco" in processing:
        return (0, processing)
    if "Express" in processing:
        return (1, processing)
    return (2, processing)


class Source(Protocol):
    """A place runs come from. Errors are ``DQMError`` subclasses with one-line messages."""

    def files(self, series: str, sample: str) -> list[RunFile]:
        """Every DQM file of a dataset, sorted by run, preferred processing first."""
        ...

    def runs(self, series: str, sample: str, processing: str | None = None) -> dict[int, RunFile]:
        """The chosen file of each run: ``processing`` if given, else PromptReco if present."""
        ...

    def fetch(self, rf: RunFile, progress: Progress | None = None) -> Path:
        """A local path to the complete file (downloaded into the file cache if remote)."""
        ...
