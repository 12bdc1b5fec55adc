"""Engine layer (demo data): failure injection and the truth file it is recorded in.

Failures act on a histogram's *expected* shape before sampling, so the statistical
fluctuations of a damaged histogram stay realistic. Each has a kind, a level
(``weak`` barely visible ... ``strong`` obvious) and a numeric strength:

==============  =========================================================  =================
kind            what happens                                               strength
==============  =========================================================  =================
dead_region     a bin / a block of a row / a whole row (chamber, FEB,       fraction of the
                layer, ring) gets no entries                               entries lost
inefficiency    a block of a row keeps ``1 - s`` of its entries            s
                (profiles: its mean efficiency is scaled by ``1 - s``)
hot_channel     one bin gets ``1 + s`` times its expected content          s
timing_shift    the peak moves by ``s`` bins (0.15/0.4/1.5 peak widths)    s (bins)
width_change    the peak width (or spread) is scaled by ``1 + s``          s
empty           the histogram has no entries at all                        1
==============  =========================================================  =================
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.demo.catalog import KINDS, DemoError, HistSpec, Subsystem
from engine.demo.shapes import sigma_bins
from engine.types import FloatArray

LEVELS: tuple[str, ...] = ("weak", "medium", "strong")

STRENGTHS: dict[str, dict[str, float]] = {
    "inefficiency": {"weak": 0.1, "medium": 0.3, "strong": 0.7},
    "hot_channel": {"weak": 0.3, "medium": 1.5, "strong": 10.0},
    "timing_shift": {"weak": 0.15, "medium": 0.4, "strong": 1.5},  # x the peak width
    "width_change": {"weak": 0.08, "medium": 0.25, "strong": 0.8},
}
#: Efficiency (profile mean) drops are judged on a much finer scale than counts.
PROFILE_INEFFICIENCY: dict[str, float] = {"weak": 0.03, "medium": 0.1, "strong": 0.3}


@dataclass(frozen=True, slots=True)
class Failure:
    """One injected failure (a row of ``truth.json``).

    ``histogram`` is the path below the subsystem's ``main_gdir``, as in the configs;
    ``region`` the affected bins, 0-based and half-open: ``(x0, x1)`` or
    ``(x0, x1, y0, y1)`` (empty for whole-histogram kinds); ``expected_entries`` the
    entries the histogram would have had without the failure.
    """

    run: int
    subsystem: str
    histogram: str
    kind: str
    level: str
    strength: float
    region: tuple[int, ...] = ()
    expected_entries: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["region"] = list(self.region)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Failure:
        return cls(
            run=int(d["run"]),
            subsystem=str(d["subsystem"]),
            histogram=str(d["histogram"]),
            kind=str(d["kind"]),
            level=str(d["level"]),
            strength=float(d["strength"]),
            region=tuple(int(i) for i in d.get("region", ())),
            expected_entries=float(d.get("expected_entries", math.nan)),
        )


def _slices(region: tuple[int, ...]) -> tuple[slice, ...]:
    return tuple(slice(region[i], region[i + 1]) for i in range(0, len(region), 2))


#: Region length along x, as a fraction of the axis (0: one bin), for 1D and 2D.
_EXTENT: dict[str, dict[str, tuple[float, float]]] = {
    "dead_region": {"weak": (0.0, 0.0), "medium": (1 / 16, 1 / 8), "strong": (1 / 4, 1.0)},
    "inefficiency": {"weak": (1 / 16, 1 / 8), "medium": (1 / 8, 1 / 4), "strong": (1 / 2, 1.0)},
    "hot_channel": {"weak": (0.0, 0.0), "medium": (0.0, 0.0), "strong": (0.0, 0.0)},
}


def _region(
    rng: np.random.Generator, density: FloatArray, kind: str, level: str
) -> tuple[int, ...]:
    """Pick the bins a failure affects: an anchor bin with real support, grown along x.

    Strong 2D regions are a whole row (a ring, a layer, a roll); smaller ones a block of
    that row. Hot channels are picked among the busier half of the bins.
    """
    floor = 0.01 * float(density.max())
    support = np.argwhere(density > floor)
    if kind == "hot_channel":
        support = np.argwhere(density >= np.median(density[density > floor]))
    anchor = support[rng.integers(len(support))]
    nx = density.shape[0]
    frac = _EXTENT[kind][level][density.ndim - 1]
    length = max(1, round(frac * nx)) if frac else 1
    x0 = int(np.clip(anchor[0] - length // 2, 0, nx - length))
    out: tuple[int, ...] = (x0, x0 + length)
    if density.ndim == 2:
        out += (int(anchor[1]), int(anchor[1]) + 1)
    return out


def make_failure(
    rng: np.random.Generator, run: int, sub: Subsystem, spec: HistSpec, kind: str, level: str,
    lumi: float,
) -> Failure:  # fmt: skip
    """Draw the details (region, strength) of one failure of ``kind`` on ``spec``."""
    density = spec.shape(0.0, 1.0)
    density = density / density.sum()
    region: tuple[int, ...] = ()
    if kind == "empty":
        level, strength = "strong", 1.0
    elif kind in ("dead_region", "inefficiency", "hot_channel"):
        region = _region(rng, density, kind, level)
        if kind == "dead_region":
            strength = round(float(density[_slices(region)].sum()), 5)
        elif kind == "inefficiency" and spec.is_profile:
            strength = PROFILE_INEFFICIENCY[level]
        else:
            strength = STRENGTHS[kind][level]
    elif kind == "timing_shift":  # recorded in bins, chosen relative to the peak width
        strength = round(STRENGTHS[kind][level] * sigma_bins(spec.shape), 4)
    else:
        strength = STRENGTHS[kind][level]
    entries = round(float(spec.rate * lumi), 1)
    return Failure(run, sub.name, spec.path, kind, level, strength, region, entries)


def plan_failures(
    rng: np.random.Generator,
    runs: Sequence[tuple[int, float]],
    subsystems: Sequence[Subsystem],
    per_run: tuple[int, int] = (1, 3),
) -> list[Failure]:
    """Choose 1-3 failures for each of ``runs`` (``(run, lumi)`` pairs).

    Kinds cycle through a shuffled order so every kind is equally represented; the
    subsystem is drawn first (so the big DT catalogue does not take every failure),
    then a histogram of that subsystem that supports the kind.
    """
    order: list[str] = []
    out: list[Failure] = []
    for run, lumi in runs:
        used: set[tuple[str, str]] = set()
        for _ in range(int(rng.integers(per_run[0], per_run[1] + 1))):
            if not order:
                order = [KINDS[i] for i in rng.permutation(len(KINDS))]
            kind = order.pop()
            level = LEVELS[int(rng.integers(len(LEVELS)))]
            cands = [
                [h for h in s.hists if kind in h.kinds and (s.name, h.path) not in used]
                for s in subsystems
            ]
            subs = [i for i, c in enumerate(cands) if c]
            if not subs:
                continue
            si = subs[int(rng.integers(len(subs)))]
            spec = cands[si][int(rng.integers(len(cands[si])))]
            used.add((subsystems[si].name, spec.path))
            out.append(make_failure(rng, run, subsystems[si], spec, kind, level, lumi))
    return out


def apply_counts(density: FloatArray, failures: Sequence[Failure]) -> FloatArray:
    """Apply region/scale failures to an expected-counts density (returns a copy)."""
    out = density.copy()
    for f in failures:
        if f.kind == "empty":
            out[...] = 0.0
        elif f.kind == "dead_region":
            out[_slices(f.region)] = 0.0
        elif f.kind == "hot_channel":
            out[_slices(f.region)] *= 1.0 + f.strength
        elif f.kind == "inefficiency":
            out[_slices(f.region)] *= 1.0 - f.strength
    return out


def apply_profile(
    entries: FloatArray, mean: FloatArray, failures: Sequence[Failure]
) -> tuple[FloatArray, FloatArray]:
    """Apply failures to a profile: dead/empty remove entries, inefficiency lowers the mean."""
    entries, mean = entries.copy(), mean.copy()
    for f in failures:
        if f.kind == "empty":
            entries[...] = 0.0
        elif f.kind == "dead_region":
            entries[_slices(f.region)] = 0.0
        elif f.kind == "inefficiency":
            mean[_slices(f.region)] *= 1.0 - f.strength
    return entries, mean


def shape_args(failures: Sequence[Failure]) -> tuple[float, float]:
    """``(shift_bins, width_scale)`` the failures ask of a histogram's shape."""
    shift, scale = 0.0, 1.0
    for f in failures:
        if f.kind == "timing_shift":
            shift += f.strength
        elif f.kind == "width_change":
            scale *= 1.0 + f.strength
    return shift, scale


def load_truth(out_dir: str | Path) -> list[Failure]:
    """The injected failures recorded in ``OUT/truth.json`` by ``autodqm demo-data``.

    Raises:
        DemoError: The file is missing or malformed.
    """
    path = Path(out_dir) / "truth.json"
    try:
        rows = json.loads(path.read_text())
        return [Failure.from_dict(r) for r in rows]
    except (OSError, ValueError, KeyError, TypeError) as err:
        msg = f"{path}: cannot read the demo truth file ({err}); regenerate with autodqm demo-data"
        raise DemoError(msg) from err
