"""Engine layer: the exception hierarchy. Every message says what, where, and the fix."""

from __future__ import annotations

from collections.abc import Sequence


class DQMError(Exception):
    """Base class of every error autodqm raises on purpose."""


class ConfigError(DQMError):
    """A config file (subsystem JSON or service TOML) is malformed or inconsistent."""


class FetchError(DQMError):
    """A download or listing failed."""

    def __init__(self, message: str, url: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


class FileFormatError(DQMError):
    """A file is missing, not a ROOT file, truncated or not in the DQM layout."""


class HistogramNotFound(DQMError, KeyError):
    """A histogram asked for is not in the file."""

    def __init__(self, path: str, file: str, close: Sequence[str] = ()) -> None:
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        msg = f"{file}: histogram {path!r} not found{hint}"
        super().__init__(msg)
        self.path = path
        self.file = file
        self.close = tuple(close)

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class PluginError(DQMError):
    """A comparator plugin failed its registration checks."""


class ComparatorError(DQMError):
    """A comparator could not judge its inputs (bad parameters, inconsistent arrays)."""
