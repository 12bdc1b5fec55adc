"""Engine layer: reference-run policies; each choice carries a reason people can read.

``fixed`` runs, the ``previous_good`` certified runs, or the ``similar`` certified runs
by luminosity, duration and events. A subsystem config's ``references`` key picks one
(:func:`policy_from_config`).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import ConfigError
from engine.runmeta import RunMeta

#: ``{run: why}`` or just runs (why: "excluded"), e.g. runs with flagged results.
Exclude = Mapping[int, str] | Iterable[int]


@dataclass(frozen=True, slots=True)
class RefChoice:
    """Reference runs for a data run, why they were chosen, and the policy's name."""

    runs: tuple[int, ...]
    reason: str
    policy: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"runs": list(self.runs), "reason": self.reason, "policy": self.policy}


def _exclusions(exclude: Exclude) -> dict[int, str]:
    if isinstance(exclude, Mapping):
        return {int(r): str(why) for r, why in exclude.items()}
    return dict.fromkeys((int(r) for r in exclude), "excluded")


def _walk(
    ranked: Iterable[int], count: int, excl: Mapping[int, str]
) -> tuple[list[int], dict[int, str]]:
    """The first ``count`` runs of ``ranked`` not excluded, and the excluded runs passed over."""
    chosen: list[int] = []
    skipped: dict[int, str] = {}
    for r in ranked:
        if len(chosen) >= count:
            break
        if r in excl:
            skipped[r] = excl[r]
        elif r not in chosen:
            chosen.append(r)
    return chosen, skipped


def _notes(n: int, count: int, skipped: Mapping[int, str]) -> str:
    text = f" (only {n} of {count} available)" if 0 < n < count else ""
    if skipped:
        text += " (skipping " + "; ".join(f"{r}: {why}" for r, why in skipped.items()) + ")"
    return text


def fixed(runs: Iterable[int], run: int | None = None, exclude: Exclude = ()) -> RefChoice:
    """The configured reference runs, in the given order, without duplicates.

    The data run itself and excluded runs are left out, and the reason says so; when
    nothing is left, ``runs`` is empty and the reason says what to change.
    """
    given = list(dict.fromkeys(runs))
    excl = _exclusions(exclude)
    chosen = [r for r in given if r != run and r not in excl]
    skipped = {r: excl[r] for r in given if r in excl and r != run}
    notes = f" ({run} left out: it is the data run)" if run in given else ""
    notes += _notes(len(chosen), len(chosen), skipped)
    if not chosen:
        listed = ", ".join(map(str, given)) or "none"
        reason = f"no usable fixed reference run (configured: {listed}){notes}; configure others"
        return RefChoice((), reason, "fixed")
    return RefChoice(
        tuple(chosen), f"fixed reference runs {', '.join(map(str, chosen))}{notes}", "fixed"
    )


def previous_good(
    run: int, good: Iterable[int], count: int = 4, exclude: Exclude = ()
) -> RefChoice:
    """The ``count`` latest certified runs before ``run``.

    Recent runs share the detector's conditions; several of them make the comparison
    robust against one atypical reference. When fewer precede the run (start of a
    year), the earliest later ones fill the set, and the reason says so. Excluded runs
    (e.g. with flagged results) are passed over and named in the reason.
    """
    ordered = sorted(set(good) - {run})
    before = [r for r in reversed(ordered) if r < run]
    after = [r for r in ordered if r > run]
    chosen, skipped = _walk([*before, *after], count, _exclusions(exclude))
    n_before = sum(r < run for r in chosen)
    n_after = len(chosen) - n_before
    if not chosen:
        return RefChoice(
            (),
            f"no certified run other than {run} to compare with" + _notes(0, count, skipped),
            "previous_good",
        )
    if not n_before:
        reason = f"the {n_after} earliest certified runs after {run} (none before)"
    else:
        reason = f"the {n_before} latest certified runs before {run}"
        if n_after:
            reason += f" and the {n_after} earliest after it (too few before)"
    return RefChoice(
        tuple(sorted(chosen)), reason + _notes(len(chosen), count, skipped), "previous_good"
    )


# -- similar conditions ------------------------------------------------------------------
def _features(m: RunMeta | None, with_size: bool) -> dict[str, float]:
    if m is None:
        return {}
    values = {"luminosity": m.lumi, "duration": m.duration(), "events": m.events}
    if with_size:
        values["file size"] = m.file_size
    return {k: float(v) for k, v in values.items() if v is not None and v > 0}


def _unit(feature: str, largest: float) -> tuple[float, str]:
    """(divisor, unit) to show a feature's values, chosen from the largest of them."""
    if feature == "luminosity":
        return 1.0, "pb⁻¹"
    if feature == "duration":
        return (3600.0, "h") if largest >= 3600 else (60.0, "min")
    if feature == "file size":
        return 1e6, "MB"
    return (1e6, "M") if largest >= 1e6 else (1.0, "")


def _span(feature: str, values: list[float], data: float) -> str:
    """E.g. ``luminosity (212-260 pb⁻¹ vs 238 pb⁻¹)``: the chosen runs' range vs the data run."""
    div, unit = _unit(feature, max([*values, data]))
    lo, hi, me = (f"{x / div:.3g}" for x in (min(values), max(values), data))
    span = lo if lo == hi else f"{lo}\N{EN DASH}{hi}"
    unit = f" {unit}" if unit else ""
    return f"{feature} ({span}{unit} vs {me}{unit})"


def similar(
    run: int,
    good: Iterable[int],
    meta: Mapping[int, RunMeta],
    count: int = 4,
    exclude: Exclude = (),
    *,
    window: int = 50,
    earlier_only: bool = True,
) -> RefChoice:
    """The ``count`` certified runs whose conditions are closest to ``run``'s.

    Candidates are the ``window`` latest certified runs before ``run`` (with
    ``earlier_only=False``, the ``window`` nearest on either side; at the start of a
    year, later runs fill in when too few precede it). The distance of a candidate is
    the root mean square of ``ln(x_candidate / x_data)`` over the features known for
    both: luminosity (pb⁻¹), duration (s, or lumisections x 23.31 s) and events; the
    DQM file size stands in for events when neither events nor luminosity is known.
    A distance of 0.69 means "typically a factor 2 apart". Candidates missing a
    feature the data run has rank after those that have all; ties go to the nearer
    run. Without any metadata for ``run``, this is :func:`previous_good`.
    """
    me = meta.get(run)
    with_size = me is not None and me.events is None and me.lumi is None
    mine = _features(me, with_size)
    if not mine:
        base = previous_good(run, good, count, exclude)
        why = f"no luminosity, duration or event count known for run {run}, so {base.reason}"
        return RefChoice(base.runs, why, "similar")
    excl = _exclusions(exclude)
    ordered = sorted(set(good) - {run})
    before = [r for r in reversed(ordered) if r < run][:window]
    after = [r for r in ordered if r > run][:window]

    def key(r: int) -> tuple[int, float, int]:
        theirs = _features(meta.get(r), with_size)
        shared = [f for f in mine if f in theirs]
        if not shared:
            return (len(mine), math.inf, abs(r - run))
        d = math.sqrt(sum(math.log(theirs[f] / mine[f]) ** 2 for f in shared) / len(shared))
        return (len(mine) - len(shared), d, abs(r - run))

    if earlier_only:
        ranked = sorted(before, key=key) + sorted(after, key=key)
        among = f"among the {len(before)} latest certified runs before {run}"
    else:
        pool = sorted([*before, *after], key=lambda r: abs(r - run))[:window]
        ranked = sorted(pool, key=key)
        among = f"among the {len(pool)} certified runs nearest to {run}"
    chosen, skipped = _walk(ranked, count, excl)
    if not chosen:
        why = f"no certified run other than {run} to compare with"
        return RefChoice((), why + _notes(0, count, skipped), "similar")
    known = {r: _features(meta.get(r), with_size) for r in chosen}
    spans = [
        _span(f, [known[r][f] for r in chosen if f in known[r]], mine[f])
        for f in mine
        if any(f in known[r] for r in chosen)
    ]
    what = (
        ", ".join(spans[:-1]) + (" and " if len(spans) > 1 else "") + spans[-1]
        if spans
        else "run number (no metadata for the candidates)"
    )
    reason = f"{len(chosen)} certified runs most similar in {what}, {among}"
    n_after = sum(r > run for r in chosen)
    if earlier_only and n_after:
        reason += f" and {n_after} after it (too few before)"
    unknown = [f for f in ("luminosity", "duration", "events") if f not in mine]
    if with_size:
        reason += f" (file size stands in for events: no event count or luminosity for {run})"
    elif unknown:
        reason += f" ({' and '.join(unknown)} unknown for {run})"
    partial = [r for r in chosen if len(known[r]) < len(mine)]
    if partial:
        reason += f" (incomplete metadata for {', '.join(map(str, partial))})"
    return RefChoice(tuple(sorted(chosen)), reason + _notes(len(chosen), count, skipped), "similar")


# -- policies from config ------------------------------------------------------------------
POLICIES: dict[str, tuple[str, ...]] = {
    "previous_good": ("policy", "count"),
    "similar": ("policy", "count", "window", "earlier_only"),
    "fixed": ("policy", "runs"),
}


@dataclass(frozen=True, slots=True)
class Policy:
    """A reference policy with its parameters; :meth:`choose` applies it."""

    name: str = "previous_good"
    count: int = 4
    runs: tuple[int, ...] = ()
    window: int = 50
    earlier_only: bool = True

    def choose(
        self,
        run: int,
        good: Iterable[int],
        meta: Mapping[int, RunMeta] | None = None,
        exclude: Exclude = (),
    ) -> RefChoice:
        """References for ``run`` among certified ``good`` runs (``meta`` for ``similar``)."""
        if self.name == "fixed":
            return fixed(self.runs, run, exclude)
        if self.name == "similar":
            return similar(
                run, good, meta or {}, self.count, exclude,
                window=self.window, earlier_only=self.earlier_only,
            )  # fmt: skip
        return previous_good(run, good, self.count, exclude)

    def to_dict(self) -> dict[str, Any]:
        """The config mapping this policy came from (only the keys it uses)."""
        full: dict[str, Any] = {
            "policy": self.name,
            "count": self.count,
            "runs": list(self.runs),
            "window": self.window,
            "earlier_only": self.earlier_only,
        }
        return {k: full[k] for k in POLICIES[self.name]}


def _hint(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def policy_from_config(spec: Mapping[str, Any] | None, where: str = "references") -> Policy:
    """Parse ``{"policy": "previous_good", "count": 4}`` (or ``fixed`` / ``similar``).

    ``fixed`` takes ``runs`` (positive integers); ``previous_good`` and ``similar`` take
    ``count`` (default 4); ``similar`` also ``window`` (default 50) and ``earlier_only``
    (default true). None or ``{}`` is the default: the 4 previous good runs.

    Raises:
        ConfigError: one line naming ``where`` and the key: an unknown policy or key
            (with the closest name), a count that is not a positive integer, or fixed
            runs that are not positive integers.
    """
    if spec is None:
        return Policy()
    if not isinstance(spec, Mapping):
        example = '{"policy": "previous_good", "count": 4}'
        msg = f"{where}: expected an object such as {example}, found {spec!r}"
        raise ConfigError(msg)
    name = spec.get("policy", "previous_good")
    if name not in POLICIES:
        hint = _hint(str(name), POLICIES)
        msg = (
            f"{where}.policy: unknown policy {name!r}{hint}; expected one of {', '.join(POLICIES)}"
        )
        raise ConfigError(msg)
    for key in spec:
        if key not in POLICIES[name]:
            hint = _hint(str(key), POLICIES[name])
            keys = ", ".join(POLICIES[name])
            msg = f"{where}.{key}: not a setting of policy {name!r}{hint}; expected {keys}"
            raise ConfigError(msg)
    for key, default in (("count", 4), ("window", 50)):
        if not _positive_int(spec.get(key, default)):
            msg = f"{where}.{key}: expected a positive integer, found {spec[key]!r}"
            raise ConfigError(msg)
    earlier_only = spec.get("earlier_only", True)
    if not isinstance(earlier_only, bool):
        msg = f"{where}.earlier_only: expected true or false, found {earlier_only!r}"
        raise ConfigError(msg)
    runs = spec.get("runs", [])
    if name == "fixed":
        if not isinstance(runs, list) or not runs:
            msg = f"{where}.runs: expected a non-empty list of run numbers, found {runs!r}"
            raise ConfigError(msg)
        for i, r in enumerate(runs):
            if not _positive_int(r):
                msg = f"{where}.runs[{i}]: expected a positive integer run number, found {r!r}"
                raise ConfigError(msg)
    return Policy(name, spec.get("count", 4), tuple(runs), spec.get("window", 50), earlier_only)
