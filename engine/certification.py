"""Engine layer: certification sources — which runs are certified good, and which are new.

A source's ``poll(now)`` re-reads its list and compares it with a :class:`CertState`
(plain data the caller persists): golden JSON from a path or URL, "every run of the
data source" for online use, or the Run Registry (``engine.runregistry``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import requests

from engine.errors import ConfigError, FetchError
from engine.sources.base import Source

logger = logging.getLogger(__name__)

LumiRanges = list[tuple[int, int]]
#: ``(connect, read)`` seconds for downloads of the golden JSON.
TIMEOUT = (5.0, 30.0)


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


def is_url(location: str | os.PathLike[str]) -> bool:
    """Whether ``location`` is an http(s) URL rather than a path."""
    return str(location).startswith(("http://", "https://"))


def fetch_text(
    url: str,
    *,
    session: requests.Session | None = None,
    timeout: tuple[float, float] = TIMEOUT,
    verify: bool | str = True,
    cert: str | tuple[str, str] | None = None,
) -> str:
    """GET ``url`` and return its text.

    ``verify`` is passed with the request itself: a Session's ``verify`` would be
    overridden by ``REQUESTS_CA_BUNDLE``.

    Raises:
        FetchError: connection failure, timeout or an HTTP error status (one line).
    """
    getter = session.get if session is not None else requests.get
    try:
        resp = getter(url, timeout=timeout, verify=verify, cert=cert)
        resp.raise_for_status()
    except requests.HTTPError as err:
        status = err.response.status_code if err.response is not None else None
        msg = f"{url}: HTTP {status} {err.response.reason if err.response is not None else ''}"
        raise FetchError(msg.strip(), url, status) from err
    except requests.RequestException as err:
        msg = f"{url}: cannot download ({type(err).__name__}: {str(err).splitlines()[0][:200]})"
        raise FetchError(msg, url) from err
    return resp.text


# -- the state a caller persists, and what a poll reports ------------------------------
def _ranges_json(ranges: LumiRanges) -> list[list[int]]:
    return [[a, b] for a, b in ranges]


@dataclass(frozen=True, slots=True)
class CertState:
    """What a certification source has reported so far; JSON-safe via :meth:`to_dict`.

    ``seen``: every run reported, with its lumisection ranges (an empty list: ranges
    unknown). ``watermark``: runs at or below it are not asked for (Run Registry).
    ``last_poll`` / ``last_new``: ISO times of the last successful poll and of the
    last poll that found new runs.
    """

    seen: Mapping[int, LumiRanges] = field(default_factory=dict)
    watermark: int = 0
    last_poll: str = ""
    last_new: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "seen": {str(r): _ranges_json(v) for r, v in sorted(self.seen.items())},
            "watermark": self.watermark,
            "last_poll": self.last_poll,
            "last_new": self.last_new,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str = "certification state") -> CertState:
        """Inverse of :meth:`to_dict`; a malformed state is a one-line ConfigError."""
        if not isinstance(raw, Mapping):
            msg = f"{where}: expected an object, found {type(raw).__name__}"
            raise ConfigError(msg)
        seen = parse_golden(json.dumps(raw.get("seen", {})), f"{where}: seen")
        watermark = raw.get("watermark", 0)
        if not isinstance(watermark, int) or isinstance(watermark, bool) or watermark < 0:
            msg = f"{where}: watermark: expected a run number >= 0, found {watermark!r}"
            raise ConfigError(msg)
        return cls(seen, watermark, str(raw.get("last_poll", "")), str(raw.get("last_new", "")))


@dataclass(frozen=True, slots=True)
class CertUpdate:
    """One poll: runs certified for the first time, runs whose ranges changed, and all.

    ``changed`` maps a run to ``(old_ranges, new_ranges)``; ``removed`` lists runs no
    longer certified (reported once, and forgotten).
    """

    new_runs: list[int]
    changed: dict[int, tuple[LumiRanges, LumiRanges]]
    all_runs: dict[int, LumiRanges]
    removed: list[int] = field(default_factory=list)
    time: str = ""


def diff_state(
    state: CertState,
    current: Mapping[int, LumiRanges],
    now: datetime,
    *,
    asked_above: int = 0,
    watermark: int | None = None,
) -> tuple[CertUpdate, CertState]:
    """Compare the runs certified now with ``state``: the update and the next state (pure).

    Args:
        state: What was reported before.
        current: The certified runs the source lists now.
        now: Time of the poll (recorded in the state).
        asked_above: The source listed only runs above this number; older runs seen
            before are kept, not reported as removed.
        watermark: The next state's watermark (default: unchanged).
    """
    stamp = now.isoformat(timespec="seconds")
    new = sorted(r for r in current if r not in state.seen)
    changed = {
        r: (list(state.seen[r]), list(v))
        for r, v in sorted(current.items())
        if r in state.seen and list(state.seen[r]) != list(v)
    }
    removed = sorted(r for r in state.seen if r not in current and r > asked_above)
    seen = {r: list(v) for r, v in state.seen.items() if r not in removed}
    seen.update({r: list(v) for r, v in current.items()})
    nxt = CertState(
        dict(sorted(seen.items())),
        state.watermark if watermark is None else watermark,
        stamp,
        stamp if new else state.last_new,
    )
    all_runs = {r: list(v) for r, v in sorted(current.items())}
    return CertUpdate(new, changed, all_runs, removed, stamp), nxt


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def as_state(state: CertState | Mapping[str, Any] | None) -> CertState:
    """A :class:`CertState` from itself, its ``to_dict()`` form, or None (empty)."""
    if state is None:
        return CertState()
    return state if isinstance(state, CertState) else CertState.from_dict(state)


class CertificationSource(Protocol):
    """Polled by the scheduler; ``state`` is replaced only by a successful poll."""

    state: CertState

    def poll(self, now: datetime | None = None) -> CertUpdate:
        """Re-read the certified runs; report what is new or changed since ``state``."""
        ...

    def describe(self) -> str:
        """Where the certification comes from, for people."""
        ...


class GoldenJSONSource:
    """Golden JSON from a path or an http(s) URL, re-read on every poll.

    A malformed or unreachable file raises (ConfigError / FetchError, one line) and
    leaves ``state`` as it was: nothing seen before is lost or reported twice.
    """

    def __init__(
        self,
        location: str | os.PathLike[str],
        state: CertState | Mapping[str, Any] | None = None,
        *,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = TIMEOUT,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
    ) -> None:
        self.location = str(location)
        self.state = as_state(state)
        self._session = session
        self._timeout = timeout
        self._verify = verify
        self._cert = cert

    def describe(self) -> str:
        return f"golden JSON {self.location}"

    def read(self) -> dict[int, LumiRanges]:
        """The certified runs listed now (no state change)."""
        if not is_url(self.location):
            return load_golden(self.location)
        text = fetch_text(
            self.location,
            session=self._session,
            timeout=self._timeout,
            verify=self._verify,
            cert=self._cert,
        )
        return parse_golden(text, self.location)

    def poll(self, now: datetime | None = None) -> CertUpdate:
        current = self.read()
        update, self.state = diff_state(self.state, current, _now(now))
        logger.info(
            "%s: %d certified runs, %d new, %d changed",
            self.location,
            len(current),
            len(update.new_runs),
            len(update.changed),
        )
        return update


class SourceCertification:
    """Every run the data source lists counts as certified (online use; ranges unknown)."""

    def __init__(
        self,
        source: Source,
        series: str,
        sample: str,
        state: CertState | Mapping[str, Any] | None = None,
        processing: str | None = None,
    ) -> None:
        self.source = source
        self.series = series
        self.sample = sample
        self.processing = processing
        self.state = as_state(state)

    def describe(self) -> str:
        return f"every run of {self.series}/{self.sample} in the data source"

    def read(self) -> dict[int, LumiRanges]:
        """Every run of the dataset, with unknown (empty) ranges."""
        return {r: [] for r in self.source.runs(self.series, self.sample, self.processing)}

    def poll(self, now: datetime | None = None) -> CertUpdate:
        update, self.state = diff_state(self.state, self.read(), _now(now))
        return update
