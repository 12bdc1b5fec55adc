"""Dashboard layer: small shared components — status marks, message pages, times, tables.

Status is never colour alone: every mark is a symbol + a word, and the colour comes from
the ``st-<status>`` CSS classes in ``assets/autodqm.css``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dash import dcc, html

from dashboard import ids
from dashboard.state import TIMEZONE

#: status → (symbol, word). "none" = nothing stored for that cell.
STATUS_MARK: Mapping[str, tuple[str, str]] = {
    "flagged": ("✗", "flagged"),
    "error": ("!", "error"),
    "skipped": ("○", "skipped"),
    "ok": ("✓", "ok"),
    "none": ("—", "not processed"),
}
#: Most severe first (matches engine.types.SEVERITY).
STATUS_ORDER = ("flagged", "error", "skipped", "ok")


def fmt_time(iso: str) -> str:
    """``2024-05-01T12:00:00Z`` → ``2024-05-01 12:00 UTC`` (empty stays empty)."""
    if not iso:
        return ""
    text = iso.replace("T", " ").removesuffix("Z").removesuffix("+00:00")
    return f"{text[:16]} {TIMEZONE}"


def status_mark(status: str, text: str | None = None, **kwargs: Any) -> html.Span:
    """A status as symbol + word (``text`` replaces the word), coloured by its CSS class."""
    symbol, word = STATUS_MARK.get(status, ("?", status))
    return html.Span(
        [html.Span(symbol, className="st-sym"), " ", text if text is not None else word],
        className=f"st st-{status} {kwargs.pop('className', '')}".strip(),
        title=f"status: {word}",
        **kwargs,
    )


def cell_model(summary: Mapping[str, Any] | None) -> dict[str, Any]:
    """What one overview cell says: ``{"status", "text", "detail", "stale"}``.

    ``text`` is the main words ("3 flagged", "1 error", "2 skipped", "ok"), ``detail`` the
    other non-zero counts ("1 error · 4 skipped").
    """
    if not summary:
        return {"status": "none", "text": "not processed", "detail": "", "stale": False}
    counts = {k: int(v) for k, v in summary.get("counts", {}).items()}
    worst = str(summary.get("worst") or "ok")
    if worst not in STATUS_ORDER:
        worst = "ok"
    if worst == "flagged":
        text = f"{int(summary.get('n_flagged', counts.get('flagged', 0)))} flagged"
    elif worst == "error":
        n = counts.get("error", 0)
        text = f"{n} error" + ("s" if n != 1 else "")
    elif worst == "skipped":
        text = f"{counts.get('skipped', 0)} skipped"
    else:
        text = "ok"
    others = [
        f"{counts[s]} {s if s != 'error' or counts[s] == 1 else 'errors'}"
        for s in ("error", "skipped")
        if s != worst and counts.get(s, 0)
    ]
    return {
        "status": worst,
        "text": text,
        "detail": " · ".join(others),
        "stale": bool(summary.get("stale")),
    }


def message_page(title: str, detail: str, *, status: int = 404) -> html.Div:
    """A clear message for a URL that leads nowhere (bad run, unknown subsystem ...)."""
    return html.Div(
        [
            html.H2(title, className="msg-title"),
            html.P(detail, className="msg-detail"),
            html.P(dcc.Link("← back to the overview", href="/")),
        ],
        id=ids.MESSAGE_PAGE,
        className=f"msg-page msg-{status}",
        role="alert",
    )


def plain_table(
    header: Sequence[str], rows: Sequence[Sequence[Any]], *, class_name: str = ""
) -> html.Table:
    """A dense striped HTML table (cells may be components)."""
    return html.Table(
        [
            html.Thead(html.Tr([html.Th(h, scope="col") for h in header])),
            html.Tbody([html.Tr([html.Td(c) for c in row]) for row in rows]),
        ],
        className=f"table table-sm table-striped dense {class_name}".strip(),
    )
