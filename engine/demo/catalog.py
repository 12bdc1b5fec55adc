"""Engine layer (demo data): the histogram catalogue — what each demo subsystem books.

Names, folders, binnings and bin labels follow the real CMS DQM modules (CSCOfflineMonitor,
DT digi/segment tasks, RPC digi monitoring, L1TStage2EMTF); shapes are plausible models.
The catalogue is a pure function of the subsystem name, built once per process.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.demo.shapes import Shape
from engine.errors import DQMError
from engine.types import FloatArray, HistKind

#: Failure kinds, in the order reports list them.
KINDS: tuple[str, ...] = (
    "dead_region",
    "inefficiency",
    "hot_channel",
    "timing_shift",
    "width_change",
    "empty",
)

#: Which failure kinds make sense for which family of histogram.
MAP = frozenset({"dead_region", "inefficiency", "hot_channel", "empty"})
PEAK = frozenset({"timing_shift", "width_change", "hot_channel", "empty"})
BXMAP = frozenset({"timing_shift", "width_change", "dead_region", "hot_channel", "empty"})
DIST = frozenset({"width_change", "hot_channel", "empty"})
FIXED = frozenset({"hot_channel", "empty"})
COUNTER = frozenset({"empty"})
PROFILE = frozenset({"dead_region", "inefficiency", "empty"})


class DemoError(DQMError):
    """Bad input to the demo-data generator (run count, subsystem name, output directory)."""


@dataclass(frozen=True, slots=True, eq=False)
class HistSpec:
    """One booked histogram and its expected shape.

    ``rate`` is the expected number of entries per pb⁻¹ of integrated luminosity.
    Profiles carry the per-bin expected ``mean`` and the per-entry ``spread``
    (``None``: a 0/1 efficiency, sampled binomially); their ``shape`` is the
    distribution of entries.
    """

    path: str
    kind: HistKind
    edges: tuple[FloatArray, ...]
    title: str
    axis_titles: tuple[str, ...]
    labels: tuple[tuple[str, ...] | None, ...]
    rate: float
    shape: Shape
    kinds: frozenset[str]
    mean: FloatArray | None = None
    spread: float | None = None

    @property
    def bins(self) -> tuple[int, ...]:
        return tuple(len(e) - 1 for e in self.edges)

    @property
    def is_profile(self) -> bool:
        return self.kind in (HistKind.PROFILE, HistKind.PROFILE2D)


@dataclass(frozen=True, slots=True, eq=False)
class Subsystem:
    """A subsystem's folder layout and booked histograms."""

    name: str
    top: str
    main_gdir: str
    hists: tuple[HistSpec, ...]

    def full_path(self, run: int, rel: str) -> str:
        """In-file path of histogram ``rel`` for ``run``."""
        return self.main_gdir.format(run) + rel

    @property
    def eventinfo_dir(self) -> str:
        """Format string (``{0}`` = run) of the folder holding the DQM scalars."""
        return f"DQMData/Run {{0}}/{self.top}/Run summary/EventInfo"


def h1(
    path: str,
    title: str,
    e: FloatArray,
    shape: Shape,
    rate: float,
    kinds: frozenset[str],
    *,
    xtitle: str = "",
    labels: Sequence[str] | None = None,
) -> HistSpec:
    """A TH1 spec (the y axis title is the entries count)."""
    lab = (tuple(labels),) if labels is not None else (None,)
    return HistSpec(path, HistKind.TH1, (e,), title, (xtitle, "Entries"), lab, rate, shape, kinds)


def h2(
    path: str,
    title: str,
    ex: FloatArray,
    ey: FloatArray,
    shape: Shape,
    rate: float,
    kinds: frozenset[str],
    *,
    titles: tuple[str, str] = ("", ""),
    xlabels: Sequence[str] | None = None,
    ylabels: Sequence[str] | None = None,
) -> HistSpec:
    """A TH2 spec."""
    lab = (tuple(xlabels) if xlabels else None, tuple(ylabels) if ylabels else None)
    return HistSpec(path, HistKind.TH2, (ex, ey), title, titles, lab, rate, shape, kinds)


def profile(
    spec: HistSpec, mean: FloatArray, spread: float | None = None, *, ztitle: str = ""
) -> HistSpec:
    """Turn an entries spec into a TProfile/TProfile2D with per-bin expected ``mean``."""
    kind = HistKind.PROFILE if len(spec.edges) == 1 else HistKind.PROFILE2D
    titles = spec.axis_titles if len(spec.edges) == 2 else (spec.axis_titles[0], ztitle)
    return HistSpec(
        spec.path,
        kind,
        spec.edges,
        spec.title,
        titles,
        spec.labels,
        spec.rate,
        spec.shape,
        PROFILE,
        np.broadcast_to(np.asarray(mean, dtype=np.float64), spec.bins).copy(),
        spread,
    )


def names() -> tuple[str, ...]:
    """Subsystems the generator knows, in generation order."""
    return ("CSC", "DT", "RPC", "EMTF")


@functools.cache
def subsystem(name: str) -> Subsystem:
    """The catalogue of one subsystem (cached; pure).

    Raises:
        DemoError: ``name`` is not a demo subsystem (the message suggests the closest).
    """
    from engine.demo import cat_barrel, cat_endcap

    builders = {
        "CSC": cat_endcap.csc,
        "EMTF": cat_endcap.emtf,
        "DT": cat_barrel.dt,
        "RPC": cat_barrel.rpc,
    }
    if name not in builders:
        close = difflib.get_close_matches(name.upper(), builders, n=1, cutoff=0.3)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        msg = f"unknown demo subsystem {name!r}{hint}; expected one of {', '.join(names())}"
        raise DemoError(msg)
    return builders[name]()


def resolve(requested: Sequence[str] | None) -> tuple[Subsystem, ...]:
    """Subsystems for a ``--subsystems`` list (``None`` or empty: all), deduplicated.

    Raises:
        DemoError: A name is unknown.
    """
    chosen = list(dict.fromkeys(requested)) if requested else list(names())
    return tuple(subsystem(n) for n in chosen)
