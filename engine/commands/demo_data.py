"""Engine layer: ``autodqm demo-data`` — write realistic demo DQM files with known failures."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from engine.demo import DemoOptions, generate, names
from engine.demo.catalog import DemoError
from engine.demo.generate import MANIFEST, describe_existing
from engine.demo.live import service_dir

logger = logging.getLogger(__name__)

NAME = "demo-data"
HELP = (
    "Write demo DQM files (DQM GUI Offline layout) for several runs, with injected "
    "failures (truth.json), run metadata (runs.json) and a golden JSON (golden.json)."
)


def _count(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        msg = f"expected a whole number, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "out", metavar="OUT", help="output directory (new, empty or a previous demo)"
    )
    parser.add_argument("--runs", type=_count, default=30, help="number of runs (default 30)")
    parser.add_argument("--seed", type=_count, default=1, help="random seed (default 1)")
    parser.add_argument(
        "--subsystems",
        nargs="+",
        metavar="NAME",
        default=None,
        help=f"subsystems to generate (default: all of {', '.join(names())})",
    )
    parser.add_argument(
        "--failure-fraction",
        type=float,
        default=0.4,
        help="fraction of normal-statistics runs that get 1-3 injected failures (default 0.4)",
    )
    parser.add_argument(
        "--noisy-channels",
        type=float,
        default=0.0,
        help="fraction of the bins of every 2D map that are noisy channels, whose rate changes "
        "by ~30%% from run to run (default 0)",
    )
    parser.add_argument(
        "--jobs",
        type=_count,
        default=min(2, os.cpu_count() or 1),
        help="worker processes (default: up to 2)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace an existing demo data set in OUT, or write into a non-empty directory "
        "that is not one (an existing data set is never replaced without it)",
    )


def run(args: argparse.Namespace) -> int:
    """Generate the demo directory and print a one-line summary."""
    if args.jobs < 1:
        msg = f"--jobs must be at least 1, got {args.jobs!r}"
        raise DemoError(msg)
    known = {n.upper(): n for n in names()}
    subsystems = tuple(known.get(s.upper(), s) for s in args.subsystems or ())
    options = DemoOptions(
        runs=args.runs,
        seed=args.seed,
        subsystems=subsystems,
        failure_fraction=args.failure_fraction,
        noisy_channels=args.noisy_channels,
    )
    out = Path(args.out)
    if args.force and (out / MANIFEST).is_file():
        svc = service_dir(out).directory
        store = (f"; `autodqm demo` will start a new results store in {svc} (it holds results "
                 "of the replaced data)" if svc.is_dir() else "")  # fmt: skip
        sys.stderr.write(f"{out}: replacing {describe_existing(out)}{store}\n")
    summary = generate(out, options, jobs=args.jobs, force=args.force)
    sys.stdout.write(
        f"{summary.out}: {summary.runs} runs, {summary.histograms} histograms, "
        f"{summary.failures} injected failures in {summary.seconds:.1f} s\n"
    )
    return 0
