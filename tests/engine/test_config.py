"""Subsystem configs: parsing, one-line errors, parameter precedence, digest, CLI."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from engine import cli
from engine.config import (
    DEFAULT_COMPARATORS,
    comparator_params,
    find_subsystem,
    load_subsystem,
    validate_files,
)
from engine.errors import ConfigError
from engine.registry import Registry, build_registry
from engine.types import ComparisonResult, HistData


class _Stub:
    """compare() is never called here: these tests exercise configs, not statistics."""

    plot_kind: ClassVar[str] = "overlay"
    dims: ClassVar[tuple[int, ...]] = (1, 2)

    def compare(self, data: HistData, refs: Sequence[HistData]) -> ComparisonResult:
        raise NotImplementedError


@dataclass(frozen=True)
class BetaBinomial(_Stub):
    name: ClassVar[str] = "beta_binomial"
    pull_cap: float = 10.0
    chi2_cut: float = 10.0
    pull_cut: float = 10.0
    min_entries: int = 1
    tol: float = 0.01
    exact_z: bool = False
    xmin: float | None = None
    xmax: float | None = None
    concatenated: bool = False
    fit_chi2: tuple[float, float] | None = None
    fit_pull: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.tol < 0:
            raise ValueError(f"tol must be >= 0, found {self.tol}")


@dataclass(frozen=True)
class PullValues(_Stub):
    name: ClassVar[str] = "pull_values"
    pull_cap: float = 25.0
    chi2_cut: float = 500.0
    pull_cut: float = 20.0
    min_entries: int = 10_000
    norm_type: str = "all"


@dataclass(frozen=True)
class KSTest(_Stub):
    name: ClassVar[str] = "ks_test"
    ks_cut: float = 0.09
    min_entries: int = 10_000


@dataclass(frozen=True)
class ProfilePull(_Stub):
    name: ClassVar[str] = "profile_pull"
    chi2_cut: float = 10.0
    pull_cut: float = 10.0
    min_entries: int = 1
    tol: float = 0.01


@dataclass(frozen=True)
class PCA(_Stub):
    name: ClassVar[str] = "pca"
    model_dir: str = ""


@dataclass(frozen=True)
class MLPCA(_Stub):
    name: ClassVar[str] = "autodqm_ml_pca"
    model_dir: str = ""


@dataclass(frozen=True)
class VariationScan(_Stub):
    name: ClassVar[str] = "variation_scan"
    alpha: float = 0.01
    n_tests: int = 1


@dataclass(frozen=True)
class Moments(_Stub):
    name: ClassVar[str] = "moments"
    dims: ClassVar[tuple[int, ...]] = (1,)
    alpha: float = 0.01
    n_tests: int = 1


@pytest.fixture
def registry() -> Registry:
    reg = Registry()
    for cls in (BetaBinomial, PullValues, KSTest, ProfilePull, PCA, MLPCA, VariationScan, Moments):
        reg.register(cls)
    return reg


def write(tmp_path: Path, doc: Any, name: str = "CSC.json") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc, indent=1))
    return path


def config(**top: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"main_gdir": "DQMData/Run {0}/CSC/Run summary/CSCOfflineMonitor/"}
    doc["hists"] = [{"path": "Occupancy/hORecHits"}]
    doc.update(top)
    return doc


def error_of(tmp_path: Path, registry: Registry, doc: Any) -> str:
    path = write(tmp_path, doc)
    with pytest.raises(ConfigError) as info:
        load_subsystem(path, registry)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: ")
    return msg[len(f"{path}: ") :]


# ---- parsing --------------------------------------------------------------------------


def test_minimal_config_gets_autodqm_defaults(tmp_path: Path, registry: Registry) -> None:
    sub = load_subsystem(write(tmp_path, config()), registry)
    assert sub.name == "CSC"
    assert sub.comparators == DEFAULT_COMPARATORS
    # AutoDQM's four, then the tests that need no tuning
    assert sub.comparators == ("pull_values", "ks_test", "beta_binomial",
                               "variation_scan", "moments")  # fmt: skip
    (h,) = sub.hists
    assert (h.index, h.directory, h.name, h.comparators, h.norm_type) == (
        0, "Occupancy/", "hORecHits", None, "all",
    )  # fmt: skip
    assert sub.gdir(357130) == "DQMData/Run 357130/CSC/Run summary/CSCOfflineMonitor/"
    assert (sub.dataset, sub.references, sub.sel_display, sub.thresholds_fit) == (
        None,
        None,
        None,
        (),
    )


def test_every_schema_key_is_parsed(tmp_path: Path, registry: Registry) -> None:
    hist = {
        "path": "Timing/cscLCTTiming*",
        "comparators": ["beta_binomial", "ks_test"],
        "norm_type": "row",
        "always_show": True,
        "concatenate": ["a_minus1", "a_minus2"],
        "xmin": 1,
        "xmax": 60.5,
        "xlabels": ["1", "2"],
        "ylabels": ["ME -4/2"],
        "opts": ["logy", "pull_cap=15", "plot_title=Timing: all"],
        "jar_dir": "EMTF",
        "ks_cut": 0.2,
        "beta_binomial": {"tol": 0.05},
        "description": "free text",
    }
    top = {
        "comparators": ["beta_binomial"],
        "hists": [hist],
        "thresholds_fit": [{"name": "Timing", "param_Chi2": [1, 2], "param_MaxPull": [3, 4.5]}],
        "sel_display": ["BB_Chi2_4.0"],
        "run_reg": "csc",
        "jar_dir": "CSC",
        "dataset": "/Muon/Run2024*/DQMIO",
        "references": {"policy": "previous_good", "count": 4},
        "excluded_hists": [{"path": "x"}],
        "pull_cap": 20,
        "beta_binomial": {"min_entries": 100},
        "descriptionX": "a link",
    }
    sub = load_subsystem(write(tmp_path, config(**top)), registry)
    (h,) = sub.hists
    assert h.comparators == ("beta_binomial", "ks_test")
    assert (h.norm_type, h.always_show, h.concatenate) == ("row", True, ("a_minus1", "a_minus2"))
    assert (h.xmin, h.xmax, h.xlabels, h.ylabels) == (1.0, 60.5, ("1", "2"), ("ME -4/2",))
    assert list(h.opts.items()) == [("logy", ""), ("pull_cap", "15"), ("plot_title", "Timing: all")]
    assert h.params == {"ks_cut": 0.2, "beta_binomial": {"tol": 0.05}}
    assert h.raw == hist
    assert sub.params == {"pull_cap": 20, "beta_binomial": {"min_entries": 100}}
    assert sub.thresholds_fit[0].chi2 == (1.0, 2.0)
    assert sub.thresholds_fit[0].max_pull == (3.0, 4.5)
    assert sub.dataset == "/Muon/Run2024*/DQMIO"
    assert sub.references == {"policy": "previous_good", "count": 4}
    assert (sub.sel_display, sub.run_reg) == (["BB_Chi2_4.0"], "csc")


def test_main_gdir_without_run_placeholder_is_allowed_as_in_autodqm(
    tmp_path: Path, registry: Registry
) -> None:
    sub = load_subsystem(write(tmp_path, config(main_gdir="DQMData/Run summary")), registry)
    assert sub.gdir(1) == "DQMData/Run summary/"


# ---- one-line errors naming file and JSON path --------------------------------------

BAD = [
    (config(hists=[{"path": "a"}, {"path": "b"}, {"path": 42}]), "hists[2].path: expected a string, found 42"),
    (config(hists=[{"path": "a", "norm_tpye": "row"}]), "hists[0].norm_tpye: unknown key (did you mean 'norm_type'?)"),
    (config(hists=[{"path": "a", "comparators": ["ks"]}]), "hists[0].comparators: unknown comparator 'ks' (did you mean 'ks_test'?)"),
    (config(comparators=["beta_binomail"]), "comparators: unknown comparator 'beta_binomail' (did you mean 'beta_binomial'?)"),
    (config(hists=[{"path": "a", "norm_type": "rows"}]), "hists[0].norm_type: expected one of 'all', 'row', 'col', found 'rows' (did you mean 'row'?)"),
    (config(hists=[{"path": "a", "opts": ["chi2_cut=abc"]}]), "hists[0].opts[0]: 'chi2_cut=abc': expected a number after '='"),
    (config(hists=[{"path": "a", "opts": ["logy", "chi2cut=3"]}]), "hists[0].opts[1]: unknown option 'chi2cut=3' (did you mean 'chi2_cut'?)"),
    (config(hists=[{"path": "a", "opts": ["logx=1"]}]), "hists[0].opts[0]: option 'logx' takes no value, found 'logx=1' (write 'logx')"),
    (config(hists=[{"path": "a", "opts": "logy"}]), "hists[0].opts: expected a list of strings, found 'logy'"),
    (config(hists=[{"path": "a", "comparators": ["ks_test"], "chi2_cut": 3}]), "hists[0].chi2_cut: parameter of 'beta_binomial', 'profile_pull', 'pull_values', not of a comparator this entry runs (it runs 'ks_test', 'variation_scan', 'moments')"),
    (config(hists=[{"path": "a", "ks_test": {"ks_cutt": 0.1}}]), "hists[0].ks_test.ks_cutt: unknown parameter of 'ks_test' (did you mean 'ks_cut'?)"),
    (config(hists=[{"path": "a", "comparators": ["beta_binomial"], "ks_test": {}}]), "hists[0].ks_test: parameters for 'ks_test', which this entry does not run (it runs 'beta_binomial', 'variation_scan', 'moments')"),
    (config(hists=[{"path": "a", "always_show": "yes"}]), "hists[0].always_show: expected true or false, found 'yes'"),
    (config(hists=[{"path": "a", "xmin": 5, "xmax": 1}]), "hists[0].xmax: expected xmax > xmin, found xmin=5, xmax=1"),
    (config(hists=[{"path": "a/*/b"}]), "hists[0].path: '*' is only allowed in the last component, found 'a/*/b'"),
    (config(hists=[{"norm_type": "row"}]), "hists[0].path: missing; the histogram's path below main_gdir"),
    (config(hists=[]), "hists: expected at least one histogram entry, found []"),
    (config(hists=[{"path": "a", "beta_binomial": {"tol": -1}}]), "hists[0]: comparator 'beta_binomial': bad parameters {'tol': -1}: tol must be >= 0, found -1"),
    (config(main_gdir="Run {run}/"), "main_gdir: bad format 'Run {run}/' ('run'); write {0} for the run number"),
    (config(mian_gdir="x"), "mian_gdir: unknown key (did you mean 'main_gdir'?)"),
    (config(thresholds_fit=[{"name": "Occ", "param_Chi2": [1]}]), "thresholds_fit[0].param_Chi2: expected two numbers [a, b] for the cut a/nRef + b² (AutoDQM ignores any further numbers), found [1]"),
    (config(thresholds_fit=[{"name": "Occ", "param_chi2": [1, 2]}]), "thresholds_fit[0].param_chi2: unknown key (did you mean 'param_Chi2'?)"),
    (config(dataset=7), "dataset: expected a string, found 7"),
    (config(references=["recent"]), "references: expected an object, found ['recent']"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("doc", "expected"), BAD, ids=[e.split(":")[0] + str(i) for i, (_, e) in enumerate(BAD)]
)
def test_bad_input_gives_one_line_naming_file_and_path(
    tmp_path: Path, registry: Registry, doc: dict[str, Any], expected: str
) -> None:
    assert error_of(tmp_path, registry, doc) == expected


def test_malformed_json_names_line_and_column(tmp_path: Path, registry: Registry) -> None:
    msg = error_of(tmp_path, registry, '{\n  "main_gdir": "x",\n  "hists": [,]\n}')
    assert msg == "line 3 column 13: Expecting value"


def test_top_level_must_be_an_object(tmp_path: Path, registry: Registry) -> None:
    assert (
        error_of(tmp_path, registry, "[1]") == "expected a JSON object at the top level, found list"
    )


def test_missing_file(tmp_path: Path, registry: Registry) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(ConfigError, match=r"nope\.json: no such file$"):
        load_subsystem(path, registry)


def test_validate_files_reports_every_problem_of_every_file(
    tmp_path: Path, registry: Registry
) -> None:
    good = write(tmp_path, config(), "good.json")
    bad = write(tmp_path, config(hists=[{"path": 1}, {"path": "a", "xmin": "0"}]), "bad.json")
    assert validate_files([good], registry) == []
    assert validate_files([good, bad, tmp_path / "gone.json"], registry) == [
        f"{bad}: hists[0].path: expected a string, found 1",
        f"{bad}: hists[1].xmin: expected a number, found '0'",
        f"{tmp_path / 'gone.json'}: no such file",
    ]


# ---- comparator_params --------------------------------------------------------------


def params_for(
    tmp_path: Path, registry: Registry, doc: dict[str, Any], comp: str, name: str = ""
) -> dict[str, Any]:
    sub = load_subsystem(write(tmp_path, doc), registry)
    hist = sub.hists[0]
    return comparator_params(sub, hist, name or hist.path, comp, registry)


def test_precedence_subsystem_then_hist_then_nested_then_opts(
    tmp_path: Path, registry: Registry
) -> None:
    hist = {
        "path": "a",
        "chi2_cut": 4,
        "pull_cut": 6,
        "min_entries": 50,
        "beta_binomial": {"chi2_cut": 5, "tol": 0.1},
    }
    doc = config(pull_cap=30, tol=0.02, beta_binomial={"pull_cap": 12, "pull_cut": 1}, hists=[hist])
    assert params_for(tmp_path, registry, doc, "beta_binomial") == {
        "pull_cap": 12, "tol": 0.1, "chi2_cut": 5, "pull_cut": 6, "min_entries": 50,
    }  # fmt: skip
    hist["opts"] = ["chi2_cut=3", "min_entries=1e4", "logy"]
    got = params_for(tmp_path, registry, doc, "beta_binomial")
    assert (got["chi2_cut"], got["min_entries"]) == (3.0, 10_000)
    assert isinstance(got["min_entries"], int)


def test_one_hist_key_serves_every_comparator_that_has_it(
    tmp_path: Path, registry: Registry
) -> None:
    hist = {
        "path": "a",
        "chi2_cut": 4,
        "ks_cut": 0.2,
        "norm_type": "col",
        "xmin": 2,
        "opts": ["pull_cap=5"],
    }
    doc = config(hists=[hist])
    assert params_for(tmp_path, registry, doc, "pull_values") == {
        "chi2_cut": 4,
        "norm_type": "col",
        "pull_cap": 5.0,
    }
    assert params_for(tmp_path, registry, doc, "ks_test") == {"ks_cut": 0.2}
    assert params_for(tmp_path, registry, doc, "beta_binomial") == {
        "chi2_cut": 4,
        "pull_cap": 5.0,
        "xmin": 2.0,
    }
    assert params_for(tmp_path, registry, doc, "autodqm_ml_pca") == {}


def test_concatenate_sets_concatenated(tmp_path: Path, registry: Registry) -> None:
    doc = config(hists=[{"path": "a_0", "concatenate": ["a_1", "a_2"]}])
    assert params_for(tmp_path, registry, doc, "beta_binomial") == {"concatenated": True}


FITS = [
    {"name": "Occupancy", "param_Chi2": [1, 1], "param_MaxPull": [2, 2]},
    {"name": "hOccupancyAll", "param_Chi2": [3, 3]},
    {"name": "Summary/CSC_*Eff", "param_Chi2": [4, 4], "param_MaxPull": [5, 5]},
]


@pytest.mark.parametrize(
    ("hist_name", "chi2", "pull"),
    [
        ("Digis/hOccupancyAll_W1", (3.0, 3.0), (2.0, 2.0)),  # last match wins, per parameter
        ("Digis/hOccupancy", (1.0, 1.0), (2.0, 2.0)),  # substring match
        ("Summary/CSC_STATS_Eff", (4.0, 4.0), (5.0, 5.0)),  # '*' matches any text
        ("Summary/CSC_STATS", None, None),
    ],
)
def test_thresholds_fit_last_matching_substring_wins(
    tmp_path: Path, registry: Registry, hist_name: str, chi2: Any, pull: Any
) -> None:
    got = params_for(tmp_path, registry, config(thresholds_fit=FITS), "beta_binomial", hist_name)
    assert (got.get("fit_chi2"), got.get("fit_pull")) == (chi2, pull)


def test_explicit_cut_beats_thresholds_fit(tmp_path: Path, registry: Registry) -> None:
    doc = config(thresholds_fit=FITS, hists=[{"path": "Digis/hOccupancy", "opts": ["chi2_cut=7"]}])
    assert params_for(tmp_path, registry, doc, "beta_binomial") == {
        "chi2_cut": 7.0,
        "fit_pull": (2.0, 2.0),
    }
    doc["hists"] = [{"path": "Digis/hOccupancy", "pull_cut": 9}]
    assert params_for(tmp_path, registry, doc, "beta_binomial") == {
        "pull_cut": 9,
        "fit_chi2": (1.0, 1.0),
    }
    doc["chi2_cut"] = 8  # a subsystem-wide cut is a default, the name-specific fit is more specific
    assert params_for(tmp_path, registry, doc, "beta_binomial")["fit_chi2"] == (1.0, 1.0)
    assert "fit_chi2" not in params_for(tmp_path, registry, doc, "pull_values")


# ---- digest -------------------------------------------------------------------------


def test_digest_ignores_key_order_and_whitespace_and_follows_content(
    tmp_path: Path, registry: Registry
) -> None:
    doc = config(comparators=["beta_binomial"])
    a = load_subsystem(write(tmp_path, json.dumps(doc), "a.json"), registry).digest
    reordered = json.dumps(dict(reversed(list(doc.items()))), indent=4)
    b = load_subsystem(write(tmp_path, reordered, "b.json"), registry).digest
    doc["hists"][0]["norm_type"] = "row"
    c = load_subsystem(write(tmp_path, doc, "c.json"), registry).digest
    assert a == b != c
    assert len(a) == 64
    assert set(a) <= set("0123456789abcdef")


# ---- find_subsystem -----------------------------------------------------------------


def test_find_subsystem_by_name_path_and_with_suggestion(tmp_path: Path) -> None:
    write(tmp_path, config(), "CSC.json")
    write(tmp_path, config(), "EMTF.json")
    assert find_subsystem("CSC", tmp_path) == tmp_path / "CSC.json"
    assert find_subsystem(str(tmp_path / "EMTF.json"), "/nonexistent") == tmp_path / "EMTF.json"
    with pytest.raises(
        ConfigError,
        match=r"^unknown subsystem 'CSX' \(available: CSC, EMTF\) \(did you mean 'CSC'\?\)$",
    ):
        find_subsystem("CSX", tmp_path)
    with pytest.raises(ConfigError, match=r"RPC\.json: no such file$"):
        find_subsystem(str(tmp_path / "RPC.json"), tmp_path)
    with pytest.raises(ConfigError, match="holds no"):
        find_subsystem("CSC", tmp_path / "empty")


# ---- the real registry and the CLI --------------------------------------------------


@pytest.fixture
def real_registry() -> Registry:
    return build_registry()


def test_real_registry_takes_the_merged_parameters(tmp_path: Path, real_registry: Registry) -> None:
    hist = {"path": "a_0", "concatenate": ["a_1"], "xmin": 1, "opts": ["chi2_cut=3", "pull_cap=5"]}
    doc = config(
        thresholds_fit=FITS, hists=[hist, {"path": "b", "norm_type": "row", "ks_cut": 0.3}]
    )
    sub = load_subsystem(write(tmp_path, doc), real_registry)
    for h in sub.hists:
        for name in sub.comparators:
            real_registry.build(
                name, comparator_params(sub, h, "Occupancy/" + h.path, name, real_registry)
            )


def _cli(argv: list[str]) -> int:
    return cli.main(argv)


def test_cli_validate(
    tmp_path: Path, real_registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write(tmp_path, config(), "good.json")
    bad = write(tmp_path, config(hists=[{"path": "a", "norm_tpye": "row"}]), "bad.json")
    assert _cli(["config", "validate", str(good)]) == 0
    assert capsys.readouterr().out == f"{good}: ok\n"
    assert _cli(["config", "validate", str(good), str(bad), "--config-dir", str(tmp_path)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{good}: ok",
        f"{bad}: hists[0].norm_tpye: unknown key (did you mean 'norm_type'?)",
    ]
    assert _cli(["config", "validate", "goo", "--config-dir", str(tmp_path)]) == 1
    assert "unknown subsystem 'goo'" in capsys.readouterr().out


def test_bad_reference_policy_fails_at_load(tmp_path) -> None:
    from engine.config import load_subsystem
    from engine.errors import ConfigError
    from engine.registry import build_registry

    p = tmp_path / "CSC.json"
    p.write_text(
        '{"main_gdir": "DQMData/Run {0}/CSC/", "hists": [{"path": "h"}],'
        ' "references": {"policy": "previus_good"}}'
    )
    with pytest.raises(ConfigError) as exc:
        load_subsystem(p, build_registry())
    assert str(exc.value).startswith(f"{p}: references.policy: unknown policy 'previus_good'")
    assert "previous_good" in str(exc.value)
