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


def test_readme_comparator_example_works() -> None:
    """The "Writing a comparator" example registers and flags a shifted peak."""
    import numpy as np

    from engine.registry import Registry
    from engine.types import HistData, Status

    code = README.split("## Writing a comparator")[1].split("```python")[1].split("```")[0]
    namespace: dict[str, object] = {"__name__": "readme_example"}
    exec(compile(code, "README.md", "exec", dont_inherit=True), namespace)  # noqa: S102 - our own README
    cls = namespace["MeanShift"]
    reg = Registry()
    reg.register(cls, "README:MeanShift")
    comp = reg.build("mean_shift", {"cut": 1.0})
    x = np.arange(40)
    edges = (np.arange(41, dtype=float),)

    def hist(centre: float, run: int) -> HistData:
        v = 1000 * np.exp(-0.5 * ((x - centre) / 4) ** 2)
        return HistData("h", run, v, v, edges)

    assert comp.compare(hist(20, 2), [hist(20, 1)]).status is Status.OK
    assert comp.compare(hist(25, 2), [hist(20, 1)]).status is Status.FLAGGED


def test_readme_example_commands_work_in_order_on_the_demos_data(tmp_path: Path) -> None:
    """The compare example runs on the data ``autodqm demo`` makes, and demo-data keeps it."""
    import os
    import subprocess
    import sys

    from engine.demo import DemoOptions, generate

    # What `autodqm demo` generates into var/demo (its first 12 runs hold the example's).
    generate(tmp_path / "var" / "demo", DemoOptions(runs=12, seed=1), jobs=2)
    block = next(b for b in README.split("```")[1::2] if "autodqm compare $d/" in b)
    bindir = Path(sys.executable).parent  # the environment's `autodqm` console script
    assert (bindir / "autodqm").is_file()
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", "-euc", block], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "357119" in done.stdout
    for run in (357102, 357106, 357111, 357117):
        assert str(run) in done.stdout
    before = sorted(p.name for p in (tmp_path / "var" / "demo").rglob("*.root"))
    again = subprocess.run(
        ["autodqm", "demo-data", "var/demo"], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert again.returncode == 2
    assert (
        "already holds a demo data set of 12 runs (357102\N{EN DASH}357143), seed 1" in again.stderr
    )
    assert "--force" in again.stderr
    assert sorted(p.name for p in (tmp_path / "var" / "demo").rglob("*.root")) == before
