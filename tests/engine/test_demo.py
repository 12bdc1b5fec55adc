"""Tests of the demo-data generator (engine/demo) and the ``autodqm demo-data`` command."""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main
from engine.demo import (
    DemoError,
    DemoOptions,
    Failure,
    build_run,
    dqm_path,
    expected,
    generate,
    load_runs,
    load_truth,
    names,
    noisy_factor,
    plan,
    sample,
    subsystem,
)
from engine.demo.live import service_dir
from engine.io import open_dqm
from engine.types import HistKind

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "config" / "subsystems"
FILE_RE = re.compile(
    r"OfflineData/Run2022/SingleMuon/000(\d{4})xx/"
    r"DQM_V0001_R000(\d{6})__SingleMuon__Run2022C-PromptReco-v1__DQMIO\.root"
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    opts = DemoOptions(runs=5, seed=7, subsystems=("CSC", "EMTF"), failure_fraction=1.0)
    generate(out, opts, jobs=1)
    return out


def _config_matches(config: dict, rel: str) -> bool:
    head, _, last = rel.rpartition("/")
    return any(
        h["path"].rpartition("/")[0] == head
        and fnmatch.fnmatchcase(last, h["path"].rpartition("/")[2])
        for h in config["hists"]
    )


def test_layout_file_names_and_run_list(demo: Path) -> None:
    runs = load_runs(demo)
    assert len(runs) == 5
    assert [r.run for r in runs] == sorted({r.run for r in runs})
    assert runs[0].run >= 357100
    for r in runs:
        m = FILE_RE.fullmatch(r.path)
        assert m is not None, r.path
        assert m.group(1) == str(r.run)[:4]
        assert int(m.group(2)) == r.run
        assert (demo / r.path).is_file()
        assert r.n_lumisections >= 1
        assert r.events > 0
    files = sorted(p.relative_to(demo).as_posix() for p in demo.rglob("*.root"))
    assert files == sorted(r.path for r in runs)
    assert any(r.low_stats for r in runs)
    lumis = [r.lumi for r in runs if not r.low_stats]
    assert min(r.lumi for r in runs if r.low_stats) < min(lumis) / 5


def test_golden_json_lists_certified_runs(demo: Path) -> None:
    golden = json.loads((demo / "golden.json").read_text())
    runs = {r.run: r for r in load_runs(demo)}
    assert {int(k) for k in golden} == {r for r, info in runs.items() if info.certified}
    for key, ranges in golden.items():
        assert ranges == [[1, runs[int(key)].n_lumisections]]
    # runs with injected failures are certified too: that is what autodqm is for
    assert all(runs[f.run].certified for f in load_truth(demo))


def test_truth_refers_to_histograms_in_files_and_configs(demo: Path) -> None:
    truth = load_truth(demo)
    runs = {r.run: r for r in load_runs(demo)}
    assert truth, "failure_fraction=1 must inject failures"
    assert {f.run for f in truth} == {r for r, i in runs.items() if not i.healthy}
    for f in truth:
        sub = subsystem(f.subsystem)
        h = open_dqm(demo / runs[f.run].path).read(
            sub.full_path(f.run, f.histogram), path=f.histogram
        )
        assert h.values.shape == next(s.bins for s in sub.hists if s.path == f.histogram)
        if f.kind == "empty":
            assert h.total == 0
        config = json.loads((CONFIGS / f"{f.subsystem}.json").read_text())
        assert _config_matches(config, f.histogram)


def test_files_hold_run_scalars_labels_and_profiles(demo: Path) -> None:
    info = load_runs(demo)[0]
    f = open_dqm(demo / info.path)
    csc = subsystem("CSC")
    occ = f.read(csc.full_path(info.run, "Occupancy/hORecHits"), path="Occupancy/hORecHits")
    assert occ.kind == HistKind.TH2
    assert occ.values.shape == (36, 20)
    assert occ.labels[1] is not None
    assert occ.labels[1][0] == "ME -4/2"
    assert occ.values[20:, [5, 3, 1]].sum() == 0  # ME-2/1, -3/1, -4/1 have 18 chambers
    eff = f.read(csc.full_path(info.run, "Efficiency/hSSTE2"), path="Efficiency/hSSTE2")
    assert eff.kind == HistKind.PROFILE2D
    assert eff.bin_entries is not None
    assert eff.bin_entries.sum() > 0
    busy = eff.bin_entries > 100
    assert np.all((eff.values[busy] > 0.7) & (eff.values[busy] <= 1.0))
    assert len(f.list_histograms(csc.main_gdir.format(info.run))) == len(csc.hists)


def test_noisy_channels_are_the_same_bins_in_every_run_and_vary_between_runs() -> None:
    spec = next(h for h in subsystem("CSC").hists if len(h.bins) == 2 and not h.is_profile)
    factors = [noisy_factor(spec, 3, 0.05, np.random.default_rng(run)) for run in (1, 2, 3)]
    chosen = [set(np.flatnonzero(f != 1.0)) for f in factors]
    assert chosen[0] == chosen[1] == chosen[2]
    assert len(chosen[0]) == round(0.05 * factors[0].size)
    idx = sorted(chosen[0])
    assert not np.allclose(factors[0].flat[idx], factors[1].flat[idx])
    assert noisy_factor(spec, 4, 0.05, np.random.default_rng(1)).flat[idx].tolist() != (
        factors[0].flat[idx].tolist())  # another seed, other channels  # fmt: skip
    one_d = next(h for h in subsystem("CSC").hists if len(h.bins) == 1)
    assert np.all(noisy_factor(one_d, 3, 0.05, np.random.default_rng(1)) == 1.0)
    # off by default: the plan and the data of a default demo do not change
    assert DemoOptions().noisy_channels == 0.0


def test_same_seed_same_histograms_other_seed_differs() -> None:
    opts = DemoOptions(runs=3, seed=11, subsystems=("EMTF",))
    p1, p2 = plan(opts), plan(opts)
    assert p1 == p2
    a, b = build_run(p1, p1.runs[1]), build_run(p2, p2.runs[1])
    assert a.keys() == b.keys()
    assert all(np.array_equal(a[k].values, b[k].values) for k in a)
    p3 = plan(DemoOptions(runs=3, seed=12, subsystems=("EMTF",)))
    c = build_run(p3, p3.runs[1])
    assert [h.path for h in a.values()] == [h.path for h in c.values()]
    assert any(
        not np.array_equal(x.values, y.values) for x, y in zip(a.values(), c.values(), strict=True)
    )


def test_files_are_reproducible(tmp_path: Path) -> None:
    opts = DemoOptions(runs=2, seed=5, subsystems=("EMTF",))
    generate(tmp_path / "a", opts, jobs=1)
    generate(tmp_path / "b", opts, jobs=1)
    for info in load_runs(tmp_path / "a"):
        fa, fb = open_dqm(tmp_path / "a" / info.path), open_dqm(tmp_path / "b" / info.path)
        for spec in subsystem("EMTF").hists:
            key = subsystem("EMTF").full_path(info.run, spec.path)
            assert np.array_equal(fa.read(key).values, fb.read(key).values)
    assert (tmp_path / "a" / "truth.json").read_text() == (
        tmp_path / "b" / "truth.json"
    ).read_text()


def test_entries_scale_with_luminosity() -> None:
    spec = next(s for s in subsystem("CSC").hists if s.path == "Occupancy/hORecHits")
    low = sample(spec, 1, 2.0, np.random.default_rng(1))
    high = sample(spec, 1, 200.0, np.random.default_rng(1))
    assert high.total / low.total == pytest.approx(100.0, rel=0.05)
    assert high.total == pytest.approx(spec.rate * 200.0, rel=0.05)


def test_healthy_runs_differ_beyond_poisson_but_keep_the_shape() -> None:
    spec = next(s for s in subsystem("CSC").hists if s.path == "Digis/hWireTBin_p11a")
    runs = np.array([sample(spec, r, 5e4, np.random.default_rng(r)).values for r in range(6)])
    frac = runs / runs.sum(axis=1, keepdims=True)
    busy = frac.mean(axis=0) > 0.02
    spread = frac[:, busy].std(axis=0) / frac[:, busy].mean(axis=0)
    poisson = 1.0 / np.sqrt(runs[:, busy].mean(axis=0))
    assert np.all(spread > 2 * poisson)  # systematic wobble, not just counting noise
    assert np.all(spread < 0.05)


def test_empty_failure_gives_an_empty_histogram() -> None:
    spec = next(s for s in subsystem("CSC").hists if s.path == "Segments/hSnSegments")
    fail = Failure(1, "CSC", spec.path, "empty", "strong", 1.0)
    h = sample(spec, 1, 100.0, np.random.default_rng(0), [fail])
    assert h.total == 0
    assert h.entries == 0


def test_dead_region_is_zero_in_expected_values() -> None:
    spec = next(s for s in subsystem("CSC").hists if s.path == "Occupancy/hOStrips")
    fail = Failure(1, "CSC", spec.path, "dead_region", "medium", 0.01, (3, 7, 12, 13))
    exp = expected(spec, [fail])
    assert np.all(exp[3:7, 12] == 0)
    assert np.all(expected(spec, [])[3:7, 12] > 0)
    assert exp.sum() > 0.9
    h = sample(spec, 1, 100.0, np.random.default_rng(0), [fail])
    assert h.values[3:7, 12].sum() == 0
    assert h.total > 0


def test_timing_shift_moves_the_peak() -> None:
    spec = next(s for s in subsystem("CSC").hists if s.path == "Segments/hSTimeCombined")
    centres = 0.5 * (spec.edges[0][1:] + spec.edges[0][:-1])
    fail = Failure(1, "CSC", spec.path, "timing_shift", "strong", 3.0)
    mean0 = centres @ expected(spec, [])
    mean1 = centres @ expected(spec, [fail])
    bin_width = centres[1] - centres[0]
    assert mean1 - mean0 == pytest.approx(3.0 * bin_width, rel=0.1)


def test_planned_failures_cover_every_kind_and_avoid_low_statistics_runs() -> None:
    p = plan(DemoOptions(runs=40, seed=3, failure_fraction=0.8))
    kinds = {f.kind for f in p.failures}
    assert kinds == {"dead_region", "inefficiency", "hot_channel", "timing_shift",
                     "width_change", "empty"}  # fmt: skip
    low = {r.run for r in p.runs if r.low_stats}
    assert not low & {f.run for f in p.failures}
    assert all(f.strength > 0 for f in p.failures)
    for f in p.failures:
        spec = next(s for s in subsystem(f.subsystem).hists if s.path == f.histogram)
        assert f.kind in spec.kinds


def test_catalogue_has_several_hundred_mixed_histograms() -> None:
    specs = [s for n in names() for s in subsystem(n).hists]
    assert 400 <= len(specs) <= 800
    kinds = {s.kind for s in specs}
    assert kinds == {HistKind.TH1, HistKind.TH2, HistKind.PROFILE, HistKind.PROFILE2D}
    assert sum(1 for s in specs if any(lab is not None for lab in s.labels)) > 100
    for n in names():
        paths = [s.path for s in subsystem(n).hists]
        assert len(paths) == len(set(paths))


@pytest.mark.parametrize("name", ["CSC", "DT", "RPC", "EMTF"])
def test_shipped_configs_match_generated_histograms(name: str) -> None:
    config = json.loads((CONFIGS / f"{name}.json").read_text())
    sub = subsystem(name)
    assert config["main_gdir"] == sub.main_gdir
    paths = [s.path for s in sub.hists]
    for entry in config["hists"]:
        head, _, pattern = entry["path"].rpartition("/")
        hits = [p for p in paths if p.rpartition("/")[0] == head
                and fnmatch.fnmatchcase(p.rpartition("/")[2], pattern)]  # fmt: skip
        assert hits, f"{name}.json: {entry['path']!r} matches no generated histogram"
    uncovered = [p for p in paths if not _config_matches(config, p)]
    assert not uncovered


def test_cli_writes_summary_and_refuses_foreign_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    argv = ["demo-data", str(out), "--runs", "3", "--seed", "2", "--subsystems", "emtf"]
    assert main([*argv, "--jobs", "1"]) == 0
    line = capsys.readouterr().out.strip()
    assert re.fullmatch(r".*: 3 runs, 174 histograms, \d+ injected failures in [\d.]+ s", line)
    assert len(load_runs(out)) == 3
    assert (out / dqm_path(load_runs(out)[0].run)).is_file()
    assert main([*argv, "--runs", "2", "--jobs", "1"]) == 2  # a data set is never replaced...
    err = capsys.readouterr().err
    assert f"{str(out)!r} already holds a demo data set of 3 runs (" in err
    assert "seed 2, subsystems EMTF; it is kept. Pass --force to replace it" in err
    assert len(list(out.rglob("*.root"))) == 3
    service = service_dir(out).directory
    service.mkdir()
    assert main([*argv, "--runs", "2", "--jobs", "1", "--force"]) == 0  # ...unless asked to
    err = capsys.readouterr().err
    assert f"{out}: replacing a demo data set of 3 runs" in err
    assert f"`autodqm demo` will start a new results store in {service}" in err
    assert len(list(out.rglob("*.root"))) == 2
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert main(["demo-data", str(foreign), "--runs", "1"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["demo-data", str(foreign), "--runs", "1", "--force", "--jobs", "1"]) == 0
    assert (foreign / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--runs", "0"], "--runs must be a positive number"),
        (["--runs", "-3"], "--runs must be a positive number"),
        (["--subsystems", "CSX"], "did you mean 'CSC'"),
        (["--noisy-channels", "0.9"], "noisy-channel fraction must be in [0, 0.5]"),
    ],
)
def test_cli_bad_input_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["demo-data", str(tmp_path / "x"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_readers_report_missing_files(tmp_path: Path) -> None:
    with pytest.raises(DemoError, match=r"truth\.json"):
        load_truth(tmp_path)
    with pytest.raises(DemoError, match=r"runs\.json"):
        load_runs(tmp_path)
