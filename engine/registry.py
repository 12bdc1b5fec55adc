"""Engine layer: the comparator registry, an object passed in (never a global).

Built-ins come from ``plugins.BUILTIN``; external packages add entry points in the
``autodqm.comparators`` group, loaded only when asked (``Settings.load_external_plugins``).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import re
from collections.abc import Iterable, Mapping
from importlib.metadata import entry_points
from typing import Any

from engine.errors import ConfigError, PluginError
from engine.types import PLOT_KINDS, Comparator

ENTRY_POINT_GROUP = "autodqm.comparators"
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
#: What a comparator may learn from (``learns_from``; the first is the default).
LEARNS_FROM = ("references", "history")


def _load(spec: str) -> object:
    module, _, attr = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        msg = f"comparator {spec!r}: cannot import ({err})"
        raise PluginError(msg) from err


class Registry:
    """Maps comparator names to their classes; checks each class as it registers."""

    def __init__(self) -> None:
        self._classes: dict[str, type[Comparator]] = {}

    def register(self, cls: object, source: str = "") -> None:
        """Add one comparator class, or raise :class:`PluginError` saying what is wrong."""
        where = f"comparator {source or getattr(cls, '__qualname__', repr(cls))!r}"
        if not isinstance(cls, type) or not dataclasses.is_dataclass(cls):
            msg = f"{where}: expected a dataclass type, found {type(cls).__name__}"
            raise PluginError(msg)
        for attr in ("name", "plot_kind", "dims"):
            if attr not in vars(cls) and not any(attr in vars(b) for b in cls.__mro__[1:]):
                msg = f"{where}: missing ClassVar {attr!r}"
                raise PluginError(msg)
        name = cls.name  # type: ignore[attr-defined]
        if not isinstance(name, str) or not _NAME_RE.match(name):
            msg = f"{where}: name {name!r} must match {_NAME_RE.pattern}"
            raise PluginError(msg)
        if not callable(getattr(cls, "compare", None)):
            msg = f"{where}: missing method 'compare(data, refs)'"
            raise PluginError(msg)
        if cls.plot_kind not in PLOT_KINDS:  # type: ignore[attr-defined]
            msg = f"{where}: plot_kind {cls.plot_kind!r} not one of {sorted(PLOT_KINDS)}"  # type: ignore[attr-defined]
            raise PluginError(msg)
        learns = getattr(cls, "learns_from", LEARNS_FROM[0])
        if learns not in LEARNS_FROM:
            msg = f"{where}: learns_from {learns!r} not one of {list(LEARNS_FROM)}"
            raise PluginError(msg)
        if name in self._classes:
            msg = f"{where}: name {name!r} is already taken by {self._classes[name].__module__}"
            raise PluginError(msg)
        self._classes[name] = cls  # type: ignore[assignment]

    def names(self) -> list[str]:
        return sorted(self._classes)

    def __contains__(self, name: object) -> bool:
        return name in self._classes

    def get(self, name: str) -> type[Comparator]:
        """The class registered as ``name``; :class:`ConfigError` with a suggestion if unknown."""
        try:
            return self._classes[name]
        except KeyError:
            close = (
                difflib.get_close_matches(name, self._classes, n=1)
                or [n for n in sorted(self._classes) if name and n.startswith(name)][:1]
            )
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            msg = f"unknown comparator {name!r}{hint}"
            raise ConfigError(msg) from None

    def params(self, name: str) -> dict[str, Any]:
        """Parameter names of a comparator with their defaults."""
        return {
            f.name: f.default
            for f in dataclasses.fields(self.get(name))  # type: ignore[arg-type]
        }

    def build(self, name: str, params: Mapping[str, Any] | None = None) -> Comparator:
        """Instantiate ``name`` with ``params``; an unknown parameter is a ConfigError."""
        cls = self.get(name)
        known = self.params(name)
        for key in params or {}:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                msg = f"comparator {name!r}: unknown parameter {key!r}{hint}"
                raise ConfigError(msg)
        try:
            return cls(**dict(params or {}))
        except (TypeError, ValueError) as err:
            msg = f"comparator {name!r}: bad parameters {dict(params or {})!r}: {err}"
            raise ConfigError(msg) from err


def build_registry(specs: Iterable[str] | None = None, *, load_external: bool = False) -> Registry:
    """A registry with the built-ins (or ``specs``) and, if asked, entry-point plugins."""
    if specs is None:
        from plugins import BUILTIN  # plugins depend on engine.types only

        specs = BUILTIN
    reg = Registry()
    for spec in specs:
        reg.register(_load(spec), spec)
    if load_external:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            reg.register(_load(ep.value), ep.value)
    return reg
