"""Engine layer: the parsed form of a subsystem config (frozen dataclasses) and the
per-comparator parameter merge. Parsing and checking live in :mod:`engine.config`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.registry import Registry
from engine.subsystem_schema import DEFAULT_DECIDE, OPT_NUMBERS, opt_number


@dataclass(frozen=True, slots=True)
class ThresholdFit:
    """A ``thresholds_fit`` entry: cuts ``a/nRef + b**2`` for histograms matching ``name``."""

    name: str
    chi2: tuple[float, float] | None
    max_pull: tuple[float, float] | None

    def matches(self, hist_name: str) -> bool:
        """True when ``name`` is a substring of ``hist_name`` (``*`` matches any text)."""
        if "*" not in self.name:
            return self.name in hist_name
        pattern = ".*".join(re.escape(part) for part in self.name.split("*"))
        return re.search(pattern, hist_name) is not None


@dataclass(frozen=True, slots=True)
class HistConfig:
    """One ``hists[]`` entry. ``path`` is below ``main_gdir``; ``*`` only in its last part."""

    index: int
    path: str
    comparators: tuple[str, ...] | None
    norm_type: str = "all"
    always_show: bool = False
    concatenate: tuple[str, ...] = ()
    xmin: float | None = None
    xmax: float | None = None
    xlabels: tuple[str, ...] | None = None
    ylabels: tuple[str, ...] | None = None
    opts: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict)
    decide: tuple[str, ...] | None = None

    @property
    def directory(self) -> str:
        """The directory part of ``path`` ('' or ending in '/')."""
        head, sep, _ = self.path.rpartition("/")
        return head + sep

    @property
    def name(self) -> str:
        """The last component of ``path`` (may hold ``*``)."""
        return self.path.rpartition("/")[2]


@dataclass(frozen=True, slots=True)
class SubsystemConfig:
    """One subsystem config file, validated against the comparator registry."""

    name: str
    source: Path
    main_gdir: str
    comparators: tuple[str, ...]
    hists: tuple[HistConfig, ...]
    thresholds_fit: tuple[ThresholdFit, ...]
    params: Mapping[str, Any]
    dataset: str | None
    references: Mapping[str, Any] | None
    sel_display: Any
    run_reg: Any
    digest: str
    raw: Mapping[str, Any]
    decide: tuple[str, ...] = DEFAULT_DECIDE

    def gdir(self, run: int) -> str:
        """``main_gdir`` for ``run``, always ending in '/'."""
        path = self.main_gdir.format(run)
        return path if path.endswith("/") else path + "/"

    def deciders(self, hist: HistConfig) -> tuple[str, ...]:
        """The tests whose flags decide the verdict of ``hist`` (its ``decide``, else ours)."""
        return self.decide if hist.decide is None else hist.decide

    def tests(self, hist: HistConfig) -> tuple[tuple[str, bool], ...]:
        """``(comparator, explicit)`` for every test ``hist`` runs: its configured ones, then
        the deciding tests not among them (like defaults: left out where they do not apply).
        ``explicit`` is True for a histogram's own ``comparators`` list."""
        explicit = hist.comparators is not None
        names = hist.comparators if hist.comparators is not None else self.comparators
        extra = tuple((d, False) for d in self.deciders(hist) if d not in names)
        return tuple((n, explicit) for n in names) + extra


def config_digest(raw: Any) -> str:
    """sha256 of the canonical JSON of ``raw``: key order and whitespace do not count."""
    text = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def comparator_params(
    sub: SubsystemConfig, hist: HistConfig, hist_name: str, comparator: str, registry: Registry
) -> dict[str, Any]:
    """Constructor keyword arguments of ``comparator`` for one histogram.

    Lowest to highest precedence: subsystem flat keys, subsystem ``{comparator: {...}}``,
    hist flat keys, hist ``{comparator: {...}}``, numeric ``opts`` (``chi2_cut=3``);
    then ``xmin``/``xmax``, ``concatenated`` and ``norm_type`` from the entry's own keys,
    and ``fit_chi2``/``fit_pull`` from the last ``thresholds_fit`` entry matching
    ``hist_name`` unless the entry sets ``chi2_cut``/``pull_cut`` itself. Only
    parameters the comparator has are passed.

    Args:
        sub: the subsystem config.
        hist: the entry the histogram comes from.
        hist_name: the histogram's path below ``main_gdir`` (``thresholds_fit`` names
            are matched as substrings of it).
        comparator: a registered comparator name.
        registry: the registry the config was loaded with.

    Returns:
        Keyword arguments for ``registry.build(comparator, ...)``.
    """
    known = registry.params(comparator)
    out: dict[str, Any] = {}
    hist_set: set[str] = set()

    def take(source: Mapping[str, Any], from_hist: bool) -> None:
        for key, value in source.items():
            if key in known and key not in registry:
                out[key] = value
                if from_hist:
                    hist_set.add(key)

    for source, from_hist in ((sub.params, False), (hist.params, True)):
        take(source, from_hist)
        nested = source.get(comparator)
        if isinstance(nested, Mapping):
            take(nested, from_hist)
    take({k: opt_number(k, v) for k, v in hist.opts.items() if k in OPT_NUMBERS}, True)
    entry: dict[str, Any] = {
        "xmin": hist.xmin,
        "xmax": hist.xmax,
        "concatenated": bool(hist.concatenate) or None,
    }
    if "norm_type" in hist.raw:
        entry["norm_type"] = hist.norm_type
    out.update({k: v for k, v in entry.items() if k in known and v is not None})
    for param, cut, attr in (
        ("fit_chi2", "chi2_cut", "chi2"),
        ("fit_pull", "pull_cut", "max_pull"),
    ):
        if param not in known or cut in hist_set:
            continue
        fits = [getattr(f, attr) for f in sub.thresholds_fit if f.matches(hist_name)]
        fits = [f for f in fits if f is not None]
        if fits:
            out[param] = fits[-1]
    return out
