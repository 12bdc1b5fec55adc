"""Engine layer: a local directory in the DQM GUI's Offline layout (an EOS mount, demo data).

``OfflineData/<series>/<sample>/000NNNNxx/DQM_V0001_R000NNNNNN__<sample>__<processing>__DQMIO.root``
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from engine.errors import DQMError

OFFLINE_NAME = re.compile(
    r"^DQM_V\d+_R(?P<run>\d{9})__(?P<sample>[^_](?:[^_]|_(?!_))*)__(?P<processing>.+?)__DQMIO\.root$"
)


@dataclass(frozen=True, slots=True)
class RunFile:
    """One DQM file of a run."""

    run: int
    series: str
    sample: str
    processing: str
    path: Path
    size: int


def processing_rank(processing: str) -> tuple[int, str]:
    """Sort key: PromptReco first, then Express, then anything else (re-recos by name)."""
    if "PromptReco" in processing:
        return (0, processing)
    if "Express" in processing:
        return (1, processing)
    return (2, processing)


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
                out.append(
                    RunFile(int(m["run"]), series, sample, m["processing"], p, p.stat().st_size)
                )
        return sorted(out, key=lambda f: (f.run, processing_rank(f.processing)))

    def runs(self, series: str, sample: str) -> dict[int, RunFile]:
        """The preferred file of each run (PromptReco when a run has several)."""
        best: dict[int, RunFile] = {}
        for f in self.files(series, sample):
            best.setdefault(f.run, f)
        return best
