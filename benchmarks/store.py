"""Benchmark: the results store readers the dashboard needs, with 100,000 stored results.

Fills a store in a temporary directory with ``runs x subsystems x hists`` results (default
200 x 5 x 100; each with a 100-bin "pulls" array and a 100-bin reference array), then
times each reader many times on random keys and prints p50/p95 in ms (budget: p95
well under 300 ms). With ``--json``, a JSON line.

Then the job queue: for each size in ``--jobs`` (1,000, 10,000, 100,000 by default) a
store holding that many jobs, written with ``put_job``, and p50/p95 of ``put_job`` (a
job's state changes), of a claim (``replace_job`` of a queued job to ``fetching``, the
conditional update a scheduler takes a job with) and of listing the queued jobs (1 % of
them queued). Budget: put and claim <= 1 ms p95, flat in the number of jobs.

    python benchmarks/store.py [--runs 200] [--subsystems 5] [--hists 100] [--bins 100]
                               [--jobs 1000,10000,100000] [--only-jobs] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from engine.provenance import make_provenance
from engine.store import Store, SubsystemRecord, open_store
from engine.store_records import JobState
from engine.types import ComparisonResult, Status

SUBSYSTEMS = ("CSC", "DT", "RPC", "EMTF", "GEM", "HCAL", "BMTF", "uGMT")


def fill(store: Store, runs: int, subs: tuple[str, ...], hists: int, bins: int) -> float:
    """Write every record; returns the seconds per put_report (mean)."""
    rng = np.random.default_rng(1)
    t0 = time.perf_counter()
    for run in range(300000, 300000 + runs):
        for sub in subs:
            results = []
            for h in range(hists):
                pulls = rng.normal(size=bins)
                score = float(np.abs(pulls).max())
                status = Status.FLAGGED if score > 3.5 else Status.OK
                results.append(
                    ComparisonResult(
                        "pull_values", f"Dir{h % 7}/hist{h:03d}", status, score, 3.5,
                        "" if status == Status.OK else f"max pull {score:.1f} > 3.5",
                        {"max_pull": score, "chi2": score / 2}, 1e5,
                        {"pulls": pulls, "ref_weighted": rng.uniform(size=bins)},
                    )
                )  # fmt: skip
            prov = make_provenance("d" * 64, f"config/subsystems/{sub}.json", [run - 1], "prev")
            store.put_report(
                SubsystemRecord(
                    run, sub, "Run2022/SingleMuon", (run - 1,), "prev", prov, tuple(results)
                )
            )
    return (time.perf_counter() - t0) / (runs * len(subs))


def timeit(fn: Callable[[int], object], n: int) -> dict[str, float]:
    """p50/p95/max in ms of ``fn(i)`` over ``n`` calls."""
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - t0) * 1e3)
    arr = np.asarray(times)
    return {
        "p50_ms": float(np.percentile(arr, 50)),
        "p95_ms": float(np.percentile(arr, 95)),
        "max_ms": float(arr.max()),
    }


def job_figures(n: int, calls: int) -> dict[str, Any]:
    """A store of ``n`` jobs (1 % queued, the rest done): fill time and the hot paths."""
    subs = SUBSYSTEMS

    def job(i: int, state: str) -> JobState:
        return JobState(300000 + i // len(subs), subs[i % len(subs)], "/SingleMuon/Run2022C",
                        state, 0, "", "", "2026-12-04T00:00:00+00:00")  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp, open_store(Path(tmp) / "cache") as store:
        t0 = time.perf_counter()
        for i in range(n):
            store.put_job(job(i, "queued" if i % 100 == 0 else "done"))
        fill_s = time.perf_counter() - t0
        queued = [job(i, "queued") for i in range(0, n, 100)]
        return {
            "jobs": n,
            "fill_s": round(fill_s, 2),
            "put_job": timeit(lambda i: store.put_job(job((i * 7919) % n, "done")), calls),
            "jobs(queued)": timeit(lambda i: store.jobs(("queued",)), 20),
            "claim": timeit(
                lambda i: store.replace_job(
                    JobState(**{**queued[i % len(queued)].to_dict(), "state": "fetching"}),
                    expect=queued[i % len(queued)],
                ),
                min(calls, len(queued)),
            ),
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--subsystems", type=int, default=5)
    ap.add_argument("--hists", type=int, default=100)
    ap.add_argument("--bins", type=int, default=100)
    ap.add_argument("--calls", type=int, default=200, help="calls per reader")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--jobs", default="1000,10000,100000", help="job-queue sizes")
    ap.add_argument("--only-jobs", action="store_true", help="only the job-queue part")
    args = ap.parse_args()
    jobs = [job_figures(int(n), 500) for n in args.jobs.split(",") if n.strip()]
    if args.only_jobs:
        _print_jobs(jobs, args.json)
        return
    subs = SUBSYSTEMS[: args.subsystems]
    rng = np.random.default_rng(2)
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "cache")
        per_put = fill(store, args.runs, subs, args.hists, args.bins)
        n_results = args.runs * len(subs) * args.hists
        size_mb = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file()) / 1e6
        store.close()
        store = open_store(Path(tmp) / "cache")  # cold-ish: a new connection
        runs = store.runs()

        def pick_run(i: int) -> int:
            return runs[int(rng.integers(len(runs)))]

        def pick_sub(i: int) -> str:
            return subs[i % len(subs)]

        def pick_path(i: int) -> str:
            h = int(rng.integers(args.hists))
            return f"Dir{h % 7}/hist{h:03d}"

        readers: dict[str, Callable[[int], object]] = {
            "runs()": lambda i: store.runs(),
            "runs(limit=20)": lambda i: store.runs(limit=20),
            "overview(20 runs x all subsystems)": lambda i: store.overview(limit=20),
            "run_summary(run)": lambda i: store.run_summary(pick_run(i)),
            "get_report(run, sub)": lambda i: store.get_report(pick_run(i), pick_sub(i)),
            "get_arrays(run, sub, path)": lambda i: store.get_arrays(
                pick_run(i), pick_sub(i), pick_path(i)
            ),
            "history(sub, path, comp, last=50)": lambda i: store.history(
                pick_sub(i), pick_path(i), "pull_values", last=50
            ),
            "history(sub, path, comp) all": lambda i: store.history(
                pick_sub(i), pick_path(i), "pull_values"
            ),
        }
        figures = {name: timeit(fn, args.calls) for name, fn in readers.items()}
        store.close()
    if args.json:
        print(json.dumps({"results": n_results, "put_report_s": per_put, "readers": figures,
                          "jobs": jobs}))  # fmt: skip
        return
    print(
        f"{n_results:,} results ({args.runs} runs x {len(subs)} subsystems x {args.hists} "
        f"histograms, {args.bins}-bin arrays), store {size_mb:.0f} MB, "
        f"put_report {per_put * 1e3:.1f} ms each"
    )
    print(f"{'reader':<40} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for name, f in figures.items():
        print(f"{name:<40} {f['p50_ms']:8.2f} {f['p95_ms']:8.2f} {f['max_ms']:8.2f}")
    _print_jobs(jobs, False)


def _print_jobs(jobs: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print(json.dumps({"jobs": jobs}))
        return
    print(f"\n{'jobs':>8} {'fill s':>7} " + " ".join(
        f"{k + ' p50/p95 ms':>26}" for k in ("put_job", "claim", "jobs(queued)")))  # fmt: skip
    for j in jobs:
        cells = " ".join(f"{j[k]['p50_ms']:>12.3f} / {j[k]['p95_ms']:<11.3f}"
                         for k in ("put_job", "claim", "jobs(queued)"))  # fmt: skip
        print(f"{j['jobs']:>8} {j['fill_s']:>7} {cells}")


if __name__ == "__main__":
    main()
