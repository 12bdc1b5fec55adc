"""Dashboard layer: the drill-down's inputs — subsystem config, plot options, DQM file arrays.

The data and reference bin contents are not stored: they are read from the runs' DQM
files through the service config's source, with small LRU caches (the file listing for
a minute, each histogram keyed by file path, mtime and name) so a revisit is fast.
"""

from __future__ import annotations

import fnmatch
import functools
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dashboard.state import AppState
from engine.config import SubsystemConfig, find_subsystem, load_subsystem
from engine.errors import DQMError
from engine.io import open_dqm
from engine.subsystem_model import HistConfig, comparator_params
from engine.types import HistData

logger = logging.getLogger(__name__)

#: How long a source's file listing is reused (seconds).
LISTING_TTL = 60.0
_listing_lock = threading.Lock()
_listings: dict[tuple[int, str, str, str | None], tuple[float, dict[int, Any]]] = {}


@dataclass
class DrillInputs:
    """What the drill-down draws: the data histogram, the references, and why any is missing."""

    data: HistData | None
    refs: list[HistData] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


# -- configs ---------------------------------------------------------------------------------
def subsystem_config(st: AppState, name: str) -> SubsystemConfig | None:
    """The subsystem config the app knows (service watches, else ``config_dir``), or None."""
    if st.config is not None:
        for w in st.config.watches:
            if name in w.configs:
                return w.configs[name]
    if st.settings is not None:
        try:
            path = find_subsystem(name, st.settings.config_dir)
            return _load_config(str(path), path.stat().st_mtime)
        except (DQMError, OSError) as err:
            logger.info("no subsystem config for %s: %s", name, err)
    return None


@functools.lru_cache(maxsize=32)
def _load_config(path: str, _mtime: float) -> SubsystemConfig:
    from engine.registry import build_registry

    return load_subsystem(path, build_registry())


def hist_config(sub: SubsystemConfig, path: str) -> HistConfig | None:
    """The first config entry whose path pattern matches ``path`` (as the planner picks)."""
    return next((h for h in sub.hists if fnmatch.fnmatchcase(path, h.path)), None)


def plot_options(
    st: AppState, sub: SubsystemConfig | None, path: str, comparator: str
) -> dict[str, Any]:
    """``figure_for`` options of one histogram: ``logx``/``logy`` from its ``opts``, and the
    pull scale and cut of the comparator as configured (``pull_cap``, ``pull_cut``)."""
    opts: dict[str, Any] = {}
    hc = hist_config(sub, path) if sub is not None else None
    if hc is None or sub is None:
        return opts
    opts["logx"] = "logx" in hc.opts
    opts["logy"] = "logy" in hc.opts
    if "plot_title" in hc.opts:
        opts["title"] = hc.opts["plot_title"]
    try:
        registry = _registry(st)
        if comparator in registry:
            params = comparator_params(sub, hc, path, comparator, registry)
            comp = registry.build(comparator, params)
            for key in ("pull_cap", "pull_cut"):
                value = getattr(comp, key, None)
                if isinstance(value, (int, float)):
                    opts[key] = float(value)
    except Exception as err:  # noqa: BLE001  # options only style the plot: never fail the page
        logger.warning("plot options of %s/%s (%s): %s", sub.name, path, comparator, err)
    return opts


def plot_kind(st: AppState, comparator: str) -> str:
    """The comparator's ``plot_kind`` ("overlay" for a comparator the registry lacks)."""
    registry = _registry(st)
    return str(registry.get(comparator).plot_kind) if comparator in registry else "overlay"


def _registry(st: AppState) -> Any:
    if st.registry is None:
        from engine.registry import build_registry

        st.registry = build_registry()
    return st.registry


# -- DQM files -------------------------------------------------------------------------------
def _source(st: AppState) -> Any:
    service = st.service()
    return None if service is None else service.source


def _files(st: AppState, source: Any, dataset: str, processing: str | None) -> dict[int, Any]:
    series, _, sample = dataset.partition("/")
    key = (id(source), series, sample, processing)
    now = time.monotonic()
    with _listing_lock:
        hit = _listings.get(key)
        if hit is not None and now - hit[0] < LISTING_TTL:
            return hit[1]
    files: dict[int, Any] = source.runs(series, sample, processing)
    with _listing_lock:
        _listings[key] = (now, files)
    return files


@functools.lru_cache(maxsize=256)
def read_hist(file: str, _mtime: float, full_path: str, path: str, run: int) -> HistData:
    """One histogram of a DQM file (cached by file, modification time and name)."""
    with open_dqm(file) as f:
        return f.read(full_path, path=path, run=run)


def load_inputs(
    st: AppState,
    sub: SubsystemConfig | None,
    dataset: str,
    run: int,
    refs: tuple[int, ...],
    path: str,
) -> DrillInputs:
    """Read ``path`` from the data run's and each reference run's DQM file.

    Never raises: a file the source cannot give, or a histogram a file lacks, becomes a
    sentence in ``problems`` (the data histogram missing leaves ``data`` None).
    """
    out = DrillInputs(None)
    if sub is None:
        out.problems.append(
            "the subsystem config is not available, so its DQM directory is unknown"
        )
        return out
    source = _source(st)
    if source is None:
        out.problems.append(
            "this dashboard runs without a service config, so it has no data source to read "
            "DQM files from (start it with `autodqm serve --config FILE`)"
        )
        return out
    processing = None
    service = st.service()
    if service is not None and sub.name in service.watched:
        processing = service.watched[sub.name].processing
    try:
        files = _files(st, source, dataset, processing)
    except DQMError as err:
        out.problems.append(f"the source cannot list {dataset}: {err}")
        return out
    for which, r in [("data", run), *(("reference", x) for x in refs)]:
        hist, why = _read_one(source, files, sub, r, path)
        if hist is None:
            out.problems.append(
                f"the DQM file of {which} run {r} is not available from the source ({why})"
            )
        elif which == "data":
            out.data = hist
        else:
            out.refs.append(hist)
    return out


def _read_one(source: Any, files: dict[int, Any], sub: SubsystemConfig, run: int, path: str
              ) -> tuple[HistData | None, str]:  # fmt: skip
    rf = files.get(run)
    if rf is None:
        return None, f"no file of run {run} in the dataset listing"
    try:
        local = Path(source.fetch(rf))
        return read_hist(str(local), local.stat().st_mtime, sub.gdir(run) + path, path, run), ""
    except (DQMError, OSError) as err:
        return None, str(err) or type(err).__name__
