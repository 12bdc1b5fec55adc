"""Engine layer: ``autodqm results RUN`` — print what the results store holds for a run.

``--format json``: a list with one object per subsystem (the ``autodqm compare``
contract plus ``provenance``, ``stale`` and ``reference_reason``); ``table``: the
``autodqm compare`` table per subsystem. Exit 2 with one line when nothing is stored.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from engine.commands._source_args import run_number
from engine.commands.compare import format_table
from engine.errors import DQMError
from engine.service_config import load_service_config
from engine.store import Store, SubsystemRecord, open_store
from engine.subsystem_schema import hint

NAME = "results"
HELP = "print the stored results of a run (per subsystem, with provenance)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", type=run_number, metavar="RUN", help="the run number")
    p.add_argument("--subsystem", "-s", help="only this subsystem (default: every stored one)")
    p.add_argument("--format", choices=("json", "table"), default="table", help="output format")
    p.add_argument("--config", required=True, metavar="FILE", help="service config (TOML)")


def _stored_runs(store: Store, run: int) -> str:
    runs = sorted(store.runs())
    if not runs:
        return "the store is empty"
    near = sorted(sorted(runs, key=lambda r: (abs(r - run), r))[:3])
    return (
        f"stored runs: {len(runs)} from {runs[0]} to {runs[-1]} latest; "
        f"closest: {', '.join(map(str, near))}"
    )


def record_json(record: SubsystemRecord, stale: bool) -> dict[str, Any]:
    """One subsystem: ``autodqm compare``'s JSON plus provenance, stale and the reason."""
    out = record.to_report().to_dict()
    out["reference_reason"] = record.reference_reason
    out["provenance"] = record.provenance.to_dict()
    out["stale"] = stale
    return out


def _records(store: Store, run: int, subsystem: str | None) -> list[SubsystemRecord]:
    where = store.directory
    summary = store.run_summary(run)
    if not summary:
        msg = f"run {run}: nothing stored in {where} ({_stored_runs(store, run)})"
        raise DQMError(msg)
    names = sorted(summary)
    if subsystem is not None and subsystem not in summary:
        msg = (
            f"run {run}: no {subsystem} results stored in {where} "
            f"(stored subsystems: {', '.join(names)}){hint(subsystem, names)}"
        )
        raise DQMError(msg)
    wanted = [subsystem] if subsystem is not None else names
    return [r for r in (store.get_report(run, s) for s in wanted) if r is not None]


def run(args: argparse.Namespace) -> int:
    cfg = load_service_config(args.config)
    cache_dir = cfg.storage.cache_dir
    if not cache_dir.is_dir():
        msg = (
            f"run {args.run}: nothing stored in {cache_dir} (no results store there yet; "
            "run autodqm scheduler or autodqm process first)"
        )
        raise DQMError(msg)
    store = open_store(cache_dir)
    try:
        records = _records(store, args.run, args.subsystem)
        stale = {r.subsystem: store.is_stale(r.run, r.subsystem) for r in records}
    finally:
        store.close()
    out = sys.stdout
    if args.format == "json":
        json.dump([record_json(r, stale[r.subsystem]) for r in records], out, indent=1)
        out.write("\n")
        return 0
    for r in records:
        out.write(format_table(r.to_report()))
        p = r.provenance
        out.write(f"references: {r.reference_reason or 'none'}\n")
        out.write(
            f"provenance: config {p.config_path} sha256:{p.config_digest[:12]}, "
            f"code {p.code_version}, created {p.created}\n"
        )
        if stale[r.subsystem]:
            out.write("STALE: the subsystem config changed since; it will be recomputed\n")
        out.write("\n")
    return 0
