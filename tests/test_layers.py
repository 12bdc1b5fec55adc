"""Layering rules of STYLE.md: engine and plugins never pull in the web stack."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_engine_and_plugins_do_not_import_dash() -> None:
    code = (
        "import sys, importlib, pkgutil, engine, plugins\n"
        "for pkg in (engine, plugins):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        importlib.import_module(m.name)\n"
        "bad = [m for m in ('dash', 'plotly', 'dash_bootstrap_components') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(
                node.module.split(".")[0] if node.module != "engine.types" else "engine.types"
            )
    return names


def test_plugins_import_only_numpy_scipy_and_engine_types() -> None:
    allowed = {
        "__future__",
        "numpy",
        "scipy",
        "engine.types",
        "plugins",
        "math",
        "dataclasses",
        "collections",
        "typing",
        "enum",
        "functools",
    }
    for path in sorted((ROOT / "plugins").glob("*.py")):
        extra = _imports(path) - allowed
        assert not extra, f"{path.name} imports {sorted(extra)}"


def test_only_engine_io_imports_uproot() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in ROOT.glob("[ed]*/**/*.py")
        if "uproot" in _imports(p) and "engine/io" not in p.as_posix()
    ]
    assert offenders == []


def test_nothing_happens_at_import_time(tmp_path: Path) -> None:
    """Importing every module starts no thread and writes no file (STYLE.md: factories do that)."""
    code = (
        "import importlib, pkgutil, threading, engine, plugins\n"
        "for pkg in (engine, plugins):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        importlib.import_module(m.name)\n"
        "print(threading.active_count())\n"
    )
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    assert out.stdout.strip() == "1"
    assert list(tmp_path.iterdir()) == []
