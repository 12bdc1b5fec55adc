"""The history: contents stored as runs are processed, each file decoded once, good runs only."""

from __future__ import annotations

import importlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from engine.demo import DemoOptions, generate, load_runs
from engine.history import History
from engine.registry import build_registry
from engine.service import Service
from engine.store import open_store
from engine.types import HistData

helpers = importlib.import_module("tests.engine.test_service")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    generate(out, DemoOptions(runs=8, seed=4, subsystems=("RPC",)))
    return out


def test_each_file_is_decoded_once_and_learned_tests_get_the_history(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import engine.service as service_module

    decoded: Counter[int] = Counter()
    real = service_module.decode

    def counting(w, path, run):  # type: ignore[no-untyped-def]
        decoded[run] += 1
        return real(w, path, run)

    monkeypatch.setattr(service_module, "decode", counting)
    cfg = helpers.write_config(tmp_path / "a.toml", demo, demo / "golden.json",
                               subsystems=("RPC",), scheduler="workers = 1")  # fmt: skip
    svc: Service = helpers.make_service(cfg, build_registry())
    svc.poll("golden_json")
    certified = sorted(r.run for r in load_runs(demo) if r.certified)
    assert svc.drain() == len(certified)
    assert decoded
    assert max(decoded.values()) == 1  # references and history: from the store
    assert set(decoded) <= set(certified)
    newest = svc.store.get_report(certified[-1], "RPC")
    assert newest is not None
    hp = [r for r in newest.results if r.comparator == "history_pca" and "history" in r.scores]
    assert hp, "history_pca judged nothing"
    # it learned from the history (every earlier good run), not from the 4 references
    assert max(r.scores["history"] for r in hp) > len(newest.reference_runs)
    svc.close()


def _h(run: int, total: float) -> HistData:
    v = np.full(10, total / 10)
    return HistData("a", run, v, v.copy(), (np.arange(11.0),), entries=total)


def test_history_leaves_out_flagged_real_problems_and_low_statistics(tmp_path: Path) -> None:
    from engine.history import Decoded

    store = open_store(tmp_path / "store")
    hist = History(store, runs=30)
    for run in range(1, 9):
        total = 100.0 if run == 5 else 10_000.0  # run 5: a few lumisections
        low = hist.put_contents(
            "D/S", "SUB", run, Decoded({"a": _h(run, total), "b": _h(run, total)})
        )
        assert low == (run == 5)
        hist.mark_judged("D/S", "SUB", run, flagged=["a"] if run == 3 else [])
    store.put_verdict(6, "SUB", "b", "history_pca", "real_problem", "ann", "2026-01-01T00:00:00Z")
    assert hist.low_stats("D/S", "SUB") == {5}
    past = hist.history("D/S", "SUB", 9, ["a", "b"])
    assert [h.run for h in past["a"]] == [1, 2, 4, 6, 7, 8]  # 3 flagged, 5 low statistics
    assert [h.run for h in past["b"]] == [1, 2, 3, 4, 7, 8]  # 6 a real problem
    assert past["a"][0].values.dtype == np.float64
    short = History(store, runs=2).history("D/S", "SUB", 9, ["a"])
    assert [h.run for h in short["a"]] == [7, 8]
    store.close()
