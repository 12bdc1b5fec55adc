"""Engine layer: ``autodqm scheduler --config FILE`` — the unattended service in its own process.

Polls the certification source, processes new certified runs with the worker pool,
stores results and sends alerts until SIGTERM/SIGINT. On start it requeues jobs a
killed process left half-done and reports whose subsystem config changed.
"""

from __future__ import annotations

import argparse
import logging
import signal
from pathlib import Path
from types import FrameType

from engine.jobs import plan_jobs
from engine.scheduler import build_scheduler
from engine.service import open_service
from engine.times import utcnow

NAME = "scheduler"
HELP = "run the service: poll certification, process new runs, store results, send alerts"
logger = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, required=True, help="service config (TOML)")


def info_logging() -> None:
    """INFO per job on the handler the entry point set up (unless -v asked for more)."""
    root = logging.getLogger()
    root.setLevel(min(root.level or logging.INFO, logging.INFO))
    for h in root.handlers:
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))


def run(args: argparse.Namespace) -> int:
    info_logging()
    service = open_service(args.config)
    now = utcnow()
    service.requeue_interrupted(now)
    service.requeue_stale(now)
    scheduler = build_scheduler(service, blocking=True)

    def stop(signum: int, frame: FrameType | None) -> None:
        logger.info("%s: stopping after the jobs in progress", signal.Signals(signum).name)
        service.stop()
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    specs = plan_jobs(service.config)
    logger.info(
        "scheduler started (%s): %s; %d workers; store %s",
        args.config,
        ", ".join(f"{s.id} every {s.seconds:g} s" for s in specs),
        service.workers,
        service.store.directory,
    )
    scheduler.start()
    logger.info("scheduler stopped")
    return 0
