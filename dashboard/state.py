"""Dashboard layer: what callbacks and API views reach — the store, the config, the service.

``create_app`` builds one :class:`AppState` and attaches it to its Flask server
(``server.extensions["autodqm"]``); :func:`get` finds it through ``flask.current_app``,
so two apps in one process (tests) never share state and nothing happens at import.
A background callback runs in a forked process without a request: it finds the state
by the app's ``token`` (:func:`by_token`). Who acts is decided in one place,
:func:`acting_user` (today the name typed on the page; SSO replaces ``AppState.identify``).
"""

from __future__ import annotations

import difflib
import logging
import threading
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import flask

from engine import __version__
from engine.errors import DQMError
from engine.times import utc_iso

if TYPE_CHECKING:
    from engine.registry import Registry
    from engine.service import Service
    from engine.service_config import ServiceConfig
    from engine.settings import Settings
    from engine.store import Alert, Store

logger = logging.getLogger(__name__)

EXTENSION = "autodqm"
#: The time zone every time on the pages and in the API is given in.
TIMEZONE = "UTC"
#: Apps of this process by token (weak: an app that is gone drops out).
_BY_TOKEN: weakref.WeakValueDictionary[str, AppState] = weakref.WeakValueDictionary()


def typed_name(typed: str | None) -> str:
    """The acting user from the name typed on the page ("" = nobody)."""
    return " ".join((typed or "").split())[:80]


class BadInput(DQMError):
    """A URL part or query parameter a person typed is not usable (→ 400/404 and a message)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class AppState:
    """The dashboard's handles on the engine (one per app).

    Attributes:
        store: The results store.
        config: The service config, when the app was made from one.
        settings: The process settings, when the app was made from them.
        registry: The comparator registry (the service needs it to act).
    """

    store: Store
    config: ServiceConfig | None = None
    settings: Settings | None = None
    registry: Registry | None = None
    version: str = __version__
    #: Who acts, from what the page sent (the one place SSO will change).
    identify: Callable[[str | None], str] = field(default=typed_name, repr=False)
    token: str = field(default_factory=lambda: uuid.uuid4().hex, repr=False)
    _service: Service | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # -- subsystems ------------------------------------------------------------------------
    def configured_subsystems(self) -> list[str]:
        """Subsystems the service watches (config order), or the JSON configs on disk."""
        if self.config is not None:
            seen: dict[str, None] = {}
            for w in self.config.watches:
                for s in w.subsystems:
                    seen.setdefault(s)
            return list(seen)
        if self.settings is not None and self.settings.config_dir.is_dir():
            return sorted(p.stem for p in self.settings.config_dir.glob("*.json"))
        return []

    def known_subsystems(self) -> list[str]:
        """Configured subsystems first, then any other one with stored results."""
        known = self.configured_subsystems()
        return known + [s for s in self.store.subsystems() if s not in known]

    def check_subsystem(self, name: str) -> str:
        """``name`` if it is a known subsystem, else :class:`BadInput` (404) with a hint."""
        known = self.known_subsystems()
        if name in known:
            return name
        folded = {k.lower(): k for k in known}
        if name.lower() in folded:
            return folded[name.lower()]
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        listing = ", ".join(known) if known else "none yet"
        msg = f"unknown subsystem {name!r}{hint}; known subsystems: {listing}"
        raise BadInput(msg, 404)

    # -- certification polls ---------------------------------------------------------------
    def last_poll(self) -> str:
        """ISO time of the latest certification poll the scheduler stored ("" = never)."""
        names = ["golden_json", "runregistry", "all"]
        if self.config is not None:
            from engine.jobs import source_names

            names = source_names(self.config)
        polls = [str((self.store.get_cert_state(n) or {}).get("last_poll", "")) for n in names]
        return max(polls, default="")

    # -- actions ---------------------------------------------------------------------------
    def service(self) -> Service | None:
        """The service layer (made on first use), or None without a service config."""
        if self.config is None:
            return None
        with self._lock:
            if self._service is None:
                from engine.registry import build_registry
                from engine.service import Service

                registry = self.registry if self.registry is not None else build_registry()
                self._service = Service(self.config, self.store, registry)
            return self._service

    def ack_alert(self, alert_id: str, by: str, via: str) -> Alert | None:
        """Acknowledge an alert through the service layer; None if there is no such alert."""
        if self.store.get_alert(alert_id) is None:
            return None
        service = self.service()
        if service is not None:
            service.ack_alert(alert_id, by)  # writes the audit entry itself
        else:
            self.store.ack_alert(alert_id, by, utc_iso())
            self.store.log({"action": "ack", "alert": alert_id, "by": by, "via": via})
        logger.info("alert %s acknowledged by %s (%s)", alert_id, by, via)
        return self.store.get_alert(alert_id)

    def silence(self, subsystem: str, pattern: str, until: datetime, by: str, reason: str) -> str:
        """Add a silence through the service layer (``Service.silence``); its id.

        Without a service config (read-only settings) the store is written directly,
        with the same audit entry.

        Raises:
            DQMError: no name, or ``until`` is not in the future.
        """
        service = self.service()
        if service is not None:
            return service.silence(subsystem, pattern, until, by, reason)
        from engine.store import Silence
        from engine.times import utc_iso, utcnow

        now = utcnow()
        if not by.strip() or until <= now:
            msg = (f"silence of {subsystem}/{pattern}: expected who (by={by!r}) and an end in "
                   f"the future (until={utc_iso(until)!r}, now {utc_iso(now)})")  # fmt: skip
            raise DQMError(msg)
        sid = self.store.add_silence(
            Silence("", subsystem, pattern, utc_iso(until), by, reason, utc_iso(now))
        )
        self.store.log({"action": "silence", "by": by, "silence": sid, "subsystem": subsystem,
                        "pattern": pattern, "until": utc_iso(until), "reason": reason})  # fmt: skip
        return sid

    def unsilence(self, silence_id: str, by: str) -> None:
        """Lift a silence through the service layer (``Service.unsilence``).

        Raises:
            DQMError: there is no such silence.
        """
        service = self.service()
        if service is not None:
            service.unsilence(silence_id, by)
            return
        if self.store.remove_silence(silence_id, by, utc_iso()) is None:
            msg = f"no silence {silence_id!r}"
            raise DQMError(msg)
        self.store.log({"action": "unsilence", "by": by, "silence": silence_id})


def install(server: flask.Flask, state: AppState) -> None:
    """Attach ``state`` to a Flask server (called once by ``create_app``)."""
    server.extensions[EXTENSION] = state
    _BY_TOKEN[state.token] = state


def by_token(token: str | None) -> AppState:
    """The state of the app whose token a page carried (background callbacks)."""
    try:
        return _BY_TOKEN[str(token)]
    except KeyError:
        msg = "this page belongs to a dashboard that is no longer running: reload the page"
        raise BadInput(msg, 409) from None


def acting_user(typed: str | None, st: AppState | None = None) -> str:
    """Who acts: ``AppState.identify`` of the typed name ("" = unknown: refuse to act)."""
    return (st or get()).identify(typed)


def get() -> AppState:
    """The state of the app serving the current request (or the active app context)."""
    try:
        state: Any = flask.current_app.extensions[EXTENSION]
    except (RuntimeError, KeyError) as err:
        msg = "no autodqm app is active: build one with dashboard.app.create_app(...)"
        raise RuntimeError(msg) from err
    return state  # type: ignore[no-any-return]
