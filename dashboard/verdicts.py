"""Dashboard layer: people's verdicts on results — the words, who acts, and the write.

The write goes through the service layer (``Service.set_verdict``: store + audit) when
the app has a service config, else straight to the store with an audit entry. Who acts
comes from :func:`acting_user`: a name an SSO proxy put in the request (``REMOTE_USER``
or ``X-Forwarded-User``) wins over the name typed on the page.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import flask

from dashboard.state import AppState, BadInput
from engine.times import utc_iso

logger = logging.getLogger(__name__)

#: stored value → words on the page.
VERDICTS: Mapping[str, str] = {
    "real_problem": "real problem",
    "false_alarm": "false alarm",
    "known_issue": "known issue",
}
#: Request headers / WSGI variables an authenticating proxy sets.
USER_HEADERS = ("X-Forwarded-User", "X-Remote-User")


def acting_user(typed: str | None) -> str:
    """Who acts: the authenticated user of the request if any, else the typed name.

    Raises:
        BadInput: nobody is authenticated and no name was typed.
    """
    if flask.has_request_context():
        req = flask.request
        remote = req.environ.get("REMOTE_USER") or next(
            (req.headers[h] for h in USER_HEADERS if req.headers.get(h)), ""
        )
        if remote:
            return str(remote).strip()
    name = (typed or "").strip()
    if not name:
        msg = "type your name in the 'Your name' box first: every verdict records who gave it"
        raise BadInput(msg, 400)
    return name[:80]


def set_verdict(
    st: AppState, run: int, subsystem: str, path: str, comparator: str, verdict: str, by: str
) -> dict[str, Any] | None:
    """Store ``verdict`` ("" clears) on one result; returns what is now stored (or None).

    Raises:
        BadInput: ``verdict`` is not one of :data:`VERDICTS` (nor "").
    """
    if verdict and verdict not in VERDICTS:
        msg = f"unknown verdict {verdict!r}; expected one of {', '.join(VERDICTS)}"
        raise BadInput(msg, 400)
    service = st.service()
    if service is not None:
        service.set_verdict(run, subsystem, path, comparator, verdict, by)
    else:
        st.store.put_verdict(run, subsystem, path, comparator, verdict, by, utc_iso())
        st.store.log(
            {"action": "verdict", "by": by, "run": run, "subsystem": subsystem,
             "histogram": path, "comparator": comparator, "verdict": verdict, "via": "dashboard"}
        )  # fmt: skip
    logger.info("verdict %r on %d %s %s (%s) by %s", verdict, run, subsystem, path, comparator, by)
    return stored_verdict(st, run, subsystem, path, comparator)


def stored_verdict(
    st: AppState, run: int, subsystem: str, path: str, comparator: str
) -> dict[str, Any] | None:
    """``{"verdict", "by", "at"}`` stored for one result, or None."""
    got = st.store.verdicts(run, subsystem).get(path, {}).get(comparator)
    return dict(got) if got else None


def words(verdict: str) -> str:
    """The words of a stored verdict value (unknown values as they are)."""
    return VERDICTS.get(verdict, verdict)
