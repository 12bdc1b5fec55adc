"""Engine layer: ``autodqm demo`` — the embedded default on sample data, in one process.

Generates the sample data set if it is absent. Then, by default, runs the service live:
a service config next to the data (``<dir>-service/autodqm.toml``), a golden JSON that
certifies one more run every ``--interval`` seconds, the scheduler (poll, work, deliver)
in the background and the dashboard in the foreground, until Ctrl-C or SIGTERM. With
``--once`` it compares every certified run with the latest certified runs before it,
for every subsystem, prints what looks wrong and exits.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import socket
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import waitress

from engine.certification import load_golden
from engine.config import SubsystemConfig, find_subsystem, load_subsystem
from engine.demo import DemoOptions, generate, names
from engine.demo.generate import MANIFEST
from engine.demo.live import (
    certified_count,
    certify_next,
    follow_data_set,
    seed_golden,
    service_dir,
)
from engine.demo.live import write_service_config as write_demo_config
from engine.demo.runs import SAMPLE, SERIES
from engine.errors import DQMError
from engine.pipeline import SubsystemReport
from engine.reader import default_workers, pool_context
from engine.references import previous_good
from engine.registry import Registry, build_registry
from engine.runner import compare_files
from engine.scheduler import build_scheduler
from engine.service import Service
from engine.service_config import load_service_config
from engine.settings import ROOT, Settings
from engine.sources import LocalSource
from engine.store import open_store
from engine.times import utcnow
from engine.types import Status

NAME = "demo"
HELP = (
    "sample runs (generated if absent) certified over time, the scheduler and the dashboard "
    "in one process (--once: compare every certified run, print and exit)"
)
logger = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dir", type=Path, default=ROOT / "var" / "demo", help="sample data directory")
    p.add_argument("--runs", type=int, default=30, help="runs to generate when the data is absent")
    p.add_argument("--seed", type=int, default=1, help="random seed of the generated data")
    p.add_argument("--host", default="127.0.0.1", help="dashboard address to listen on")
    p.add_argument("--port", type=int, default=8050, help="dashboard port")
    p.add_argument(
        "--interval", type=float, default=20.0, help="seconds between two newly certified runs"
    )
    p.add_argument(
        "--once", action="store_true", help="compare every certified run, print and exit"
    )
    p.add_argument("--refs", type=int, default=4, help="reference runs per comparison (--once)")
    p.add_argument(
        "--format", choices=("table", "json"), default="table", help="output format (--once)"
    )


def _job(sub: SubsystemConfig, registry: Registry, data: str, refs: list[str]) -> SubsystemReport:
    return compare_files(sub, registry, data, refs, workers=1)


def _line(run: int, reason: str, reports: list[SubsystemReport]) -> str:
    cells = []
    worst: list[str] = []
    for rep in reports:
        flagged = [r for r in rep.results if r.verdict_status is Status.FLAGGED]
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
    if args.interval <= 0:
        msg = f"--interval: expected a positive number of seconds, found {args.interval!r}"
        raise DQMError(msg)
    if not (out / MANIFEST).exists():
        summary = generate(out, DemoOptions(runs=args.runs, seed=args.seed))
        sys.stderr.write(
            f"generated {summary.runs} runs ({summary.histograms} histograms, "
            f"{summary.failures} injected failures) in {out} in {summary.seconds:.1f} s\n"
        )
    if args.once:
        return run_once(args, settings, out)
    return run_live(args, settings, out)


def run_once(args: argparse.Namespace, settings: Settings, out: Path) -> int:
    """Compare every certified run with its references; print a line per run."""
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
            n_flagged += sum(
                r.verdict_status is Status.FLAGGED for rep in reports for r in rep.results
            )
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


def run_live(args: argparse.Namespace, settings: Settings, out: Path) -> int:
    """The service and the dashboard over the sample data until Ctrl-C or SIGTERM."""
    url = f"http://{args.host}:{args.port}"
    svc = service_dir(out)
    if follow_data_set(svc, out):
        sys.stderr.write(f"{out} was replaced since the last start: a new store in {svc.cache}\n")
    write_demo_config(
        svc,
        out,
        settings.config_dir,
        dashboard_url=url,
        poll_seconds=min(5.0, max(1.0, args.interval)),
        workers=2,
    )
    seed_golden(out / "golden.json", svc.golden)
    registry = build_registry(load_external=settings.load_external_plugins)
    config = load_service_config(svc.config, registry)
    service = Service(config, open_store(config.storage.cache_dir), registry)
    now = utcnow()
    service.requeue_interrupted(now)
    service.requeue_stale(now)
    scheduler = build_scheduler(service, blocking=False)
    scheduler.add_job(
        certify_next,
        "interval",
        seconds=args.interval,
        id="demo:certify",
        name="demo:certify",
        args=(str(out / "golden.json"), str(svc.golden)),
        next_run_time=now + timedelta(seconds=args.interval),
    )
    from dashboard.app import create_app  # the web stack only when serving

    app = create_app(config, service.store, registry=registry)
    try:
        server = _listen(app, args.host, args.port)
    except DQMError:
        service.close()
        raise
    n, total = certified_count(svc.golden), len(load_golden(out / "golden.json"))
    more = f"one more every {args.interval:g} s" if n < total else "all certified"
    sys.stdout.write(
        f"autodqm demo: dashboard at {url} — {n} runs certified so far, {more} (Ctrl-C to stop)\n"
    )
    sys.stdout.flush()
    scheduler.start()
    try:
        _serve(server)
    finally:
        logger.info("demo: stopping the scheduler after the jobs in progress")
        service.stop()
        scheduler.shutdown(wait=True)
        service.close()
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _listen(app: Any, host: str, port: int) -> Any:
    """A waitress (production WSGI) server listening on ``host:port``.

    Raises:
        DQMError: the address cannot be listened on (port in use, unknown host).
    """
    try:  # waitress leaks its sockets when its bind fails: try the address first
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        socket.create_server((host, port), family=family).close()
    except OSError as err:
        msg = f"cannot listen on {host}:{port} ({err.strerror or err}); pass another --port/--host"
        raise DQMError(msg) from err
    return waitress.create_server(app.server, host=host, port=port, threads=8)


def _serve(server: Any) -> None:
    """Serve until SIGINT/SIGTERM (``server`` from :func:`_listen`)."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        try:
            server.run()  # returns on KeyboardInterrupt (SIGINT, or SIGTERM above)
        finally:
            server.close()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
