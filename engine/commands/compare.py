"""Engine layer: ``autodqm compare`` — compare a data file with reference files.

Exit 0 when the comparison ran (flagged histograms included); 2 with a one-line error
when it could not (bad file, unknown subsystem, bad run numbers).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from dataclasses import replace
from pathlib import Path

from engine.config import SubsystemConfig, find_subsystem, load_subsystem
from engine.history import FileContents
from engine.pipeline import SubsystemReport
from engine.registry import Registry, build_registry
from engine.runner import compare_files
from engine.settings import Settings
from engine.store import Store, open_store
from engine.store_records import StoreError
from engine.types import ComparisonResult, Status

logger = logging.getLogger(__name__)

NAME = "compare"
HELP = "compare histograms of a data run against one or more reference runs"

#: Status shown as a symbol and a word, never as colour alone.
SYMBOL = {Status.FLAGGED: "✗", Status.ERROR: "!", Status.SKIPPED: "○", Status.OK: "✓"}


def _run_number(text: str) -> int:
    try:
        run = int(text)
    except ValueError:
        msg = f"run number must be a positive integer, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if run <= 0:
        msg = f"run number must be a positive integer, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return run


def _run_list(text: str) -> list[int]:
    return [_run_number(t.strip()) for t in text.split(",") if t.strip()]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", metavar="DATA.root", help="DQM file of the run to check")
    p.add_argument("refs", metavar="REF.root", nargs="+", help="DQM files of reference runs")
    p.add_argument("--subsystem", "-s", required=True, help="subsystem NAME or a config PATH.json")
    p.add_argument("--config-dir", help="directory of <NAME>.json configs (default: config_dir)")
    p.add_argument(
        "--comparators", help="comma-separated comparators to run instead of the config's"
    )
    p.add_argument("--format", choices=("json", "table"), default="table", help="output format")
    p.add_argument("--data-run", type=_run_number, help="data run number (default: from the file)")
    p.add_argument("--ref-runs", type=_run_list, help="comma-separated reference run numbers")
    p.add_argument("--arrays", action="store_true", help="include per-bin arrays in JSON output")
    p.add_argument(
        "--store", metavar="DIR",
        help="results store that keeps every decoded file, so that a file read before is "
             "not decoded again (default: storage cache_dir)",
    )  # fmt: skip
    p.add_argument("--no-store", action="store_true", help="decode every file, keep nothing")


def with_comparators(sub: SubsystemConfig, names: list[str], registry: Registry) -> SubsystemConfig:
    """The config with every histogram running exactly ``names`` (where they apply); those
    of them that decide in the config decide, else all of them do."""
    for n in names:
        registry.get(n)  # unknown name -> ConfigError with a suggestion
    hists = tuple(replace(h, comparators=None, decide=None) for h in sub.hists)
    decide = tuple(n for n in names if n in sub.decide) or tuple(names)
    return replace(sub, comparators=tuple(names), hists=hists, decide=decide)


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    registry = build_registry(load_external=settings.load_external_plugins)
    config_dir = args.config_dir or settings.config_dir
    sub = load_subsystem(find_subsystem(args.subsystem, config_dir), registry)
    if args.comparators:
        sub = with_comparators(sub, [c.strip() for c in args.comparators.split(",")], registry)
    store = None if args.no_store else _open_store(args.store or settings.cache_dir)
    try:
        report = compare_files(
            sub, registry, args.data, args.refs, data_run=args.data_run,
            ref_runs=args.ref_runs, contents=None if store is None else FileContents(store),
        )  # fmt: skip
    finally:
        if store is not None:
            store.close()
    out = sys.stdout
    if args.format == "json":
        json.dump(report.to_dict(with_arrays=args.arrays), out, indent=1)
        out.write("\n")
    else:
        out.write(format_table(report))
    return 0


def _open_store(directory: str | Path) -> Store | None:
    """The results store, or None (with a warning) when it cannot be opened: the files
    are then decoded without it."""
    try:
        return open_store(directory)
    except StoreError as err:
        logger.warning("%s; decoding every file", err)
        return None


def _scores(r: ComparisonResult) -> str:
    return " ".join(f"{k}={v:.3g}" for k, v in r.scores.items())


def format_table(report: SubsystemReport, width: int | None = None) -> str:
    """A plain-text table, most severe first, for people reading a terminal."""
    width = width or shutil.get_terminal_size((120, 24)).columns
    rows = sorted(report.results, key=lambda r: r.severity, reverse=True)
    counts = ", ".join(
        f"{report.count(s)} {s}" for s in (Status.FLAGGED, Status.ERROR, Status.SKIPPED, Status.OK)
    )
    lines = [
        f"{report.subsystem} run {report.data_run} vs {', '.join(map(str, report.reference_runs))}: {counts}",
    ]
    hw = max([9] + [len(r.path) for r in rows])
    cw = max([10] + [len(r.comparator) for r in rows])
    lines.append(
        f"{'status':<9} {'histogram':<{hw}} {'comparator':<{cw}} {'severity':>8} {'entries':>10}  scores / reason"
    )
    for r in rows:
        text = f"{_scores(r)}  {r.reason}".strip()
        mark, word = (SYMBOL[r.status], r.status.value) if r.decides or r.status is not \
            Status.FLAGGED else ("△", "overcut")  # fmt: skip
        line = (
            f"{mark} {word:<7} {r.path:<{hw}} {r.comparator:<{cw}} "
            f"{r.score:8.2f} {r.entries:10.0f}  {text}"
        )
        lines.append(line if len(line) <= width else line[: width - 1] + "…")
    for m in report.missing:
        lines.append(f"? missing {m}")
    for n in report.notes:
        lines.append(f"note: {n}")
    if any(r.status is Status.FLAGGED and not r.decides for r in rows):
        lines.append(
            "△ overcut: over its own (uncalibrated) cut; the tests that decide do not flag it"
        )
    return "\n".join(lines) + "\n"
