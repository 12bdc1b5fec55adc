"""Benchmark: milliseconds per histogram of the comparators, on in-memory histograms.

Cases: 1D 100 bins (up to 1e5 entries per bin), 2D 50x50 and 100x100 (20-2000 entries
per bin), each against 1 and 4 references. Each comparator runs on the cases of its
dimensions; the best of ``--repeat`` rounds of ``--hists`` distinct histograms is kept.
A 16 MB scratch array is allocated and freed first, as reading ROOT files does in a real
run: afterwards glibc keeps freed memory instead of returning it after every call, whose
page faults would otherwise make the figures depend on the process's history (up to 2x).

    PYTHONPATH=. python benchmarks/comparators.py [--hists 200] [--repeat 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence

import numpy as np

from engine.types import Comparator, HistData, HistKind
from plugins.beta_binomial import BetaBinomial
from plugins.ks import KSTest
from plugins.moments import Moments
from plugins.multiscale import RegionScan
from plugins.pull_values import PullValues
from plugins.variation import VariationScan

CASES: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("1D 100", (100,)),
    ("2D 50x50", (50, 50)),
    ("2D 100x100", (100, 100)),
)
COMPARATORS: tuple[Comparator, ...] = (
    BetaBinomial(),
    RegionScan(),
    VariationScan(),
    PullValues(),
    KSTest(),
    Moments(),
)


def _shape(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """A smooth expected-count map: 20..2000 per bin in 2D, up to 1e5 per bin in 1D."""
    if len(shape) == 1:
        x = np.linspace(-3, 3, shape[0])
        return 1e5 * np.exp(-0.5 * (x / rng.uniform(0.8, 1.5)) ** 2) + 50.0
    gx = np.linspace(0, 1, shape[0])[:, None]
    gy = np.linspace(0, 1, shape[1])[None, :]
    lo, hi = np.log(20.0), np.log(2000.0)
    return np.exp(lo + (hi - lo) * (0.5 * gx + 0.5 * gy * rng.uniform(0.5, 1.0)))


def _hist(values: np.ndarray, run: int) -> HistData:
    edges = tuple(np.linspace(0.0, float(n), n + 1) for n in values.shape)
    kind = HistKind.TH1 if values.ndim == 1 else HistKind.TH2
    return HistData("bench/h", run, values, None, edges, kind=kind)


def make_case(
    shape: tuple[int, ...], n_refs: int, n_hists: int, seed: int = 1
) -> list[tuple[HistData, list[HistData]]]:
    """``n_hists`` (data, references) pairs of Poisson histograms around one shape each."""
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n_hists):
        lam = _shape(shape, rng)
        data = _hist(rng.poisson(lam).astype(np.float64), 1000)
        refs = [
            _hist(rng.poisson(lam * rng.uniform(0.5, 3.0)).astype(np.float64), 900 + k)
            for k in range(n_refs)
        ]
        pairs.append((data, refs))
    return pairs


def time_per_hist(
    comp: Comparator, pairs: Sequence[tuple[HistData, list[HistData]]], repeat: int
) -> float:
    """Best-of-``repeat`` milliseconds per ``compare`` call over ``pairs``."""
    for data, refs in pairs[:3]:  # warm up (lazily built tables, caches)
        comp.compare(data, refs)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for data, refs in pairs:
            comp.compare(data, refs)
        best = min(best, time.perf_counter() - t0)
    return 1e3 * best / len(pairs)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--hists", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    scratch = np.ones(2_000_000)  # see the module docstring
    del scratch
    rows: list[dict[str, object]] = []
    for label, shape in CASES:
        for n_refs in (1, 4):
            pairs = make_case(shape, n_refs, args.hists)
            for comp in COMPARATORS:
                if len(shape) not in comp.dims:
                    continue
                ms = time_per_hist(comp, pairs, args.repeat)
                rows.append({"comparator": comp.name, "case": label, "refs": n_refs, "ms": ms})
    print(f"{'comparator':<15}{'case':<13}{'refs':>5}{'ms/hist':>10}")
    for row in rows:
        print(f"{row['comparator']:<15}{row['case']:<13}{row['refs']:>5}{row['ms']:>10.3f}")
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
