"""Engine layer (demo data): the run list — numbers, luminosity, duration, certification.

Also the DQM GUI Offline file layout the demo files are written in, and the readers
the benchmark uses (:func:`load_runs`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.demo.catalog import DemoError

SERIES = "Run2022"
SAMPLE = "SingleMuon"
PROCESSING = "Run2022C-PromptReco-v1"
FIRST_RUN = 357100
#: Seconds per lumisection (2^18 LHC orbits).
LS_SECONDS = 23.31
#: SingleMuon events recorded per pb⁻¹ (≈ 300 Hz at 1e34 cm⁻²s⁻¹).
EVENTS_PER_PB = 3.0e4


@dataclass(frozen=True, slots=True)
class RunInfo:
    """One demo run (a row of ``runs.json``); ``lumi`` is the integrated luminosity in pb⁻¹.

    ``healthy``: no failure was injected. ``certified``: listed in ``golden.json``
    (runs with injected failures are certified too: certification misses subtle
    per-histogram defects, which is what autodqm is for). ``path`` is the DQM file,
    relative to the output directory.
    """

    run: int
    lumi: float
    duration_s: float
    n_lumisections: int
    events: int
    low_stats: bool
    healthy: bool
    certified: bool
    path: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def dqm_path(run: int) -> str:
    """``OfflineData/<series>/<sample>/000NNNNxx/DQM_V0001_R000NNNNNN__...__DQMIO.root``."""
    folder = f"{run // 100:07d}xx"
    name = f"DQM_V0001_R{run:09d}__{SAMPLE}__{PROCESSING}__DQMIO.root"
    return f"OfflineData/{SERIES}/{SAMPLE}/{folder}/{name}"


def plan_runs(rng: np.random.Generator, n: int) -> list[RunInfo]:
    """Run numbers (with gaps), luminosities (x10 spread, some low-statistics runs), durations.

    ``healthy`` is provisional (True) here; :func:`with_health` sets it once failures are
    planned. About 15 % of runs are low-statistics; about half of those (short test
    runs) are not certified.
    """
    numbers = FIRST_RUN + np.cumsum(rng.integers(1, 7, n)) - 1
    n_low = max(1, round(0.15 * n)) if n >= 4 else 0
    low = np.zeros(n, dtype=bool)
    if n_low:
        low[rng.choice(np.arange(1, n), n_low, replace=False)] = True
    out = []
    for i in range(n):
        lumi = float(np.exp(rng.uniform(np.log(0.3), np.log(3.0))) if low[i]
                     else np.exp(rng.uniform(np.log(25.0), np.log(250.0))))  # fmt: skip
        inst = rng.uniform(0.6, 2.0) * 1e-2  # pb⁻¹/s, i.e. 0.6-2.0e34 cm⁻²s⁻¹
        duration = lumi / inst
        n_ls = max(1, math.ceil(duration / LS_SECONDS))
        certified = not (low[i] and rng.random() < 0.6)
        out.append(
            RunInfo(
                run=int(numbers[i]),
                lumi=round(lumi, 4),
                duration_s=round(duration, 1),
                n_lumisections=n_ls,
                events=int(rng.poisson(lumi * EVENTS_PER_PB)),
                low_stats=bool(low[i]),
                healthy=True,
                certified=certified,
                path=dqm_path(int(numbers[i])),
            )
        )
    return out


def golden_json(runs: list[RunInfo]) -> dict[str, list[list[int]]]:
    """Certification in golden-JSON form: ``{"357101": [[1, n_ls]], ...}`` for certified runs."""
    return {str(r.run): [[1, r.n_lumisections]] for r in runs if r.certified}


def load_runs(out_dir: str | Path) -> list[RunInfo]:
    """The runs recorded in ``OUT/runs.json`` by ``autodqm demo-data``.

    Raises:
        DemoError: The file is missing or malformed.
    """
    path = Path(out_dir) / "runs.json"
    try:
        return [RunInfo(**row) for row in json.loads(path.read_text())]
    except (OSError, ValueError, TypeError) as err:
        msg = f"{path}: cannot read the demo run list ({err}); regenerate with autodqm demo-data"
        raise DemoError(msg) from err
