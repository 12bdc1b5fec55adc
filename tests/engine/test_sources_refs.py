"""Golden JSON, the local directory source and the previous-good reference policy."""

from __future__ import annotations

import json

import pytest

from engine.certification import load_golden, parse_golden
from engine.errors import ConfigError, DQMError
from engine.references import previous_good
from engine.sources import LocalSource


def test_golden_json_parses() -> None:
    assert parse_golden('{"357130": [[1, 10], [12, 40]], "357100": [[1, 5]]}') == {
        357130: [(1, 10), (12, 40)],
        357100: [(1, 5)],
    }


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{"357130": [[1, 10]', "line 1 column"),
        ("[1, 2]", "expected an object"),
        ('{"run1": [[1, 2]]}', "key 'run1': expected a run number"),
        ('{"5": [[3, 2]]}', "run 5[0]: expected [first, last]"),
        ('{"5": [[1, 2, 3]]}', "run 5[0]"),
        ('{"5": "all"}', "run 5: expected a list"),
    ],
)
def test_golden_json_errors_are_one_line(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=r"^golden\.json: ") as exc:
        parse_golden(text, "golden.json")
    assert fragment in str(exc.value)
    assert "\n" not in str(exc.value)


def test_golden_json_missing_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.json: cannot read"):
        load_golden(tmp_path / "nope.json")


def test_previous_good_takes_latest_before() -> None:
    choice = previous_good(110, [100, 101, 105, 107, 109, 110, 120], 4)
    assert choice.runs == (101, 105, 107, 109)
    assert choice.reason == "the 4 latest certified runs before 110"


def test_previous_good_fills_from_later_runs_at_start_of_year() -> None:
    choice = previous_good(101, [100, 101, 105, 107, 109], 3)
    assert choice.runs == (100, 105, 107)
    assert "too few before" in choice.reason
    assert previous_good(5, [5], 4).runs == ()


def test_local_source_prefers_promptreco(tmp_path) -> None:
    base = tmp_path / "OfflineData" / "Run2022" / "SingleMuon" / "0003571xx"
    base.mkdir(parents=True)
    for proc in ("Run2022C-PromptReco-v1", "Run2022C-10Dec2022-v1"):
        (base / f"DQM_V0001_R000357130__SingleMuon__{proc}__DQMIO.root").write_bytes(b"x")
    (base / "DQM_V0001_R000357131__SingleMuon__Run2022C-10Dec2022-v1__DQMIO.root").write_bytes(b"y")
    (base / "notes.txt").write_text("not a DQM file")
    runs = LocalSource(tmp_path).runs("Run2022", "SingleMuon")
    assert sorted(runs) == [357130, 357131]
    assert runs[357130].processing == "Run2022C-PromptReco-v1"
    assert runs[357131].processing == "Run2022C-10Dec2022-v1"
    assert len(LocalSource(tmp_path).files("Run2022", "SingleMuon")) == 3
    with pytest.raises(DQMError, match="no dataset Run2022/ZeroBias"):
        LocalSource(tmp_path).runs("Run2022", "ZeroBias")
    json.dumps([r.run for r in runs.values()])
