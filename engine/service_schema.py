"""Engine layer: key-by-key checks of the service config (used by ``engine.service_config``).

Each check raises a one-line ConfigError ``FILE: section.key: problem (did you mean ...?)``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NoReturn

from engine.config import load_subsystem
from engine.errors import ConfigError
from engine.references import policy_from_config
from engine.registry import Registry
from engine.runregistry import DATASET_STATES
from engine.runregistry import DEFAULT_URL as RR_URL
from engine.subsystem_schema import hint, show

SECTIONS = ("storage", "source", "certification", "watch", "alerts", "scheduler")
REQUIRED = {
    "source": '[source] with kind = "local" and path = "..." (or kind = "dqmgui" and url)',
    "certification": '[certification] with kind = "golden_json" and path = "..."',
    "watch": '[[watch]] with series, sample and subsystems = ["..."]',
}
SOURCE_KEYS = {"local": ("path",), "dqmgui": ("url", "cert", "key", "ca", "timeout")}
CERT_COMMON = ("kind", "poll_seconds", "name")
CLIENT_KEYS = ("cert", "key", "ca")
CERT_KEYS = {
    "golden_json": ("path", "url", *CLIENT_KEYS),
    "runregistry": (
        "url", "dataset_class", "name_like", "states", "workspace", "lookback",
        "client_id", "client_secret_env", *CLIENT_KEYS,
    ),
    "all": (),
}  # fmt: skip
STORAGE_KEYS = ("cache_dir", "data_dir", "quota_gb")
ALERT_KEYS = (
    "webhooks", "smtp_host", "smtp_port", "smtp_starttls", "smtp_user", "smtp_password_env",
    "email_from", "email_to", "dashboard_url", "min_severity", "max_outliers",
    "retry_seconds", "group_seconds", "timeout_seconds",
)  # fmt: skip
SCHEDULER_KEYS = ("workers", "max_attempts", "backoff_seconds", "backfill", "history_runs")
WATCH_KEYS = ("series", "sample", "subsystems", "config_dir", "references", "processing")
SEVERITIES = ("flagged", "error", "skipped")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _kind_of(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "an array", dict: "a table"}.get(type(value), type(value).__name__)  # fmt: skip


class Section:
    """One table of the config: typed getters that fail with the file and ``section.key``."""

    def __init__(self, file: Path, where: str, raw: Mapping[str, Any], base: Path) -> None:
        self.file, self.where, self.raw, self.base = file, where, raw, base

    def fail(self, key: str, problem: str) -> NoReturn:
        where = f"{self.where}.{key}" if key else self.where
        msg = f"{self.file}: {where}: {problem}"
        raise ConfigError(msg)

    def only(self, allowed: Iterable[str], note: str = "") -> None:
        allowed = tuple(allowed)
        for key in self.raw:
            if key not in allowed:
                self.fail(
                    key, f"unknown key{note}{hint(key, allowed)}; expected {', '.join(allowed)}"
                )

    def need(self, key: str, what: str) -> Any:
        if key not in self.raw:
            self.fail(key, f"missing; {what}")
        return self.raw[key]

    def string(self, key: str, default: str = "", *, required: str = "") -> str:
        value = self.need(key, required) if required else self.raw.get(key, default)
        if not isinstance(value, str):
            self.fail(key, f"expected a string, found {_kind_of(value)} {show(value)}")
        if required and not value.strip():
            self.fail(key, f"expected a non-empty string; {required}")
        return value

    def url(self, key: str, default: str = "", *, required: str = "") -> str:
        value = self.string(key, default, required=required)
        if value and not value.startswith(("http://", "https://")):
            self.fail(key, f"expected an http:// or https:// URL, found {value!r}")
        return value

    def number(self, key: str, default: float, *, low: float = 0.0, strict: bool = True) -> float:
        value = self.raw.get(key, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            self.fail(key, f"expected a number, found {_kind_of(value)} {show(value)}")
        if value < low or (strict and value == low):
            bound = f"> {low:g}" if strict else f">= {low:g}"
            self.fail(key, f"expected a number {bound}, found {value!r}")
        return float(value)

    def integer(self, key: str, default: int, *, low: int = 0, high: int | None = None) -> int:
        value = self.raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"expected an integer, found {_kind_of(value)} {show(value)}")
        if value < low or (high is not None and value > high):
            span = f">= {low}" if high is None else f"from {low} to {high}"
            self.fail(key, f"expected an integer {span}, found {value!r}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            self.fail(key, f"expected true or false, found {_kind_of(value)} {show(value)}")
        return value

    def choice(self, key: str, choices: Iterable[str], default: str | None = None) -> str:
        choices = tuple(choices)
        value = self.need(key, f"one of {', '.join(map(repr, choices))}") if default is None else (
            self.raw.get(key, default))  # fmt: skip
        if value not in choices:
            listed = ", ".join(map(repr, choices))
            self.fail(
                key, f"expected one of {listed}, found {show(value)}{hint(str(value), choices)}"
            )
        return str(value)

    def strings(self, key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.raw.get(key, list(default))
        if not isinstance(value, list):
            self.fail(key, f"expected an array of strings, found {_kind_of(value)} {show(value)}")
        for i, v in enumerate(value):
            if not isinstance(v, str) or not v.strip():
                self.fail(f"{key}[{i}]", f"expected a non-empty string, found {show(v)}")
        return tuple(value)

    def path(self, key: str, default: str | None = None, *, required: str = "") -> Path | None:
        text = self.string(key, default or "", required=required)
        if not text:
            return None
        p = Path(text).expanduser()
        return p if p.is_absolute() else (self.base / p).resolve()

    # -- the sections -------------------------------------------------------------------
    def storage(self) -> dict[str, Any]:
        self.only(STORAGE_KEYS)
        return {
            "cache_dir": self.path("cache_dir", "var/cache"),
            "data_dir": self.path("data_dir", "var/data"),
            "quota_gb": self.number("quota_gb", 20.0),
        }

    def source(self) -> dict[str, Any]:
        kind = self.choice("kind", SOURCE_KEYS)
        self.only(("kind", *SOURCE_KEYS[kind]), f" for kind {kind!r}")
        if kind == "local":
            return {"kind": kind, "path": self.path("path", required="the data directory")}
        return {
            "kind": kind,
            "url": self.url("url", required="the DQM GUI file server .../browse/ROOT/"),
            **{k: self.path(k) for k in CLIENT_KEYS},
            "timeout": self.number("timeout", 60.0),
        }

    def certification(self) -> dict[str, Any]:
        kind = self.choice("kind", CERT_KEYS)
        self.only((*CERT_COMMON, *CERT_KEYS[kind]), f" for kind {kind!r}")
        out: dict[str, Any] = {
            "kind": kind,
            "poll_seconds": self.number("poll_seconds", 600.0),
            "name": self.string("name", kind) or kind,
        }
        if kind == "golden_json":
            if ("path" in self.raw) == ("url" in self.raw):
                self.fail("path", "expected exactly one of path (a file) or url (http/https)")
            out.update(path=self.path("path"), url=self.url("url"))
        if kind == "runregistry":
            for state in self.strings("states", ("COMPLETED",)):
                if state not in DATASET_STATES:
                    self.fail("states", f"unknown state {state!r}{hint(state, DATASET_STATES)}")
            out.update(
                url=self.url("url", RR_URL),
                dataset_class=self.string("dataset_class", required="e.g. 'Collisions22'"),
                name_like=self.string(
                    "name_like", required="e.g. '/PromptReco/Collisions2022%/DQM'"
                ),
                states=self.strings("states", ("COMPLETED",)),
                workspace=self.string("workspace", "global"),
                lookback=self.integer("lookback", 2000),
                client_id=self.string("client_id"),
                client_secret_env=self.string("client_secret_env"),
            )
            if out["client_id"] and not out["client_secret_env"]:
                self.fail("client_secret_env", "missing; the variable holding the SSO secret")
        if kind != "all":
            out.update({k: self.path(k) for k in CLIENT_KEYS})
        return out

    def alerts(self) -> dict[str, Any]:
        self.only(ALERT_KEYS)
        for i, hook in enumerate(self.strings("webhooks")):
            if not hook.startswith(("http://", "https://")):
                self.fail(f"webhooks[{i}]", f"expected an http:// or https:// URL, found {hook!r}")
        for i, addr in enumerate(self.strings("email_to")):
            if "@" not in addr:
                self.fail(f"email_to[{i}]", f"expected an email address, found {addr!r}")
        return {
            "webhooks": self.strings("webhooks"),
            "smtp_host": self.string("smtp_host", "localhost"),
            "smtp_port": self.integer("smtp_port", 25, low=1, high=65535),
            "smtp_starttls": self.boolean("smtp_starttls", False),
            "smtp_user": self.string("smtp_user"),
            "smtp_password_env": self.string("smtp_password_env"),
            "email_from": self.string("email_from", "autodqm@localhost"),
            "email_to": self.strings("email_to"),
            "dashboard_url": self.url("dashboard_url", "http://127.0.0.1:8050").rstrip("/"),
            "min_severity": self.choice("min_severity", SEVERITIES, "flagged"),
            "max_outliers": self.integer("max_outliers", 5, low=1),
            "retry_seconds": self.number("retry_seconds", 60.0),
            "group_seconds": self.number("group_seconds", 300.0, strict=False),
            "timeout_seconds": self.number("timeout_seconds", 10.0),
        }

    def scheduler(self) -> dict[str, Any]:
        self.only(SCHEDULER_KEYS)
        return {
            "workers": self.integer("workers", 2, low=1),
            "max_attempts": self.integer("max_attempts", 5, low=1),
            "backoff_seconds": self.number("backoff_seconds", 30.0, strict=False),
            "backfill": self.integer("backfill", 0),
            "history_runs": self.integer("history_runs", 30, low=3),
        }


def parse_sections(file: Path, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The top-level tables, checked: known names, tables (``watch``: array of tables)."""
    for key, value in raw.items():
        if key not in SECTIONS:
            msg = f"{file}: {key}: unknown section{hint(key, SECTIONS)}; expected {', '.join(SECTIONS)}"
            raise ConfigError(msg)
        want_list = key == "watch"
        if want_list != isinstance(value, list) or (not want_list and not isinstance(value, dict)):
            form = "an array of tables [[watch]]" if want_list else f"a table [{key}]"
            msg = f"{file}: {key}: expected {form}, found {_kind_of(value)}"
            raise ConfigError(msg)
    for key, example in REQUIRED.items():
        if not raw.get(key):
            msg = f"{file}: {key}: missing section; add {example}"
            raise ConfigError(msg)
    return dict(raw)


def check_watches(
    file: Path, raw: list[Any], base: Path, registry: Registry
) -> list[dict[str, Any]]:
    """Each ``[[watch]]`` as WatchConfig fields; its subsystem configs are loaded now."""
    out: list[dict[str, Any]] = []
    taken: set[tuple[str, str]] = set()
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            msg = f"{file}: watch[{i}]: expected a table, found {_kind_of(entry)}"
            raise ConfigError(msg)
        w = Section(file, f"watch[{i}]", entry, base)
        w.only(WATCH_KEYS)
        series = w.string("series", required="the era, e.g. 'Run2022'")
        sample = w.string("sample", required="the primary dataset, e.g. 'SingleMuon'")
        for key, value in (("series", series), ("sample", sample)):
            if not _NAME.match(value):
                w.fail(key, f"expected a name of letters, digits, '_', '-', '.', found {value!r}")
        names = w.strings("subsystems")
        if not names:
            w.fail("subsystems", 'expected at least one subsystem, e.g. ["CSC"]')
        config_dir = w.path("config_dir", "subsystems")
        assert config_dir is not None
        if not config_dir.is_dir():
            w.fail("config_dir", f"no such directory {str(config_dir)!r}")
        references = entry.get("references")
        if references is not None:
            policy_from_config(references, f"{file}: watch[{i}].references")
        processing = w.string("processing") or None
        configs = {}
        for j, name in enumerate(names):
            if (f"{series}/{sample}", name) in taken:
                w.fail(f"subsystems[{j}]", f"{name!r} is already watched for {series}/{sample}")
            taken.add((f"{series}/{sample}", name))
            candidate = config_dir / f"{name}.json"
            if not candidate.is_file():
                known = sorted(p.stem for p in config_dir.glob("*.json"))
                listing = ", ".join(known) or "none"
                w.fail(
                    f"subsystems[{j}]",
                    f"unknown subsystem {name!r}: no {name}.json in {config_dir} "
                    f"(available: {listing}){hint(name, known)}",
                )
            try:
                configs[name] = load_subsystem(candidate, registry)
            except ConfigError as err:
                w.fail(f"subsystems[{j}]", str(err))
        out.append({
            "series": series, "sample": sample, "subsystems": names, "config_dir": config_dir,
            "references": references, "processing": processing, "configs": configs,
        })  # fmt: skip
    return out
