"""Benchmark: one demo run, all configured subsystems, through the service (fetch, compare, store).

Times ``Service.enqueue`` + ``Service.drain`` for the newest certified run of a demo data
set with every demo subsystem (CSC, DT, RPC, EMTF), with 1 and with N workers:

- cold: a new store and service, and the data source's files not in the file cache
  (the source copies each file into a ``FileCache`` on first fetch, as the DQM GUI
  source does after a download);
- warm: the same run recomputed (``force=True``) with the files in the file cache.

Each worker is a thread running ``compare_files(..., workers=1)``.

How to run (from the repository root; ``PYTHONPATH=.`` until the package is installed)::

    python benchmarks/service.py [--demo /tmp/bench-demo] [--runs 8] [--workers 2]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from engine.demo import DemoOptions, generate, names
from engine.filecache import FileCache
from engine.registry import build_registry
from engine.service import Service
from engine.service_config import load_service_config
from engine.settings import ROOT
from engine.sources import LocalSource, RunFile
from engine.sources.base import Progress
from engine.store import open_store

TOML = """
[storage]
cache_dir = "store"
data_dir = "files"
[source]
kind = "local"
path = "{demo}"
[certification]
kind = "golden_json"
path = "{demo}/golden.json"
[[watch]]
series = "Run2022"
sample = "SingleMuon"
subsystems = {subsystems}
config_dir = "{config_dir}"
[scheduler]
workers = {workers}
"""


class CachingSource(LocalSource):
    """A local source that serves files from a file cache, copying them in on first use."""

    def __init__(self, root: Path, cache: FileCache) -> None:
        super().__init__(root)
        self.cache = cache
        self.copied = 0

    def fetch(self, rf: RunFile, progress: Progress | None = None) -> Path:
        assert rf.path is not None
        key = (rf.series, rf.sample, rf.path.name)
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        with rf.path.open("rb") as f:
            chunks = iter(lambda: f.read(1 << 20), b"")
            path = self.cache.put_stream(key, chunks, rf.size, None, url=str(rf.path))
        self.copied += 1
        return path


def measure(demo: Path, work: Path, workers: int) -> tuple[float, float, int, int]:
    cfg_path = work / f"autodqm-{workers}.toml"
    subsystems = "[" + ", ".join(f'"{n}"' for n in names()) + "]"
    cfg_path.write_text(
        TOML.format(
            demo=demo,
            subsystems=subsystems,
            workers=workers,
            config_dir=ROOT / "config" / "subsystems",
        )
    )
    registry = build_registry()
    config = load_service_config(cfg_path, registry)
    shutil.rmtree(work / "store", ignore_errors=True)
    shutil.rmtree(work / "files", ignore_errors=True)
    source = CachingSource(demo, FileCache(work / "files", 10**10))
    service = Service(config, open_store(work / "store"), registry, source=source)
    run = max(service.certified_runs())
    try:
        times = []
        for force in (False, True):
            t0 = time.perf_counter()
            for sub in service.watched:
                service.enqueue(run, sub, force=force)
            n = service.drain()
            times.append(time.perf_counter() - t0)
            assert n == len(service.watched), n
        states = {j.state for j in service.store.jobs()}
        assert states == {"done"}, states
    finally:
        service.close()
    n_results = sum(
        len(rec.results)
        for sub in service.watched
        if (rec := service.store.get_report(run, sub)) is not None
    )
    return times[0], times[1], n_results, source.copied


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=Path, help="demo data directory (generated if absent)")
    parser.add_argument("--runs", type=int, default=8, help="runs to generate")
    parser.add_argument("--workers", type=int, default=2, help="workers of the parallel case")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        demo = args.demo or Path(tmp) / "demo"
        if not (demo / "golden.json").exists():
            generate(demo, DemoOptions(runs=args.runs, seed=3))
        for workers in sorted({1, args.workers}):
            cold, warm, n, copied = measure(demo, Path(tmp), workers)
            print(
                f"workers={workers}: {len(names())} subsystems, {n} results of one run: "
                f"cold {cold:.2f} s ({copied} files copied into the file cache), "
                f"warm {warm:.2f} s"
            )


if __name__ == "__main__":
    main()
