"""Engine layer: the one place times are written and read. Records hold ISO 8601 UTC
strings to the second (``2026-11-24T17:11:12Z``); code computes with aware datetimes."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, an aware UTC datetime."""
    return datetime.now(UTC)


def utc_iso(now: datetime | None = None) -> str:
    """``now`` (default: now) as ``2026-11-24T17:11:12Z``; a naive time is taken as UTC."""
    when = now if now is not None else utcnow()
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    """Inverse of :func:`utc_iso`: an ISO 8601 time (``Z`` or any offset; a naive time is
    taken as UTC) as an aware datetime.

    Raises:
        ValueError: ``text`` is not an ISO 8601 time.
    """
    when = datetime.fromisoformat(text.strip())
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
