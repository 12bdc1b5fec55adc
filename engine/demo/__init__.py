"""Engine layer: realistic demo DQM data (``autodqm demo-data``) with injected failures.

``generate(out, DemoOptions(...))`` writes the files; ``load_runs``/``load_truth`` read
back the run list and the injected failures (the benchmark iterates them).
"""

from __future__ import annotations

from engine.demo.catalog import KINDS, DemoError, HistSpec, Subsystem, names, resolve, subsystem
from engine.demo.generate import (
    DemoOptions,
    DemoPlan,
    DemoSummary,
    build_run,
    expected,
    generate,
    noisy_factor,
    plan,
    sample,
)
from engine.demo.inject import LEVELS, Failure, load_truth
from engine.demo.runs import RunInfo, dqm_path, load_runs

__all__ = [
    "KINDS",
    "LEVELS",
    "DemoError",
    "DemoOptions",
    "DemoPlan",
    "DemoSummary",
    "Failure",
    "HistSpec",
    "RunInfo",
    "Subsystem",
    "build_run",
    "dqm_path",
    "expected",
    "generate",
    "load_runs",
    "load_truth",
    "names",
    "noisy_factor",
    "plan",
    "resolve",
    "sample",
    "subsystem",
]
