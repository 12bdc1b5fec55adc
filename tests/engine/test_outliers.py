"""Tests of engine.outliers: one verdict per histogram, ranked across subsystems."""

from __future__ import annotations

import pytest

from engine.outliers import across, by_histogram, combine
from engine.types import ComparisonResult, Status


def _r(path: str, comp: str, status: Status, score: float, reason: str = "") -> ComparisonResult:
    return ComparisonResult(comp, path, status, score, 1.0, reason=reason or f"{comp} says")


def test_flagged_histogram_takes_its_most_severe_flag() -> None:
    v = combine("CSC", [
        _r("a", "beta_binomial", Status.FLAGGED, 1.4),
        _r("a", "variation_scan", Status.FLAGGED, 3.2, "bins x 3-5 are 20% low"),
        _r("a", "ks_test", Status.OK, 0.5),
        _r("a", "moments", Status.SKIPPED, 0.0),
    ])  # fmt: skip
    assert v.status is Status.FLAGGED
    assert v.severity == 3.2
    assert v.lead == "variation_scan"
    assert v.flagged_by == ("variation_scan", "beta_binomial")
    assert v.judged_by == ("beta_binomial", "variation_scan", "ks_test")
    assert v.summary == (
        "Flagged by 2 of 4 deciding tests (variation_scan and beta_binomial); most severe: "
        "variation_scan at 3.2\u00d7 its cut: bins x 3-5 are 20% low"
    )
    d = v.to_dict()
    assert d["histogram"] == "a"
    assert d["summary"] == v.summary


def test_a_high_ok_score_does_not_lead_a_flagged_histogram() -> None:
    v = combine("X", [_r("a", "t1", Status.OK, 0.99), _r("a", "t2", Status.FLAGGED, 1.01)])
    assert (v.lead, v.severity) == ("t2", 1.01)


@pytest.mark.parametrize(
    ("statuses", "expected", "start"),
    [
        (
            (Status.OK, Status.SKIPPED),
            Status.OK,
            "Within normal variation for 1 of 2 deciding tests",
        ),
        (
            (Status.SKIPPED, Status.SKIPPED),
            Status.SKIPPED,
            "Not judged by any of its 2 deciding tests",
        ),
        ((Status.OK, Status.ERROR), Status.ERROR, "t1 failed on this histogram"),
    ],
)
def test_status_precedence_and_words(statuses, expected, start) -> None:
    v = combine("X", [_r("a", f"t{i}", s, 0.3) for i, s in enumerate(statuses)])
    assert v.status is expected
    assert v.summary.startswith(start)
    assert v.severity == (0.0 if expected is Status.SKIPPED else 0.3)


def test_ranked_across_subsystems() -> None:
    reports = {
        "CSC": [_r("a", "t", Status.FLAGGED, 2.0), _r("b", "t", Status.OK, 0.9)],
        "DT": [_r("c", "t", Status.FLAGGED, 5.0), _r("c", "u", Status.OK, 0.1),
               _r("d", "t", Status.FLAGGED, 2.0), _r("d", "u", Status.FLAGGED, 1.5)],
    }  # fmt: skip
    ranked = across(reports)
    assert [(v.subsystem, v.path) for v in ranked] == [("DT", "c"), ("DT", "d"), ("CSC", "a")]
    everything = across(reports, only_flagged=False)
    assert [v.path for v in everything][-1] == "b"
    assert [v.path for v in by_histogram("CSC", reports["CSC"])] == ["a", "b"]


def test_nothing_to_combine_is_an_error() -> None:
    with pytest.raises(ValueError, match="no results"):
        combine("X", [])


def test_tests_that_do_not_decide_show_their_cut_but_do_not_flag() -> None:
    from dataclasses import replace

    from engine.store_records import Provenance, SubsystemRecord

    autodqm = replace(_r("a", "beta_binomial", Status.FLAGGED, 3.0), decides=False)
    calibrated = _r("a", "history_pca", Status.OK, 0.4)
    v = combine("X", [autodqm, calibrated])
    assert v.status is Status.OK
    assert v.lead == "history_pca"
    assert v.over_cut == ("beta_binomial",)
    assert v.summary.startswith(
        "Within normal variation for 1 of 1 deciding test (over its own uncalibrated cut, "
        "not deciding: beta_binomial)"
    )
    assert autodqm.verdict_status is Status.OK
    assert autodqm.to_dict()["decides"] is False
    assert ComparisonResult.from_dict(autodqm.to_dict()).decides is False
    prov = Provenance("d", "c.json", (1,), "why", "2026-01-01T00:00:00Z", "v")
    rec = SubsystemRecord(2, "X", "D/S", (1,), "why", prov, (autodqm, calibrated))
    summary = rec.summary()
    assert summary["n_flagged"] == 0
    assert summary["worst"] == "ok"
    both = combine("X", [autodqm, replace(calibrated, status=Status.FLAGGED, score=2.0)])
    assert both.status is Status.FLAGGED
    assert both.flagged_by == ("history_pca",)
