"""Engine layer (demo data): catalogues of the barrel muon subsystems, DT and RPC.

Folder and histogram names follow CMSSW's DT digi/segment tasks and RPC digi monitoring
(wheels -2...+2, 12 sectors, 4 stations; DT layers SL1-SL3 x L1-L4; RPC rolls).
"""

from __future__ import annotations

import numpy as np

from engine.demo import shapes as sh
from engine.demo.catalog import DIST, MAP, PEAK, HistSpec, Subsystem, h1, h2, profile

WHEELS = (-2, -1, 0, 1, 2)
SECTORS = tuple(range(1, 13))
STATIONS = (1, 2, 3, 4)
#: DT chamber layers on the y axis of the per-chamber occupancy maps.
LAYERS = tuple(f"SL{sl}-L{la}" for sl in (1, 2, 3) for la in (1, 2, 3, 4))
#: Wires per phi layer by station; theta layers (SL2) have 57 wires, none in MB4.
PHI_WIRES = {1: 50, 2: 60, 3: 72, 4: 96}
#: RPC barrel rolls on the y axis of the per-sector occupancy maps.
ROLLS = (
    "RB1in_B", "RB1in_F", "RB1out_B", "RB1out_F", "RB2in_B", "RB2in_M", "RB2in_F",
    "RB2out_B", "RB2out_F", "RB3-_B", "RB3-_F", "RB3+_B", "RB3+_F", "RB4-_B", "RB4-_F",
    "RB4+_B", "RB4+_F",
)  # fmt: skip


def _dt_chamber(wheel: int, sector: int, station: int) -> np.ndarray:
    """Expected wire x layer occupancy of one DT chamber (zero where no wire exists)."""
    rng = np.random.default_rng(1000 + 100 * (wheel + 2) + 10 * sector + station)
    nx = PHI_WIRES[station]
    wire = np.arange(nx)
    m = np.zeros((nx, 12))
    phi_prof = 1.0 + 0.3 * np.exp(-(((wire - nx / 2) / (nx / 3)) ** 2))
    for sl in (0, 2):
        m[:, 4 * sl : 4 * sl + 4] = phi_prof[:, None]
    if station != 4:
        theta = (wire < 57) * (1.0 + 0.2 * np.cos(np.pi * wire / 57))
        m[:, 4:8] = theta[:, None] * (1.1 + 0.3 * abs(wheel))
    return m * rng.lognormal(0.0, 0.05, m.shape)


def dt() -> Subsystem:
    """DT: per-chamber digi occupancies, time boxes per wheel/station/superlayer,
    segment summaries and chamber efficiencies."""
    hs: list[HistSpec] = []
    tb = sh.edges(128, 0.0, 1280.0)
    for w in WHEELS:
        for s in SECTORS:
            for st in STATIONS:
                folder = f"01-Digi/Wheel{w}/Sector{s}/Station{st}"
                tag = f"W{w}_St{st}_Sec{s}"
                nx = PHI_WIRES[st]
                rate = 2.0e4 * (1.4 if st == 1 else 1.0) * (1.0 + 0.15 * abs(w))
                hs.append(h2(f"{folder}/OccupancyAllHits_perCh_{tag}", f"Occupancy {tag}",
                             sh.edges(nx, 0.5, nx + 0.5), sh.edges(12, 0.5, 12.5),
                             sh.fixed(_dt_chamber(w, s, st)), rate, MAP,
                             titles=("wire number", ""), ylabels=LAYERS))  # fmt: skip
        for st in STATIONS:
            for sl in (1, 2, 3):
                if st == 4 and sl == 2:
                    continue  # MB4 has no theta superlayer
                t0 = 480.0 + 6.0 * w + 3.0 * st + (4.0 if sl == 2 else 0.0)
                hs.append(h1(f"01-Digi/Wheel{w}/TimeBox_W{w}_St{st}_SL{sl}",
                             f"TimeBox W{w} St{st} SL{sl}", tb,
                             sh.drift_box(tb, t0, 390.0 if sl != 2 else 370.0, 9.0),
                             1.5e4 * (1.4 if st == 1 else 1.0), PEAK,
                             xtitle="time (ns)"))  # fmt: skip
    glb = np.random.default_rng(21).lognormal(0.0, 0.05, (12, 5)) * (1.0 + 0.1 * np.abs(WHEELS))
    hs.append(h2("02-Segments/SegmentGlbSummary", "Segment Global Summary",
                 sh.edges(12, 0.5, 12.5), sh.edges(5, -2.5, 2.5), sh.fixed(glb), 2.0e4, MAP,
                 titles=("Sector", "Wheel"), xlabels=[f"Sec{s}" for s in SECTORS],
                 ylabels=[f"Wheel{w}" for w in WHEELS]))  # fmt: skip
    sec14 = [f"Sec{s}" for s in range(1, 15)]
    mb = [f"MB{st}" for st in STATIONS]
    for w in WHEELS:
        occ = np.random.default_rng(30 + w).lognormal(0.0, 0.05, (14, 4))
        occ[12:, :3] = 0.0  # sectors 13/14 exist only in MB4 ...
        occ[[3, 9], 3] *= 0.5  # ... where they share sectors 4 and 10
        occ[12:, 3] *= 0.5
        occ[:, 0] *= 1.5
        seg = h2(f"02-Segments/Wheel{w}/numberOfSegments_W{w}", f"Number of segments W{w}",
                 sh.edges(14, 0.5, 14.5), sh.edges(4, 0.5, 4.5), sh.fixed(occ), 4.0e3, MAP,
                 titles=("Sector", "Station"), xlabels=sec14, ylabels=mb)  # fmt: skip
        hs.append(seg)
        eff = np.clip(0.985 - np.random.default_rng(40 + w).exponential(0.01, (14, 4)), 0.9, 1.0)
        hs.append(profile(h2(f"05-ChamberEff/EfficiencyMap_All_W{w}",
                             f"Segment efficiency W{w}", seg.edges[0], seg.edges[1],
                             sh.fixed(occ), 4.0e3, MAP, titles=("Sector", "Station"),
                             xlabels=sec14, ylabels=mb), eff))  # fmt: skip
    return Subsystem("DT", "DT", "DQMData/Run {0}/DT/Run summary/", tuple(hs))


def _rpc_sector(wheel: int, sector: int) -> np.ndarray:
    rng = np.random.default_rng(2000 + 20 * (wheel + 2) + sector)
    nstrips = rng.integers(84, 97, len(ROLLS))
    m = (np.arange(96)[:, None] < nstrips[None, :]).astype(float)
    return m * rng.lognormal(0.0, 0.06, m.shape) * (1.0 + 0.3 * (np.arange(17) < 4))


def rpc() -> Subsystem:
    """RPC: barrel/endcap occupancy summaries, per-sector maps, cluster size, BX, efficiency."""
    summ = "AllHits/SummaryHistograms"
    secs = [f"Sec{s}" for s in SECTORS]
    wheels = [f"Wheel{w}" for w in WHEELS]
    disks = (-4, -3, -2, -1, 1, 2, 3, 4)
    rng = np.random.default_rng(50)
    hs: list[HistSpec] = [
        h2(f"{summ}/Occupancy_for_Barrel", "Barrel Occupancy", sh.edges(12, 0.5, 12.5),
           sh.edges(5, -2.5, 2.5), sh.fixed(rng.lognormal(0, 0.05, (12, 5))), 5.0e4, MAP,
           titles=("Sector", "Wheel"), xlabels=secs, ylabels=wheels),
        h2(f"{summ}/Occupancy_for_Endcap", "Endcap Occupancy", sh.edges(6, 0.5, 6.5),
           sh.edges(8, 0.5, 8.5), sh.fixed(rng.lognormal(0, 0.05, (6, 8))), 3.0e4, MAP,
           titles=("Sector", "Disk"), xlabels=[f"Sec{s}" for s in range(1, 7)],
           ylabels=[f"Disk{d}" for d in disks]),
    ]  # fmt: skip
    strips = sh.edges(96, 0.5, 96.5)
    rolls = sh.edges(17, 0.5, 17.5)
    for w in WHEELS:
        for s in SECTORS:
            folder = f"AllHits/Barrel/Wheel_{w}/SummaryBySectors"
            hs.append(h2(f"{folder}/Occupancy_Wheel_{w}_Sector_{s}",
                         f"Occupancy Wheel {w} Sector {s}", strips, rolls,
                         sh.fixed(_rpc_sector(w, s)), 2.0e4, MAP,
                         titles=("Strips", "Roll"), ylabels=ROLLS))  # fmt: skip
    cs, bx, mult = sh.edges(16, 0.5, 16.5), sh.edges(9, -4.5, 4.5), sh.edges(50, 0.5, 50.5)
    regions = [(f"Wheel_{w}", 1.0e4) for w in WHEELS] + [(f"Disk_{d}", 5.0e3) for d in disks]
    for i, (reg, rate) in enumerate(regions):
        hs.append(h1(f"{summ}/ClusterSize_{reg}", f"Cluster size {reg}", cs,
                     sh.gamma_like(cs, 1.6, 0.9 + 0.02 * (i % 4)), rate, DIST,
                     xtitle="Cluster size"))  # fmt: skip
        hs.append(h1(f"{summ}/BxDistribution_{reg}", f"Bx distribution {reg}", bx,
                     sh.gauss_peak(bx, 0.0, 0.3, 0.004), rate, PEAK, xtitle="BX"))  # fmt: skip
        hs.append(h1(f"{summ}/Multiplicity_{reg}", f"Multiplicity {reg}", mult,
                     sh.gamma_like(mult, 2.0, 3.0 + 0.1 * (i % 3)), rate / 4, DIST,
                     xtitle="Number of digis per event"))  # fmt: skip
    for w in WHEELS:
        occ = rng.lognormal(0, 0.05, (12, 17))
        hs.append(profile(h1(f"{summ}/ClusterSizeMean_Wheel_{w}", f"Mean cluster size W{w}",
                             sh.edges(12, 0.5, 12.5), sh.fixed(occ.sum(axis=1)), 1.0e4, MAP,
                             labels=secs), 1.75 + rng.normal(0, 0.05, 12), 1.2,
                          ztitle="Mean cluster size"))  # fmt: skip
        eff = np.clip(0.96 - rng.exponential(0.015, (12, 17)), 0.8, 1.0)
        hs.append(profile(h2(f"RPCEfficiency/Efficiency_Roll_vs_Sector_Wheel_{w}",
                             f"Efficiency Roll vs Sector Wheel {w}", sh.edges(12, 0.5, 12.5),
                             rolls, sh.fixed(occ), 3.0e3, MAP, titles=("Sector", "Roll"),
                             xlabels=secs, ylabels=ROLLS), eff))  # fmt: skip
    return Subsystem("RPC", "RPC", "DQMData/Run {0}/RPC/Run summary/", tuple(hs))
