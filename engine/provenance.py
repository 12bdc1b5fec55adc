"""Engine layer: provenance of a stored result — config hash, references and why, code, time.

``code_version()`` asks git once per process (on first call, never at import).
"""

from __future__ import annotations

import functools
import logging
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from engine import __version__
from engine.times import utc_iso

logger = logging.getLogger(__name__)

_REPO = Path(__file__).resolve().parent.parent


@functools.cache
def code_version() -> str:
    """``engine.__version__``, plus ``git describe`` when run from a git checkout.

    Computed once per process (cached): e.g. ``0.1.0 (git 2b7f645-dirty)``.
    """
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],
            cwd=_REPO,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as err:
        logger.debug("no git description of %s: %s", _REPO, err)
        return __version__
    described = out.stdout.strip()
    return f"{__version__} (git {described})" if described else __version__


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a stored result comes from.

    Attributes:
        config_digest: sha256 of the subsystem config (``SubsystemConfig.digest``).
        config_path: The subsystem config file.
        code_version: :func:`code_version` of the process that made the result.
        created: ISO 8601 UTC time (``...Z``) the result was made.
        reference_runs: The reference runs compared with.
        reference_reason: Why they were chosen (``RefChoice.reason``).
    """

    config_digest: str
    config_path: str
    code_version: str
    created: str
    reference_runs: tuple[int, ...] = ()
    reference_reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "config_digest": self.config_digest,
            "config_path": self.config_path,
            "code_version": self.code_version,
            "created": self.created,
            "reference_runs": list(self.reference_runs),
            "reference_reason": self.reference_reason,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Provenance:
        """Inverse of :meth:`to_dict`."""
        return cls(
            config_digest=str(d.get("config_digest", "")),
            config_path=str(d.get("config_path", "")),
            code_version=str(d.get("code_version", "")),
            created=str(d.get("created", "")),
            reference_runs=tuple(int(r) for r in d.get("reference_runs", ())),
            reference_reason=str(d.get("reference_reason", "")),
        )


def make_provenance(
    config_digest: str,
    config_path: str | Path,
    reference_runs: tuple[int, ...] | list[int],
    reference_reason: str,
    *,
    now: datetime | None = None,
    version: str | None = None,
) -> Provenance:
    """A :class:`Provenance` stamped with ``now`` and this process's code version.

    Args:
        config_digest: The subsystem config's digest.
        config_path: The subsystem config file.
        reference_runs: The reference runs used.
        reference_reason: Why they were chosen.
        now: Time of the comparison (default: the current time).
        version: Code version (default: :func:`code_version`).
    """
    return Provenance(
        config_digest=config_digest,
        config_path=str(config_path),
        code_version=code_version() if version is None else version,
        created=utc_iso(now),
        reference_runs=tuple(int(r) for r in reference_runs),
        reference_reason=reference_reason,
    )
