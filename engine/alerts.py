"""Engine layer: alerts — one per (run, subsystem) with flagged results, silences, acks.

The public face of alerting: :func:`build_alert` (pure) is here; the formatting
(``engine.alert_format``) and sending (``engine.alert_delivery``) are re-exported.
"""

from __future__ import annotations

import fnmatch
import logging
import urllib.parse
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from engine import outliers
from engine.alert_delivery import (
    EMAIL_CHANNEL,
    Deliverer,
    DeliveryReport,
    channels,
    send_email,
    send_webhook,
    webhook_channel,
)
from engine.alert_format import email_message, webhook_payload
from engine.errors import ConfigError, DQMError
from engine.store_records import Alert, Silence, SubsystemRecord
from engine.times import utc_iso
from engine.types import SEVERITY, ComparisonResult, Status

if TYPE_CHECKING:
    from engine.service_config import AlertConfig
    from engine.store import Store

logger = logging.getLogger(__name__)

__all__ = [
    "EMAIL_CHANNEL",
    "Deliverer",
    "DeliveryReport",
    "ack",
    "alert_id",
    "build_alert",
    "channels",
    "email_message",
    "send_email",
    "send_webhook",
    "silenced_by",
    "webhook_channel",
    "webhook_payload",
]


def alert_id(run: int, subsystem: str) -> str:
    """``"357130-CSC"``: the one alert of a (run, subsystem)."""
    return f"{int(run)}-{subsystem}"


def _severity_floor(cfg: AlertConfig) -> int:
    name = str(getattr(cfg, "min_severity", "flagged"))
    try:
        return SEVERITY[Status(name)]
    except ValueError:
        known = ", ".join(repr(str(s)) for s in Status)
        msg = f"[alerts] min_severity: {name!r} is not a status (expected one of {known})"
        raise ConfigError(msg) from None


def silenced_by(
    result: ComparisonResult, subsystem: str, silences: Iterable[Silence], at: str
) -> Silence | None:
    """The first silence active at ``at`` that covers ``result`` of ``subsystem``, or None.

    A silence covers a result when its subsystem is ``"*"`` or equal to ``subsystem`` and
    its pattern matches the histogram path (``fnmatch``, case-sensitive; ``*`` crosses ``/``).
    """
    for s in silences:
        if (
            s.subsystem in ("*", subsystem)
            and s.active(at)
            and fnmatch.fnmatchcase(result.path, s.pattern)
        ):
            return s
    return None


def build_alert(
    record: SubsystemRecord,
    cfg: AlertConfig,
    silences: Iterable[Silence] = (),
    now: datetime | None = None,
) -> Alert | None:
    """The alert of one stored subsystem report, or None when nothing is worth one.

    Results at or above ``cfg.min_severity`` count. When every one of them is covered by
    an active silence the alert is still made — with ``silenced_by`` saying by whom and no
    delivery channels — so the dashboard can show what was silenced; it is never sent.
    Otherwise silenced results are left out and the rest make the alert.

    Args:
        record: The stored report.
        cfg: ``[alerts]`` of the service config.
        silences: Silences to apply (inactive ones are ignored).
        now: Time of the alert (default: the current time).

    Returns:
        The alert (``id == f"{run}-{subsystem}"``; ``top`` the worst ``max_outliers``
        histograms, one each with the test that found it most severe and every test that
        flagged it, ranked by :mod:`engine.outliers`), or None.
    """
    now = now or datetime.now(UTC)
    at = utc_iso(now)
    floor = _severity_floor(cfg)
    hits = [r for r in record.results if SEVERITY[r.verdict_status] >= floor]
    if not hits:
        return None
    silences = list(silences)
    covering = {id(r): silenced_by(r, record.subsystem, silences, at) for r in hits}
    loud = [r for r in hits if covering[id(r)] is None]
    shown = outliers.by_histogram(record.subsystem, loud or hits)
    top = tuple(
        {
            "histogram": v.path,
            "comparator": v.lead,
            "status": str(v.status),
            "score": v.severity,
            "reason": v.reason,
            "flagged_by": list(v.flagged_by),
        }
        for v in shown[: max(1, int(cfg.max_outliers))]
    )
    quiet = ""
    if not loud:
        by = {s.id: s for s in covering.values() if s is not None}
        quiet = "; ".join(f"{s.by} (silence {s.id} until {s.until})" for s in by.values())
    base = cfg.dashboard_url.rstrip("/")
    sub = urllib.parse.quote(record.subsystem, safe="")
    return Alert(
        id=alert_id(record.run, record.subsystem),
        run=int(record.run),
        subsystem=record.subsystem,
        dataset=record.dataset,
        created=at,
        n_flagged=len(shown),
        top=top,
        link=f"{base}/run/{int(record.run)}/{sub}",
        deliveries={} if quiet else dict.fromkeys(channels(cfg), "pending"),
        silenced_by=quiet,
    )


def ack(store: Store, alert_id: str, by: str, now: datetime | None = None) -> Alert:
    """Acknowledge an alert and write "who did what" to the audit log.

    Raises:
        DQMError: ``by`` is empty, or there is no such alert.
    """
    if not by.strip():
        msg = f"acknowledging alert {alert_id!r}: say who acknowledges it (by={by!r})"
        raise DQMError(msg)
    at = utc_iso(now)
    alert = store.ack_alert(alert_id, by, at)
    if alert is None:
        msg = f"no alert {alert_id!r} (alert ids are RUN-SUBSYSTEM, e.g. 357130-CSC)"
        raise DQMError(msg)
    store.log({"action": "ack", "alert": alert_id, "by": by, "at": at})
    logger.info("alert %s acknowledged by %s", alert_id, by)
    return alert
