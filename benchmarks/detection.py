"""Benchmark: detection power and false alarms on generated runs with known failures.

For each seed it writes a demo data set (``autodqm demo-data``), compares every certified
normal-statistics run with the shipped configs against the 4 closest earlier healthy
certified runs (later ones when too few precede it), and scores the verdicts against
``truth.json``:

- detection rate per failure kind and level (a failure counts as caught when its
  histogram is flagged),
- false-alarm rate per healthy histogram and per healthy run (a run with no injected
  failure that has any flag),
- how the run-wide outlier ranking (``engine.outliers``) orders caught failures and
  false alarms.

Two verdicts are scored side by side: ``autodqm`` (flagged by a deciding test, as the
service decides; ``history_pca`` learns from the 30 latest earlier judged runs whose
histogram it did not flag, as the service's history) and ``beta_binomial`` (its verdict
alone — AutoDQM's production test).

    python benchmarks/detection.py [--runs 60] [--seeds 1,2,3] [--failure-fraction 0.6]
                                   [--refs 4] [--noisy-channels 0.02] [--data DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from engine import outliers
from engine.config import SubsystemConfig, find_subsystem, load_subsystem
from engine.demo import DemoOptions, Failure, RunInfo, generate, load_runs, load_truth
from engine.io import open_dqm
from engine.pipeline import Plan, compare_hists, plan, with_exposure
from engine.registry import Registry, build_registry
from engine.settings import Settings
from engine.types import ComparisonResult, HistData, Status

Verdicts = dict[
    tuple[int, str, str], set[str]
]  # (run, subsystem, histogram) -> flagging comparators


#: The marker of a histogram flagged by a test that decides (the verdict).
DECIDED = "(verdict)"


def choose_refs(run: RunInfo, pool: list[RunInfo], n: int) -> list[int]:
    """The ``n`` closest earlier runs of the pool, topped up with the closest later ones."""
    before = [r.run for r in pool if r.run < run.run][::-1]
    after = [r.run for r in pool if r.run > run.run]
    return (before[:n] + after)[:n]


def read_run(
    path: Path, subs: Iterable[SubsystemConfig], run: int
) -> dict[str, tuple[Plan, dict[str, HistData]]]:
    out: dict[str, tuple[Plan, dict[str, HistData]]] = {}
    with open_dqm(path) as f:
        for sub in subs:
            gdir = sub.gdir(run)
            p = plan(sub, lambda d, pat, g=gdir: f.expand(g + d if d else g.rstrip("/"), pat))
            out[sub.name] = (p, {h: f.read(gdir + h, path=h, run=run) for h in p.paths})
    return out


def evaluate(
    data_dir: Path, subs: list[SubsystemConfig], registry: Registry, n_refs: int,
    history: int = 30,
) -> dict[str, Any]:  # fmt: skip
    runs = load_runs(data_dir)
    truth = load_truth(data_dir)
    judged = [r for r in runs if r.certified and not r.low_stats]
    pool = [r for r in judged if r.healthy]
    cache: dict[int, dict[str, tuple[Plan, dict[str, HistData]]]] = {}

    def hists(info: RunInfo) -> dict[str, tuple[Plan, dict[str, HistData]]]:
        if info.run not in cache:
            cache[info.run] = read_run(data_dir / info.path, subs, info.run)
        return cache[info.run]

    by_run = {r.run: r for r in runs}
    flagged: Verdicts = defaultdict(set)
    histograms: set[tuple[int, str, str]] = set()
    statuses: dict[str, int] = defaultdict(int)
    ran: dict[str, int] = defaultdict(int)
    ranked: dict[int, list[tuple[str, str]]] = {}  # run -> flagged (subsystem, path), worst first
    decided: set[tuple[int, str, str]] = set()  # histograms a deciding test flagged
    for pos, info in enumerate(judged):
        refs = choose_refs(info, pool, n_refs)
        per_sub: dict[str, list[ComparisonResult]] = {}
        for sub in subs:
            the_plan, data = hists(info)[sub.name]
            ref_maps = [hists(by_run[r])[sub.name][1] for r in refs]
            # as the service: the latest earlier judged runs whose histogram was not flagged
            past: dict[str, list[HistData]] = {p: [] for p in data}
            for before in reversed(judged[:pos]):
                held = with_exposure(hists(before)[sub.name][1])  # as History.history
                for p, lst in past.items():
                    if (
                        len(lst) < history
                        and p in held
                        and (before.run, sub.name, p) not in decided
                    ):
                        lst.append(held[p])
            past = {p: lst[::-1] for p, lst in past.items()}
            results: list[ComparisonResult] = compare_hists(
                sub, registry, the_plan, data, ref_maps, history=past
            )
            for res in results:
                key = (info.run, sub.name, res.path)
                histograms.add(key)
                statuses[res.status.value] += 1
                ran[res.comparator] += 1
                if res.status is Status.FLAGGED:
                    flagged[key].add(res.comparator)
                if res.verdict_status is Status.FLAGGED:
                    flagged[key].add(DECIDED)
                    decided.add(key)
            per_sub[sub.name] = results
        ranked[info.run] = [(v.subsystem, v.path) for v in outliers.across(per_sub)]
    return {
        "runs": judged,
        "truth": [t for t in truth if t.run in {r.run for r in judged}],
        "flagged": flagged,
        "histograms": histograms,
        "statuses": dict(statuses),
        "ran": dict(ran),
        "ranked": ranked,
    }


def ranking(ev: Mapping[str, Any]) -> dict[str, int]:
    """How the run-wide outlier ranking (engine.outliers) orders caught failures and false
    alarms: a shifter reading a run's list from the top meets every caught failure before
    any false alarm when ``above_every_false_alarm == caught``."""
    bad = {(t.run, t.subsystem, t.histogram) for t in ev["truth"]}
    caught = above = runs_with_both = 0
    for run, order in ev["ranked"].items():
        is_bad = [(run, s, p) in bad for s, p in order]
        first_fa = is_bad.index(False) if False in is_bad else len(is_bad)
        n_bad = sum(is_bad)
        caught += n_bad
        above += sum(is_bad[:first_fa])
        runs_with_both += bool(n_bad and first_fa < len(is_bad))
    return {"caught": caught, "above_every_false_alarm": above, "runs_with_both": runs_with_both}


def score(ev: Mapping[str, Any], verdict: str) -> dict[str, Any]:
    def is_flagged(key: tuple[int, str, str]) -> bool:
        comps = ev["flagged"].get(key, set())
        return (DECIDED if verdict == "autodqm" else verdict) in comps

    truth: list[Failure] = ev["truth"]
    bad = {(t.run, t.subsystem, t.histogram) for t in truth}
    cells: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    missed = []
    for t in truth:
        cell = cells[t.kind][t.level]
        cell[1] += 1
        hit = is_flagged((t.run, t.subsystem, t.histogram))
        cell[0] += hit
        if not hit:
            missed.append(
                {
                    "run": t.run,
                    "subsystem": t.subsystem,
                    "histogram": t.histogram,
                    "kind": t.kind,
                    "level": t.level,
                    "strength": t.strength,
                }
            )
    false_alarms = sorted(
        {
            "run": k[0],
            "subsystem": k[1],
            "histogram": k[2],
            "comparators": sorted(ev["flagged"][k]),
        }.items()
        for k in ev["histograms"]
        if k not in {(t.run, t.subsystem, t.histogram) for t in truth} and is_flagged(k)
    )
    healthy = [k for k in ev["histograms"] if k not in bad]
    fa = sum(is_flagged(k) for k in healthy)
    healthy_runs = [r.run for r in ev["runs"] if r.healthy]
    runs_with_fa = {k[0] for k in healthy if is_flagged(k) and k[0] in set(healthy_runs)}
    caught = sum(c[0] for lv in cells.values() for c in lv.values())
    medium_up = [c for lv in cells.values() for name, c in lv.items() if name != "weak"]
    return {
        "verdict": verdict,
        "cells": {
            k: {lv: {"caught": c[0], "total": c[1]} for lv, c in v.items()}
            for k, v in cells.items()
        },
        "detected": caught,
        "failures": len(truth),
        "detection_rate": caught / max(len(truth), 1),
        "detection_rate_medium_strong": sum(c[0] for c in medium_up)
        / max(sum(c[1] for c in medium_up), 1),
        "healthy_histograms": len(healthy),
        "false_alarms": fa,
        "false_alarm_rate": fa / max(len(healthy), 1),
        "healthy_runs": len(healthy_runs),
        "healthy_runs_with_false_alarm": len(runs_with_fa),
        "missed": missed,
        "false_alarm_list": [dict(x) for x in false_alarms],
    }


def merge(scores: list[dict[str, Any]]) -> dict[str, Any]:
    out = json.loads(json.dumps(scores[0]))
    for s in scores[1:]:
        for kind, levels in s["cells"].items():
            for lv, c in levels.items():
                cell = out["cells"].setdefault(kind, {}).setdefault(lv, {"caught": 0, "total": 0})
                cell["caught"] += c["caught"]
                cell["total"] += c["total"]
        for k in (
            "detected",
            "failures",
            "healthy_histograms",
            "false_alarms",
            "healthy_runs",
            "healthy_runs_with_false_alarm",
            "missed",
            "false_alarm_list",
        ):
            out[k] += s[k]
    med = [c for lv in out["cells"].values() for n, c in lv.items() if n != "weak"]
    out["detection_rate"] = out["detected"] / max(out["failures"], 1)
    out["detection_rate_medium_strong"] = sum(c["caught"] for c in med) / max(
        sum(c["total"] for c in med), 1
    )
    out["false_alarm_rate"] = out["false_alarms"] / max(out["healthy_histograms"], 1)
    return out


def table(s: Mapping[str, Any]) -> str:
    levels = ("weak", "medium", "strong")
    lines = [f"verdict: {s['verdict']}", f"{'kind':<14}" + "".join(f"{lv:>16}" for lv in levels)]
    for kind in sorted(s["cells"]):
        row = f"{kind:<14}"
        for lv in levels:
            c = s["cells"][kind].get(lv)
            row += (
                f"{'-':>16}"
                if not c
                else f"{c['caught']:>5}/{c['total']:<4} {100 * c['caught'] / c['total']:5.1f}%"
            )
        lines.append(row)
    lines.append(
        f"detected {s['detected']}/{s['failures']} = {100 * s['detection_rate']:.1f}%  "
        f"(medium+strong {100 * s['detection_rate_medium_strong']:.1f}%)"
    )
    lines.append(
        f"false alarms {s['false_alarms']}/{s['healthy_histograms']} healthy histograms = "
        f"{100 * s['false_alarm_rate']:.2f}%; healthy runs with a false alarm: "
        f"{s['healthy_runs_with_false_alarm']}/{s['healthy_runs']}"
    )
    return "\n".join(lines)


def summary(s: Mapping[str, Any]) -> str:
    """One line: detection overall and at medium+strong, false alarms."""
    return (
        f"{s['verdict']:<15} detected {s['detected']:>3}/{s['failures']:<3} "
        f"{100 * s['detection_rate']:5.1f}%  medium+strong "
        f"{100 * s['detection_rate_medium_strong']:5.1f}%  false alarms "
        f"{s['false_alarms']:>3} ({100 * s['false_alarm_rate']:.3f}%), healthy runs with one "
        f"{s['healthy_runs_with_false_alarm']}/{s['healthy_runs']}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=60)
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--failure-fraction", type=float, default=0.6)
    ap.add_argument("--refs", type=int, default=4)
    ap.add_argument("--noisy-channels", type=float, default=0.0,
                    help="fraction of each 2D map's bins that are noisy channels (demo-data)")  # fmt: skip
    ap.add_argument("--data", type=Path, help="use an existing demo-data directory (one seed)")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON to this file")
    args = ap.parse_args()
    registry = build_registry()
    config_dir = Settings.from_env().config_dir
    per_seed: dict[str, list[dict[str, Any]]] = defaultdict(list)
    rank_totals: dict[str, int] = {}
    seeds = [0] if args.data else [int(s) for s in args.seeds.split(",")]
    t0 = time.perf_counter()
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            data_dir = args.data or Path(tmp)
            if not args.data:
                generate(
                    data_dir,
                    DemoOptions(
                        runs=args.runs,
                        seed=seed,
                        failure_fraction=args.failure_fraction,
                        noisy_channels=args.noisy_channels,
                    ),
                )
            names = sorted(
                {r.subsystem for r in load_truth(data_dir)} | {"CSC", "DT", "RPC", "EMTF"}
            )
            subs = [load_subsystem(find_subsystem(n, config_dir), registry) for n in names]
            ev = evaluate(data_dir, subs, registry, args.refs)
            comparators = sorted({c for cs in ev["flagged"].values() for c in cs if c != DECIDED}
                                 | set(ev["ran"]))  # fmt: skip
            for verdict in ("autodqm", *comparators):
                per_seed[verdict].append(score(ev, verdict))
            for k, v in ranking(ev).items():
                rank_totals[k] = rank_totals.get(k, 0) + v
            print(
                f"seed {seed}: {len(ev['runs'])} runs judged, statuses {ev['statuses']}",
                file=sys.stderr,
            )
    figures = {v: merge(s) for v, s in per_seed.items()}
    figures["seconds"] = round(time.perf_counter() - t0, 1)
    figures["seeds"] = seeds
    figures["ranking"] = rank_totals
    for v in ("autodqm", "beta_binomial"):
        print(table(figures[v]))
        print()
    print("each comparator alone (all failures count, also where it does not run):")
    for v in sorted(per_seed):
        print("  " + summary(figures[v]))
    print(
        f"run-wide ranking: {rank_totals['above_every_false_alarm']} of {rank_totals['caught']} "
        "caught failures rank above every false alarm of their run "
        f"({rank_totals['runs_with_both']} runs have both)"
    )
    print(f"{figures['seconds']} s for {len(seeds)} seed(s)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
