"""The comparator registry: built-ins load through it, bad plugins are refused clearly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pytest

from engine.errors import ConfigError, PluginError
from engine.registry import Registry, build_registry


@dataclass(frozen=True, slots=True)
class Good:
    name: ClassVar[str] = "good_test"
    plot_kind: ClassVar[str] = "overlay"
    dims: ClassVar[tuple[int, ...]] = (1,)
    cut: float = 1.0

    def compare(self, data, refs):  # pragma: no cover - never called here
        raise NotImplementedError


def test_builtins_register() -> None:
    reg = build_registry()
    assert {
        "beta_binomial",
        "pull_values",
        "ks_test",
        "profile_pull",
        "pca",
        "autodqm_ml_pca",
    } <= set(reg.names())


def test_build_with_params_and_unknown_param() -> None:
    reg = Registry()
    reg.register(Good)
    assert reg.build("good_test", {"cut": 2.0}).cut == 2.0
    with pytest.raises(ConfigError, match=r"unknown parameter 'cutt' \(did you mean 'cut'\?\)"):
        reg.build("good_test", {"cutt": 2.0})
    with pytest.raises(
        ConfigError, match=r"unknown comparator 'good_tst' \(did you mean 'good_test'\?\)"
    ):
        reg.get("good_tst")


def test_duplicate_name_refused() -> None:
    reg = Registry()
    reg.register(Good)
    with pytest.raises(PluginError, match="already taken"):
        reg.register(Good)


def test_missing_name_refused() -> None:
    @dataclass(frozen=True)
    class NoName:
        plot_kind: ClassVar[str] = "overlay"
        dims: ClassVar[tuple[int, ...]] = (1,)

        def compare(self, data, refs):  # pragma: no cover
            raise NotImplementedError

    with pytest.raises(PluginError, match="missing ClassVar 'name'"):
        Registry().register(NoName, "pkg.mod:NoName")


def test_bad_plot_kind_and_not_a_class() -> None:
    @dataclass(frozen=True)
    class Bad:
        name: ClassVar[str] = "bad"
        plot_kind: ClassVar[str] = "3d-hologram"
        dims: ClassVar[tuple[int, ...]] = (1,)

        def compare(self, data, refs):  # pragma: no cover
            raise NotImplementedError

    with pytest.raises(PluginError, match="plot_kind"):
        Registry().register(Bad)
    with pytest.raises(PluginError, match="expected a dataclass type"):
        Registry().register(lambda d, r: None, "pkg:func")


def test_unimportable_spec() -> None:
    with pytest.raises(PluginError, match="cannot import"):
        build_registry(["nonexistent.module:Thing"])


def test_learns_from_is_checked() -> None:
    @dataclass(frozen=True)
    class Learner:
        name: ClassVar[str] = "learner"
        plot_kind: ClassVar[str] = "overlay"
        dims: ClassVar[tuple[int, ...]] = (1,)
        learns_from: ClassVar[str] = "the future"

        def compare(self, data, refs):  # pragma: no cover
            raise NotImplementedError

    with pytest.raises(
        PluginError, match=r"learns_from 'the future' not one of \['references', 'history'\]"
    ):
        Registry().register(Learner)
