"""`autodqm refs RUN --subsystem X`: the chosen references and why, on generated demo data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.cli import main
from engine.demo import DemoOptions, generate, load_runs
from engine.settings import ROOT

# seed 1, 6 runs: 357102 357106 357111 357117 357118 certified; 357119 (low statistics) not
RUNS = [357102, 357106, 357111, 357117, 357118, 357119]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    generate(out, DemoOptions(runs=6, seed=1))
    assert [r.run for r in load_runs(out)] == RUNS
    return out


def refs(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    code = main(["refs", *argv, "--format", "json"])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else {}, err


def config_dir(tmp_path: Path, **extra: Any) -> Path:
    """A config dir holding CSC.json with extra keys (``dataset``, ``references``)."""
    cfg = json.loads((ROOT / "config" / "subsystems" / "CSC.json").read_text())
    cfg.update(extra)
    d = tmp_path / "configs"
    d.mkdir(exist_ok=True)
    (d / "CSC.json").write_text(json.dumps(cfg))
    return d


def test_default_policy_is_previous_good(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = refs(capsys, "357119", "-s", "CSC", "--data-dir", str(demo))
    assert code == 0, err
    assert out["run"] == 357119
    assert out["subsystem"] == "CSC"
    assert out["policy"] == "previous_good"
    assert out["references"] == [357106, 357111, 357117, 357118]
    assert out["reason"] == "the 4 latest certified runs before 357119"
    assert out["dataset"] == "Run2022/SingleMuon"
    assert out["certification"].startswith(f"golden JSON {demo / 'golden.json'}")


def test_similar_from_flags_uses_demo_metadata(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = refs(
        capsys,
        "357118",
        "-s",
        "CSC",
        "--data-dir",
        str(demo),
        "--policy",
        "similar",
        "--count",
        "2",
    )
    assert code == 0
    # 357118: 141 pb⁻¹, 3.9 h, 4.2 M events; 357106 (89 pb⁻¹, 3.9 h, 2.7 M) is closest, then
    # 357102 (51 pb⁻¹, 1.2 h, 1.5 M: rms log distance 1.07) beats 357111 (53 pb⁻¹, 0.9 h: 1.17)
    assert out["references"] == [357102, 357106]
    assert out["reason"].startswith(
        "2 certified runs most similar in luminosity (51.3\u201388.6 pb⁻¹ vs 141 pb⁻¹)"
    )
    assert out["policy_spec"] == {
        "policy": "similar",
        "count": 2,
        "window": 50,
        "earlier_only": True,
    }


def test_config_references_key_sets_the_default_and_flags_override(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfgs = config_dir(tmp_path, references={"policy": "fixed", "runs": [357102, 357111]})
    base = ["357118", "-s", "CSC", "--config-dir", str(cfgs), "--data-dir", str(demo)]
    code, out, _ = refs(capsys, *base)
    assert (code, out["policy"], out["references"]) == (0, "fixed", [357102, 357111])
    code, out, _ = refs(capsys, *base, "--policy", "previous_good", "--count", "1")
    assert (code, out["policy"], out["references"]) == (0, "previous_good", [357117])
    code, out, _ = refs(capsys, *base, "--exclude", "357102")
    assert out["references"] == [357111]
    assert out["reason"] == "fixed reference runs 357111 (skipping 357102: excluded)"


def test_fixed_runs_including_the_data_run(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["357118", "-s", "CSC", "--data-dir", str(demo)]
    code, out, _ = refs(capsys, *base, "--runs", "357118,357102")
    assert code == 0
    assert out["references"] == [357102]
    assert "(357118 left out: it is the data run)" in out["reason"]
    code, out, err = refs(capsys, *base, "--runs", "357118")
    assert code == 2
    assert out["references"] == []
    assert err.startswith("autodqm refs: error: run 357118: no reference runs: no usable fixed")
    assert err.count("\n") == 1


def test_golden_flag_limits_the_candidates(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    golden = tmp_path / "g.json"
    golden.write_text(json.dumps({"357102": [[1, 10]], "357111": [[1, 5]], "999999": [[1, 2]]}))
    code, out, _ = refs(
        capsys, "357118", "-s", "CSC", "--data-dir", str(demo), "--golden", str(golden)
    )
    assert code == 0
    assert out["references"] == [357102, 357111]  # 999999 has no file
    assert out["reason"].endswith("(only 2 of 4 available)")


def test_without_golden_every_run_of_the_source_counts(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    online = tmp_path / "online"
    online.mkdir()
    (online / "OfflineData").symlink_to(demo / "OfflineData")
    base = ["357119", "-s", "CSC", "--data-dir", str(online), "--count", "2"]
    code, out, err = refs(capsys, *base)
    assert code == 2
    assert "no dataset for CSC: give --series and --sample" in err
    code, out, _ = refs(capsys, *base, "--series", "Run2022", "--sample", "SingleMuon")
    assert code == 0
    assert out["references"] == [357117, 357118]
    assert out["certification"].startswith("every run of Run2022/SingleMuon")
    # the config's dataset key gives the dataset too
    cfgs = config_dir(tmp_path, dataset="Run2022/SingleMuon")
    code, out, _ = refs(capsys, *base, "--config-dir", str(cfgs), "--policy", "similar")
    assert code == 0
    assert out["policy"] == "similar"  # metadata from the files' EventInfo and sizes
    assert len(out["references"]) == 2


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (
            {"references": {"policy": "similer"}},
            "references.policy: unknown policy 'similer' (did you mean 'similar'?)",
        ),
        ({"references": {"count": 0}}, "references.count: expected a positive integer, found 0"),
        ({"dataset": "SingleMuon"}, "dataset: expected '<series>/<sample>', found 'SingleMuon'"),
    ],
)
def test_bad_config_is_a_one_line_error(
    demo: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: dict[str, Any],
    fragment: str,
) -> None:
    cfgs = config_dir(tmp_path, **extra)
    code, _, err = refs(
        capsys, "357118", "-s", "CSC", "--config-dir", str(cfgs), "--data-dir", str(demo)
    )
    assert code == 2
    assert fragment in err
    assert err.count("\n") == 1


def test_table_output_says_why(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["refs", "357111", "-s", "CSC", "--data-dir", str(demo), "--count", "3"])
    out = capsys.readouterr().out
    assert code == 0
    assert (
        out.splitlines()[0]
        == "CSC run 357111 (Run2022/SingleMuon): references 357102, 357106, 357117"
    )
    assert (
        "  why: the 2 latest certified runs before 357111 and the 1 earliest after it (too few before)"
        in out
    )


def test_bad_run_number_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["refs", "abc", "-s", "CSC", "--data-dir", "."]) == 2
    assert "a run number" in capsys.readouterr().err
