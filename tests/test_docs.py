"""The README documents every comparator, every setting and every CLI sub-command."""

from __future__ import annotations

from pathlib import Path

from engine.cli import build_parser
from engine.registry import build_registry
from engine.settings import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_comparator_is_documented() -> None:
    missing = [n for n in build_registry().names() if f"`{n}`" not in README]
    assert missing == []


def test_every_setting_is_documented() -> None:
    for name, help_text in Settings.help().items():
        assert f"| `{name}` |" in README, name
        assert help_text in README, name


def test_every_command_is_documented() -> None:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    missing = [n for n in sub.choices if f"autodqm {n}" not in README]
    assert missing == []


def test_readme_starts_with_the_two_commands() -> None:
    block = README.split("```")[1]
    assert "autodqm demo" in block
    assert "./scripts/test" in block
