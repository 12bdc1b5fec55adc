"""Engine layer: ``autodqm demo`` — the embedded default on sample data, in one process.

Generates the sample data set if it is absent, then compares every certified run with
the latest certified runs before it, for every subsystem, and prints what looks wrong.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from engine.certification import load_golden
from engine.config import SubsystemConfig, find_subsystem, load_subsystem
from engine.demo import DemoOptions, generate, names
from engine.demo.runs import SAMPLE, SERIES
from engine.errors import DQMError
from engine.pipeline import SubsystemReport
from engine.reader import default_workers, pool_context
from engine.references import previous_good
from engine.registry import Registry, build_registry
from engine.runner import compare_files
from engine.settings import ROOT, Settings
from engine.sources import LocalSource
from engine.types import Status

NAME = "demo"
HELP = "generate sample runs (if absent) and compare each certified run with its references"
MARKER = "demo-data.json"
logger = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dir", type=Path, default=ROOT / "var" / "demo", help="sample data directory")
    p.add_argument("--runs", type=int, default=30, help="runs to generate when the data is absent")
    p.add_argument("--seed", type=int, default=1, help="random seed of the generated data")
    p.add_argument("--refs", type=int, default=4, help="reference runs per comparison")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format")


def _job(sub: SubsystemConfig, registry: Registry, data: str, refs: list[str]) -> SubsystemReport:
    return compare_files(sub, registry, data, refs, workers=1)


def _line(run: int, reason: str, reports: list[SubsystemReport]) -> str:
    cells = []
    worst: list[str] = []
    for rep in reports:
        flagged = [r for r in rep.results if r.status is Status.FLAGGED]
        errors = rep.count(Status.ERROR)
        mark = "✗" if flagged else ("!" if errors else "✓")
        cells.append(
            f"{mark} {rep.subsystem} {len(flagged)} flagged"
            + (f", {errors} errors" if errors else "")
        )
        top = max(flagged, key=lambda r: r.score, default=None)
        if top is not None:
            worst.append(f"{rep.subsystem}/{top.path} ({top.comparator}: {top.reason})")
    text = f"run {run}: " + " · ".join(cells)
    if worst:
        text += "\n    worst: " + "\n           ".join(worst)
    return text + f"\n    references: {reason}"


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    out: Path = args.dir
    if not (out / MARKER).exists():
        summary = generate(out, DemoOptions(runs=args.runs, seed=args.seed))
        sys.stderr.write(
            f"generated {summary.runs} runs ({summary.histograms} histograms, "
            f"{summary.failures} injected failures) in {out} in {summary.seconds:.1f} s\n"
        )
    registry = build_registry(load_external=settings.load_external_plugins)
    subs = [load_subsystem(find_subsystem(n, settings.config_dir), registry) for n in names()]
    files = LocalSource(out).runs(SERIES, SAMPLE)
    certified = sorted(set(load_golden(out / "golden.json")) & set(files))
    if not certified:
        msg = f"{out}: no certified run has a DQM file (golden.json and OfflineData disagree)"
        raise DQMError(msg)
    t0 = time.perf_counter()
    jobs = []
    for run_no in certified:
        choice = previous_good(run_no, certified, args.refs)
        if choice.runs:
            jobs.append((run_no, choice))
    results: list[dict[str, object]] = []
    n_flagged = 0
    with ProcessPoolExecutor(max_workers=default_workers(), mp_context=pool_context()) as pool:
        futures = [
            [
                pool.submit(
                    _job, sub, registry, str(files[r].path), [str(files[x].path) for x in c.runs]
                )
                for sub in subs
            ]
            for r, c in jobs
        ]
        for (run_no, choice), futs in zip(jobs, futures, strict=True):
            reports = [f.result() for f in futs]
            n_flagged += sum(rep.count(Status.FLAGGED) for rep in reports)
            if args.format == "json":
                results.extend(
                    {**rep.to_dict(), "reference_reason": choice.reason} for rep in reports
                )
            else:
                sys.stdout.write(_line(run_no, choice.reason, reports) + "\n")
                sys.stdout.flush()
    if args.format == "json":
        json.dump(results, sys.stdout, indent=1)
        sys.stdout.write("\n")
    sys.stderr.write(
        f"{len(jobs)} runs x {len(subs)} subsystems compared in {time.perf_counter() - t0:.1f} s; "
        f"{n_flagged} flagged results\n"
    )
    return 0
