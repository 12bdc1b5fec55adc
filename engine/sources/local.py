"""Engine layer: a local directory in the DQM GUI's Offline layout (an EOS mount, demo data).

``OfflineData/<series>/<sample>/000NNNNxx/DQM_V0001_R000NNNNNN__<sample>__<processing>__DQMIO.root``
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path

from engine.errors import DQMError
from engine.sources.base import Progress, RunFile, processing_rank

OFFLINE_NAME = re.compile(
    r"^DQM_V\d+_R(?P<run>\d{9})__(?P<sample>[^_](?:[^_]|_(?!_))*)__(?P<processing>.+?)__DQMIO\.root$"
)


class LocalSource:
    """Runs found under ``root/OfflineData/<series>/<sample>/``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def files(self, series: str, sample: str) -> list[RunFile]:
        """Every DQM file of a dataset, sorted by run then preferred processing."""
        base = self.root / "OfflineData" / series / sample
        if not base.is_dir():
            msg = f"{self.root}: no dataset {series}/{sample} (no directory {base})"
            raise DQMError(msg)
        out = []
        for p in base.glob("*/DQM_V*_R*__DQMIO.root"):
            m = OFFLINE_NAME.match(p.name)
            if m and m["sample"] == sample:
                st = p.stat()
                date = datetime.fromtimestamp(st.st_mtime, tz=UTC).isoformat(timespec="seconds")
                out.append(
                    RunFile(
                        int(m["run"]), series, sample, m["processing"], st.st_size, p, None, date
                    )
                )
        return sorted(out, key=lambda f: (f.run, processing_rank(f.processing)))

    def runs(self, series: str, sample: str, processing: str | None = None) -> dict[int, RunFile]:
        """The chosen file of each run: ``processing`` if given, else PromptReco if present."""
        best: dict[int, RunFile] = {}
        for f in self.files(series, sample):
            if processing is None or f.processing == processing:
                best.setdefault(f.run, f)
        return best

    def fetch(self, rf: RunFile, progress: Progress | None = None) -> Path:
        """The file itself (it is already local)."""
        if rf.path is None or not rf.path.is_file():
            msg = f"run {rf.run}: {rf.path or rf.url} is not a local file"
            raise DQMError(msg)
        if progress is not None:
            progress(rf.size, rf.size)
        return rf.path
