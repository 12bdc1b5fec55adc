"""Engine layer: ``autodqm process RUN [--subsystem X] [--force] --config FILE`` — backfill.

Processes one run now, in this process, through the same service as the scheduler
(state machine, store, alerts), then sends due alerts; prints one line per subsystem
(``-v`` for a log line per job). Exit 1 if a job failed, 2 for an unknown run or subsystem.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from engine.commands._source_args import find_run, run_number
from engine.jobs import DONE
from engine.service import Service, open_service
from engine.store import JobState

NAME = "process"
HELP = "process one run now (backfill): compare, store, alert; --force recomputes"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", type=run_number, help="run number")
    p.add_argument(
        "--subsystem", action="append", help="only this subsystem (repeatable; default: all)"
    )
    p.add_argument("--force", action="store_true", help="recompute subsystems already done")
    p.add_argument("--config", type=Path, required=True, help="service config (TOML)")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format")


def summary(service: Service, job: JobState) -> dict[str, Any]:
    """What to print about one processed job."""
    out: dict[str, Any] = {"run": job.run, "subsystem": job.subsystem, "state": job.state}
    if job.state != DONE:
        return {**out, "error": job.error, "attempts": job.attempts}
    rec = service.store.get_report(job.run, job.subsystem)
    if rec is not None:
        counts: dict[str, int] = {}
        for r in rec.results:
            counts[str(r.status)] = counts.get(str(r.status), 0) + 1
        out |= {
            "counts": counts,
            "reference_runs": list(rec.reference_runs),
            "reference_reason": rec.reference_reason,
            "created": rec.provenance.created,
        }
    alert = service.store.get_alert(f"{job.run}-{job.subsystem}")
    out["alert"] = alert.id if alert is not None else None
    return out


def line(s: dict[str, Any]) -> str:
    head = f"run {s['run']} {s['subsystem']}: {s['state']}"
    if s["state"] != DONE:
        return f"{head} after {s['attempts']} attempts: {s['error']}"
    counts = ", ".join(f"{n} {k}" for k, n in sorted(s.get("counts", {}).items()) if n)
    refs = ", ".join(map(str, s.get("reference_runs", []))) or "none"
    alert = f"; alert {s['alert']}" if s.get("alert") else ""
    return f"{head} ({counts or 'no results'}){alert}\n    references {refs}: {s.get('reference_reason', '')}"


def run(args: argparse.Namespace) -> int:
    service = open_service(args.config)
    subsystems = args.subsystem or list(service.watched)
    for sub in subsystems:  # an unknown subsystem or run fails before any work
        w = service.watch(sub)
        find_run(service.source, w.series, w.sample, args.run, w.processing)
    if args.run not in service.certified_runs():
        sys.stderr.write(f"note: run {args.run} is not certified; processing it anyway\n")
    out = []
    for sub in subsystems:
        if args.force:
            service.enqueue(args.run, sub, force=True)
        out.append(summary(service, service.process(args.run, sub)))
    service.deliver_alerts()
    if args.format == "json":
        json.dump(out, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        for s in out:
            sys.stdout.write(line(s) + "\n")
    return 0 if all(s["state"] == DONE for s in out) else 1
