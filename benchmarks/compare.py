"""Benchmark: compare a 2,000-histogram subsystem against 4 references.

Writes six DQM files (1,000 TH1F of 100 bins + 1,000 TH2F of 50x50 each) to a
temporary directory, then times the whole ``autodqm compare`` job (``compare_files``,
parallel over the cores: the headline ``hists_per_s``) and, on one core, its reading
and statistics parts. With a results store keeping decoded files: ``stored_cold_s``
(nothing stored: all five files decoded and kept), ``stored_warm_s`` (another data run
against the same 4 references, whose contents are stored: one file decoded), and
``command_warm_s``, the same as a command (``autodqm compare``, Python's start and
imports included). Prints a table and, with ``--json``, a JSON line.

    python benchmarks/compare.py [--hists 2000] [--refs 4] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from engine.config import load_subsystem
from engine.history import FileContents
from engine.io import write_dqm
from engine.pipeline import compare_hists
from engine.reader import default_workers
from engine.registry import build_registry
from engine.runner import compare_files, read_inputs
from engine.store import open_store
from engine.types import HistData, HistKind

SUB = "Bench"


def make_files(
    out: Path, n_hists: int, n_refs: int, seed: int = 1,
    comparators: tuple[str, ...] = ("beta_binomial", "ks_test", "pull_values"),
) -> tuple[Path, list[Path], Path]:  # fmt: skip
    rng = np.random.default_rng(seed)
    n1 = n_hists // 2
    shape1 = np.exp(-0.5 * ((np.arange(100) - 50) / 15.0) ** 2) + 0.05
    shape2 = np.outer(np.linspace(1, 2, 50), np.linspace(2, 1, 50))
    paths: list[Path] = []
    for k, run in enumerate(range(1000, 1002 + n_refs)):
        hists: dict[str, HistData] = {}
        gdir = f"DQMData/Run {run}/{SUB}/Run summary/"
        for i in range(n_hists):
            if i < n1:
                vals = rng.poisson(shape1 * 5000 * (1 + 0.2 * k)).astype(np.float64)
                edges: tuple[np.ndarray, ...] = (np.linspace(0, 100, 101),)
                kind = HistKind.TH1
                rel = f"d{i % 20}/h1_{i}"
            else:
                vals = rng.poisson(shape2 * 20 * (1 + 0.2 * k)).astype(np.float64)
                edges = (np.linspace(0, 50, 51), np.linspace(0, 50, 51))
                kind = HistKind.TH2
                rel = f"d{i % 20}/h2_{i}"
            hists[gdir + rel] = HistData(rel, run, vals, vals.copy(), edges, kind=kind)
        p = out / f"DQM_V0001_R{run:09d}__Bench__Run2022C-PromptReco-v1__DQMIO.root"
        write_dqm(p, hists)
        paths.append(p)
    cfg = out / f"{SUB}.json"
    hist_cfgs = [{"path": f"d{j}/h*"} for j in range(20)]
    cfg.write_text(
        json.dumps(
            {
                "main_gdir": "DQMData/Run {0}/" + SUB + "/Run summary/",
                "comparators": list(comparators),
                "hists": hist_cfgs,
            }
        )
    )
    return paths[-2], paths[:-2], cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hists", type=int, default=2000)
    ap.add_argument("--refs", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--comparators", default="beta_binomial,ks_test,pull_values",
                    help="comma-separated; the shipped configs' full set is "
                         "beta_binomial,region_scan,variation_scan,ks_test,moments,pull_values")  # fmt: skip
    args = ap.parse_args()
    registry = build_registry()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        data, refs, cfg = make_files(
            Path(tmp), args.hists, args.refs, comparators=tuple(args.comparators.split(","))
        )
        t_write = time.perf_counter() - t0
        sub = load_subsystem(cfg, registry)
        best: dict[str, float] = {}

        def keep(name: str, seconds: float) -> None:
            best[name] = min(best.get(name, float("inf")), seconds)

        for _ in range(args.repeat):
            t0 = time.perf_counter()
            report = compare_files(sub, registry, data, refs)
            keep("total", time.perf_counter() - t0)
            t0 = time.perf_counter()
            inputs = read_inputs(sub, data, refs, workers=1)
            t1 = time.perf_counter()
            results = compare_hists(sub, registry, inputs.plan, inputs.data, inputs.refs)
            keep("read_1core", t1 - t0)
            keep("stats_1core", time.perf_counter() - t1)
        spare = data.with_name(data.name.replace(f"R{1000 + args.refs:09d}",
                                                 f"R{1001 + args.refs:09d}"))  # fmt: skip
        with open_store(Path(tmp) / "store") as store:
            contents = FileContents(store)
            t0 = time.perf_counter()
            compare_files(sub, registry, data, refs, contents=contents)
            keep("stored_cold", time.perf_counter() - t0)
            t0 = time.perf_counter()
            compare_files(sub, registry, spare, refs, contents=contents)
            keep("stored_warm", time.perf_counter() - t0)
        env = {**os.environ, "AUTODQM_CACHE_DIR": str(Path(tmp) / "store")}
        for i in range(args.repeat):
            fresh = spare.with_name(f"copy{i}_{spare.name}")  # a file never decoded before
            shutil.copyfile(spare, fresh)
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "engine.cli", "compare", str(fresh), *map(str, refs),
                 "-s", str(cfg), "--format", "json"],
                env=env, check=True, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            keep("command_warm", time.perf_counter() - t0)
        n = len(inputs.plan.hists)
        figures = {
            "histograms": n,
            "references": args.refs,
            "comparisons": len(results),
            "workers": default_workers(),
            "write_s": round(t_write, 2),
            "total_s": round(best["total"], 3),
            "hists_per_s": round(n / best["total"], 1),
            "read_1core_s": round(best["read_1core"], 3),
            "stats_1core_s": round(best["stats_1core"], 3),
            "stored_cold_s": round(best["stored_cold"], 3),
            "stored_warm_s": round(best["stored_warm"], 3),
            "command_warm_s": round(best["command_warm"], 3),
            "flagged": sum(1 for r in report.results if r.status == "flagged"),
        }
    if args.json:
        print(json.dumps(figures))
    else:
        for k, v in figures.items():
            print(f"{k:>18}: {v}")


if __name__ == "__main__":
    main()
