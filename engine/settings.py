"""Engine layer: process settings, read from the environment by ``Settings.from_env()``.

Each field has a default and a help string; the README's Configuration table lists them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from engine.errors import ConfigError

#: The repository root (config/ and assets/ live here, not inside the packages).
ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "AUTODQM_"


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True, slots=True)
class Settings:
    """Process-wide settings; override any field with the ``AUTODQM_<NAME>`` variable."""

    config_dir: Path = field(
        default=ROOT / "config" / "subsystems",
        metadata=_help("directory holding the subsystem configs <NAME>.json"),
    )
    cache_dir: Path = field(
        default=Path("var/cache"), metadata=_help("results store (diskcache) directory")
    )
    load_external_plugins: bool = field(
        default=False,
        metadata=_help(
            "load comparators registered by other packages (entry points autodqm.comparators)"
        ),
    )
    log_level: str = field(default="INFO", metadata=_help("logging level of the service commands"))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings with ``AUTODQM_*`` variables applied; a bad value is a ConfigError."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None:
                continue
            if f.type in ("bool", bool):
                if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
                    msg = f"{ENV_PREFIX}{f.name.upper()}={raw!r}: expected true or false"
                    raise ConfigError(msg)
                values[f.name] = raw.lower() in ("1", "true", "yes")
            elif f.type in ("Path", Path):
                values[f.name] = Path(raw)
            else:
                values[f.name] = raw
        return cls(**values)

    @staticmethod
    def help() -> dict[str, str]:
        """Field name → help text (used by the README table test)."""
        return {f.name: str(f.metadata["help"]) for f in fields(Settings)}
