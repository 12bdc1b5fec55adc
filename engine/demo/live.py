"""Engine layer (demo data): the live demo — a service config over the sample data and a
golden JSON that grows one certified run at a time.

``autodqm demo`` writes :func:`write_service_config` next to the sample data, seeds the
growing golden JSON with :func:`seed_golden` and adds :func:`certify_next` to the
service's scheduler, so the dashboard's overview fills up while one watches.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from engine.certification import load_golden
from engine.demo.catalog import names
from engine.demo.generate import MANIFEST
from engine.demo.runs import SAMPLE, SERIES

logger = logging.getLogger(__name__)

__all__ = [
    "SEED_RUNS",
    "DemoService",
    "certified_count",
    "certify_next",
    "follow_data_set",
    "seed_golden",
    "service_dir",
    "write_service_config",
]

#: Certified runs the growing golden JSON starts with (at most half of the certifiable ones).
SEED_RUNS = 5


@dataclass(frozen=True, slots=True)
class DemoService:
    """Where the live demo keeps its service: the config, the growing golden JSON, the store."""

    directory: Path

    @property
    def config(self) -> Path:
        return self.directory / "autodqm.toml"

    @property
    def golden(self) -> Path:
        return self.directory / "golden.json"

    @property
    def cache(self) -> Path:
        return self.directory / "cache"

    @property
    def data_set(self) -> Path:
        """A copy of the sample data's manifest: which data set the store's results are of."""
        return self.directory / "data-set.json"


def service_dir(data_dir: Path) -> DemoService:
    """The service directory of a sample data directory: ``<data_dir>-service`` beside it."""
    data = data_dir.resolve()
    return DemoService(data.parent / f"{data.name}-service")


def follow_data_set(svc: DemoService, data_dir: Path) -> bool:
    """Start a new store and golden JSON when the sample data was replaced since the last start.

    The service directory keeps a copy of the data set's manifest. When the manifest in
    ``data_dir`` differs (``autodqm demo-data --force`` wrote other runs), the stored
    results are of files that are gone: the store and the growing golden JSON are removed
    and the copy renewed. A directory without a copy (made by an older version) is kept.

    Returns:
        True when the store was reset.
    """
    manifest = (data_dir / MANIFEST).read_text()
    reset = svc.data_set.is_file() and svc.data_set.read_text() != manifest
    if reset:
        logger.warning("%s was replaced since %s was made: starting a new results store",
                       data_dir, svc.directory)  # fmt: skip
        shutil.rmtree(svc.cache, ignore_errors=True)
        svc.golden.unlink(missing_ok=True)
    svc.directory.mkdir(parents=True, exist_ok=True)
    _write_atomic(svc.data_set, manifest)
    return reset


def _toml(value: str | Path) -> str:
    return json.dumps(str(value))  # a JSON string is a TOML basic string


def write_service_config(
    svc: DemoService,
    data_dir: Path,
    config_dir: Path,
    *,
    dashboard_url: str,
    poll_seconds: float = 5.0,
    workers: int = 2,
) -> Path:
    """Write the demo's service config (rewritten on every start: the URL may change).

    Args:
        svc: The demo's service directory (created if absent).
        data_dir: The sample data (a local source in the DQM GUI layout).
        config_dir: The subsystem configs (``<NAME>.json`` for each demo subsystem).
        dashboard_url: Base of the alerts' deep links.
        poll_seconds: How often the growing golden JSON is re-read.
        workers: (run, subsystem) jobs processed at the same time.

    Returns:
        The TOML file.
    """
    svc.directory.mkdir(parents=True, exist_ok=True)
    subsystems = ", ".join(_toml(n) for n in names())
    text = f"""\
# autodqm demo: written by `autodqm demo` on every start (edits are overwritten).
[storage]
cache_dir = {_toml(svc.cache)}
data_dir = {_toml(svc.directory / "data")}

[source]
kind = "local"
path = {_toml(data_dir.resolve())}

[certification]
kind = "golden_json"
path = {_toml(svc.golden)}
poll_seconds = {poll_seconds:g}

[[watch]]
series = {_toml(SERIES)}
sample = {_toml(SAMPLE)}
subsystems = [{subsystems}]
config_dir = {_toml(config_dir.resolve())}

[alerts]
webhooks = []
email_to = []
dashboard_url = {_toml(dashboard_url)}

[scheduler]
workers = {workers}
"""
    _write_atomic(svc.config, text)
    return svc.config


def _write_atomic(path: Path, text: str) -> None:
    """Write ``path`` whole (a reader never sees half a file)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _dump_golden(path: Path, runs: dict[int, list[list[int]]]) -> None:
    body = {str(r): ranges for r, ranges in sorted(runs.items())}
    _write_atomic(path, json.dumps(body, indent=1) + "\n")


def _certifiable(source: Path) -> dict[int, list[list[int]]]:
    return {r: [list(x) for x in ranges] for r, ranges in sorted(load_golden(source).items())}


def seed_golden(source: Path, target: Path, count: int = SEED_RUNS) -> int:
    """Start the growing golden JSON ``target`` with the first certifiable runs of ``source``.

    An existing ``target`` is kept (a restarted demo resumes). The seed is ``count`` runs,
    at most half of the certifiable ones (at least one), so some remain to certify live.

    Returns:
        The number of runs ``target`` certifies.
    """
    if target.is_file():
        return len(load_golden(target))
    all_runs = _certifiable(source)
    n = min(count, max(1, (len(all_runs) + 1) // 2))
    _dump_golden(target, dict(list(all_runs.items())[:n]))
    logger.info("%s: seeded with %d of %d certifiable runs", target, n, len(all_runs))
    return n


def certify_next(source: str, target: str, now: datetime | None = None) -> int | None:
    """Job ``demo:certify``: add the lowest certifiable run of ``source`` not yet in ``target``.

    Args:
        source: The sample data's golden JSON (every certifiable run).
        target: The growing golden JSON the service polls.
        now: When (for the log only).

    Returns:
        The run certified now, or None when every run already is (or a file is unreadable:
        logged, the scheduler goes on).
    """
    try:
        done = {r: [list(x) for x in ranges] for r, ranges in load_golden(target).items()}
        todo = [(r, x) for r, x in _certifiable(Path(source)).items() if r not in done]
        if not todo:
            return None
        run, ranges = todo[0]
        done[run] = ranges
        _dump_golden(Path(target), done)
    except Exception:  # a job's top: log, keep the scheduler alive
        logger.exception("demo: certifying the next run failed")
        return None
    logger.info("demo: run %d certified%s; %d to go", run,
                f" at {now.isoformat()}" if now else "", len(todo) - 1)  # fmt: skip
    return run


def certified_count(target: Path) -> int:
    """How many runs the growing golden JSON certifies now."""
    return len(load_golden(target))
