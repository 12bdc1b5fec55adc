"""Engine layer: the AutoDQM subsystem-config schema, checked key by key.

Used by :mod:`engine.config`. Every problem becomes one line naming the JSON path and,
where one exists, the closest known key or value (found with :mod:`difflib`).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from engine.registry import Registry

#: The comparators of a config that names none: AutoDQM's (its ``HistPair``, offline
#: source), same numbers, then the tests that learn each histogram's normal variation
#: from the references and set their cut from the number of histograms, so that a new
#: subsystem is judged well without tuning (each runs only where it applies).
#: AutoDQM's default tests, without its trained PCA: a model file is not something a
#: config can rely on (history_pca learns the same from each histogram's history).
AUTODQM_DEFAULTS: tuple[str, ...] = ("pull_values", "ks_test", "beta_binomial")
DEFAULT_COMPARATORS: tuple[str, ...] = (*AUTODQM_DEFAULTS, "variation_scan", "moments")
#: The tests whose flags decide a histogram's verdict and alerts unless a config's
#: ``decide`` says otherwise: the calibrated ones, whose false-alarm rate per run is their
#: ``alpha`` (``history_pca`` learns from the histogram's history; ``variation_scan`` and
#: ``moments`` from the spread of its references). They run on every histogram they apply
#: to, listed in ``comparators`` or not.
DEFAULT_DECIDE: tuple[str, ...] = ("history_pca", "variation_scan", "moments")
NORM_TYPES: tuple[str, ...] = ("all", "row", "col")
#: Keys of the top-level object besides comparator parameters.
TOP_KEYS = frozenset(
    {
        "main_gdir", "comparators", "hists", "thresholds_fit", "thresholds", "sel_display",
        "run_reg", "jar_dir", "excluded_hists", "dataset", "references", "decide",
    }
)  # fmt: skip
#: Keys of a ``hists[]`` entry besides comparator parameters.
HIST_KEYS = frozenset(
    {
        "path", "comparators", "norm_type", "always_show", "concatenate", "xmin", "xmax",
        "xlabels", "ylabels", "opts", "jar_dir", "decide",
    }
)  # fmt: skip
FIT_KEYS = frozenset({"name", "param_Chi2", "param_MaxPull"})
#: Free-text keys AutoDQM's own configs carry ("description", "descriptionX"); never read.
NOTE_PREFIXES: tuple[str, ...] = ("description", "comment", "_")
#: Comparator parameters a hist entry sets through its own keys, never written directly.
DERIVED_PARAMS = frozenset(
    {"xmin", "xmax", "norm_type", "concatenated", "fit_chi2", "fit_pull", "n_tests"}
)
OPT_FLAGS: tuple[str, ...] = ("logx", "logy")
OPT_TEXT: tuple[str, ...] = ("plot_title", "xaxis_title", "yaxis_title")
OPT_NUMBERS: tuple[str, ...] = ("pull_cap", "chi2_cut", "pull_cut", "min_entries", "ks_cut", "tol")
OPT_KEYS: tuple[str, ...] = OPT_FLAGS + OPT_TEXT + OPT_NUMBERS


def hint(word: str, choices: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest of ``choices``, or ``""``."""
    pool = sorted(set(choices))
    close = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    if not close and len(word) >= 2:  # an abbreviation: 'ks' -> 'ks_test'
        close = [c for c in pool if c.startswith(word)][:1]
    return f" (did you mean {close[0]!r}?)" if close else ""


def show(value: Any) -> str:
    """A short ``repr`` of a JSON value for messages."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def is_note(key: str) -> bool:
    return key.startswith(NOTE_PREFIXES)


class Problems:
    """Collects one-line problems ``"<file>: <json path>: <what>"`` in document order."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: list[str] = []

    def add(self, where: str, what: str) -> None:
        self.lines.append(f"{self.file}: {where}: {what}" if where else f"{self.file}: {what}")

    def expect(self, value: Any, kind: str, where: str) -> bool:
        """Check ``value`` is of ``kind``; record a problem and return False if not."""
        ok = {
            "a string": isinstance(value, str),
            "true or false": isinstance(value, bool),
            "a number": is_number(value),
            "an object": isinstance(value, Mapping),
            "a list": isinstance(value, list),
            "a list of strings": isinstance(value, list) and all(isinstance(v, str) for v in value),
        }[kind]
        if not ok:
            self.add(where, f"expected {kind}, found {show(value)}")
        return ok


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def param_names(registry: Registry, names: Iterable[str]) -> dict[str, list[str]]:
    """Parameter name -> the comparators (of ``names``) that have it."""
    out: dict[str, list[str]] = {}
    for name in names:
        for p in registry.params(name):
            out.setdefault(p, []).append(name)
    return out


def parse_opts(value: Any, where: str, probs: Problems) -> dict[str, str]:
    """AutoDQM ``opts`` strings (``"logy"``, ``"chi2_cut=3"``) as an ordered mapping."""
    if not probs.expect(value, "a list of strings", where):
        return {}
    out: dict[str, str] = {}
    for i, item in enumerate(value):
        key, eq, text = (s.strip() for s in item.partition("="))
        at = f"{where}[{i}]"
        if key not in OPT_KEYS:
            probs.add(at, f"unknown option {item!r}{hint(key, OPT_KEYS)}")
        elif key in OPT_FLAGS and eq:
            probs.add(at, f"option {key!r} takes no value, found {item!r} (write {key!r})")
        elif key not in OPT_FLAGS and not eq:
            probs.add(at, f"option {key!r} needs a value, e.g. '{key}=...', found {item!r}")
        elif key in OPT_NUMBERS and opt_number(key, text) is None:
            probs.add(at, f"{item!r}: expected a number after '='")
        else:
            out[key] = text
    return out


def opt_number(key: str, text: str) -> float | int | None:
    """The numeric value of an ``opts`` entry (``min_entries`` as an int), None if not one."""
    try:
        number = float(text)
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    if key == "min_entries":
        return int(number) if number.is_integer() else None
    return number


def check_path(value: Any, where: str, probs: Problems) -> str | None:
    if not probs.expect(value, "a string", where):
        return None
    if not value.strip("/"):
        probs.add(where, f"expected a histogram path below main_gdir, found {value!r}")
        return None
    if "*" in value.rpartition("/")[0]:
        probs.add(where, f"'*' is only allowed in the last component, found {value!r}")
        return None
    return str(value)


def check_comparators(
    value: Any, where: str, registry: Registry, probs: Problems
) -> tuple[str, ...] | None:
    """A non-empty list of registered comparator names, or None (with a problem)."""
    if not probs.expect(value, "a list of strings", where):
        return None
    if not value:
        probs.add(where, f"expected at least one comparator, e.g. {list(DEFAULT_COMPARATORS)!r}")
        return None
    bad = [name for name in value if name not in registry]
    for name in bad:
        probs.add(where, f"unknown comparator {name!r}{hint(name, registry.names())}")
    return None if bad else tuple(value)


def check_params(
    entry: Mapping[str, Any],
    where: str,
    known: Iterable[str],
    uses: Sequence[str] | None,
    registry: Registry,
    probs: Problems,
) -> dict[str, Any]:
    """Split an object's keys into comparator parameters, recording unknown keys.

    Args:
        entry: the JSON object (a ``hists[]`` entry or the top level).
        where: its JSON path prefix (``"hists[3]."`` or ``""``).
        known: the schema keys of that object (``HIST_KEYS`` or ``TOP_KEYS``).
        uses: the comparators the entry runs (a hist entry) or None (the top level,
            whose parameters may serve any comparator).
        registry: the comparators and their parameters.
        probs: where problems go.

    Returns:
        Flat parameters and nested ``{comparator: {...}}`` forms, as written.
    """
    every = param_names(registry, registry.names())
    flat_ok = {p for p in every if p not in DERIVED_PARAMS}
    params: dict[str, Any] = {}
    for key, value in entry.items():
        at = f"{where}{key}"
        if key in known or is_note(key):
            continue
        if key in registry:
            if uses is not None and key not in uses:
                probs.add(
                    at, f"parameters for {key!r}, which this entry does not run {_runs(uses)}"
                )
            elif probs.expect(value, "an object", at):
                names = registry.params(key)
                for sub in value:
                    if sub not in names or sub in DERIVED_PARAMS:
                        probs.add(f"{at}.{sub}", f"unknown parameter of {key!r}{hint(sub, names)}")
                params[key] = dict(value)
        elif key in flat_ok:
            if uses is not None and not any(key in registry.params(n) for n in uses):
                owners = ", ".join(repr(n) for n in every[key])
                probs.add(
                    at, f"parameter of {owners}, not of a comparator this entry runs {_runs(uses)}"
                )
            else:
                params[key] = value
        else:
            probs.add(at, f"unknown key{hint(key, [*known, *flat_ok, *registry.names()])}")
    return params


def _runs(uses: Sequence[str]) -> str:
    return "(it runs " + ", ".join(repr(n) for n in uses) + ")"


def check_fit_params(value: Any, where: str, probs: Problems) -> tuple[float, float] | None:
    """``[a, b]`` of a ``thresholds_fit`` cut ``a/nRef + b**2``.

    AutoDQM's own configs sometimes give more numbers (``[7, 7, 0.2]``); AutoDQM uses the
    first two and ignores the rest, and so does this.
    """
    if not (isinstance(value, list) and len(value) >= 2 and all(is_number(v) for v in value)):
        probs.add(
            where,
            f"expected two numbers [a, b] for the cut a/nRef + b² (AutoDQM ignores any "
            f"further numbers), found {show(value)}",
        )
        return None
    return (float(value[0]), float(value[1]))
