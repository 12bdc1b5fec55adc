"""Engine layer: the DQM GUI's file-server layouts and its HTML directory listings.

Offline: ``OfflineData/<series>/<sample>/000NNNNxx/DQM_V0001_R000NNNNNN__<sample>__<proc>__DQMIO.root``.
Online: ``OnlineData/original/000NNxxxx/000NNNNxx/DQM_V0001_<Subsys>_R000NNNNNN.root``, seen
through the Source protocol as series ``"online"`` and sample ``<Subsys>``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from engine.errors import FetchError
from engine.sources.base import RunFile
from engine.times import parse_iso

#: The series name under which the Online layout is exposed (sample = subsystem).
ONLINE_SERIES = "online"
#: The processing of every online file.
ONLINE_PROCESSING = "online"

OFFLINE_NAME = re.compile(
    r"^DQM_V\d+_R(?P<run>\d{9})__(?P<sample>[^_](?:[^_]|_(?!_))*)__(?P<processing>.+?)__DQMIO\.root$"
)
ONLINE_NAME = re.compile(r"^DQM_V\d+_(?P<subsys>.+)_R(?P<run>\d{9})\.root$")
#: Directory of 100 runs (``0003571xx``) and, online, of 10,000 runs (``00035xxxx``).
HUNDREDS_DIR = re.compile(r"^\d{7}xx$")
TENTHOUSANDS_DIR = re.compile(r"^\d{5}xxxx$")

_ROW = re.compile(r"<tr\b[^>]*>(.*?)</tr\s*>", re.IGNORECASE | re.DOTALL)
_CELL = re.compile(r"<td\b[^>]*>(.*?)</td\s*>", re.IGNORECASE | re.DOTALL)
_LINK = re.compile(
    r"""<a\b[^>]*?\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))[^>]*>(.*?)</a\s*>""",
    re.IGNORECASE | re.DOTALL,
)
_TAG = re.compile(r"<[^>]*>")
_DATE_FORMATS = ("%Y-%b-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%a %b %d %H:%M:%S %Y", "%d-%b-%Y %H:%M")


@dataclass(frozen=True, slots=True)
class ListingRow:
    """One row of a directory listing: ``size`` is None for a directory."""

    name: str
    href: str
    size: int | None
    date: str

    @property
    def is_dir(self) -> bool:
        return self.size is None


def _text(fragment: str) -> str:
    return " ".join(html.unescape(_TAG.sub(" ", fragment)).split())


def normalise_date(text: str) -> str:
    """The listed date as ISO 8601 in UTC when it is in a known format, else unchanged."""
    raw = text.strip()
    cleaned = re.sub(r"\s+(UTC|GMT|Z)$", "", raw)
    for fmt in _DATE_FORMATS:
        try:
            dt = datetime.strptime(" ".join(cleaned.split()), fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
        return dt.isoformat(timespec="seconds")
    try:
        dt = parse_iso(cleaned).astimezone(UTC)
    except ValueError:
        return raw
    return dt.isoformat(timespec="seconds")


def parse_listing(page: str) -> list[ListingRow]:
    """Rows ``<tr><td><a href=…>name</a></td><td>size or -</td><td>date</td>…</tr>``.

    Lenient about quoting, case, whitespace and extra columns; rows without a link in the
    first cell (headers, ``Parent Directory`` without cells) are skipped. Directory names
    lose their trailing ``/``.
    """
    rows = []
    for row in _ROW.finditer(page):
        cells = _CELL.findall(row.group(1))
        if len(cells) < 2:
            continue
        link = _LINK.search(cells[0])
        if link is None:
            continue
        href = html.unescape(next(g for g in link.groups()[:3] if g is not None))
        name = _text(link.group(4))
        size_text = _text(cells[1]).replace(",", "")
        if name in ("", "..", "../") or name.lower().startswith("parent directory"):
            continue
        if size_text.isdigit() and not name.endswith("/"):
            size: int | None = int(size_text)
        elif size_text in ("-", "") or name.endswith("/"):
            size = None
        else:
            continue  # not a file-server row
        date = normalise_date(_text(cells[2])) if len(cells) > 2 else ""
        rows.append(ListingRow(name.rstrip("/"), href, size, date))
    return rows


def check_name(name: str, where: str) -> str:
    """``name`` if it is a plain file or directory name, else FetchError (path traversal)."""
    bad = (
        not name
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or "\x00" in name
        or name.startswith(".")
    )
    if bad:
        msg = f"{where}: refusing unsafe name {name!r} (expected a plain file name, no '/' or '..')"
        raise FetchError(msg, where)
    return name


def hundreds_dir(run: int) -> str:
    """``0003571xx`` for run 357130."""
    return f"{run:09d}"[:7] + "xx"


def tenthousands_dir(run: int) -> str:
    """``00035xxxx`` for run 357130 (Online layout)."""
    return f"{run:09d}"[:5] + "xxxx"


def parse_file_name(name: str, series: str, sample: str) -> tuple[int, str] | None:
    """``(run, processing)`` of a DQM file of this dataset, or None for any other file."""
    if series == ONLINE_SERIES:
        m = ONLINE_NAME.match(name)
        if m and m["subsys"] == sample:
            return int(m["run"]), ONLINE_PROCESSING
        return None
    m = OFFLINE_NAME.match(name)
    if m and m["sample"] == sample:
        return int(m["run"]), m["processing"]
    return None


def pick_runs(files: Iterable[RunFile], processing: str | None = None) -> dict[int, RunFile]:
    """The chosen file of each run: ``processing`` if given, else the first (preferred) one.

    ``files`` must be sorted by run, preferred processing first (as ``Source.files`` returns).
    """
    best: dict[int, RunFile] = {}
    for f in files:
        if processing is None or f.processing == processing:
            best.setdefault(f.run, f)
    return best


def closest_runs(run: int, runs: Iterable[int]) -> list[int]:
    """The nearest run below and the nearest above ``run`` (for "not found" messages)."""
    present = set(runs)
    below = [r for r in present if r < run]
    above = [r for r in present if r > run]
    return ([max(below)] if below else []) + ([min(above)] if above else [])
