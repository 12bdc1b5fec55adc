"""Engine layer (demo data): catalogues of the endcap muon subsystems, CSC and EMTF.

Folder and histogram names, binnings and labels follow CMSSW's CSCOfflineMonitor and
L1TStage2EMTF; the expected shapes are models (fixed seeds, so every run shares them).
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from engine.demo import shapes as sh
from engine.demo.catalog import (
    BXMAP,
    COUNTER,
    DIST,
    FIXED,
    MAP,
    PEAK,
    HistSpec,
    Subsystem,
    h1,
    h2,
    profile,
)

#: CSC chamber types as the y axis of the chamber maps lists them (bottom to top).
RINGS: tuple[str, ...] = tuple(
    f"ME {s}"
    for s in (
        "-4/2", "-4/1", "-3/2", "-3/1", "-2/2", "-2/1", "-1/3", "-1/2", "-1/1b", "-1/1a",
        "+1/1a", "+1/1b", "+1/2", "+1/3", "+2/1", "+2/2", "+3/1", "+3/2", "+4/1", "+4/2",
    )
)  # fmt: skip
#: The same types in CSCOfflineMonitor's booking order, as histogram-name tags.
TAGS: tuple[str, ...] = (
    "m42", "m41", "m32", "m31", "m22", "m21", "m11a", "m13", "m12", "m11b",
    "p11b", "p12", "p13", "p11a", "p21", "p22", "p31", "p32", "p41", "p42",
)  # fmt: skip
#: EMTF chamber-map x labels: 36 chambers with a neighbour ("N") bin per 60° sector.
EMTF_X: tuple[str, ...] = tuple(
    lab
    for sector in range(6)
    for lab in ([str(6 * sector + 1), str(6 * sector + 2), "N" + " " * (sector + 1)]
                + [str(6 * sector + k) for k in range(3, 7)])
)  # fmt: skip


def _ring_of(tag: str) -> str:
    """``'p11a'`` -> ``'ME +1/1a'``."""
    return f"ME {'+' if tag[0] == 'p' else '-'}{tag[1]}/{tag[2:]}"


def _ring_rates() -> np.ndarray:
    """Relative hit rate and chamber count per ring (the 20 y rows)."""
    rate = {"1/1a": 2.2, "1/1b": 2.0, "1/2": 1.0, "1/3": 0.6, "2/1": 1.6, "2/2": 0.9}
    rate |= {"3/1": 1.4, "3/2": 0.8, "4/1": 1.3, "4/2": 0.7}
    return np.array([rate[r[4:]] for r in RINGS])


def _chamber_map(seed: int) -> np.ndarray:
    """36 chambers x 20 rings; x/1 rings of stations 2-4 have only 18 (20°) chambers."""
    rng = np.random.default_rng(seed)
    m = np.outer(rng.lognormal(0.0, 0.08, 36), _ring_rates()) * rng.lognormal(0, 0.05, (36, 20))
    for j, r in enumerate(RINGS):
        if r[4:] in ("2/1", "3/1", "4/1"):
            m[18:, j] = 0.0
    return m


def csc() -> Subsystem:
    """CSC offline monitor: occupancies, rechits, digis, segments, efficiencies."""
    ch, rg = sh.edges(36, 0.5, 36.5), sh.edges(20, 0.5, 20.5)
    occ_t = ("Chamber #", "")
    ring_rate = dict(zip(RINGS, _ring_rates() / _ring_rates().mean(), strict=True))
    hs: list[HistSpec] = []
    for i, (name, title, rate) in enumerate(
        [("hORecHits", "RecHit Occupancy", 2.0e4), ("hOSegments", "Segment Occupancy", 4.0e3),
         ("hOStrips", "Strip Digi Occupancy", 3.0e4), ("hOWires", "Wire Digi Occupancy", 3.0e4)]
    ):  # fmt: skip
        shape = sh.fixed(_chamber_map(11) * _chamber_map(100 + i) ** 0.2)
        hs.append(h2(f"Occupancy/{name}", title, ch, rg, shape, rate, MAP,
                     titles=occ_t, ylabels=RINGS))  # fmt: skip
    counter = np.zeros(13)
    counter[[1, 3, 5, 7, 9, 11]] = [1.0, 0.93, 0.95, 0.9, 0.88, 0.71]
    lab = [""] * 13
    for k, t in zip([1, 3, 5, 7, 9, 11], ["Total Events", "# Events with Wires",
                    "# Events with Strips", "# Events with Wires&Strips",
                    "# Events with Rechits", "# Events with Segments"], strict=True):  # fmt: skip
        lab[k] = t
    hs.append(h1("Occupancy/hCSCOccupancy", "overall CSC occupancy", sh.edges(13, -0.5, 12.5),
                 sh.fixed(counter), 3.0e4, COUNTER, labels=lab))  # fmt: skip
    hs.append(h1("recHits/hRHnrechits", "RecHits per Event", sh.edges(100, 0, 100),
                 sh.gamma_like(sh.edges(100, 0, 100), 3.0, 6.0), 3.0e4, DIST,
                 xtitle="# of RecHits"))  # fmt: skip
    xy = sh.edges(100, -800.0, 800.0)
    for k, side in enumerate("pm"):
        for st in range(1, 5):
            r_in = 100.0 if st == 1 else 140.0
            hs.append(h2(f"recHits/hRHGlobal{side}{st}",
                         f"recHit global X,Y station {'+' if side == 'p' else '-'}{st}", xy, xy,
                         sh.annulus_xy(xy, r_in, 700.0, 36, 40 + 10 * k + st), 4.0e4, MAP,
                         titles=("Global X (cm)", "Global Y (cm)")))  # fmt: skip
    tb, rt = sh.edges(17, -0.5, 16.5), sh.edges(80, -500.0, 500.0)
    seg_t, dt_e = sh.edges(50, -50.0, 50.0), sh.edges(110, -0.05, 10.5)
    nhits = [0.0, 0.0, 0.0, 0.03, 0.09, 0.25, 0.63, 0.0]
    for i, tag in enumerate(TAGS):
        ring = _ring_of(tag)
        f = ring_rate[ring]
        me = f"(ME {ring[3:]})"
        hs.append(h1(f"recHits/hRHTimingAnode{tag}", f"Anode recHit Time {me}", rt,
                     sh.gauss_peak(rt, -10.0 + i % 3 * 5, 28.0, 0.03), 2.0e3 * f, PEAK,
                     xtitle="ns"))  # fmt: skip
        hs.append(h1(f"Digis/hWireTBin_{tag}", f"Wire TBin Fired {me}", tb,
                     sh.gauss_peak(tb, 7.6 + 0.1 * (i % 4), 1.3, 0.02), 3.0e3 * f, PEAK,
                     xtitle="Time Bin (25ns)"))  # fmt: skip
        p = np.array(nhits) * (1.0 + 0.04 * np.sin(np.arange(8) + i))
        hs.append(h1(f"Segments/hSnhits{tag}", f"# of hits on Segments {me}",
                     sh.edges(8, -0.5, 7.5), sh.pmf(list(p)), 8.0e2 * f, FIXED,
                     xtitle="# of hits"))  # fmt: skip
        hs.append(h1(f"Segments/hSChiSq{tag}", f"Segment Normalized Chi2 {me}", dt_e,
                     sh.gamma_like(dt_e, 1.6, 0.8 + 0.02 * (i % 5)), 8.0e2 * f, DIST,
                     xtitle="Chi2/ndof"))  # fmt: skip
        hs.append(h1(f"Segments/hSTimeDiff_{tag}", f"Anode Minus Cathode Segment Time {me} [ns]",
                     seg_t, sh.gauss_peak(seg_t, 0.5 * (i % 3), 6.0, 0.02), 8.0e2 * f,
                     PEAK))  # fmt: skip
    hs.append(h1("Digis/hStripNFired", "Fired Strips per Event", sh.edges(400, 0, 400),
                 sh.gamma_like(sh.edges(400, 0, 400), 2.5, 12.0), 3.0e4, DIST,
                 xtitle="# Strips Fired (above 13 ADC)"))  # fmt: skip
    hs.append(h1("Digis/hWirenGroupsTotal", "Fired Wires per Event", sh.edges(250, 0, 250),
                 sh.gamma_like(sh.edges(250, 0, 250), 2.5, 8.0), 3.0e4, DIST,
                 xtitle="# Wiregroups Fired"))  # fmt: skip
    hs.append(h1("Segments/hSnSegments", "Segments per Event", sh.edges(100, 0, 100),
                 sh.gamma_like(sh.edges(100, 0, 100), 2.0, 2.5), 3.0e4, DIST,
                 xtitle="# of Segments"))  # fmt: skip
    hs.append(h1("Segments/hSnhits", "N hits on Segments", sh.edges(8, -0.5, 7.5),
                 sh.pmf(nhits), 1.6e4, FIXED, xtitle="# of hits"))  # fmt: skip
    hs.append(h1("Segments/hSChiSq", "Segment Normalized Chi2", dt_e,
                 sh.gamma_like(dt_e, 1.6, 0.85), 1.6e4, DIST, xtitle="Chi2/ndof"))  # fmt: skip
    st_e = sh.edges(200, -120.0, 120.0)
    hs.append(h1("Segments/hSTimeCombined", "Segment Time (anode+cathode times)", st_e,
                 sh.gauss_peak(st_e, 0.0, 5.5, 0.02), 1.6e4, PEAK, xtitle="ns"))  # fmt: skip
    hs.append(h1("Segments/hSTimeDiff", "Anode Minus Cathode Segment Time [ns]", seg_t,
                 sh.gauss_peak(seg_t, 0.0, 6.0, 0.02), 1.6e4, PEAK))  # fmt: skip
    z_e, t_e = sh.edges(210, -1050.0, 1050.0), sh.edges(60, -120.0, 120.0)
    zc = 0.5 * (z_e[1:] + z_e[:-1])
    z0 = np.array([600.0, 700.0, 830.0, 935.0, 1020.0])  # |z| of the endcap stations
    z_w = np.exp(-0.5 * ((np.abs(zc)[:, None] - z0) / 25.0) ** 2).sum(axis=1)
    hs.append(h2("Segments/hSTimeVsZ", "Segment Time vs. Z; [ns] vs. [cm]", z_e, t_e,
                 sh.outer_peak(z_w, t_e, 0.0, 6.0, 0.02), 1.6e4, BXMAP,
                 titles=("Global Z (cm)", "Time (ns)")))  # fmt: skip
    phi_e = sh.edges(128, -3.2, 3.2)
    hs.append(h1("Segments/hSGlobalPhi", "Segment Direction (Global Phi)", phi_e,
                 sh.modulated(phi_e, 2 * np.pi / 36, 0.3), 1.6e4, MAP,
                 xtitle="Global Phi (radians)"))  # fmt: skip
    th_e = sh.edges(136, -0.1, 3.3)
    thc = 0.5 * (th_e[1:] + th_e[:-1])
    theta = np.exp(-0.5 * ((thc - 0.38) / 0.14) ** 2) + np.exp(-0.5 * ((thc - 2.76) / 0.14) ** 2)
    hs.append(h1("Segments/hSGlobalTheta", "Segment Direction (Global Theta)", th_e,
                 sh.fixed(theta + 1e-4), 1.6e4, MAP, xtitle="Global Theta (radians)"))  # fmt: skip
    eff = np.clip(0.975 - np.random.default_rng(7).exponential(0.01, (36, 20)), 0.85, 1.0)
    for name, title in (("hSSTE2", "Segment Efficiency"), ("hRHSTE2", "RecHit Efficiency")):
        entries = h2(f"Efficiency/{name}", title, ch, rg, sh.fixed(_chamber_map(11)), 4.0e3,
                     MAP, titles=occ_t, ylabels=RINGS)  # fmt: skip
        hs.append(profile(entries, eff if name == "hSSTE2" else np.minimum(eff + 0.01, 0.999)))
    return Subsystem("CSC", "CSC", "DQMData/Run {0}/CSC/Run summary/CSCOfflineMonitor/", tuple(hs))


def emtf() -> Subsystem:
    """L1T EMTF: CSC/RPC inputs, timing and selected-track distributions."""
    x42, y20 = sh.edges(42, 0.5, 42.5), sh.edges(20, 0.5, 20.5)
    neighbour = np.array([0.3 if lab.startswith("N") else 1.0 for lab in EMTF_X])
    base = np.outer(neighbour, _ring_rates()) * np.random.default_rng(5).lognormal(
        0, 0.06, (42, 20)
    )
    hs: list[HistSpec] = [
        h2("cscDQMOccupancy", "CSC Chamber Occupancy", x42, y20, sh.fixed(base), 2.0e4, MAP,
           titles=("Chamber", ""), xlabels=EMTF_X, ylabels=RINGS)
    ]  # fmt: skip
    for name, rate in (("cscLCTTimingBX0", 1.8e4), ("cscLCTTimingBXNeg1", 9.0e2),
                       ("cscLCTTimingBXPos1", 9.0e2), ("cscTimingTotal", 2.0e4)):  # fmt: skip
        # out-of-time LCTs are relatively more frequent in the neighbour bins
        tilt = 1.0 if "BX0" in name or "Total" in name else 1.3 - 0.5 * neighbour[:, None]
        hs.append(h2(f"Timing/{name}", f"CSC Chamber Occupancy {name[-4:]}", x42, y20,
                     sh.fixed(base * tilt), rate, MAP, titles=("Chamber", ""),
                     xlabels=EMTF_X, ylabels=RINGS))  # fmt: skip
    bx = sh.edges(7, -3.5, 3.5)
    bx_lab = [str(b) for b in range(-3, 4)]
    hs.append(h2("cscLCTBX", "CSC LCT BX", bx, y20, sh.bx_rows(7, _ring_rates()), 2.0e4, BXMAP,
                 titles=("BX", ""), xlabels=bx_lab, ylabels=RINGS))  # fmt: skip
    nstrip = {"11a": 48, "11b": 64, "12": 80, "13": 64}
    nwire = {"11a": 48, "11b": 48, "12": 64, "13": 32, "21": 112, "31": 96, "41": 96}
    s_e, w_e = sh.edges(160, 0.0, 160.0), sh.edges(112, 0.0, 112.0)
    rates = dict(zip(RINGS, _ring_rates(), strict=True))
    for i, tag in enumerate(TAGS):
        ring = _ring_of(tag)
        me = f"ME{tag[0]}{tag[1:]}"
        rng = np.random.default_rng(300 + i)
        ns, nw = 2 * nstrip.get(tag[1:], 80), nwire.get(tag[1:], 64)
        strips = (np.arange(160) < ns) * rng.lognormal(0, 0.05, 160)
        wires = (np.arange(112) < nw) * rng.lognormal(0, 0.05, 112)
        wires *= 1.0 + 0.5 * np.exp(-np.arange(112) / max(nw, 1) * 3)
        hs.append(h1(f"CSCInput/cscLCTStrip{me}", f"LCT Half Strip {ring}", s_e,
                     sh.fixed(strips), 5.0e3 * rates[ring], MAP,
                     xtitle="Cathode Half-Strip"))  # fmt: skip
        hs.append(h1(f"CSCInput/cscLCTWire{me}", f"LCT Wiregroup {ring}", w_e,
                     sh.fixed(wires), 5.0e3 * rates[ring], MAP,
                     xtitle="Anode Wiregroup"))  # fmt: skip
    re_rows = [f"RE {s}{st}/{r}" for s in "-+" for st in (range(4, 0, -1) if s == "-" else
               range(1, 5)) for r in ((3, 2) if s == "-" else (2, 3))]  # fmt: skip
    re_rate = np.random.default_rng(9).uniform(0.6, 1.2, 16)
    hs.append(h2("RPCInput/rpcHitOccupancy", "RPC Chamber Occupancy", sh.edges(36, 0.5, 36.5),
                 sh.edges(16, 0.5, 16.5),
                 sh.fixed(np.outer(np.random.default_rng(10).lognormal(0, 0.07, 36), re_rate)),
                 8.0e3, MAP, titles=("Chamber", ""), ylabels=re_rows))  # fmt: skip
    hs.append(h2("RPCInput/rpcHitBX", "RPC Hit BX", bx, sh.edges(16, 0.5, 16.5),
                 sh.bx_rows(7, re_rate, 0.3), 8.0e3, BXMAP,
                 titles=("BX", ""), xlabels=bx_lab, ylabels=re_rows))  # fmt: skip
    eta_e, phi_e = sh.edges(100, -2.5, 2.5), sh.edges(126, -3.15, 3.15)
    ec = 0.5 * (eta_e[1:] + eta_e[:-1])
    eta = ndtr((np.abs(ec) - 1.2) / 0.04) * ndtr((2.42 - np.abs(ec)) / 0.03)
    eta = eta * (1.0 + 0.4 * (np.abs(ec) - 1.2)) + 1e-4
    phi = sh.modulated(phi_e, np.pi / 3, 0.15)
    for suffix, rate in (("", 1.5e4), ("HighQuality", 1.0e4)):
        hs.append(h1(f"emtfTrackEta{suffix}", f"EMTF Track #eta {suffix}", eta_e, sh.fixed(eta),
                     rate, MAP, xtitle="Track #eta"))  # fmt: skip
        hs.append(h1(f"emtfTrackPhi{suffix}", f"EMTF Track #phi {suffix}", phi_e, phi, rate,
                     MAP, xtitle="Track #phi"))  # fmt: skip
    hs.append(h1("emtfTrackPt", "EMTF Track p_{T}", sh.edges(256, 1, 257),
                 sh.falling(sh.edges(256, 1, 257), 25.0, 1.3), 1.5e4, DIST,
                 xtitle="Track p_{T} [GeV]"))  # fmt: skip
    sectors = [f"ME{s} {k}" for s in "-+" for k in range(1, 7)]
    hs.append(h2("emtfTrackBX", "EMTF Track Bunch Crossing", bx, sh.edges(12, 0.5, 12.5),
                 sh.bx_rows(7, np.full(12, 1.0), 0.3), 1.5e4, BXMAP,
                 titles=("BX", "Sector (Endcap)"), xlabels=bx_lab, ylabels=sectors))  # fmt: skip
    mode = np.array([0, 0, 0, 2, 0, 3, 4, 10, 0, 3, 4, 12, 8, 14, 15, 35], dtype=float)
    hs.append(h1("emtfTrackMode", "EMTF Track Mode", sh.edges(16, -0.5, 15.5), sh.fixed(mode),
                 1.5e4, FIXED, xtitle="Mode"))  # fmt: skip
    qual = np.array([0, 1, 1, 2, 1, 2, 2, 4, 1, 2, 3, 6, 4, 8, 10, 25], dtype=float)
    hs.append(h1("emtfTrackQuality", "EMTF Track Quality", sh.edges(16, -0.5, 15.5),
                 sh.fixed(qual), 1.5e4, FIXED, xtitle="Quality"))  # fmt: skip
    hs.append(h1("emtfnTracks", "Number of EMTF Tracks per Event", sh.edges(11, -0.5, 10.5),
                 sh.pmf([0.55, 0.3, 0.1, 0.03, 0.01, 0.005, 0.002, 0.001, 5e-4, 2e-4, 1e-4]),
                 3.0e4, FIXED, labels=[str(k) for k in range(10)] + ["10+"]))  # fmt: skip
    hs.append(h2("emtfTrackOccupancy", "EMTF Track Occupancy", eta_e, phi_e,
                 sh.fixed(np.outer(eta, phi(0.0, 1.0))), 1.5e4, MAP,
                 titles=("#eta", "#phi")))  # fmt: skip
    return Subsystem("EMTF", "L1T", "DQMData/Run {0}/L1T/Run summary/L1TStage2EMTF/", tuple(hs))
