"""Engine layer: ``autodqm fetch`` — download one run's DQM file and print its local path.

The path is the last line of stdout; a progress line goes to stderr when it is a terminal.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TextIO

from engine.commands._source_args import (
    add_dataset_arguments,
    add_source_arguments,
    find_run,
    run_number,
    source_from_args,
)

NAME = "fetch"
HELP = "download the DQM file of a run (into the file cache) and print its local path"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", type=run_number, help="run number, e.g. 357130")
    add_dataset_arguments(p)
    add_source_arguments(p)


class ProgressLine:
    """``\\r``-updated ``  3.1/12.0 MB  26%`` on a terminal; a newline when done."""

    def __init__(self, stream: TextIO, label: str, every: float = 0.1) -> None:
        self.stream = stream
        self.label = label
        self.every = every
        self._last = 0.0
        self._done = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if self._done or (done < total and now - self._last < self.every):
            return
        self._last = now
        pct = 100.0 * done / total if total else 100.0
        self.stream.write(f"\r{self.label}  {done / 1e6:.1f}/{total / 1e6:.1f} MB  {pct:3.0f}%")
        if done >= total:
            self.stream.write("\n")
            self._done = True
        self.stream.flush()


def run(args: argparse.Namespace) -> int:
    source = source_from_args(args)
    rf = find_run(source, args.series, args.sample, args.run, args.processing)
    err = sys.stderr
    progress = ProgressLine(err, f"run {rf.run} {rf.processing}") if err.isatty() else None
    path = source.fetch(rf, progress)
    sys.stdout.write(f"{Path(path).absolute()}\n")
    return 0
