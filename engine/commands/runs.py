"""Engine layer: ``autodqm runs`` — list the runs of a dataset in a data source.

``--format json`` prints a list of ``{"run", "size", "date", "url", "certified",
"processing"}`` objects; ``certified`` is null without ``--golden``.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from engine.commands._source_args import (
    add_dataset_arguments,
    add_source_arguments,
    certified_runs,
    describe,
    source_from_args,
)
from engine.sources.base import RunFile

NAME = "runs"
HELP = "list the runs of a dataset (series/sample) in a data source"

CERTIFIED = {True: "✓ yes", False: "✗ no", None: "- unknown"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_dataset_arguments(p)
    p.add_argument("--golden", metavar="PATH_OR_URL", help="golden JSON: fills 'certified'")
    p.add_argument("--format", choices=("json", "table"), default="table", help="output format")
    add_source_arguments(p)


def _url(rf: RunFile) -> str | None:
    if rf.url is not None:
        return rf.url
    return rf.path.absolute().as_uri() if rf.path is not None else None


def _row(rf: RunFile, golden: set[int] | None) -> dict[str, Any]:
    return {
        "run": rf.run,
        "size": rf.size,
        "date": rf.date,
        "url": _url(rf),
        "certified": None if golden is None else rf.run in golden,
        "processing": rf.processing,
    }


def _date(iso: str) -> str:
    """``2022-08-06 12:00 UTC`` (the zone is always shown), or the text as listed."""
    try:
        dt = datetime.fromisoformat(iso)
    except ValueError:
        return iso or "-"
    if dt.tzinfo is None:
        return dt.strftime("%Y-%m-%d %H:%M") + " (zone unknown)"
    return dt.strftime("%Y-%m-%d %H:%M %Z").replace("UTC+00:00", "UTC")


def format_table(rows: list[dict[str, Any]]) -> str:
    """The rows as an aligned text table (size in MB, date with its time zone)."""
    head = ("run", "size", "date", "processing", "certified")
    body = [
        (
            str(r["run"]),
            f"{r['size'] / 1e6:.2f} MB",
            _date(r["date"]),
            r["processing"],
            CERTIFIED[r["certified"]],
        )
        for r in rows
    ]
    widths = [max(len(c) for c in col) for col in zip(head, *body, strict=True)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in (head, *body)
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    source = source_from_args(args)
    golden = certified_runs(args, args.golden) if args.golden else None
    runs = source.runs(args.series, args.sample, args.processing)
    rows = [_row(rf, golden) for _, rf in sorted(runs.items())]
    out = sys.stdout
    if args.format == "json":
        json.dump(rows, out, indent=1)
        out.write("\n")
        return 0
    dataset = f"{args.series}/{args.sample}"
    if not rows:
        proc = f" with processing {args.processing!r}" if args.processing else ""
        out.write(f"no runs of {dataset}{proc} in {describe(source)}\n")
        return 0
    out.write(format_table(rows) + "\n")
    n_cert = sum(bool(r["certified"]) for r in rows)
    cert = f", {n_cert} certified" if golden is not None else ""
    out.write(f"{len(rows)} runs of {dataset} in {describe(source)}{cert}\n")
    return 0
