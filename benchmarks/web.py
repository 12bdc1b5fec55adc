"""Benchmark: every dashboard page and callback over a store of 100,000 results (p50/p95).

Fills a fresh store (48 runs x 4 subsystems x 500 results, plus one 2,000-histogram x 2
comparator subsystem), then times requests through the Flask test client: each page via
the pages router, the overview refresh, the grid filters, the drill-down tab switch and
a verdict. Budget (DESIGN.md): p95 < 300 ms.
Usage: ``python benchmarks/web.py`` from the repository root.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dashboard.app import create_app
from engine.provenance import Provenance
from engine.settings import Settings
from engine.store import Alert, SubsystemRecord, open_store
from engine.types import ComparisonResult, Status

SUBS = ("CSC", "DT", "EMTF", "RPC")
RUNS, PER, BIG = 48, 500, 2000
FIRST = 300000
REPEAT = 40


def _record(run: int, sub: str, n: int, comps: tuple[str, ...], rng: Any) -> SubsystemRecord:
    res = []
    for i in range(n):
        for comp in comps:
            st = Status.FLAGGED if rng.uniform() < 0.03 else Status.OK
            res.append(ComparisonResult(
                comp, f"dir{i % 20}/h{i}", st, float(rng.uniform(0, 3)), 1.0,
                "" if st is Status.OK else "chi2 = 43.9 > 10", {"chi2": 1.0, "max_pull": 2.0},
                1000.0, {"pulls": rng.normal(size=50)},
            ))  # fmt: skip
    prov = Provenance("d", "c", "v", "2024-05-01T12:00:00Z", (run - 1,), "the previous run")
    return SubsystemRecord(run, sub, "Run2022/SingleMuon", (run - 1,), "the previous run",
                           prov, tuple(res))  # fmt: skip


def fill(directory: Path) -> int:
    store = open_store(directory)
    rng = np.random.default_rng(1)
    n = 0
    for run in range(FIRST, FIRST + RUNS):
        for sub in SUBS:
            rec = _record(run, sub, PER, ("beta_binomial",), rng)
            store.put_report(rec)
            n += len(rec.results)
        store.put_alert(Alert(f"{run}-CSC", run, "CSC", "ds", "2024-05-01T12:00:00Z", 1, (), "l"))
    big = _record(FIRST + RUNS - 1, "BIG", BIG, ("beta_binomial", "ks_test"), rng)
    store.put_report(big)
    store.close()
    return n + len(big.results)


def main() -> int:
    d = Path(tempfile.mkdtemp(prefix="autodqm-bench-"))
    t0 = time.perf_counter()
    n = fill(d / "store")
    print(f"stored {n:,} results in {time.perf_counter() - t0:.1f} s ({d})")
    store = open_store(d / "store")
    app = create_app(Settings(cache_dir=d / "store"), store)
    c = app.server.test_client()
    c.get("/")
    deps = c.get("/_dash-dependencies").get_json()

    def dep(fragment: str) -> dict[str, Any]:
        return next(x for x in deps if fragment in x["output"])

    def call(fragment: str, inputs: list[dict[str, Any]], state: list[dict[str, Any]] = (),  # type: ignore[assignment]
             changed: str | None = None) -> Callable[[], Any]:  # fmt: skip
        d_ = dep(fragment)
        outs = [{"id": o.rsplit(".", 1)[0], "property": o.rsplit(".", 1)[1]}
                for o in d_["output"].strip(".").split("...") if o]  # fmt: skip
        body = {"output": d_["output"], "outputs": outs if len(outs) > 1 else outs[0],
                "inputs": inputs, "state": list(state),
                "changedPropIds": [changed or f"{inputs[0]['id']}.{inputs[0]['property']}"]}  # fmt: skip
        return lambda: c.post("/_dash-update-component", json=body)

    def route(path: str, search: str = "") -> Callable[[], Any]:
        return call("_pages_content.children", [
            {"id": "_pages_location", "property": "pathname", "value": path},
            {"id": "_pages_location", "property": "search", "value": search}])  # fmt: skip

    last = FIRST + RUNS - 1
    ctx = {"run": last, "subsystem": "BIG", "path": "dir1/h1"}
    btn = json.dumps({"type": "drill-verdict-btn", "verdict": "false_alarm"}, separators=(",", ":"))
    cases: dict[str, Callable[[], Any]] = {
        "GET /": lambda: c.get("/"),
        "page /": route("/"),
        "overview refresh": call("overview-matrix.children", [
            {"id": "overview-refresh", "property": "n_intervals", "value": 1},
            {"id": "overview-rotate", "property": "n_intervals", "value": 0}],
            [{"id": "overview-options", "property": "data", "value": {"kiosk": False, "limit": 20}}]),
        f"page /run/{last}": route(f"/run/{last}"),
        f"page /run/{last}/CSC (500 results)": route(f"/run/{last}/CSC"),
        f"page /run/{last}/BIG (2,000 hists x 2)": route(f"/run/{last}/BIG"),
        "grid status/comparator filter": call("runsub-grid.filterModel", [
            {"id": "runsub-status", "property": "value", "value": "flagged"},
            {"id": "runsub-comparator", "property": "value", "value": "ks_test"}]),
        "grid quick filter": call("runsub-grid.dashGridOptions", [
            {"id": "runsub-quick", "property": "value", "value": "dir1"}]),
        f"page /run/{last}/BIG/dir1/h1 (drill-down)": route(f"/run/{last}/BIG/dir1/h1"),
        "drill-down tab switch": call("drill-panel.children", [
            {"id": "drill-tabs", "property": "value", "value": "ks_test"}],
            [{"id": "drill-context", "property": "data", "value": ctx}]),
        "drill-down verdict": call("drill-verdict.children", [[
            {"id": {"type": "drill-verdict-btn", "verdict": k}, "property": "n_clicks",
             "value": int(k == "false_alarm")}
            for k in ("real_problem", "false_alarm", "known_issue", "")]],
            [{"id": "drill-user", "property": "value", "value": "bench"},
             {"id": "drill-context", "property": "data", "value": ctx},
             {"id": "drill-tabs", "property": "value", "value": "beta_binomial"}],
            changed=f"{btn}.n_clicks"),
        "page /run/abc (bad run)": route("/run/abc"),
        f"page /run/{last}/BIG/nope (unknown histogram)": route(f"/run/{last}/BIG/nope"),
        f"API /runs/{last}/BIG csv": lambda: c.get(f"/api/v1/runs/{last}/BIG?format=csv"),
        f"API /outliers/{last} (6,000 results)": lambda: c.get(f"/api/v1/outliers/{last}"),
    }  # fmt: skip
    worst = 0.0
    print(f"{'case':48s} {'p50 ms':>8s} {'p95 ms':>8s}")
    for name, fn in cases.items():
        ts = []
        for _ in range(REPEAT):
            t = time.perf_counter()
            r = fn()
            ts.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200, (name, r.status_code, r.get_data(as_text=True)[:300])
            if name == "drill-down verdict":
                assert "false alarm" in r.get_data(as_text=True), r.get_data(as_text=True)[:300]
            r.close()
        ts.sort()
        p95 = ts[int(0.95 * len(ts)) - 1]
        worst = max(worst, p95)
        print(f"{name:48s} {statistics.median(ts):8.1f} {p95:8.1f}")
    print(f"worst p95: {worst:.1f} ms (budget 300 ms)")
    store.close()
    return 0 if worst < 300 else 1


if __name__ == "__main__":
    sys.exit(main())
