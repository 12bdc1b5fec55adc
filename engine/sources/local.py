"""Engine layer: a local directory in the DQM GUI's layouts (an EOS mount, demo data).

``OfflineData/<series>/<sample>/000NNNNxx/DQM_V0001_R000NNNNNN__<sample>__<processing>__DQMIO.root``;
the Online layout ``OnlineData/original/000NNxxxx/000NNNNxx/DQM_V0001_<Subsys>_R000NNNNNN.root``
is series ``"online"`` with the subsystem as sample (as in :mod:`engine.sources.dqmgui`).
"""

from __future__ import annotations

import glob
import os
from datetime import UTC, datetime
from pathlib import Path

from engine.errors import DQMError
from engine.sources.base import Progress, RunFile, processing_rank
from engine.sources.listing import (
    OFFLINE_NAME,
    ONLINE_SERIES,
    check_name,
    parse_file_name,
    pick_runs,
)

__all__ = ["OFFLINE_NAME", "LocalSource"]


class LocalSource:
    """Runs found under ``root/OfflineData/<series>/<sample>/`` (or ``root/OnlineData/``)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def files(self, series: str, sample: str) -> list[RunFile]:
        """Every DQM file of a dataset, sorted by run then preferred processing."""
        check_name(series, "--series")
        check_name(sample, "--sample")
        if series == ONLINE_SERIES:
            base = self.root / "OnlineData" / "original"
            pattern = f"*/*/DQM_V*_{glob.escape(sample)}_R*.root"
        else:
            base = self.root / "OfflineData" / series / sample
            pattern = "*/DQM_V*_R*__DQMIO.root"
        if not base.is_dir():
            msg = f"{self.root}: no dataset {series}/{sample} (no directory {base})"
            raise DQMError(msg)
        out = []
        subsystem = sample if series == ONLINE_SERIES else None
        for p in base.glob(pattern):
            parsed = parse_file_name(p.name, series, sample)
            if parsed is not None:
                st = p.stat()
                date = datetime.fromtimestamp(st.st_mtime, tz=UTC).isoformat(timespec="seconds")
                run, proc = parsed
                out.append(RunFile(run, series, sample, proc, st.st_size, p, None, date, subsystem))
        return sorted(out, key=lambda f: (f.run, processing_rank(f.processing)))

    def runs(self, series: str, sample: str, processing: str | None = None) -> dict[int, RunFile]:
        """The chosen file of each run: ``processing`` if given, else PromptReco if present."""
        return pick_runs(self.files(series, sample), processing)

    def fetch(self, rf: RunFile, progress: Progress | None = None) -> Path:
        """The file itself (it is already local)."""
        if rf.path is None or not rf.path.is_file():
            msg = f"run {rf.run}: {rf.path or rf.url} is not a local file"
            raise DQMError(msg)
        if progress is not None:
            progress(rf.size, rf.size)
        return rf.path
