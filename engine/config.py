"""Engine layer: subsystem configs in AutoDQM's JSON schema, read, checked and parsed.

The dataclasses and :func:`comparator_params` live in :mod:`engine.subsystem_model`, the
key-by-key checks in :mod:`engine.subsystem_schema`; this module is the public entry.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from engine.errors import ConfigError
from engine.references import policy_from_config
from engine.registry import Registry
from engine.subsystem_model import (
    HistConfig,
    SubsystemConfig,
    ThresholdFit,
    comparator_params,
    config_digest,
)
from engine.subsystem_schema import (
    DEFAULT_COMPARATORS,
    DEFAULT_DECIDE,
    FIT_KEYS,
    HIST_KEYS,
    NORM_TYPES,
    TOP_KEYS,
    Problems,
    check_comparators,
    check_fit_params,
    check_params,
    check_path,
    hint,
    is_note,
    parse_opts,
    show,
)

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_COMPARATORS",
    "HistConfig",
    "SubsystemConfig",
    "ThresholdFit",
    "comparator_params",
    "config_digest",
    "find_subsystem",
    "load_subsystem",
    "validate_files",
]


def load_subsystem(path: str | os.PathLike[str], registry: Registry) -> SubsystemConfig:
    """Read and validate one subsystem config.

    Args:
        path: the JSON file.
        registry: the comparators the config may name, with their parameters.

    Returns:
        The parsed config.

    Raises:
        ConfigError: one line, ``"<file>: <json path>: <problem> (did you mean ...?)"``,
            for the first problem found.
    """
    sub, problems = _load(Path(path), registry)
    if problems:
        raise ConfigError(problems[0])
    assert sub is not None
    return sub


def validate_files(paths: Iterable[str | os.PathLike[str]], registry: Registry) -> list[str]:
    """Every problem of every file, one line each; ``[]`` when all are valid."""
    out: list[str] = []
    for p in paths:
        out.extend(_load(Path(p), registry)[1])
    return out


def find_subsystem(name_or_path: str, config_dir: str | os.PathLike[str]) -> Path:
    """Resolve ``"CSC"`` to ``<config_dir>/CSC.json``; an existing file is returned as is.

    Raises:
        ConfigError: the file does not exist, or no config has that name (the message
            lists the available names and the closest one).
    """
    given = Path(name_or_path)
    if given.is_file():
        return given
    if given.suffix == ".json" or "/" in name_or_path or os.sep in name_or_path:
        msg = f"{name_or_path}: no such file"
        raise ConfigError(msg)
    folder = Path(config_dir)
    candidate = folder / f"{name_or_path}.json"
    if candidate.is_file():
        return candidate
    names = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
    listing = f"available: {', '.join(names)}" if names else f"{folder} holds no *.json config"
    msg = f"unknown subsystem {name_or_path!r} ({listing}){hint(name_or_path, names)}"
    raise ConfigError(msg)


def _load(path: Path, registry: Registry) -> tuple[SubsystemConfig | None, list[str]]:
    probs = Problems(str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [f"{path}: no such file"]
    except (OSError, UnicodeDecodeError) as err:
        return None, [f"{path}: cannot read: {err}"]
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        return None, [f"{path}: line {err.lineno} column {err.colno}: {err.msg}"]
    if not isinstance(raw, dict):
        return None, [
            f"{path}: expected a JSON object at the top level, found {type(raw).__name__}"
        ]
    if "OnlineDataMap" in raw and "hists" not in raw:
        return None, [
            f"{path}: not a subsystem config: AutoDQM's map of online directories (OnlineDataMap)"
        ]
    sub = _parse(path, raw, registry, probs)
    if sub is not None and not probs.lines:
        _check_builds(sub, registry, probs)
    return (sub if not probs.lines else None), probs.lines


def _parse(
    path: Path, raw: dict[str, Any], registry: Registry, probs: Problems
) -> SubsystemConfig | None:
    main_gdir = raw.get("main_gdir")
    if main_gdir is None:
        probs.add(
            "main_gdir",
            "missing; the ROOT directory of the histograms, e.g. 'DQMData/Run {0}/CSC/Run summary/'",
        )
    elif probs.expect(main_gdir, "a string", "main_gdir"):
        try:
            main_gdir.format(0)
        except (IndexError, KeyError, ValueError) as err:
            probs.add(
                "main_gdir", f"bad format {main_gdir!r} ({err}); write {{0}} for the run number"
            )
    comparators = DEFAULT_COMPARATORS
    if raw.get("comparators") is not None:
        comparators = check_comparators(raw["comparators"], "comparators", registry, probs) or ()
    decide = tuple(d for d in DEFAULT_DECIDE if d in registry)
    if raw.get("decide") is not None:
        decide = check_comparators(raw["decide"], "decide", registry, probs) or ()
    params = check_params(raw, "", TOP_KEYS, None, registry, probs)
    fits = _parse_fits(raw.get("thresholds_fit", []), probs)
    for key, kind in (
        ("dataset", "a string"),
        ("references", "an object"),
        ("jar_dir", "a string"),
    ):
        if raw.get(key) is not None:
            probs.expect(raw[key], kind, key)
    if isinstance(raw.get("references"), dict):
        try:
            policy_from_config(raw["references"], "references")
        except ConfigError as err:
            where, _, what = str(err).partition(": ")
            probs.add(where, what)
    for key in ("thresholds", "excluded_hists"):
        if key in raw:
            probs.expect(raw[key], "a list", key)
    hists_raw = raw.get("hists")
    hists: list[HistConfig] = []
    if hists_raw is None:
        probs.add("hists", 'missing; a list of {"path": ...} entries')
    elif probs.expect(hists_raw, "a list", "hists"):
        if not hists_raw:
            probs.add("hists", "expected at least one histogram entry, found []")
        for i, entry in enumerate(hists_raw):
            hc = _parse_hist(i, entry, comparators, decide, registry, probs)
            if hc is not None:
                hists.append(hc)
    if probs.lines:
        return None
    return SubsystemConfig(
        name=path.stem,
        source=path,
        main_gdir=str(main_gdir),
        comparators=comparators,
        hists=tuple(hists),
        thresholds_fit=fits,
        params=params,
        dataset=raw.get("dataset"),
        references=raw.get("references"),
        sel_display=raw.get("sel_display"),
        run_reg=raw.get("run_reg"),
        digest=config_digest(raw),
        raw=raw,
        decide=decide,
    )


def _parse_hist(
    i: int, entry: Any, defaults: tuple[str, ...], decide: tuple[str, ...],
    registry: Registry, probs: Problems,
) -> HistConfig | None:  # fmt: skip
    at = f"hists[{i}]"
    if not probs.expect(entry, "an object", at):
        return None
    before = len(probs.lines)
    path = check_path(entry.get("path"), f"{at}.path", probs) if "path" in entry else None
    if "path" not in entry:
        probs.add(f"{at}.path", "missing; the histogram's path below main_gdir")
    comparators = None
    if entry.get("comparators") is not None:
        comparators = check_comparators(entry["comparators"], f"{at}.comparators", registry, probs)
    own_decide = None
    if entry.get("decide") is not None:
        own_decide = check_comparators(entry["decide"], f"{at}.decide", registry, probs)
    norm_type = entry.get("norm_type", "all")
    if norm_type not in NORM_TYPES:
        probs.add(
            f"{at}.norm_type",
            f"expected one of {', '.join(map(repr, NORM_TYPES))}, found {show(norm_type)}"
            + (hint(norm_type, NORM_TYPES) if isinstance(norm_type, str) else ""),
        )
    checks = (("always_show", "true or false"), ("xmin", "a number"), ("xmax", "a number"),
              ("concatenate", "a list of strings"), ("xlabels", "a list of strings"),
              ("ylabels", "a list of strings"), ("jar_dir", "a string"))  # fmt: skip
    for key, kind in checks:
        if key in entry:
            probs.expect(entry[key], kind, f"{at}.{key}")
    xmin, xmax = entry.get("xmin"), entry.get("xmax")
    if isinstance(xmin, int | float) and isinstance(xmax, int | float) and xmin >= xmax:
        probs.add(f"{at}.xmax", f"expected xmax > xmin, found xmin={xmin!r}, xmax={xmax!r}")
    opts = parse_opts(entry["opts"], f"{at}.opts", probs) if "opts" in entry else {}
    runs = comparators if comparators is not None else defaults
    uses = (*runs, *(d for d in (own_decide or decide) if d not in runs))
    params = check_params(entry, f"{at}.", HIST_KEYS, uses, registry, probs)
    if len(probs.lines) > before or path is None:
        return None
    labels = {k: tuple(entry[k]) if k in entry else None for k in ("xlabels", "ylabels")}
    return HistConfig(
        index=i,
        path=path,
        comparators=comparators,
        norm_type=norm_type,
        always_show=bool(entry.get("always_show", False)),
        concatenate=tuple(entry.get("concatenate", ())),
        xmin=None if xmin is None else float(xmin),
        xmax=None if xmax is None else float(xmax),
        xlabels=labels["xlabels"],
        ylabels=labels["ylabels"],
        opts=opts,
        params=params,
        raw=entry,
        decide=own_decide,
    )


def _parse_fits(value: Any, probs: Problems) -> tuple[ThresholdFit, ...]:
    if not probs.expect(value, "a list", "thresholds_fit"):
        return ()
    fits: list[ThresholdFit] = []
    for i, entry in enumerate(value):
        at = f"thresholds_fit[{i}]"
        if not probs.expect(entry, "an object", at):
            continue
        for key in entry:
            if key not in FIT_KEYS and not is_note(key):
                probs.add(f"{at}.{key}", f"unknown key{hint(key, FIT_KEYS)}")
        if "name" not in entry:
            probs.add(f"{at}.name", "missing; a substring of the histogram paths it applies to")
        elif probs.expect(entry["name"], "a string", f"{at}.name"):
            chi2, pull = (
                check_fit_params(entry[k], f"{at}.{k}", probs) if k in entry else None
                for k in ("param_Chi2", "param_MaxPull")
            )
            fits.append(ThresholdFit(entry["name"], chi2, pull))
    return tuple(fits)


def _check_builds(sub: SubsystemConfig, registry: Registry, probs: Problems) -> None:
    """Build every comparator of every entry once, so bad parameter values fail at load."""
    for hist in sub.hists:
        for name, _ in sub.tests(hist):
            try:
                registry.build(name, comparator_params(sub, hist, hist.path, name, registry))
            except ConfigError as err:
                probs.add(f"hists[{hist.index}]", str(err))
