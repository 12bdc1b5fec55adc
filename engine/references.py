"""Engine layer: reference-run policies; each choice carries a reason people can read."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RefChoice:
    """Reference runs for a data run, and why they were chosen."""

    runs: tuple[int, ...]
    reason: str


def previous_good(run: int, good: Iterable[int], count: int = 4) -> RefChoice:
    """The ``count`` latest certified runs before ``run``.

    Recent runs share the detector's conditions; several of them make the comparison
    robust against one atypical reference. When fewer precede the run (start of a
    year), the earliest later ones fill the set, and the reason says so.
    """
    ordered = sorted(set(good) - {run})
    before = [r for r in ordered if r < run][-count:]
    after = [r for r in ordered if r > run][: count - len(before)]
    runs = tuple(sorted(before + after))
    if not runs:
        return RefChoice((), f"no certified run other than {run} to compare with")
    reason = f"the {len(before)} latest certified runs before {run}"
    if after:
        reason += f" and the {len(after)} earliest after it (too few before)"
    return RefChoice(runs, reason)
