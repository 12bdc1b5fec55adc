"""Dashboard fixtures: a results store filled through the real store API, and apps over it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from dash import Dash

from dashboard.app import create_app
from engine.provenance import Provenance
from engine.settings import ROOT, Settings
from engine.store import Alert, Store, SubsystemRecord, open_store
from engine.types import ComparisonResult, Status

#: The subsystem configs shipped in config/subsystems.
SUBSYSTEMS = ("CSC", "DT", "EMTF", "RPC")
RUNS = (357100, 357101, 357102)
TOP = {"histogram": "flagged/hCSC0", "comparator": "beta_binomial", "score": 10.0, "reason": "x"}


def result(path: str, comparator: str, status: Status, score: float) -> ComparisonResult:
    """One stored result with the arrays a drill-down needs."""
    rng = np.random.default_rng(len(path) + int(score * 10))
    return ComparisonResult(
        comparator=comparator,
        path=path,
        status=status,
        score=score,
        threshold=3.0,
        reason="" if status is Status.OK else f"{path}: {status} (score {score})",
        scores={"chi2": score, "max_pull": 2 * score},
        entries=15000.0,
        arrays={"pulls": rng.normal(size=8), "ref_weighted": rng.uniform(size=8)},
    )


def record(run: int, subsystem: str, statuses: dict[Status, int], n_ok: int = 3) -> SubsystemRecord:
    """A record with ``statuses`` (status → how many) plus ``n_ok`` OK results."""
    results = [
        result(f"Occupancy/h{subsystem}{i}", "beta_binomial", Status.OK, 0.5 + i)
        for i in range(n_ok)
    ]
    for status, n in statuses.items():
        results += [
            result(f"{status}/h{subsystem}{i}", "beta_binomial", status, 10.0 + i) for i in range(n)
        ]
    prov = Provenance(
        f"digest-{subsystem}",
        f"config/subsystems/{subsystem}.json",
        "0.1.0",
        f"2024-05-0{run - 357099}T12:00:00Z",
        (run - 2, run - 1),
        "the 2 latest certified runs before",
    )
    return SubsystemRecord(
        run=run,
        subsystem=subsystem,
        dataset="Run2022/SingleMuon",
        reference_runs=(run - 2, run - 1),
        reference_reason="the 2 latest certified runs before",
        provenance=prov,
        results=tuple(results),
        missing=("Segments/hMissing",),
    )


def fill(store: Store) -> None:
    """Three runs: 357102 has CSC flagged (3) + DT with an error; RPC skips; EMTF absent."""
    for run in RUNS:
        store.put_report(record(run, "RPC", {Status.SKIPPED: 2}))
        store.put_report(record(run, "DT", {Status.ERROR: 1} if run == 357102 else {}))
        store.put_report(record(run, "CSC", {Status.FLAGGED: 3} if run == 357102 else {}))
    store.put_alert(
        Alert(
            id="357102-CSC",
            run=357102,
            subsystem="CSC",
            dataset="Run2022/SingleMuon",
            created="2024-05-03T12:01:00Z",
            n_flagged=3,
            top=(TOP,),
            link="http://127.0.0.1:8050/run/357102/CSC",
            deliveries={"webhook": "pending"},
        )
    )


@pytest.fixture(scope="session")
def fill_store() -> Callable[[Store], None]:
    """:func:`fill` (for session fixtures and other test files: conftest is not importable)."""
    return fill


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A filled store (see :func:`fill`)."""
    s = open_store(tmp_path / "store")
    fill(s)
    yield s
    s.close()


@pytest.fixture
def empty_store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(tmp_path / "empty")
    yield s
    s.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(cache_dir=tmp_path / "store")


@pytest.fixture
def app(settings: Settings, store: Store) -> Dash:
    return create_app(settings, store)


@pytest.fixture
def service_toml(tmp_path: Path) -> Path:
    """A service config whose store is the ``store`` fixture's directory."""
    demo = tmp_path / "demo"
    demo.mkdir()
    (demo / "golden.json").write_text("{}")
    path = tmp_path / "autodqm.toml"
    path.write_text(
        f"""
[storage]
cache_dir = "store"
data_dir = "data"
[source]
kind = "local"
path = "demo"
[certification]
kind = "golden_json"
path = "demo/golden.json"
[[watch]]
series = "Run2022"
sample = "SingleMuon"
subsystems = ["CSC", "DT", "RPC", "EMTF"]
config_dir = "{ROOT / "config" / "subsystems"}"
"""
    )
    return path


@pytest.fixture(scope="session")
def demo_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Demo data really processed by the service into a store (see ``demo_site.build``)."""
    from tests.dashboard.demo_site import build

    site = build(tmp_path_factory.mktemp("demo_site"))
    yield site
    site.store.close()
