"""Engine layer: the words of an alert: webhook markdown, email plain text and HTML.

Pure functions of stored :class:`engine.store_records.Alert` records; no I/O.
"""

from __future__ import annotations

import html
import math
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.service_config import AlertConfig
    from engine.store_records import Alert


@dataclass(frozen=True, slots=True)
class RunDigest:
    """What one message says about one run: its alerts, most flagged first."""

    run: int
    datasets: tuple[str, ...]
    alerts: tuple[Alert, ...]
    n_flagged: int
    run_link: str
    followup: bool

    @property
    def subsystems(self) -> tuple[str, ...]:
        return tuple(a.subsystem for a in self.alerts)

    @property
    def headline(self) -> str:
        """One line: ``run 357130: 3 flagged in CSC, RPC`` (or the follow-up wording)."""
        subs = ", ".join(self.subsystems)
        if self.followup:
            noun = "subsystem" if len(self.alerts) == 1 else "subsystems"
            return f"run {self.run}: additional {noun} {subs} ({self.n_flagged} flagged)"
        return f"run {self.run}: {self.n_flagged} flagged in {subs}"


def digest(alerts: Sequence[Alert], *, followup: bool = False) -> RunDigest:
    """Group the alerts of one run for a message.

    Args:
        alerts: Alerts of a single run (one per subsystem).
        followup: True for a message about subsystems added after the run's first message.

    Raises:
        ValueError: ``alerts`` is empty or mixes runs.
    """
    runs = sorted({a.run for a in alerts})
    if len(runs) != 1:
        msg = f"a message covers exactly one run; got alerts of runs {runs!r}"
        raise ValueError(msg)
    ordered = tuple(sorted(alerts, key=lambda a: (-a.n_flagged, a.subsystem)))
    datasets = tuple(dict.fromkeys(a.dataset for a in ordered if a.dataset))
    return RunDigest(
        run=runs[0],
        datasets=datasets,
        alerts=ordered,
        n_flagged=sum(a.n_flagged for a in ordered),
        # alert.link is f"{dashboard_url}/run/{run}/{subsystem}": its parent is the run page.
        run_link=ordered[0].link.rsplit("/", 1)[0],
        followup=followup,
    )


def fmt_score(x: Any) -> str:
    """A score for people: 3 significant digits, ``n/a`` when missing or not finite."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "n/a"
    return f"{v:.3g}" if math.isfinite(v) else "n/a"


def _slack(text: str) -> str:
    # Slack needs &, <, > escaped in message text; Mattermost's markdown decodes the entities.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _code(text: str) -> str:
    return "`" + _slack(text).replace("`", "'") + "`"


def flagged_by_text(top: dict[str, object]) -> str:
    """The test that found the histogram most severe, and the others that flagged it."""
    lead = str(top.get("comparator", ""))
    flagged = top.get("flagged_by")
    others = [str(c) for c in flagged if c != lead] if isinstance(flagged, list) else []
    return f"{lead} (also {', '.join(others)})" if others else lead


def _more(alert: Alert) -> int:
    return max(0, alert.n_flagged - len(alert.top))


def webhook_text(d: RunDigest) -> str:
    """Slack/Mattermost markdown for one run (links as ``<url|text>``, understood by both)."""
    where = f" ({_slack(', '.join(d.datasets))})" if d.datasets else ""
    lines = [f":warning: autodqm {_slack(d.headline)}{where}"]
    for a in d.alerts:
        lines.append("")
        lines.append(f"{_slack(a.subsystem)}: {a.n_flagged} flagged <{a.link}|open in autodqm>")
        for i, t in enumerate(a.top, 1):
            reason = f": {_slack(str(t.get('reason', '')))}" if t.get("reason") else ""
            lines.append(
                f"{i}. {_code(str(t.get('histogram', '')))} {_slack(flagged_by_text(t))}"
                f" score {fmt_score(t.get('score'))}{reason}"
            )
        if _more(a):
            lines.append(f"… and {_more(a)} more")
    lines.append("")
    lines.append(f"<{d.run_link}|Run {d.run} in autodqm>")
    return "\n".join(lines)


def email_text(d: RunDigest) -> str:
    """The text/plain body."""
    where = f" ({', '.join(d.datasets)})" if d.datasets else ""
    lines = [f"autodqm {d.headline}{where}", ""]
    for a in d.alerts:
        lines.append(f"{a.subsystem}: {a.n_flagged} flagged -- {a.link}")
        for i, t in enumerate(a.top, 1):
            reason = f": {t.get('reason')}" if t.get("reason") else ""
            lines.append(
                f"  {i}. {t.get('histogram', '')}  {flagged_by_text(t)}"
                f"  score {fmt_score(t.get('score'))}{reason}"
            )
        if _more(a):
            lines.append(f"  ... and {_more(a)} more")
        lines.append("")
    lines.append(f"Run {d.run}: {d.run_link}")
    return "\n".join(lines) + "\n"


def email_html(d: RunDigest) -> str:
    """The text/html body; every stored string is escaped."""
    e = html.escape
    where = f" ({e(', '.join(d.datasets))})" if d.datasets else ""
    parts = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8"></head><body>',
        f"<h2>autodqm {e(d.headline)}{where}</h2>",
    ]
    for a in d.alerts:
        parts.append(f'<h3><a href="{e(a.link)}">{e(a.subsystem)}</a>: {a.n_flagged} flagged</h3>')
        parts.append(
            '<table border="1" cellpadding="4" cellspacing="0">'
            "<tr><th>#</th><th>histogram</th><th>comparator</th><th>score</th>"
            "<th>reason</th></tr>"
        )
        for i, t in enumerate(a.top, 1):
            hist = str(t.get("histogram", ""))
            href = f"{a.link}/{urllib.parse.quote(hist, safe='/')}"
            parts.append(
                f'<tr><td>{i}</td><td><a href="{e(href)}"><code>{e(hist)}</code></a></td>'
                f"<td>{e(flagged_by_text(t))}</td>"
                f"<td>{e(fmt_score(t.get('score')))}</td>"
                f"<td>{e(str(t.get('reason', '')))}</td></tr>"
            )
        parts.append("</table>")
        if _more(a):
            parts.append(f"<p>&hellip; and {_more(a)} more</p>")
    parts.append(f'<p><a href="{e(d.run_link)}">Run {d.run} in autodqm</a></p>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def build_email(
    d: RunDigest,
    *,
    sender: str,
    recipients: Sequence[str],
    now: datetime,
    headers: Mapping[str, str] | None = None,
) -> EmailMessage:
    """A multipart/alternative message (text/plain first, then text/html)."""
    msg = EmailMessage()
    msg["Subject"] = f"[autodqm] {d.headline}"
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = format_datetime(now)
    domain = sender.rpartition("@")[2] or None
    msg["Message-ID"] = make_msgid(idstring=f"run{d.run}", domain=domain)
    msg["X-Autodqm-Run"] = str(d.run)
    msg["X-Autodqm-Subsystems"] = ", ".join(d.subsystems)
    for k, v in (headers or {}).items():
        msg[k] = v
    msg.set_content(email_text(d))
    msg.add_alternative(email_html(d), subtype="html")
    return msg


def webhook_payload(alerts: Sequence[Alert], *, followup: bool = False) -> dict[str, Any]:
    """The Slack/Mattermost ``{"text": ...}`` message of one run's alerts.

    Args:
        alerts: The alerts of one run (one per subsystem).
        followup: The run's message went out before; these are subsystems added since.
    """
    return {"text": webhook_text(digest(alerts, followup=followup))}


def email_message(
    alerts: Sequence[Alert],
    cfg: AlertConfig,
    *,
    now: datetime | None = None,
    followup: bool = False,
) -> EmailMessage:
    """The email of one run's alerts: text/plain with a text/html alternative.

    Subject ``[autodqm] run 357130: 3 flagged in CSC, RPC``; From ``cfg.email_from``,
    To ``cfg.email_to``; ``Date`` is ``now`` (default: the current time).
    """
    return build_email(
        digest(alerts, followup=followup),
        sender=cfg.email_from,
        recipients=cfg.email_to,
        now=now or datetime.now(UTC),
    )
