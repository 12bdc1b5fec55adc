r"""Benchmark: false alarms and detection on real CMS histograms (``../shared/real``).

The real contents of CSC ``Digis/hWireTBin_p11b`` and ``Segments/hSTimeCombined`` of
certified 2017 runs (``csc2017_early.npz``, see ``../shared/real/README.md``; never copied
into the project) are written as DQM ROOT files and read back once through ``engine.io``.
Every certified high-statistics run (entries at least a fifth of the median of the runs
before it) that has ``N`` such runs before it is judged against those ``N`` (the 4 and the
30 latest by default) with the shipped CSC config: its tests, each alone, the verdict
(the tests that decide, ``engine.outliers``) and ``beta_binomial`` alone (AutoDQM's
maths). The clean histograms give the false alarms. Failures of each kind and strength
are injected into the real counts of the same runs, at random places (seeded):

| kind | weak | medium | strong |
|---|---|---|---|
| dead_region: a run of populated bins read zero | 5 % of them | 10 % | 20 % |
| hot_channel: one populated bin holds more | x2 | x4 | x11 |
| inefficiency: 30 % of the populated bins lose | 10 % | 20 % | 40 % |
| timing_shift: the distribution moves by, of its RMS | 0.1 | 0.25 | 0.5 |
| width_change: the distribution widens by | 3 % | 6 % | 12 % |

Losses are binomial thinning of the real counts, gains Poisson, moves and widenings a
Poisson sample of the interpolated real counts. The cuts are those of a subsystem of
``--subsystem-size`` histograms (600: the size the defaults are set for).

    python benchmarks/realdata.py [--data ../shared/real/csc2017_early.npz] [--refs 4,30]
                                  [--seed 1] [--subsystem-size 600] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from engine import outliers
from engine.config import SubsystemConfig, find_subsystem, load_subsystem
from engine.io import open_dqm, write_dqm
from engine.pipeline import Plan, compare_hists, plan, tests_per_comparator
from engine.registry import build_registry
from engine.settings import ROOT, Settings
from engine.types import HistData, HistKind, Status

DEFAULT_DATA = ROOT.parent / "shared" / "real" / "csc2017_early.npz"
HISTS = {"hWireTBin_p11b": "Digis/hWireTBin_p11b", "hSTimeCombined": "Segments/hSTimeCombined"}
LEVELS = ("weak", "medium", "strong")
KINDS = ("dead_region", "hot_channel", "inefficiency", "timing_shift", "width_change")
STRENGTH = {
    "dead_region": (0.05, 0.10, 0.20),
    "hot_channel": (2.0, 4.0, 11.0),
    "inefficiency": (0.10, 0.20, 0.40),
    "timing_shift": (0.1, 0.25, 0.5),
    "width_change": (0.03, 0.06, 0.12),
}
VERDICT, AUTODQM = "verdict", "beta_binomial alone"


def inject(c: np.ndarray, kind: str, level: int, rng: np.random.Generator) -> np.ndarray:
    """A failure of ``kind`` at strength ``level`` (0-2) in the real counts ``c``."""
    f = STRENGTH[kind][level]
    out = c.astype(np.int64)
    pop = np.nonzero(c > 1e-3 * c.max())[0]
    lo, hi = int(pop.min()), int(pop.max()) + 1
    span = hi - lo
    x = np.arange(c.size, dtype=float)
    mu = float(np.sum(x * c) / c.sum())
    rms = float(np.sqrt(np.sum((x - mu) ** 2 * c) / c.sum()))
    if kind in ("dead_region", "inefficiency"):
        w = max(1, round(span * (f if kind == "dead_region" else 0.3)))
        a = int(rng.integers(lo, max(lo + 1, hi - w + 1)))
        keep = 0.0 if kind == "dead_region" else 1.0 - f
        out[a : a + w] = rng.binomial(out[a : a + w], keep)
    elif kind == "hot_channel":
        j = int(rng.choice(pop))
        out[j] += rng.poisson(out[j] * (f - 1.0))
    else:
        moved = (np.interp(x - f * rms, x, c) if kind == "timing_shift"
                 else np.interp(mu + (x - mu) / (1 + f), x, c) / (1 + f))  # fmt: skip
        out = rng.poisson(np.maximum(moved, 0.0))
    return out.astype(float)


def _hist(name: str, counts: np.ndarray, edges: np.ndarray, run: int) -> HistData:
    v = counts.astype(float)
    return HistData(name, run, v, v.copy(), (edges,), kind=HistKind.TH1, entries=float(v.sum()))


def write_and_read(
    sub: SubsystemConfig, runs: np.ndarray, contents: dict[str, np.ndarray],
    edges: dict[str, np.ndarray], folder: Path, tag: str = "",
) -> list[dict[str, HistData]]:  # fmt: skip
    """One DQM file per run (both histograms), decoded once; by in-file path below gdir."""
    out = []
    for i, run in enumerate(runs):
        gdir = sub.gdir(int(run))
        hists = {gdir + HISTS[n]: _hist(HISTS[n], contents[n][i], edges[n], int(run))
                 for n in HISTS}  # fmt: skip
        path = folder / f"DQM_V0001_R{int(run):09d}__SingleMuon__Run2017{tag}__DQMIO.root"
        write_dqm(path, hists)
        with open_dqm(path) as f:
            out.append({HISTS[n]: f.read(gdir + HISTS[n], path=HISTS[n], run=int(run))
                        for n in HISTS})  # fmt: skip
    return out


class Tally:
    """Counts of flagged / judged per (scorer, refs) for clean runs and each injection."""

    def __init__(self) -> None:
        self.n: dict[tuple[str, ...], list[int]] = defaultdict(lambda: [0, 0])

    def add(self, key: tuple[str, ...], flagged: bool) -> None:
        cell = self.n[key]
        cell[0] += int(flagged)
        cell[1] += 1

    def rate(self, *key: str) -> tuple[int, int]:
        return tuple(self.n.get(key, [0, 0]))  # type: ignore[return-value]


def judge(
    sub: SubsystemConfig, registry: Any, the_plan: Plan, counts: dict[str, int],
    data: dict[str, HistData], refs: list[dict[str, HistData]],
) -> dict[str, dict[str, bool]]:  # fmt: skip
    """``{histogram: {scorer: flagged}}`` for every test, the verdict and AutoDQM's."""
    results = compare_hists(sub, registry, the_plan, data, refs, n_tests=counts)
    out: dict[str, dict[str, bool]] = defaultdict(dict)
    for r in results:
        if r.status in (Status.OK, Status.FLAGGED):
            out[r.path][r.comparator] = r.status is Status.FLAGGED
    for v in outliers.by_histogram(sub.name, results):
        out[v.path][VERDICT] = v.status is Status.FLAGGED
        out[v.path][AUTODQM] = out[v.path].get("beta_binomial", False)
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    npz = np.load(args.data)
    order = np.argsort(npz["runs"])
    runs = npz["runs"][order]
    golden = npz["golden"][order]
    contents = {n: npz[n][order] for n in HISTS}
    edges = {n: npz[f"{n}_edges"].astype(float) for n in HISTS}
    settings = Settings.from_env()
    registry = build_registry()
    sub = load_subsystem(find_subsystem(args.subsystem, settings.config_dir), registry)
    certified = np.nonzero(golden)[0]
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        clean = write_and_read(sub, runs, contents, edges, Path(tmp))
        gdir = sub.gdir(int(runs[0]))
        with open_dqm(next(Path(tmp).glob(f"DQM_V0001_R{int(runs[0]):09d}__*"))) as f:
            the_plan = plan(sub, lambda d, p: f.expand(gdir + d if d else gdir.rstrip("/"), p))
        counts = dict.fromkeys(tests_per_comparator(sub, the_plan), args.subsystem_size)
        tally, judged = Tally(), 0
        for pos, i in enumerate(certified):
            if pos < max(args.refs):
                continue
            before = {n: float(np.median(contents[n][certified[pos - 30 : pos]].sum(1)))
                      for n in HISTS}  # fmt: skip
            if any(contents[n][i].sum() < 0.2 * before[n] for n in HISTS):
                continue  # a low-statistics run: neither judged nor used as a reference
            judged += 1
            injected = {(kind, lv): {n: inject(contents[n][i], kind, lv, rng) for n in HISTS}
                        for kind in KINDS for lv in range(3)}  # fmt: skip
            variants = write_and_read(
                sub, np.full(len(injected), runs[i]),
                {n: np.stack([c[n] for c in injected.values()]) for n in HISTS}, edges,
                Path(tmp), tag="inj",
            )  # fmt: skip
            for n_refs in args.refs:
                ref_idx = [j for j in certified[:pos] if _good_stats(contents, j, before)]
                refs = [clean[j] for j in ref_idx[-n_refs:]]
                for flags in judge(sub, registry, the_plan, counts, clean[i], refs).values():
                    for scorer, flagged in flags.items():
                        tally.add((str(n_refs), scorer, "clean"), flagged)
                for (kind, lv), data in zip(injected, variants, strict=True):
                    for flags in judge(sub, registry, the_plan, counts, data, refs).values():
                        for scorer, flagged in flags.items():
                            tally.add((str(n_refs), scorer, kind, LEVELS[lv]), flagged)
    return _report(tally, args, judged, time.perf_counter() - t0)


def _good_stats(contents: dict[str, np.ndarray], j: int, before: dict[str, float]) -> bool:
    return all(contents[n][j].sum() >= 0.2 * before[n] for n in HISTS)


def _report(tally: Tally, args: argparse.Namespace, judged: int, seconds: float) -> dict[str, Any]:
    scorers = sorted({k[1] for k in tally.n}, key=lambda s: (s != VERDICT, s != AUTODQM, s))
    out: dict[str, Any] = {"data": str(args.data), "judged_runs": judged, "seconds": seconds,
                           "subsystem_size": args.subsystem_size, "strengths": STRENGTH,
                           "refs": {}}  # fmt: skip
    for n_refs in map(str, args.refs):
        block = {}
        for s in scorers:
            fa = tally.rate(n_refs, s, "clean")
            det = {f"{k}/{lv}": tally.rate(n_refs, s, k, lv) for k in KINDS for lv in LEVELS}
            block[s] = {"false_alarms": fa, "detected": det}
        out["refs"][n_refs] = block
    return out


def _pct(x: tuple[int, int]) -> str:
    return f"{100 * x[0] / x[1]:.1f}%" if x[1] else "-"


def print_table(rep: dict[str, Any], write: Callable[[str], Any] = sys.stdout.write) -> None:
    write(f"{rep['data']}: {rep['judged_runs']} judged runs, 2 histograms each, "
          f"cuts of a {rep['subsystem_size']}-histogram subsystem ({rep['seconds']:.0f} s)\n")  # fmt: skip
    for n_refs, block in rep["refs"].items():
        write(f"\n{n_refs} references\n")
        head = ["test", "false alarms"] + [f"{k[:6]} {lv[0]}" for k in KINDS for lv in LEVELS]
        write(" | ".join(head) + "\n")
        for s, row in block.items():
            fa = row["false_alarms"]
            cells = [s, f"{fa[0]}/{fa[1]} {_pct(fa)}"]
            cells += [_pct(tuple(row["detected"][f"{k}/{lv}"])) for k in KINDS for lv in LEVELS]
            write(" | ".join(cells) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--refs", type=lambda s: [int(x) for x in s.split(",")], default=[4, 30])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--subsystem", default="CSC")
    p.add_argument("--subsystem-size", type=int, default=600)
    p.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = p.parse_args(argv)
    if not args.data.is_file():
        sys.stderr.write(f"realdata: {args.data} is absent (it lives in ../shared/real)\n")
        return 2
    rep = run(args)
    print_table(rep)
    if args.json:
        args.json.write_text(json.dumps(rep, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
