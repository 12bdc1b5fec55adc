"""Every shipped subsystem config loads: AutoDQM's own (unchanged) and ours."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from engine.config import comparator_params, load_subsystem
from engine.registry import Registry, build_registry

ROOT = Path(__file__).resolve().parent.parent
AUTODQM = ROOT / "tests" / "data" / "autodqm_configs"
OURS = ROOT / "config" / "subsystems"
SOURCES = (AUTODQM / "SOURCES.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def registry() -> Registry:
    return build_registry()


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


AUTODQM_FILES = sorted(AUTODQM.glob("*.json"))
OUR_FILES = sorted(OURS.glob("*.json"))


@pytest.mark.parametrize("path", AUTODQM_FILES + OUR_FILES, ids=_ids(AUTODQM_FILES + OUR_FILES))
def test_config_loads_and_builds_every_comparator(path: Path, registry: Registry) -> None:
    sub = load_subsystem(path, registry)
    assert sub.hists
    assert sub.gdir(357130).endswith("/")
    for hist in sub.hists:
        for name in hist.comparators or sub.comparators:
            registry.build(name, comparator_params(sub, hist, hist.path, name, registry))


@pytest.mark.parametrize("path", AUTODQM_FILES, ids=_ids(AUTODQM_FILES))
def test_autodqm_copies_are_unchanged(path: Path) -> None:
    """Each copy still has the size and sha256 recorded in SOURCES.md, next to its commit."""
    row = re.search(
        rf"^\| {re.escape(path.name)} \| ([0-9a-f]{{40}}) \| (\d+) \| ([0-9a-f]{{64}}) \|",
        SOURCES,
        re.MULTILINE,
    )
    assert row, f"{path.name} has no row in SOURCES.md"
    data = path.read_bytes()
    assert (len(data), hashlib.sha256(data).hexdigest()) == (int(row[2]), row[3])


def test_autodqm_semantics_are_kept(registry: Registry) -> None:
    shift = load_subsystem(AUTODQM / "L1T_shift.json", registry)
    assert shift.comparators == ("beta_binomial",)
    timing = next(h for h in shift.hists if h.concatenate)
    assert comparator_params(shift, timing, timing.path, "beta_binomial", registry) == {
        "pull_cap": 5.0, "chi2_cut": 3.0, "pull_cut": 5.0, "concatenated": True,
    }  # fmt: skip
    ett = next(h for h in shift.hists if h.path.endswith("ETTRank"))
    assert list(ett.opts) == ["logx", "logy"]
    assert comparator_params(shift, ett, ett.path, "beta_binomial", registry) == {"xmin": 60.0}

    csc = load_subsystem(AUTODQM / "CSC.json", registry)
    assert csc.comparators == ("pull_values", "ks_test", "autodqm_ml_pca", "beta_binomial",
                               "variation_scan", "moments")  # fmt: skip
    assert comparator_params(csc, csc.hists[0], "Occupancy/hORecHits", "pull_values", registry) == {
        "norm_type": "row"
    }
    assert csc.run_reg == "csc"

    doc1 = load_subsystem(AUTODQM / "CSC_Offline_DOC1.json", registry)
    got = comparator_params(
        doc1, doc1.hists[1], "Summary/CSC_Efficiency", "beta_binomial", registry
    )
    assert got == {
        "fit_chi2": (20.73871867638727, -1.9818459911385457e-06),
        "fit_pull": (31.834177992265445, 2.658374240229468),
    }
    assert doc1.gdir(1) == "/eos/cms/store/group/comm_dqm/DQMGUI_data/Run2022/Muon/Run summary/"

    hcal = load_subsystem(AUTODQM / "HCAL.json", registry)
    assert hcal.hists[5].comparators == ("pca", "beta_binomial")
