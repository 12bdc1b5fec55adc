"""Reference policies (fixed, previous good, similar conditions), their config, and run metadata."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.errors import ConfigError, DQMError
from engine.references import Policy, fixed, policy_from_config, previous_good, similar
from engine.runmeta import (
    RunMeta,
    merge_meta,
    meta_from_demo,
    meta_from_dqm_file,
    meta_from_runfiles,
    meta_from_scalars,
)
from engine.sources.base import RunFile

# -- previous_good ------------------------------------------------------------------------------


def test_previous_good_takes_latest_before() -> None:
    choice = previous_good(110, [100, 101, 105, 107, 109, 110, 120], 4)
    assert choice.runs == (101, 105, 107, 109)
    assert choice.reason == "the 4 latest certified runs before 110"
    assert choice.policy == "previous_good"


def test_previous_good_fills_from_later_runs_at_start_of_year() -> None:
    choice = previous_good(101, [100, 101, 105, 107, 109], 3)
    assert choice.runs == (100, 105, 107)
    assert "too few before" in choice.reason
    first = previous_good(100, [100, 105, 107], 2)
    assert first.runs == (105, 107)
    assert first.reason == "the 2 earliest certified runs after 100 (none before)"
    assert previous_good(5, [5], 4).runs == ()
    assert previous_good(5, [5], 4).reason == "no certified run other than 5 to compare with"


def test_previous_good_says_when_fewer_than_count() -> None:
    choice = previous_good(110, [100, 105, 105, 110], 4)
    assert choice.runs == (100, 105)
    assert choice.reason == "the 2 latest certified runs before 110 (only 2 of 4 available)"


def test_previous_good_skips_excluded_runs_and_says_why() -> None:
    choice = previous_good(110, [100, 101, 105, 107, 109, 120], 3, {109: "flagged"})
    assert choice.runs == (101, 105, 107)
    assert choice.reason == "the 3 latest certified runs before 110 (skipping 109: flagged)"
    # an excluded run that would not have been chosen anyway is not mentioned
    assert "skipping" not in previous_good(110, [100, 101, 105, 107, 109], 2, [100]).reason
    plain = previous_good(110, [105, 109], 2, [109])
    assert plain.runs == (105,)
    assert plain.reason.endswith("(only 1 of 2 available) (skipping 109: excluded)")


# -- fixed ----------------------------------------------------------------------------------------


def test_fixed_keeps_order_and_drops_duplicates() -> None:
    choice = fixed([5, 3, 5], run=9)
    assert choice.runs == (5, 3)
    assert choice.reason == "fixed reference runs 5, 3"


def test_fixed_including_the_data_run_leaves_it_out_or_explains() -> None:
    assert fixed([5, 9], run=9).runs == (5,)
    assert "(9 left out: it is the data run)" in fixed([5, 9], run=9).reason
    only = fixed([9], run=9)
    assert only.runs == ()
    assert only.reason == (
        "no usable fixed reference run (configured: 9) (9 left out: it is the data run); "
        "configure others"
    )


def test_fixed_skips_excluded() -> None:
    choice = fixed([5, 3], 9, {5: "flagged"})
    assert choice.runs == (3,)
    assert choice.reason == "fixed reference runs 3 (skipping 5: flagged)"


# -- similar ---------------------------------------------------------------------------------------
def table() -> dict[int, RunMeta]:
    rows = {
        101: (95, 3500, 2_900_000),  # closest
        102: (20, 1000, 600_000),  # 5x smaller
        103: (210, 7000, 6_000_000),  # ~2x larger
        104: (105, 3800, 3_100_000),  # close
        105: (50, 1800, 1_500_000),  # exactly 2x smaller
        110: (100, 3600, 3_000_000),  # the data run
        120: (100, 3600, 3_000_000),  # identical, but later
    }
    meta = {r: RunMeta(r, lumi, dur, ev) for r, (lumi, dur, ev) in rows.items()}
    meta[106] = RunMeta(106)  # nothing known
    return meta


GOOD = [101, 102, 103, 104, 105, 106, 120]


@pytest.mark.parametrize(
    ("count", "runs"),
    [
        (2, (101, 104)),
        (3, (101, 104, 105)),
        (4, (101, 103, 104, 105)),
        (5, (101, 102, 103, 104, 105)),
        (6, (101, 102, 103, 104, 105, 106)),
    ],
)
def test_similar_ranks_by_log_distance_among_earlier_runs(
    count: int, runs: tuple[int, ...]
) -> None:
    choice = similar(110, GOOD, table(), count)
    assert choice.runs == runs
    assert choice.policy == "similar"


def test_similar_reason_names_the_ranges() -> None:
    choice = similar(110, GOOD, table(), 2)
    assert choice.reason == (
        "2 certified runs most similar in luminosity (95\u2013105 pb⁻¹ vs 100 pb⁻¹), "
        "duration (0.972\u20131.06 h vs 1 h) and events (2.9\u20133.1 M vs 3 M), "
        "among the 6 latest certified runs before 110"
    )
    assert "incomplete metadata for 106" in similar(110, GOOD, table(), 6).reason


def test_similar_later_runs_only_when_asked_or_at_start_of_year() -> None:
    assert similar(110, GOOD, table(), 1, earlier_only=False).runs == (120,)
    meta = table()
    meta[100] = RunMeta(100, 100, 3600, 3_000_000)
    start = similar(100, GOOD, meta, 2)
    assert start.runs == (101, 120)  # 120 is identical to 100
    assert "2 after it (too few before)" in start.reason


def test_similar_window_limits_the_candidates() -> None:
    # the 2 latest before 110 are 105 and 106: 101 and 104 are outside the window
    assert similar(110, GOOD, table(), 1, window=2).runs == (105,)


def test_similar_skips_excluded_and_the_data_run() -> None:
    choice = similar(110, [*GOOD, 110, 101], table(), 2, {101: "flagged"})
    assert choice.runs == (104, 105)
    assert choice.reason.endswith("(skipping 101: flagged)")


def test_similar_uses_what_is_known_and_says_so() -> None:
    meta = table()
    meta[110] = RunMeta(110, lumi=100)
    choice = similar(110, GOOD, meta, 2)
    assert choice.runs == (101, 104)
    assert "(duration and events unknown for 110)" in choice.reason
    meta[110] = RunMeta(110)
    fallback = similar(110, GOOD, meta, 2)
    assert fallback.runs == previous_good(110, GOOD, 2).runs
    assert fallback.reason.startswith("no luminosity, duration or event count known for run 110")


def test_similar_file_size_stands_in_for_entries() -> None:
    meta = {
        110: RunMeta(110, n_lumisections=150, file_size=40_000_000),
        101: RunMeta(101, n_lumisections=150, file_size=10_000_000),
        102: RunMeta(102, n_lumisections=150, file_size=38_000_000),
        103: RunMeta(103, n_lumisections=600, file_size=40_000_000),
    }
    choice = similar(110, [101, 102, 103], meta, 1)
    assert choice.runs == (102,)
    assert "duration (58.3 min vs 58.3 min) and file size (38 MB vs 40 MB)" in choice.reason
    assert "file size stands in for events" in choice.reason


# -- policies from config ----------------------------------------------------------------------------
def test_policy_from_config_builds_each_policy() -> None:
    assert policy_from_config(None) == Policy("previous_good", 4)
    assert policy_from_config({}) == Policy("previous_good", 4)
    assert policy_from_config({"policy": "previous_good", "count": 2}).count == 2
    sim = policy_from_config({"policy": "similar", "count": 3, "window": 10, "earlier_only": False})
    assert (sim.name, sim.count, sim.window, sim.earlier_only) == ("similar", 3, 10, False)
    fix = policy_from_config({"policy": "fixed", "runs": [357100, 357101]})
    assert fix.runs == (357100, 357101)
    for p in (sim, fix, Policy()):
        assert policy_from_config(json.loads(json.dumps(p.to_dict()))) == p


def test_policy_choose_dispatches() -> None:
    meta = table()
    assert Policy("fixed", runs=(5, 110)).choose(110, GOOD).runs == (5,)
    assert Policy("previous_good", 2).choose(110, GOOD).runs == (105, 106)
    assert Policy("similar", 2).choose(110, GOOD, meta).runs == (101, 104)
    assert Policy("similar", 2).choose(110, GOOD, meta, {104: "flagged"}).runs == (101, 105)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"policy": "previos_good"},
            (
                "CSC.json: references.policy: unknown policy 'previos_good' (did you mean "
                "'previous_good'?); expected one of previous_good, similar, fixed"
            ),
        ),
        ({"count": 0}, "CSC.json: references.count: expected a positive integer, found 0"),
        ({"count": "4"}, "CSC.json: references.count: expected a positive integer, found '4'"),
        ({"count": True}, "CSC.json: references.count: expected a positive integer, found True"),
        ({"policy": "similar", "window": -3}, "references.window: expected a positive integer"),
        ({"policy": "similar", "earlier_only": "yes"}, "references.earlier_only: expected true"),
        ({"policy": "fixed", "runs": []}, "references.runs: expected a non-empty list"),
        ({"policy": "fixed", "runs": 357100}, "references.runs: expected a non-empty list"),
        (
            {"policy": "fixed", "runs": [357100, "357101"]},
            "references.runs[1]: expected a positive integer run number, found '357101'",
        ),
        ({"policy": "fixed", "runs": [-1]}, "references.runs[0]"),
        (
            {"policy": "similar", "cont": 4},
            "references.cont: not a setting of policy 'similar' (did you mean 'count'?)",
        ),
        ({"policy": "fixed", "runs": [1], "count": 4}, "references.count: not a setting"),
        (["previous_good"], "CSC.json: references: expected an object"),
    ],
)
def test_bad_policy_specs_are_one_line_errors_naming_the_key(spec: Any, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        policy_from_config(spec, "CSC.json: references")
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


# -- run metadata -----------------------------------------------------------------------------------
def test_merge_meta_first_known_value_wins() -> None:
    a = {1: RunMeta(1, lumi=10.0, origin="runs.json")}
    b = {1: RunMeta(1, lumi=99.0, n_lumisections=40, origin="DQM EventInfo"), 2: RunMeta(2)}
    merged = merge_meta(a, b)
    assert merged[1] == RunMeta(1, lumi=10.0, n_lumisections=40, origin="runs.json, DQM EventInfo")
    assert merged[1].duration() == pytest.approx(40 * 23.31)
    assert set(merged) == {1, 2}


def test_meta_from_scalars_ignores_placeholders() -> None:
    m = meta_from_scalars(
        7,
        {
            "iLumiSection": 120,
            "processedEvents": -1,
            "runStartTimeStamp": 1.0e9,
            "eventTimeStamp": 1.0e9 + 2800,
        },
    )
    assert (m.n_lumisections, m.events, m.duration_s) == (120, None, pytest.approx(2800))


def test_meta_from_dqm_file_reads_eventinfo(
    root_file: Callable[..., Path], make_hist: Callable[..., Any]
) -> None:
    info = "DQMData/Run 357130/CSC/Run summary/EventInfo"
    path = root_file(
        {"DQMData/Run 357130/CSC/Run summary/Occ/h": make_hist([1.0, 2.0], 357130)},
        name="DQM_V0001_R000357130__SingleMuon__Run2022C-PromptReco-v1__DQMIO.root",
        strings=[
            (info, "<iRun>i=357130</iRun>"),
            (info, "<iLumiSection>i=412</iLumiSection>"),
            (info, "<processedEvents>i=1234567</processedEvents>"),
        ],
    )
    m = meta_from_dqm_file(path)
    assert (m.run, m.n_lumisections, m.events) == (357130, 412, 1234567)
    assert m.file_size == path.stat().st_size
    rf = RunFile(357130, "Run2022", "SingleMuon", "PromptReco", path.stat().st_size, path)
    assert meta_from_runfiles({357130: rf})[357130].n_lumisections == 412


def test_meta_from_runfiles_falls_back_to_the_listed_size(tmp_path: Path) -> None:
    bad = tmp_path / "x.root"
    bad.write_text("<html>not root</html>")
    rf = RunFile(5, "Run2022", "SingleMuon", "PromptReco", 123, bad)
    remote = RunFile(6, "Run2022", "SingleMuon", "PromptReco", 456, None, "https://x/y.root")
    meta = meta_from_runfiles({5: rf, 6: remote})
    assert meta[5] == RunMeta(5, file_size=123, origin="DQM file size")
    assert meta[6].file_size == 456


def test_meta_from_demo(tmp_path: Path) -> None:
    assert meta_from_demo(tmp_path) == {}
    rows = [{"run": 3, "lumi": 12.5, "duration_s": 600.0, "events": 9000, "n_lumisections": 26}]
    (tmp_path / "runs.json").write_text(json.dumps(rows))
    assert meta_from_demo(tmp_path)[3] == RunMeta(3, 12.5, 600.0, 9000, 26, origin="runs.json")
    (tmp_path / "runs.json").write_text('{"run": 3}')
    with pytest.raises(DQMError, match=r"runs\.json: expected a list of runs"):
        meta_from_demo(tmp_path)
