"""Engine layer: run metadata (luminosity, duration, events) for choosing similar references.

Providers each return what they know, with unknown fields None: the demo's
``runs.json``, a DQM file's EventInfo scalars (file size as a last resort), and Run
Registry datasets. :func:`merge_meta` combines them, earlier providers first.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from engine.errors import DQMError
from engine.io import open_dqm
from engine.runregistry import oms_attributes
from engine.sources.base import RunFile

logger = logging.getLogger(__name__)

#: Seconds per lumisection (2^18 LHC orbits).
LS_SECONDS = 23.31


@dataclass(frozen=True, slots=True)
class RunMeta:
    """What is known about a run; None where unknown.

    ``lumi``: integrated (recorded) luminosity in pb⁻¹. ``duration_s``: seconds.
    ``events``: events recorded or processed. ``file_size``: bytes of the DQM file, a
    last-resort proxy for the number of entries. ``origin``: where the values came from.
    """

    run: int
    lumi: float | None = None
    duration_s: float | None = None
    events: int | None = None
    n_lumisections: int | None = None
    file_size: int | None = None
    origin: str = ""

    def merged(self, other: RunMeta) -> RunMeta:
        """This metadata with its unknown fields taken from ``other`` (same run)."""
        filled = {
            f.name: getattr(other, f.name)
            for f in fields(self)
            if getattr(self, f.name) is None and getattr(other, f.name) is not None
        }
        if not filled:
            return self
        origin = ", ".join(o for o in (self.origin, other.origin) if o)
        return replace(self, **filled, origin=origin)

    def duration(self) -> float | None:
        """Duration in seconds; from the lumisection count (x 23.31 s) if not known directly."""
        if self.duration_s is not None:
            return self.duration_s
        return None if self.n_lumisections is None else self.n_lumisections * LS_SECONDS

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def merge_meta(*layers: Mapping[int, RunMeta]) -> dict[int, RunMeta]:
    """Per run, the first known value of each field across ``layers`` (earlier wins)."""
    out: dict[int, RunMeta] = {}
    for layer in layers:
        for run, meta in layer.items():
            out[run] = out[run].merged(meta) if run in out else meta
    return out


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return float(value)


def _int(value: Any) -> int | None:
    v = _num(value)
    return None if v is None else int(v)


def meta_from_demo(out_dir: str | os.PathLike[str]) -> dict[int, RunMeta]:
    """Metadata of the runs listed in a demo directory's ``runs.json`` ({} if absent).

    Raises:
        DQMError: the file exists but is not a list of run objects.
    """
    path = Path(out_dir) / "runs.json"
    if not path.is_file():
        return {}
    try:
        rows = json.loads(path.read_text())
        return {
            int(r["run"]): RunMeta(
                int(r["run"]),
                _num(r.get("lumi")),
                _num(r.get("duration_s")),
                _int(r.get("events")),
                _int(r.get("n_lumisections")),
                origin="runs.json",
            )
            for r in rows
        }
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as err:
        msg = f"{path}: expected a list of runs with 'run', 'lumi', 'duration_s', 'events' ({err})"
        raise DQMError(msg) from err


def meta_from_scalars(run: int, scalars: Mapping[str, int | float | str]) -> RunMeta:
    """Metadata from DQM EventInfo scalars.

    ``iLumiSection`` (last lumisection) gives the lumisection count, ``processedEvents``
    the events, and ``eventTimeStamp - runStartTimeStamp`` (seconds) the duration;
    non-positive values (the -1 placeholders DQM books) mean unknown.
    """
    start, last = _num(scalars.get("runStartTimeStamp")), _num(scalars.get("eventTimeStamp"))
    duration = last - start if start is not None and last is not None and last > start else None
    return RunMeta(
        run,
        duration_s=duration,
        events=_int(scalars.get("processedEvents")),
        n_lumisections=_int(scalars.get("iLumiSection")),
        origin="DQM EventInfo",
    )


def meta_from_dqm_file(path: str | os.PathLike[str], run: int | None = None) -> RunMeta:
    """Metadata from the EventInfo folders of a DQM file (first one with a lumisection).

    Raises:
        FileFormatError: the file cannot be read.
        DQMError: no run number (neither given nor in the file).
    """
    size = Path(path).stat().st_size if Path(path).is_file() else None
    with open_dqm(path) as f:
        run = run if run is not None else f.run
        if run is None:
            msg = f"{path}: no 'DQMData/Run N' directory, and no run number given"
            raise DQMError(msg)
        top = f"DQMData/Run {run}"
        best = RunMeta(run, file_size=size, origin="DQM file size")
        if not f.has_dir(top):
            return best
        for name, _cls in f.keys(top):
            info = meta_from_scalars(run, f.scalars(f"{top}/{name}/Run summary/EventInfo"))
            if info.n_lumisections is not None or info.events is not None:
                return info.merged(best)
        return best


def meta_from_runfiles(
    files: Mapping[int, RunFile], *, read_scalars: bool = True
) -> dict[int, RunMeta]:
    """Metadata of runs from their DQM files: listed size, plus EventInfo for local files.

    A file that cannot be read gives size-only metadata (logged at WARNING); remote
    files are never downloaded for this.
    """
    out: dict[int, RunMeta] = {}
    for run, rf in files.items():
        meta = RunMeta(run, file_size=rf.size or None, origin="DQM file size")
        if read_scalars and rf.path is not None:
            try:
                meta = meta_from_dqm_file(rf.path, run).merged(meta)
            except (DQMError, OSError) as err:
                logger.warning("run %d: no EventInfo metadata: %s", run, err)
        out[run] = meta
    return out


def meta_from_runregistry(datasets: Iterable[Mapping[str, Any]]) -> dict[int, RunMeta]:
    """Metadata from Run Registry datasets (their OMS attributes).

    ``recorded_lumi`` (pb⁻¹), ``duration`` (s), ``ls_duration`` (lumisections) and
    ``hlt_physics_counter`` (events accepted by the HLT physics paths).
    """
    out: dict[int, RunMeta] = {}
    for ds in datasets:
        run = ds.get("run_number")
        if not isinstance(run, int) or isinstance(run, bool):
            continue
        oms = oms_attributes(ds)
        meta = RunMeta(
            run,
            _num(oms.get("recorded_lumi")),
            _num(oms.get("duration")),
            _int(oms.get("hlt_physics_counter")),
            _int(oms.get("ls_duration")),
            origin="Run Registry",
        )
        out[run] = out[run].merged(meta) if run in out else meta
    return out
