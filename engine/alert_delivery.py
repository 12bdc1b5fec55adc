"""Engine layer: alert delivery — the webhook and SMTP senders, and the :class:`Deliverer`
that sends each run's alerts as one message per channel, retried with backoff, never twice.
"""

from __future__ import annotations

import hashlib
import logging
import os
import smtplib
import ssl
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

import requests

from engine.alert_format import email_message, webhook_payload
from engine.errors import ConfigError, DQMError, FetchError
from engine.store_records import Alert, JobStatus
from engine.times import parse_iso, utc_iso

if TYPE_CHECKING:
    from engine.service_config import AlertConfig
    from engine.store import Store

logger = logging.getLogger(__name__)

#: The delivery channel of the email recipients (one message to all of them).
EMAIL_CHANNEL = "email"
#: Job states during which a run's alerts wait, so that its message is complete.
BUSY_STATES = (JobStatus.QUEUED, JobStatus.FETCHING, JobStatus.COMPARING)
#: Longest wait between two attempts of a failing delivery.
MAX_BACKOFF_SECONDS = 6 * 3600.0
#: Newest alerts looked at for undelivered channels (older ones are history).
PENDING_SCAN = 1000


def webhook_channel(url: str) -> str:
    """A stable channel name for a webhook URL that does not reveal its secret path.

    ``"webhook:mattermost.example#1a2b3c4d"`` (host + a hash of the whole URL).
    """
    host = urllib.parse.urlsplit(url).hostname or "?"
    return f"webhook:{host}#{hashlib.sha256(url.encode()).hexdigest()[:8]}"


def channels(cfg: AlertConfig) -> dict[str, str]:
    """``{channel: target}``: each webhook URL, and ``"email"`` when there are recipients."""
    out = {webhook_channel(url): url for url in cfg.webhooks}
    if cfg.email_to:
        out[EMAIL_CHANNEL] = ", ".join(cfg.email_to)
    return out


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _redact(url: str) -> str:
    # Webhook paths are secrets (anyone with them can post): show scheme and host only.
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…"


def _without_secret(text: str, url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    for secret in (parts.query, parts.path):
        if len(secret) > 1:
            text = text.replace(secret, "/…")
    return text


def send_webhook(
    url: str,
    payload: Mapping[str, Any],
    *,
    timeout: float,
    session: requests.Session | None = None,
    verify: bool | str = True,
) -> None:
    """POST ``payload`` as JSON to an incoming webhook.

    Args:
        url: The webhook URL.
        payload: The JSON body (``{"text": ...}``).
        timeout: Seconds to connect and, separately, to wait for the answer.
        session: A session to reuse (default: a new one for this call).
        verify: TLS verification (True, or a CA bundle path); passed with the request
            because ``REQUESTS_CA_BUNDLE`` would override a session's setting.

    Raises:
        FetchError: no connection, a timeout, or an answer other than 2xx (one line).
    """
    where = _redact(url)
    http = session or requests.Session()
    try:
        resp = http.post(url, json=dict(payload), timeout=(timeout, timeout), verify=verify)
    except requests.RequestException as err:
        why = _without_secret(_one_line(err), url)
        msg = f"webhook {where}: {type(err).__name__}: {why} (check [alerts] webhooks)"
        raise FetchError(msg, url=where) from err
    finally:
        if session is None:
            http.close()
    if not 200 <= resp.status_code < 300:
        body = " ".join(resp.text.split())[:120]
        msg = f"webhook {where}: HTTP {resp.status_code} {resp.reason} (expected 2xx); {body!r}"
        raise FetchError(msg, url=where, status=resp.status_code)


def send_email(message: EmailMessage, cfg: AlertConfig, *, timeout: float) -> None:
    """Send ``message`` through ``cfg.smtp_host:smtp_port`` (STARTTLS and login if configured).

    The password is read from the environment variable named by ``cfg.smtp_password_env``.

    Raises:
        FetchError: the server refused, timed out or rejected the message (one line).
        ConfigError: ``smtp_user`` is set but the password variable is empty.
    """
    where = f"smtp://{cfg.smtp_host}:{cfg.smtp_port}"
    password = ""
    if cfg.smtp_user:
        var = cfg.smtp_password_env
        password = os.environ.get(var, "") if var else ""
        if not password:
            text = f"{where}: smtp_user {cfg.smtp_user!r} needs a password in the environment"
            msg = f"{text} variable named by [alerts] smtp_password_env ({var!r})"
            raise ConfigError(msg)
    try:
        with smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=timeout) as smtp:
            smtp.ehlo()
            if cfg.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if cfg.smtp_user:
                smtp.login(cfg.smtp_user, password)
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as err:
        text = f"{where}: {type(err).__name__}: {_one_line(err)}"
        msg = f"{text} (check [alerts] smtp_host/smtp_port)"
        raise FetchError(msg, url=where) from err


def _done(state: str) -> bool:
    return state.startswith(("sent", "dropped"))


@dataclass
class DeliveryReport:
    """What one :meth:`Deliverer.deliver_pending` did, per (run, channel)."""

    sent: list[tuple[int, str]] = field(default_factory=list)
    failed: list[tuple[int, str, str]] = field(default_factory=list)  # (run, channel, reason)
    deferred: list[tuple[int, str, str]] = field(default_factory=list)  # (run, channel, next)
    waiting: list[int] = field(default_factory=list)  # runs with jobs still running
    dropped: list[tuple[int, str]] = field(default_factory=list)  # channel left the config
    errors: list[str] = field(default_factory=list)  # the store failed (one line each)


class Deliverer:
    """Sends pending alerts grouped per run: one message per webhook and one email per run.

    A run's alerts wait while a job of the run is queued, fetching or comparing (so that
    the message is complete), unless the oldest is ``cfg.group_seconds`` old. Per (run,
    channel) the store keeps ``{"state", "attempts", "next_try", "alerts", "updated"}``
    (``store.put_delivery``); each alert keeps its own state per channel. A channel an
    alert was sent on is never used for it again: alerts of a run that appear after its
    message went out get a follow-up message ("run N: additional subsystem X", batch 1,
    2, ...). A failed send is logged, recorded as ``"failed <iso>: reason"`` and retried
    after ``retry_seconds * 2**(attempts-1)`` (at most 6 h). Alerts are marked sent right
    after the send: a crash in between may repeat one message (at least once delivery).

    Args:
        store: The results store.
        cfg: ``[alerts]`` of the service config.
        now: A clock (callable returning an aware datetime) or a fixed time; default UTC now.
        session: A requests session to reuse for webhooks (default: one per message).
    """

    def __init__(
        self,
        store: Store,
        cfg: AlertConfig,
        now: datetime | Callable[[], datetime] | None = None,
        *,
        session: requests.Session | None = None,
    ) -> None:
        self.store = store
        self.cfg = cfg
        if now is None:
            self._clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        elif isinstance(now, datetime):
            fixed = now
            self._clock = lambda: fixed
        else:
            self._clock = now
        self.session = session
        self.targets = channels(cfg)

    def deliver_pending(self, now: datetime | None = None) -> DeliveryReport:
        """Send every run's due messages; never raises (failures are logged and reported)."""
        now = now or self._clock()
        now = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
        report = DeliveryReport()
        try:
            for run, per_channel in self._due_groups(now, report):
                for channel, alerts in per_channel.items():
                    try:
                        self._deliver(run, channel, alerts, now, report)
                    except DQMError as err:  # e.g. StoreError: the other runs still go out
                        logger.error("run %d: %s delivery not recorded: %s", run, channel, err)  # noqa: TRY400
                        report.errors.append(f"run {run} {channel}: {err}")
        except Exception as err:  # the boundary: the service must outlive a store failure
            logger.exception("alert delivery stopped")
            report.errors.append(f"{type(err).__name__}: {' '.join(str(err).split())}")
        return report

    def _due_groups(
        self, now: datetime, report: DeliveryReport
    ) -> list[tuple[int, dict[str, list[Alert]]]]:
        by_run: dict[int, list[Alert]] = {}
        for a in self.store.alerts(limit=PENDING_SCAN):
            if not a.silenced_by and not all(_done(s) for s in a.deliveries.values()):
                by_run.setdefault(a.run, []).append(a)
        if not by_run:
            return []
        busy = {j.run for j in self.store.jobs(states=BUSY_STATES)}
        out = []
        for run in sorted(by_run):
            alerts = by_run[run]
            oldest = min(parse_iso(a.created) for a in alerts)
            if run in busy and (now - oldest).total_seconds() < self.cfg.group_seconds:
                logger.debug("run %d: alerts wait for the run's other jobs", run)
                report.waiting.append(run)
                continue
            per_channel: dict[str, list[Alert]] = {}
            for a in alerts:
                for channel, state in a.deliveries.items():
                    if not _done(state):
                        per_channel.setdefault(channel, []).append(a)
            out.append((run, per_channel))
        return out

    def _open_batch(self, run: int, channel: str) -> tuple[int, dict[str, Any]]:
        """The batch being delivered on ``channel`` (a new one when all earlier went out)."""
        mine = sorted(
            (b, rec) for (ch, b), rec in self.store.deliveries(run).items() if ch == channel
        )
        if mine and not str(mine[-1][1].get("state", "")).startswith("sent"):
            return mine[-1]
        return (mine[-1][0] + 1 if mine else 0), {}

    def _deliver(
        self, run: int, channel: str, alerts: list[Alert], now: datetime, report: DeliveryReport
    ) -> None:
        at = utc_iso(now)
        target = self.targets.get(channel)
        if target is None:
            state = f"dropped {at}: channel no longer in [alerts]"
            for a in alerts:
                self.store.set_alert_delivery(a.id, channel, state)
            logger.warning("run %d: %s is no longer configured; not sent", run, channel)
            report.dropped.append((run, channel))
            return
        batch, rec = self._open_batch(run, channel)
        next_try = str(rec.get("next_try", ""))
        if next_try and parse_iso(next_try) > now:
            report.deferred.append((run, channel, next_try))
            return
        attempts = int(rec.get("attempts", 0)) + 1
        ids = [a.id for a in alerts]
        try:
            self._send(channel, target, alerts, now, followup=batch > 0)
        except Exception as err:  # the boundary of one send: recorded and retried
            reason = " ".join(str(err).split()) or type(err).__name__
            if not isinstance(err, FetchError | ConfigError):
                logger.exception("run %d: %s message could not be made or sent", run, channel)
            delay = min(self.cfg.retry_seconds * 2 ** (attempts - 1), MAX_BACKOFF_SECONDS)
            retry_at = utc_iso(now + timedelta(seconds=delay))
            state = f"failed {at}: {reason}"
            for a in alerts:
                self.store.set_alert_delivery(a.id, channel, state)
            value = {"state": state, "attempts": attempts, "next_try": retry_at}
            self.store.put_delivery(run, channel, {**value, "alerts": ids, "updated": at}, batch)
            logger.warning(
                "run %d: %s delivery failed (attempt %d, next try %s): %s",
                run, channel, attempts, retry_at, reason,
            )  # fmt: skip
            report.failed.append((run, channel, reason))
            return
        state = f"sent {at}"
        for a in alerts:
            self.store.set_alert_delivery(a.id, channel, state)
        value = {"state": state, "attempts": attempts, "next_try": ""}
        self.store.put_delivery(run, channel, {**value, "alerts": ids, "updated": at}, batch)
        logger.info("run %d: %s message sent (%s)", run, channel, ", ".join(sorted(ids)))
        report.sent.append((run, channel))

    def _send(
        self, channel: str, target: str, alerts: Sequence[Alert], now: datetime, *, followup: bool
    ) -> None:
        timeout = float(self.cfg.timeout_seconds)
        if channel == EMAIL_CHANNEL:
            msg = email_message(alerts, self.cfg, now=now, followup=followup)
            send_email(msg, self.cfg, timeout=timeout)
        else:
            verify: bool | str = str(getattr(self.cfg, "webhook_ca", "") or "") or True
            payload = webhook_payload(alerts, followup=followup)
            send_webhook(target, payload, timeout=timeout, session=self.session, verify=verify)
