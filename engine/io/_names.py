"""Engine layer: DQM naming conventions (run numbers in file and directory names, scalar keys).

Pure string parsing, no uproot.
"""

from __future__ import annotations

import re
from pathlib import Path

_RUN_DIR = re.compile(r"Run (\d+)")
_RUN_IN_NAME = re.compile(r"(?:^|_)R(\d{9})(?:__|\.root$|_)")
_SCALAR = re.compile(r"<(\w+)>([ifs])=(.*)</\1>", re.DOTALL)


def run_from_filename(name: str) -> int | None:
    """Run number encoded in a DQM file name, or None.

    Args:
        name: A file name or path, offline (``DQM_V0001_R000357130__SingleMuon__...root``)
            or online (``DQM_V0001_CSC_R000357130.root``).

    Returns:
        The run number (357130 for both examples), or None if the name has none.
    """
    m = _RUN_IN_NAME.search(Path(name).name)
    return int(m.group(1)) if m else None


def run_from_dirname(name: str) -> int | None:
    """Run number of a ``'Run 357130'`` directory name, or None for any other name."""
    m = _RUN_DIR.fullmatch(name)
    return int(m.group(1)) if m else None


def parse_scalar(key: str) -> tuple[str, int | float | str] | None:
    """Parse a DQM scalar key name such as ``'<iRun>i=357130</iRun>'``.

    Returns:
        ``(name, value)``: ``i=`` gives an int, ``f=`` a float, ``s=`` a string (a value
        that does not parse as its type stays a string); None for any other key.
    """
    m = _SCALAR.fullmatch(key)
    if m is None:
        return None
    name, tag, text = m.groups()
    try:
        return name, int(text) if tag == "i" else float(text) if tag == "f" else text
    except ValueError:
        return name, text
