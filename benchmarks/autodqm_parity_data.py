"""Benchmark data: DQM files whose paths match AutoDQM's own CSC.json and RPC.json.

One data run and four reference runs (CSC and RPC in each file), used by
``benchmarks/autodqm_parity.py --make-data DIR``. Real CMS histogram names and binnings;
the data run has failures (hot channel, dead regions, timing shift, wider clusters), an
empty histogram and low-statistics ones; one reference lacks a histogram, one has an
empty one; 1D histograms have empty leading/trailing bins so that trimming applies.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from engine.io import write_dqm
from engine.types import HistData, HistKind

DATA_RUN, DATA_LUMI = 362760, 40.0
REF_RUNS = ((362695, 35.0), (362696, 60.0), (362698, 25.0), (362720, 80.0))
_GDIR = {
    "CSC": "CSC/Run summary/CSCOfflineMonitor/",
    "RPC": "RPC/Run summary/AllHits/SummaryHistograms/",
}


def _g(x: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    return np.exp(-0.5 * ((x - mu) / sigma) ** 2)


def _catalogue() -> list[tuple[str, str, tuple[np.ndarray, ...], np.ndarray, float | None]]:
    """(subsystem, path, edges, expected shape, entries per pb^-1 or None for a value map)."""
    lin, out = np.linspace, []
    c = lambda e: 0.5 * (e[1:] + e[:-1])
    ch, st = lin(0.5, 36.5, 37), lin(0.5, 20.5, 21)
    for n in ("hORecHits", "hOSegments", "hOStrips", "hOWires"):  # chamber x station/ring
        out.append(("CSC", f"Occupancy/{n}", (ch, st), np.outer(np.ones(36), lin(2, 0.5, 20)), 2e4))
    xy = lin(-800, 800, 51)
    r = np.hypot(*np.meshgrid(c(xy), c(xy), indexing="ij"))
    for i in (1, 2, 3, 4):  # global x-y of rechits: a ring, empty corners and centre
        for side in "pm":
            out.append(
                (
                    "CSC",
                    f"recHits/hRHGlobal{side}{i}",
                    (xy, xy),
                    ((r > 150) & (r < 700)) * (1 + 200 / r),
                    5e3,
                )
            )
    e = lin(-0.5, 128.5, 130)  # empty below 6 and above 99: leading and trailing trimming
    out.append(
        ("CSC", "recHits/hRHnrechits", (e,), _g(c(e), 35, 10) * ((c(e) > 5) & (c(e) < 100)), 2e4)
    )
    e = lin(-0.5, 15.5, 17)
    for t in ("m42", "m11a", "p11a", "p42"):
        out.append(("CSC", f"Digis/hWireTBin_{t}", (e,), _g(c(e), 7, 2) + 0.01, 3e3))
    e = lin(-0.5, 100.5, 102)
    out.append(("CSC", "Digis/hStripNFired", (e,), _g(c(e), 20, 8) * (c(e) < 60), 2e4))
    out.append(("CSC", "Digis/hWirenGroupsTotal", (e,), _g(c(e), 30, 12) * (c(e) > 2), 2e4))
    e = lin(-0.5, 7.5, 9)
    for n in ("hSnhits", "hSnhitsm11a", "hSnhitsp42"):
        out.append(("CSC", f"Segments/{n}", (e,), np.array([0, 0, 0, 1, 2, 5, 10, 0.0]), 8e3))
    out.append(("CSC", "Segments/hSnSegments", (lin(-0.5, 10.5, 12),), 0.5 ** np.arange(11.0), 2e4))
    e = lin(-50, 50, 201)
    out.append(("CSC", "Segments/hSTimeCombined", (e,), _g(c(e), 0, 4), 2e4))
    for n in ("hSTimeDiff", "hSTimeDiff_m11a"):
        out.append(("CSC", f"Segments/{n}", (lin(0, 10, 51),), np.exp(-lin(0, 10, 50)), 5e3))
    out.append(
        (
            "CSC",
            "Segments/hSTimeVsZ",
            (lin(-1100, 1100, 45), lin(-50, 50, 41)),
            np.ones((44, 40)),
            5e3,
        )
    )
    e = lin(0, 110, 111)
    for n in ("hSChiSq", "hSChiSqm42", "hSChiSqp11a"):
        out.append(("CSC", f"Segments/{n}", (e,), np.exp(-c(e) / 8) * (c(e) > 1), 5e3))
    e = lin(-3.2, 3.2, 129)
    out.append(("CSC", "Segments/hSGlobalPhi", (e,), np.ones(128), 2e4))
    e = lin(0, 3.4, 137)
    out.append(
        (
            "CSC",
            "Segments/hSGlobalTheta",
            (e,),
            ((c(e) > 0.15) & (c(e) < 0.9)) | ((c(e) > 2.25) & (c(e) < 3.0)),
            2e4,
        )
    )
    for where in [f"Wheel_{w}" for w in (-2, -1, 0, 1, 2)] + [
        f"Disk_{d}" for d in (-3, -2, -1, 1, 2, 3)
    ]:
        out.append(
            ("RPC", f"ClusterSize_{where}", (lin(0.5, 16.5, 17),), 0.45 ** np.arange(16.0), 5e4)
        )
        out.append(
            (
                "RPC",
                f"BxDistribution_{where}",
                (lin(-10.5, 10.5, 22),),
                _g(np.arange(-10.0, 11), 0, 0.7) * (abs(np.arange(-10, 11)) < 4),
                5e4,
            )
        )
    seg, ring = lin(0.5, 36.5, 37), lin(0.5, 6.5, 7)
    for d in (-3, -2, -1, 1, 2, 3):  # value maps: fraction of size-1 clusters, mean size
        out.append(
            (
                "RPC",
                f"ClusterSizeIn1Bin_Ring_vs_Segment_Disk_{d}",
                (seg, ring),
                np.full((36, 6), 0.48),
                None,
            )
        )
        out.append(
            (
                "RPC",
                f"ClusterSizeMean_Ring_vs_Segment_Disk_{d}",
                (seg, ring),
                np.full((36, 6), 1.9),
                None,
            )
        )
    for w in (-2, -1, 0, 1, 2):
        m = np.full((12, 21), 2.1)
        m[:, 17:] = 0  # rolls that do not exist in this wheel
        out.append(
            (
                "RPC",
                f"ClusterSizeMean_Roll_vs_Sector_Wheel_{w}",
                (lin(0.5, 12.5, 13), lin(0.5, 21.5, 22)),
                m,
                None,
            )
        )
    out.append(
        (
            "RPC",
            "Occupancy_for_Barrel",
            (lin(0.5, 12.5, 13), lin(-2.5, 2.5, 6)),
            np.ones((12, 5)),
            2e5,
        )
    )
    out.append(
        (
            "RPC",
            "Occupancy_for_Endcap",
            (seg, lin(-3.5, 3.5, 8)),
            np.outer(np.ones(36), [1, 1, 1, 0, 1, 1, 1.0]),
            2e5,
        )
    )
    return out


#: Failures injected into the data run (applied to the expected counts or values).
_FAILURES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "Occupancy/hOStrips": lambda a: a * np.pad([[10.0]], ((10, 25), (5, 14)), constant_values=1),
    "Segments/hSTimeCombined": lambda a: np.roll(a, 6),  # +3 ns timing shift
    "Segments/hSGlobalPhi": lambda a: (
        a * np.where(np.arange(128) // 8 == 5, 0.05, 1)
    ),  # dead sector
    "Segments/hSChiSqm42": lambda a: a * 0,  # dead chamber type: empty data
    "Segments/hSnhitsp42": lambda a: a * 3 / a.sum(),  # low statistics
    "Segments/hSChiSqp11a": lambda a: a * 12 / a.sum(),
    "ClusterSize_Wheel_0": lambda a: a * np.linspace(0.6, 4, 16),  # wider clusters
    "Occupancy_for_Barrel": lambda a: a * (np.arange(60).reshape(12, 5) != 32),  # dead sector
    "ClusterSizeMean_Roll_vs_Sector_Wheel_1": lambda a: a * (np.arange(12) != 3)[:, None],
}


def _hists(run: int, lumi: float, index: int, rng: np.random.Generator) -> dict[str, HistData]:
    out: dict[str, HistData] = {}
    for sub, path, edges, shape, rate in _catalogue():
        name = path.rpartition("/")[2]
        if (index, name) in ((1, "hSTimeVsZ"), (3, "hWireTBin_p42")):
            if name == "hSTimeVsZ":
                continue  # missing from one reference: AutoDQM then skips the histogram
            rate = 0.0  # an empty reference, dropped by both
        s = np.asarray(shape, dtype=np.float64)
        expected = s if rate is None else s / s.sum() * rate * lumi
        if index < 0 and (fail := _FAILURES.get(path) or _FAILURES.get(name)) is not None:
            expected = fail(expected)
        if rate is None:
            values = np.where(expected > 0, expected + rng.normal(0, 0.06, expected.shape), 0)
        else:
            values = rng.poisson(expected).astype(np.float64)
        kind = HistKind.TH1 if len(edges) == 1 else HistKind.TH2
        out[f"DQMData/Run {run}/{_GDIR[sub]}{path}"] = HistData(
            path,
            run,
            values,
            values.copy(),
            tuple(np.asarray(e, float) for e in edges),
            name,
            kind=kind,
        )
    return out


def make_data(out: Path, seed: int = 7) -> list[Path]:
    """Write the data run and four references (CSC and RPC) to ``out``; return the paths."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    files = []
    for index, (run, lumi) in enumerate(((DATA_RUN, DATA_LUMI), *REF_RUNS), start=-1):
        path = out / f"DQM_V0001_R000{run}__parity.root"
        write_dqm(path, _hists(run, lumi, index, rng))
        files.append(path)
    return files
