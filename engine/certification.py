"""Engine layer: certification sources — which runs are certified good.

Golden JSON (``{"357130": [[1, 120], [125, 300]], ...}``) from a file; the run list
grows during the year and is re-read on every poll.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from engine.errors import ConfigError

LumiRanges = list[tuple[int, int]]


def parse_golden(text: str, where: str = "golden JSON") -> dict[int, LumiRanges]:
    """Parse golden-JSON text into ``{run: [(first_ls, last_ls), ...]}``.

    Raises:
        ConfigError: malformed JSON, a key that is not a run number, or ranges that are
            not ``[first, last]`` pairs of positive integers with ``first <= last``.
    """
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        msg = f"{where}: line {err.lineno} column {err.colno}: {err.msg}"
        raise ConfigError(msg) from err
    if not isinstance(raw, dict):
        msg = (
            f"{where}: expected an object of run -> lumisection ranges, found {type(raw).__name__}"
        )
        raise ConfigError(msg)
    out: dict[int, LumiRanges] = {}
    for key, ranges in raw.items():
        if not str(key).isdigit() or int(key) <= 0:
            msg = f"{where}: key {key!r}: expected a run number"
            raise ConfigError(msg)
        if not isinstance(ranges, list):
            msg = f"{where}: run {key}: expected a list of [first, last] ranges, found {ranges!r}"
            raise ConfigError(msg)
        parsed: LumiRanges = []
        for i, rng in enumerate(ranges):
            ok = (
                isinstance(rng, list)
                and len(rng) == 2
                and all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in rng)
                and rng[0] <= rng[1]
            )
            if not ok:
                msg = f"{where}: run {key}[{i}]: expected [first, last] lumisections, found {rng!r}"
                raise ConfigError(msg)
            parsed.append((rng[0], rng[1]))
        out[int(key)] = parsed
    return out


def load_golden(path: str | os.PathLike[str]) -> dict[int, LumiRanges]:
    """Read a golden-JSON file (see :func:`parse_golden`)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as err:
        msg = f"{p}: cannot read the golden JSON ({err.strerror or err})"
        raise ConfigError(msg) from err
    return parse_golden(text, str(p))
