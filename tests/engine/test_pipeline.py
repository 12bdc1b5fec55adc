"""Tests of engine.pipeline's pure part: what each comparator is given."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.config import load_subsystem
from engine.errors import ConfigError
from engine.pipeline import Plan, PlannedHist, compare_hists
from engine.registry import build_registry
from plugins._variance import run_cut


def _sub(tmp_path: Path, hists: list[dict[str, object]]) -> object:
    path = tmp_path / "SUB.json"
    path.write_text(json.dumps({"main_gdir": "DQMData/Run {0}/SUB/", "hists": hists}))
    return load_subsystem(path, build_registry())


def test_tests_with_a_run_level_cut_learn_how_many_histograms_they_judge(
    tmp_path: Path, make_hist
) -> None:
    reg = build_registry()
    sub = _sub(tmp_path, [{"path": "h*", "comparators": ["variation_scan", "beta_binomial"]},
                          {"path": "p*", "comparators": ["moments"]}])  # fmt: skip
    names = [f"h{i}" for i in range(7)] + ["p1", "p2"]
    plan = Plan(tuple(PlannedHist(sub.hists[0 if n[0] == "h" else 1], n) for n in names), ())
    rng = np.random.default_rng(0)
    data = {n: make_hist(rng.poisson(500.0, 30).astype(float), path=n) for n in names}
    refs = [{n: make_hist(rng.poisson(500.0, 30).astype(float), run=r, path=n) for n in names}
            for r in (2, 3, 4)]  # fmt: skip
    results = compare_hists(sub, reg, plan, data, refs)
    cuts = {r.comparator: r.scores.get("cut") for r in results}
    assert cuts["variation_scan"] == 5.0  # 7 histograms: the floor decides
    # with a lower floor the count shows: 7 variation_scan histograms here
    many = _sub(tmp_path, [{"path": "h*", "comparators": ["variation_scan"], "min_cut": 1.0}])
    plan = Plan(tuple(PlannedHist(many.hists[0], n) for n in names[:7]), ())
    res = [
        r for r in compare_hists(many, reg, plan, data, refs) if r.comparator == "variation_scan"
    ]
    assert [r.scores["cut"] for r in res] == [pytest.approx(run_cut(0.01, 7, 1.0))] * 7
    assert run_cut(0.01, 7, 1.0) != run_cut(0.01, 1, 1.0)
    assert {r.comparator for r in results} == {"variation_scan", "beta_binomial", "moments",
                                               "history_pca"}  # fmt: skip


def test_n_tests_is_not_a_config_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="n_tests"):
        _sub(tmp_path, [{"path": "h", "comparators": ["variation_scan"], "n_tests": 5}])


def test_autodqm_pull_cut_does_not_reach_the_calibrated_tests(tmp_path: Path) -> None:
    reg = build_registry()
    sub = _sub(tmp_path, [{"path": "h", "comparators": ["beta_binomial", "variation_scan"],
                           "opts": ["pull_cut=3"], "pull_cut": 4}])  # fmt: skip
    from engine.config import comparator_params

    assert comparator_params(sub, sub.hists[0], "h", "beta_binomial", reg)["pull_cut"] == 3
    assert "z_cut" not in comparator_params(sub, sub.hists[0], "h", "variation_scan", reg)
    assert "pull_cut" not in comparator_params(sub, sub.hists[0], "h", "variation_scan", reg)
