"""Engine layer: the service config (``config/autodqm.toml``), checked once at start.

Errors are one line, ``FILE: section.key: problem (did you mean ...?)``. Relative paths
are relative to the config file. :func:`make_source` and :func:`make_certification`
build the data and certification sources the config describes.
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.certification import (
    CertificationSource,
    CertState,
    CertUpdate,
    GoldenJSONSource,
    LumiRanges,
    SourceCertification,
    as_state,
    diff_state,
)
from engine.config import SubsystemConfig
from engine.errors import ConfigError
from engine.filecache import FileCache
from engine.references import Policy, policy_from_config
from engine.registry import Registry
from engine.runregistry import RunRegistryClient, RunRegistrySource, sso_token
from engine.service_schema import Section, check_watches, parse_sections
from engine.sources.base import Source
from engine.sources.dqmgui import DQMGUISource
from engine.sources.local import LocalSource

logger = logging.getLogger(__name__)

__all__ = [
    "AlertConfig",
    "CertConfig",
    "SchedulerConfig",
    "ServiceConfig",
    "SourceConfig",
    "StorageConfig",
    "WatchConfig",
    "load_service_config",
    "make_certification",
    "make_source",
]


@dataclass(frozen=True, slots=True)
class StorageConfig:
    """``[storage]``: the results store, the downloaded files and their quota."""

    cache_dir: Path
    data_dir: Path
    quota_gb: float = 20.0


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """``[source]``: ``local`` (``path``) or ``dqmgui`` (``url``, ``cert``, ``key``, ``ca``)."""

    kind: str
    path: Path | None = None
    url: str = ""
    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None
    timeout: float = 60.0


@dataclass(frozen=True, slots=True)
class CertConfig:
    """``[certification]``: ``golden_json`` (path or url), ``runregistry`` or ``all``."""

    kind: str
    path: Path | None = None
    url: str = ""
    poll_seconds: float = 600.0
    name: str = ""
    dataset_class: str = ""
    name_like: str = ""
    states: tuple[str, ...] = ("COMPLETED",)
    workspace: str = "global"
    lookback: int = 2000
    client_id: str = ""
    client_secret_env: str = ""
    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None


@dataclass(frozen=True, slots=True)
class WatchConfig:
    """``[[watch]]``: one dataset, its subsystems (loaded and checked) and reference policy."""

    series: str
    sample: str
    subsystems: tuple[str, ...]
    config_dir: Path
    references: Mapping[str, Any] | None = None
    processing: str | None = None
    configs: Mapping[str, SubsystemConfig] = field(default_factory=dict, compare=False)

    @property
    def dataset(self) -> str:
        """``"Run2022/SingleMuon"``."""
        return f"{self.series}/{self.sample}"

    def policy_for(self, subsystem: str) -> Policy:
        """The watch's ``references``, else the subsystem config's, else 4 previous good."""
        spec = self.references
        if spec is None and subsystem in self.configs:
            spec = self.configs[subsystem].references
        return policy_from_config(spec, f"{self.dataset} {subsystem} references")


@dataclass(frozen=True, slots=True)
class AlertConfig:
    """``[alerts]``: webhooks, email, what is worth an alert and how deliveries retry."""

    webhooks: tuple[str, ...] = ()
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_user: str = ""
    smtp_password_env: str = ""
    email_from: str = "autodqm@localhost"
    email_to: tuple[str, ...] = ()
    dashboard_url: str = "http://127.0.0.1:8050"
    min_severity: str = "flagged"
    max_outliers: int = 5
    retry_seconds: float = 60.0
    group_seconds: float = 300.0
    timeout_seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    """``[scheduler]``: worker pool size, retries with exponential backoff, backfill."""

    workers: int = 2
    max_attempts: int = 5
    backoff_seconds: float = 30.0
    backfill: int = 0
    #: Good runs kept per histogram to learn its normal variation from (the history).
    history_runs: int = 30


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """The whole service config; ``path`` is the TOML file it was read from."""

    path: Path
    storage: StorageConfig
    source: SourceConfig
    certification: CertConfig
    watches: tuple[WatchConfig, ...]
    alerts: AlertConfig = field(default_factory=AlertConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)

    def subsystem_configs(self) -> dict[tuple[str, str], SubsystemConfig]:
        """``{(dataset, subsystem): config}`` over every watch."""
        return {(w.dataset, s): c for w in self.watches for s, c in w.configs.items()}


_TOML_POS = re.compile(r"^(?P<msg>.*?)\s*\(at line (?P<line>\d+), column (?P<col>\d+)\)$")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        msg = f"{path}: no such file (the service config; see config/autodqm.toml)"
        raise ConfigError(msg) from None
    except OSError as err:
        msg = f"{path}: cannot read ({err.strerror or err})"
        raise ConfigError(msg) from err
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as err:
        msg = f"{path}: not UTF-8 text ({err.reason} at byte {err.start})"
        raise ConfigError(msg) from err
    except tomllib.TOMLDecodeError as err:
        m = _TOML_POS.match(str(err))
        where = f"line {m['line']} column {m['col']}: {m['msg']}" if m else str(err)
        msg = f"{path}: {where}"
        raise ConfigError(msg) from err


def load_service_config(
    path: str | os.PathLike[str], registry: Registry | None = None
) -> ServiceConfig:
    """Read and check the service config; load every watched subsystem config.

    Args:
        path: The TOML file.
        registry: Comparators the subsystem configs may name (default: the built-ins).

    Returns:
        The parsed config, relative paths resolved against the file's directory.

    Raises:
        ConfigError: one line, ``FILE: section.key: problem (did you mean ...?)``; a
            broken subsystem config gives its own message after the watch's location.
    """
    if registry is None:
        from engine.registry import build_registry

        registry = build_registry()
    file = Path(path)
    raw = _read_toml(file)
    sections = parse_sections(file, raw)
    base = file.resolve().parent
    storage = Section(file, "storage", sections.get("storage", {}), base)
    source = Section(file, "source", sections["source"], base)
    cert = Section(file, "certification", sections["certification"], base)
    alerts = Section(file, "alerts", sections.get("alerts", {}), base)
    sched = Section(file, "scheduler", sections.get("scheduler", {}), base)
    return ServiceConfig(
        path=file,
        storage=StorageConfig(**storage.storage()),
        source=SourceConfig(**source.source()),
        certification=CertConfig(**cert.certification()),
        watches=tuple(WatchConfig(**w) for w in check_watches(file, raw["watch"], base, registry)),
        alerts=AlertConfig(**alerts.alerts()),
        scheduler=SchedulerConfig(**sched.scheduler()),
    )


# -- factories ----------------------------------------------------------------------------
def make_source(cfg: ServiceConfig) -> Source:
    """The data source of ``[source]`` (a DQM GUI source downloads into ``storage.data_dir``).

    Raises:
        ConfigError: a local source directory that does not exist.
    """
    src = cfg.source
    if src.kind == "local":
        assert src.path is not None
        if not src.path.is_dir():
            msg = f"{cfg.path}: source.path: no such directory {str(src.path)!r}"
            raise ConfigError(msg)
        return LocalSource(src.path)
    cache = FileCache(cfg.storage.data_dir, int(cfg.storage.quota_gb * 1e9))
    return DQMGUISource(
        src.url,
        cert=src.cert,
        key=src.key,
        ca=src.ca,
        cache=cache,
        timeout=(min(10.0, src.timeout), src.timeout),
    )


class AllRunsCertification:
    """Every run of every watched dataset in the data source counts as certified."""

    def __init__(
        self,
        parts: list[SourceCertification],
        state: CertState | Mapping[str, Any] | None = None,
    ) -> None:
        self.parts = parts
        self.state = as_state(state)

    def describe(self) -> str:
        return "; ".join(p.describe() for p in self.parts)

    def poll(self, now: datetime | None = None) -> CertUpdate:
        current: dict[int, LumiRanges] = {}
        for part in self.parts:
            current.update(part.read())
        update, self.state = diff_state(self.state, current, now or datetime.now(UTC))
        return update


def make_certification(
    cfg: ServiceConfig, state: CertState | Mapping[str, Any] | None = None
) -> CertificationSource:
    """The certification source of ``[certification]``, starting from ``state``.

    Raises:
        ConfigError: the Run Registry secret variable named by ``client_secret_env`` is unset.
    """
    c = cfg.certification
    verify: bool | str = str(c.ca) if c.ca else True
    cert = (str(c.cert), str(c.key)) if c.cert and c.key else (str(c.cert) if c.cert else None)
    if c.kind == "golden_json":
        location = c.url or str(c.path)
        return GoldenJSONSource(location, state, verify=verify, cert=cert)
    if c.kind == "all":
        source = make_source(cfg)
        datasets = dict.fromkeys((w.series, w.sample, w.processing) for w in cfg.watches)
        parts = [SourceCertification(source, s, p, None, proc) for s, p, proc in datasets]
        return AllRunsCertification(parts, state)
    token = None
    if c.client_id:
        secret = os.environ.get(c.client_secret_env, "")
        if not secret:
            msg = (
                f"{cfg.path}: certification.client_secret_env: the variable "
                f"{c.client_secret_env!r} is not set; export the Run Registry client secret"
            )
            raise ConfigError(msg)
        token = sso_token(c.client_id, secret)
    client = RunRegistryClient(c.url, token=token, cert=cert, verify=verify)
    return RunRegistrySource(
        client,
        c.dataset_class,
        c.name_like,
        state,
        states=c.states,
        workspace=c.workspace,
        lookback=c.lookback,
    )
