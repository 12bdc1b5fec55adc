"""Every subsystem config loads and runs: ours, AutoDQM's as it ships them, and each case.

AutoDQM's configs are read from ``../shared/autodqm-config`` (``AUTODQM_CONFIGS`` names
another folder); they are not ours to ship, so those tests skip where the folder is
absent. Small configs written here cover each feature of AutoDQM's schema on their own.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.config import comparator_params, load_subsystem, validate_files
from engine.errors import ConfigError
from engine.io import write_dqm
from engine.registry import Registry, build_registry
from engine.runner import compare_files
from engine.types import HistData, HistKind, Status

ROOT = Path(__file__).resolve().parent.parent
OURS = ROOT / "config" / "subsystems"
AUTODQM = Path(os.environ.get("AUTODQM_CONFIGS", ROOT.parent / "shared" / "autodqm-config"))
#: AutoDQM's folder also holds its map of online directories, which is not a subsystem config.
NOT_SUBSYSTEMS = {"main.json"}

OUR_FILES = sorted(OURS.glob("*.json"))
AUTODQM_FILES = sorted(p for p in AUTODQM.glob("*.json") if p.name not in NOT_SUBSYSTEMS)
needs_autodqm = pytest.mark.skipif(not AUTODQM.is_dir(), reason=f"{AUTODQM} is absent")


@pytest.fixture(scope="module")
def registry() -> Registry:
    return build_registry()


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def _write(tmp_path: Path, config: dict[str, Any], name: str = "X.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(config))
    return path


def _builds_every_comparator(path: Path, registry: Registry) -> None:
    sub = load_subsystem(path, registry)
    assert sub.hists
    assert sub.gdir(357130).endswith("/")
    for hist in sub.hists:
        for name in hist.comparators or sub.comparators:
            registry.build(name, comparator_params(sub, hist, hist.path, name, registry))


@pytest.mark.parametrize("path", OUR_FILES, ids=_ids(OUR_FILES))
def test_our_config_loads_and_builds_every_comparator(path: Path, registry: Registry) -> None:
    _builds_every_comparator(path, registry)


@needs_autodqm
def test_autodqm_folder_holds_its_configs() -> None:
    assert len(AUTODQM_FILES) >= 10, f"{AUTODQM}: expected AutoDQM's subsystem configs"


@needs_autodqm
@pytest.mark.parametrize("path", AUTODQM_FILES, ids=_ids(AUTODQM_FILES))
def test_autodqm_config_validates_and_builds(path: Path, registry: Registry) -> None:
    assert validate_files([path], registry) == []
    _builds_every_comparator(path, registry)


@needs_autodqm
def test_autodqm_online_map_is_named_for_what_it_is(registry: Registry) -> None:
    main = AUTODQM / "main.json"
    if not main.is_file():
        pytest.skip(f"{main} is absent")
    (line,) = validate_files([main], registry)
    assert line == f"{main}: not a subsystem config: AutoDQM's map of online directories " \
        "(OnlineDataMap)"  # fmt: skip


def _fake_hist(path: str, run: int, rng: np.random.Generator, two_d: bool) -> HistData:
    shape = (6, 5) if two_d else (12,)
    mean = np.full(shape, 400.0)
    values = rng.poisson(mean).astype(float)
    edges = tuple(np.linspace(0.0, float(n), n + 1) for n in shape)
    return HistData(
        path=path,
        run=run,
        values=values,
        variances=values.copy(),
        edges=edges,
        kind=HistKind.TH2 if two_d else HistKind.TH1,
        entries=float(values.sum()),
    )


def _files_for(sub: Any, tmp_path: Path, runs: list[int]) -> list[Path]:
    """A DQM file per run with a histogram at every path the config names (``*`` -> ``x``)."""
    rng = np.random.default_rng(7)
    files = []
    for run in runs:
        gdir = sub.gdir(run)
        hists = {}
        for hist in sub.hists:
            name = hist.path.replace("*", "x")
            two_d = bool(hist.raw.get("norm_type") or hist.raw.get("ylabels"))
            hists[gdir + name] = _fake_hist(name, run, rng, two_d)
        path = tmp_path / f"DQM_V0001_R{run:09d}__Test__Run2022C-PromptReco-v1__DQMIO.root"
        write_dqm(path, hists)
        files.append(path)
    return files


@needs_autodqm
@pytest.mark.parametrize("path", AUTODQM_FILES, ids=_ids(AUTODQM_FILES))
def test_autodqm_config_runs(path: Path, registry: Registry, tmp_path: Path) -> None:
    """Every histogram the config names is compared without an error result."""
    sub = load_subsystem(path, registry)
    if sub.gdir(1) == sub.gdir(2) and not sub.gdir(1).startswith("DQMData"):
        pytest.skip("main_gdir is not a path inside a DQM file")
    data, *refs = _files_for(sub, tmp_path, [357130, 357120, 357121, 357122])
    report = compare_files(sub, registry, data, refs, workers=1)
    assert report.missing == ()
    errors = [f"{r.path} {r.comparator}: {r.reason}" for r in report.results
              if r.status is Status.ERROR]  # fmt: skip
    assert errors == []
    judged = {r.path for r in report.results}
    assert len(judged) >= len({h.path.replace("*", "x") for h in sub.hists})


# Each case of AutoDQM's schema, in a small config of its own.

BASE: dict[str, Any] = {"main_gdir": "DQMData/Run {0}/CSC/Run summary/", "hists": [{"path": "h"}]}


def _fit_params(tmp_path: Path, registry: Registry, fit: dict[str, Any]) -> dict[str, Any]:
    config = {**BASE, "comparators": ["beta_binomial"],
              "thresholds_fit": [{"name": "Occ", **fit}],
              "hists": [{"path": "Occupancy/hOcc"}]}  # fmt: skip
    sub = load_subsystem(_write(tmp_path, config), registry)
    return comparator_params(sub, sub.hists[0], "Occupancy/hOcc", "beta_binomial", registry)


def test_thresholds_fit_two_numbers(tmp_path: Path, registry: Registry) -> None:
    got = _fit_params(tmp_path, registry, {"param_Chi2": [4, 1], "param_MaxPull": [14, 4]})
    assert got == {"fit_chi2": (4.0, 1.0), "fit_pull": (14.0, 4.0)}


def test_thresholds_fit_three_numbers_uses_the_first_two_as_autodqm(
    tmp_path: Path, registry: Registry
) -> None:
    fit = {"param_MaxPull": [7, 7, 0.2], "param_Chi2": [1.2, 0.93]}
    got = _fit_params(tmp_path, registry, fit)
    assert got == {"fit_chi2": (1.2, 0.93), "fit_pull": (7.0, 7.0)}
    bb: Any = registry.build("beta_binomial", got)
    # STATS.md: chi2_cut = 0.8 (a/nRef + b²); pull_cut = a/nRef + b², capped at 36
    assert bb.cuts(4) == pytest.approx((0.8 * (1.2 / 4 + 0.93**2), min(7 / 4 + 7**2, 36)))


@pytest.mark.parametrize(
    ("value", "shown"),
    [([7], "[7]"), ([7, "x"], "[7, 'x']"), ("7,7", "'7,7'"), ([], "[]")],
)
def test_thresholds_fit_bad_numbers_are_one_line(
    tmp_path: Path, registry: Registry, value: Any, shown: str
) -> None:
    config = {**BASE, "thresholds_fit": [{"name": "h", "param_MaxPull": value}]}
    path = _write(tmp_path, config)
    with pytest.raises(ConfigError) as err:
        load_subsystem(path, registry)
    assert str(err.value).startswith(f"{path}: thresholds_fit[0].param_MaxPull: expected two ")
    assert shown in str(err.value)
    assert "\n" not in str(err.value)


def test_autodqm_keys_are_kept(tmp_path: Path, registry: Registry) -> None:
    config = {
        "main_gdir": "DQMData/Run {0}/L1T/Run summary/",
        "comparators": ["beta_binomial"],
        "run_reg": "csc",
        "description": "shift histograms",
        "descriptionX": "notes",
        "sel_display": True,
        "excluded_hists": ["L1TStage2uGT/x"],
        "hists": [
            {"path": "L1TStage2CaloLayer2/Central-Jets/CenJetsRank", "xmin": 60,
             "opts": ["logx", "logy"], "jar_dir": "jars", "always_show": True},
            {"path": "L1TStage2uGMT/ugmtMuonBX*", "concatenate": ["a", "b"],
             "opts": ["pull_cap=5", "chi2_cut=3", "pull_cut=5"]},
            {"path": "L1TStage2EMTF/cscLCTOccupancy", "norm_type": "row",
             "comparators": ["pull_values"],
             "xlabels": ["a", "b"], "ylabels": ["c"]},
            {"path": "HCAL/x", "comparators": ["pca", "beta_binomial"]},
        ],
    }  # fmt: skip
    sub = load_subsystem(_write(tmp_path, config), registry)
    assert sub.comparators == ("beta_binomial",)
    assert sub.run_reg == "csc"
    jets, bx, emtf, hcal = sub.hists
    assert list(jets.opts) == ["logx", "logy"]
    assert comparator_params(sub, jets, jets.path, "beta_binomial", registry) == {"xmin": 60.0}
    assert comparator_params(sub, bx, "L1TStage2uGMT/ugmtMuonBX1", "beta_binomial", registry) == {
        "pull_cap": 5.0, "chi2_cut": 3.0, "pull_cut": 5.0, "concatenated": True,
    }  # fmt: skip
    assert comparator_params(sub, emtf, emtf.path, "pull_values", registry) == {"norm_type": "row"}
    assert hcal.comparators == ("pca", "beta_binomial")


def test_crlf_and_default_comparators(tmp_path: Path, registry: Registry) -> None:
    path = tmp_path / "GEM.json"
    path.write_bytes(json.dumps(BASE, indent=1).replace("\n", "\r\n").encode())
    sub = load_subsystem(path, registry)
    assert sub.comparators == ("pull_values", "ks_test", "beta_binomial",
                               "variation_scan", "moments")  # fmt: skip


def test_main_gdir_without_run_number(tmp_path: Path, registry: Registry) -> None:
    gdir = "/eos/cms/store/group/comm_dqm/DQMGUI_data/Run2022/Muon/Run summary/"
    sub = load_subsystem(_write(tmp_path, {**BASE, "main_gdir": gdir}), registry)
    assert sub.gdir(1) == gdir


def test_decide_names_the_tests_of_the_verdict(tmp_path: Path, registry: Registry) -> None:
    plain = load_subsystem(_write(tmp_path, {**BASE, "comparators": ["beta_binomial"]}), registry)
    assert plain.decide == ("history_pca", "variation_scan", "moments")
    (h,) = plain.hists
    assert plain.tests(h) == (("beta_binomial", False), ("history_pca", False),
                              ("variation_scan", False), ("moments", False))  # fmt: skip
    config = {**BASE, "comparators": ["beta_binomial"], "decide": ["beta_binomial"],
              "hists": [{"path": "a"}, {"path": "b", "decide": ["history_pca"]}]}  # fmt: skip
    sub = load_subsystem(_write(tmp_path, config), registry)
    a, b = sub.hists
    assert sub.tests(a) == (("beta_binomial", False),)
    assert sub.deciders(b) == ("history_pca",)
    assert sub.tests(b) == (("beta_binomial", False), ("history_pca", False))
    bad = _write(tmp_path, {**BASE, "decide": ["history_pcaa"]})
    with pytest.raises(ConfigError, match=r"decide: unknown comparator 'history_pcaa' \(did you"):
        load_subsystem(bad, registry)
