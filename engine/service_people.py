"""Engine layer: what people do through the service — acknowledge, silence, give verdicts.

Each action is one method (where a later issue puts the access check) and leaves a
"who did what" entry in the store's audit log.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from engine import alerts
from engine.errors import DQMError
from engine.store import Alert, Silence, Store
from engine.times import utc_iso


class PeopleActions:
    """Mixed into :class:`engine.service.Service` (which sets ``store`` and ``clock``)."""

    store: Store
    clock: Callable[[], datetime]

    def _now(self, now: datetime | None) -> datetime:
        return now if now is not None else self.clock()

    def _audit(self, action: str, by: str, now: datetime, **what: object) -> None:
        self.store.log({"action": action, "by": by, "at": utc_iso(now), **what})

    def ack_alert(self, alert_id: str, by: str, now: datetime | None = None) -> Alert:
        """Acknowledge an alert (``by``: who; kept in the audit log).

        Raises:
            DQMError: ``by`` is empty, or there is no such alert.
        """
        return alerts.ack(self.store, alert_id, by, self._now(now))

    def silence(
        self, subsystem: str, pattern: str, until: datetime, by: str, reason: str,
        now: datetime | None = None,
    ) -> str:  # fmt: skip
        """Silence ``subsystem`` ("*": all) on histograms matching ``pattern`` until ``until``.

        Raises:
            DQMError: ``by`` is empty or ``until`` is not in the future.
        """
        now = self._now(now)
        if not by.strip() or until <= now:
            msg = (f"silence of {subsystem}/{pattern}: expected who (by={by!r}) and an end in "
                   f"the future (until={utc_iso(until)!r}, now {utc_iso(now)})")  # fmt: skip
            raise DQMError(msg)
        s = Silence("", subsystem, pattern, utc_iso(until), by, reason, utc_iso(now))
        sid = self.store.add_silence(s)
        self._audit("silence", by, now, silence=sid, subsystem=subsystem, pattern=pattern,
                    until=utc_iso(until), reason=reason)  # fmt: skip
        return sid

    def unsilence(self, silence_id: str, by: str, now: datetime | None = None) -> None:
        """Lift a silence before it expires."""
        now = self._now(now)
        if self.store.remove_silence(silence_id, by, utc_iso(now)) is None:
            msg = f"no silence {silence_id!r}"
            raise DQMError(msg)
        self._audit("unsilence", by, now, silence=silence_id)

    def set_verdict(
        self, run: int, subsystem: str, path: str, comparator: str, verdict: str, by: str,
        now: datetime | None = None,
    ) -> None:  # fmt: skip
        """A person's verdict on one result (e.g. "good", "bad"; "" clears it)."""
        now = self._now(now)
        self.store.put_verdict(run, subsystem, path, comparator, verdict, by, utc_iso(now))
        self._audit("verdict", by, now, run=run, subsystem=subsystem, histogram=path,
                    comparator=comparator, verdict=verdict)  # fmt: skip
