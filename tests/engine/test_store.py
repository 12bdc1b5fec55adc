"""Results store on diskcache: round trips, indexes, staleness, jobs, alerts, concurrency, disk full."""

from __future__ import annotations

import math
import multiprocessing
import sqlite3
import zlib
from pathlib import Path

import diskcache
import numpy as np
import pytest

from engine.provenance import Provenance, code_version, make_provenance
from engine.store import (
    Alert,
    JobState,
    Silence,
    Store,
    StoreError,
    SubsystemRecord,
    open_store,
)
from engine.times import utc_iso
from engine.types import ComparisonResult, Status

SUBS = ("CSC", "DT", "RPC")


def result(path: str, comp: str, status: Status, score: float, n: int = 10) -> ComparisonResult:
    rng = np.random.default_rng(zlib.crc32(f"{path}/{comp}/{score}".encode()))
    return ComparisonResult(
        comparator=comp,
        path=path,
        status=status,
        score=score,
        threshold=1.0,
        reason="" if status == Status.OK else f"{path} is {status}",
        scores={"chi2": score, "max_pull": 2 * score},
        entries=1000.0,
        arrays={"pulls": rng.normal(size=n), "ref": rng.uniform(size=(3, 4))},
    )


def record(run: int, sub: str = "CSC", digest: str = "d1", flagged: int = 1) -> SubsystemRecord:
    results = [
        result(f"h{i}", "beta_binomial", Status.FLAGGED if i < flagged else Status.OK, i + 0.5)
        for i in range(4)
    ]
    results.append(
        ComparisonResult("ks_test", "h0", Status.SKIPPED, 0.0, None, reason="412 entries")
    )
    prov = Provenance(digest, f"config/{sub}.json", "0.1.0", "2024-05-01T12:00:00Z", (1, 2), "why")
    return SubsystemRecord(
        run=run,
        subsystem=sub,
        dataset="Run2022/SingleMuon",
        reference_runs=(run - 2, run - 1),
        reference_reason="the 2 latest certified runs before",
        provenance=prov,
        results=tuple(results),
        missing=("Segments/hGone",),
        notes=("a note",),
    )


@pytest.fixture
def store(tmp_path: Path):
    s = open_store(tmp_path / "cache")
    yield s
    s.close()


def test_record_round_trip_and_arrays(store: Store) -> None:
    rec = record(100)
    store.put_report(rec)
    got = store.get_report(100, "CSC")
    assert got is not None
    assert got.provenance == rec.provenance
    assert got.missing == rec.missing
    assert got.notes == rec.notes
    assert got.reference_runs == (98, 99)
    assert got.reference_reason == rec.reference_reason
    assert all(not r.arrays for r in got.results)  # the report has no arrays
    assert [r.to_dict() for r in got.results] == [r.to_dict() for r in rec.results]
    for r in rec.results:
        arrays = store.get_arrays(100, "CSC", r.path).get(r.comparator, {})
        assert set(arrays) == set(r.arrays)
        for name, values in r.arrays.items():
            np.testing.assert_array_equal(np.asarray(arrays[name]), values)
    assert store.get_arrays(100, "CSC", "nope") == {}
    assert store.get_report(100, "DT") is None
    assert store.get_report(7, "CSC") is None


def test_summaries_counts_and_runs_index(store: Store) -> None:
    for run in (105, 101, 103):
        for sub in SUBS:
            store.put_report(record(run, sub, flagged=0 if sub == "DT" else 2))
    summary = store.run_summary(103)
    assert summary is not None
    assert set(summary) == set(SUBS)
    assert summary["CSC"]["counts"] == {"ok": 2, "flagged": 2, "skipped": 1, "error": 0}
    assert summary["CSC"]["worst"] == "flagged"
    assert summary["CSC"]["n_flagged"] == 2
    assert summary["DT"]["worst"] == "skipped"
    assert summary["DT"]["n_flagged"] == 0
    assert summary["CSC"]["stale"] is False
    assert summary["CSC"]["created"] == "2024-05-01T12:00:00Z"
    assert store.run_summary(104) is None
    assert store.runs() == [105, 103, 101]
    assert store.runs(limit=2) == [105, 103]
    assert store.runs(before=105) == [103, 101]
    assert store.runs(limit=1, before=103) == [101]
    assert [r for r, _ in store.overview(limit=2)] == [105, 103]
    assert store.subsystems() == sorted(SUBS)
    store.put_report(record(103, "CSC"))  # rewriting does not duplicate the run
    assert store.runs() == [105, 103, 101]


def test_history_across_runs(store: Store) -> None:
    for run in (10, 12, 11, 13):
        rec = record(run)
        results = tuple(
            result("h0", "beta_binomial", Status.FLAGGED if run == 12 else Status.OK, run / 10)
            if r.path == "h0" and r.comparator == "beta_binomial"
            else r
            for r in rec.results
        )
        store.put_report(SubsystemRecord(**{**_fields(rec), "results": results}))
    trend = store.history("CSC", "h0", "beta_binomial")
    assert [t[0] for t in trend] == [10, 11, 12, 13]
    assert trend[2][1] is Status.FLAGGED
    assert trend[2][2] == pytest.approx(1.2)
    assert trend[2][3] == {"chi2": pytest.approx(1.2), "max_pull": pytest.approx(2.4)}
    assert [t[0] for t in store.history("CSC", "h0", "beta_binomial", last=2)] == [12, 13]
    assert [t[0] for t in store.history("CSC", "h0", "beta_binomial", before=11)] == [10, 11]
    assert store.history("CSC", "h0", "ks_test")[0][1] is Status.SKIPPED
    assert store.history("DT", "h0", "beta_binomial") == []


def _fields(rec: SubsystemRecord) -> dict:
    return {f: getattr(rec, f) for f in SubsystemRecord.__dataclass_fields__}


def test_rewrite_with_fewer_results_drops_old_arrays_and_trend_points(store: Store) -> None:
    store.put_report(record(20))
    store.put_report(record(21))
    rec = record(21)
    store.put_report(SubsystemRecord(**{**_fields(rec), "results": rec.results[:1]}))
    assert store.get_arrays(21, "CSC", "h3") == {}
    assert [t[0] for t in store.history("CSC", "h3", "beta_binomial")] == [20]
    assert [t[0] for t in store.history("CSC", "h0", "beta_binomial")] == [20, 21]


def test_delete_report(store: Store) -> None:
    store.put_report(record(30, "CSC"))
    store.put_report(record(30, "DT"))
    store.put_report(record(31, "CSC"))
    assert store.delete_report(30, "CSC") is True
    assert store.get_report(30, "CSC") is None
    assert store.get_arrays(30, "CSC", "h0") == {}
    assert set(store.run_summary(30) or {}) == {"DT"}
    assert store.delete_report(30, "DT") is True
    assert store.runs() == [31]
    assert store.run_summary(30) is None
    assert [t[0] for t in store.history("CSC", "h0", "beta_binomial")] == [31]
    assert store.delete_report(30, "DT") is False


def test_mark_stale_marks_exactly_the_other_digests_of_that_subsystem(store: Store) -> None:
    store.put_report(record(40, "CSC", digest="old"))
    store.put_report(record(41, "CSC", digest="new"))
    store.put_report(record(42, "CSC", digest="old"))
    store.put_report(record(40, "DT", digest="old"))
    assert store.mark_stale("CSC", "new") == [40, 42]
    assert store.stale("CSC") == [40, 42]
    assert store.stale("DT") == []
    assert store.is_stale(40, "CSC")
    assert store.is_stale(42, "CSC")
    assert not store.is_stale(41, "CSC")
    assert not store.is_stale(40, "DT")
    assert store.run_summary(40)["CSC"]["stale"] is True  # type: ignore[index]
    assert store.run_summary(40)["DT"]["stale"] is False  # type: ignore[index]
    assert store.run_summary(41)["CSC"]["stale"] is False  # type: ignore[index]
    store.put_report(record(40, "CSC", digest="new"))  # recomputed: no longer stale
    assert store.stale("CSC") == [42]
    assert not store.is_stale(40, "CSC")
    assert store.mark_stale("CSC", "old") == [40, 41]  # config reverted
    assert not store.is_stale(42, "CSC")


def test_job_states_and_index(store: Store) -> None:
    assert store.get_job(50, "CSC") is None
    store.put_job(JobState(50, "CSC", "Run2022/SingleMuon", "queued", updated=utc_iso()))
    store.put_job(JobState(50, "DT", "Run2022/SingleMuon", "fetching"))
    store.put_job(
        JobState(49, "CSC", "Run2022/SingleMuon", "failed", 2, "2024-01-01T00:00:00Z", "boom")
    )
    store.put_job(JobState(50, "CSC", "Run2022/SingleMuon", "done", 1))
    job = store.get_job(50, "CSC")
    assert job is not None
    assert job.state == "done"
    assert job.attempts == 1
    assert [j.key for j in store.jobs()] == ["49/CSC", "50/CSC", "50/DT"]
    assert [j.key for j in store.jobs(("queued", "fetching", "comparing"))] == ["50/DT"]
    assert store.jobs(["failed"])[0].error == "boom"
    with pytest.raises(ValueError, match="state 'running' is not one of"):
        JobState(1, "CSC", "x/y", "running")


def test_cert_state(store: Store) -> None:
    assert store.get_cert_state("golden") is None
    store.put_cert_state("golden", {"seen": {"1": [[1, 2]]}, "watermark": 0})
    assert store.get_cert_state("golden") == {"seen": {"1": [[1, 2]]}, "watermark": 0}


def alert(run: int, sub: str = "CSC") -> Alert:
    top = ({"histogram": "h0", "comparator": "beta_binomial", "score": 9.5, "reason": "x"},)
    return Alert(f"{run}-{sub}", run, sub, "Run2022/SingleMuon", "2024-05-01T12:00:00Z", 1, top,
                 f"http://d/run/{run}/{sub}", {"webhook:0": "pending"})  # fmt: skip


def test_alerts_ack_and_deliveries(store: Store) -> None:
    for run in (60, 61, 62):
        store.put_alert(alert(run))
    store.put_alert(alert(61, "DT"))
    store.put_alert(alert(60))  # same id again: not duplicated
    assert [a.id for a in store.alerts()] == ["61-DT", "62-CSC", "61-CSC", "60-CSC"]
    assert store.get_alert("61-CSC") == alert(61)
    acked = store.ack_alert("61-CSC", "alice", "2024-05-01T13:00:00Z")
    assert acked is not None
    assert acked.acked_by == "alice"
    assert [a.id for a in store.alerts(unacked_only=True)] == ["61-DT", "62-CSC", "60-CSC"]
    assert [a.id for a in store.alerts(limit=1)] == ["61-DT"]
    assert [a.id for a in store.alerts(run=61)] == ["61-DT", "61-CSC"]
    assert store.ack_alert("nope", "bob") is None
    changed = store.set_alert_delivery("61-CSC", "webhook:0", "sent 2024-05-01T13:01:00Z")
    assert changed is not None
    assert changed.acked_by == "alice"
    assert store.get_alert("61-CSC").deliveries == {"webhook:0": "sent 2024-05-01T13:01:00Z"}  # type: ignore[union-attr]
    store.put_delivery(61, "email", {"state": "pending", "attempts": 0})
    store.put_delivery(61, "email", {"state": "sent x", "attempts": 1})
    store.put_delivery(61, "email", {"state": "pending"}, batch=1)
    assert store.get_delivery(61, "email") == {"state": "sent x", "attempts": 1}
    assert store.deliveries(61) == {
        ("email", 0): {"state": "sent x", "attempts": 1},
        ("email", 1): {"state": "pending"},
    }
    assert store.deliveries(62) == {}


def test_silences_expire_and_can_be_lifted(store: Store) -> None:
    a = store.add_silence(
        Silence("", "CSC", "Occupancy/*", "2024-05-02T00:00:00Z", "bob", "HV trip", "")
    )
    b = store.add_silence(
        Silence("s2", "*", "*", "2024-05-01T06:00:00Z", "eve", "tests", "2024-05-01T00:00:00Z")
    )
    assert b == "s2"
    assert len(a) == 12
    assert store.get_silence(a).created  # type: ignore[union-attr]
    assert [s.id for s in store.silences()] == ["s2", a]
    assert [s.id for s in store.silences(active_at="2024-05-01T05:00:00Z")] == ["s2", a]
    assert [s.id for s in store.silences(active_at="2024-05-01T06:00:00Z")] == [a]
    assert [s.id for s in store.silences(active_at="2024-05-01T12:00:00+00:00")] == [a]
    assert store.silences(active_at="2024-05-03T00:00:00Z") == []
    lifted = store.remove_silence(a, "carol")
    assert lifted is not None
    assert lifted.removed_by == "carol"
    assert store.silences(active_at="2024-05-01T12:00:00Z") == []
    assert [s.id for s in store.silences(include_removed=True)] == ["s2", a]
    assert store.remove_silence("nope", "carol") is None


def test_audit_log_newest_first(store: Store) -> None:
    assert store.audit() == []
    for i in range(5):
        store.log({"who": "alice", "what": f"ack {i}"})
    events = store.audit(limit=3)
    assert [e["what"] for e in events] == ["ack 4", "ack 3", "ack 2"]
    assert events[0]["at"].endswith("Z")
    assert events[0]["seq"] == 5
    assert store.log({"who": "bob", "what": "x", "at": "2024-01-01T00:00:00Z"})["at"] == (
        "2024-01-01T00:00:00Z"
    )


def test_verdicts(store: Store) -> None:
    store.put_verdict(70, "CSC", "h0", "beta_binomial", "bad", "alice", "2024-05-01T00:00:00Z")
    store.put_verdict(70, "CSC", "h0", "ks_test", "good", "bob", "2024-05-01T00:01:00Z")
    store.put_verdict(70, "CSC", "h1", "ks_test", "good", "bob", "2024-05-01T00:02:00Z")
    store.put_verdict(70, "CSC", "h1", "ks_test", "", "bob", "2024-05-01T00:03:00Z")
    assert store.verdicts(70, "CSC") == {
        "h0": {
            "beta_binomial": {"verdict": "bad", "by": "alice", "at": "2024-05-01T00:00:00Z"},
            "ks_test": {"verdict": "good", "by": "bob", "at": "2024-05-01T00:01:00Z"},
        }
    }
    assert store.verdicts(70, "DT") == {}


def _writer(directory: str, sub: str, n: int) -> None:
    s = open_store(directory)
    for run in range(1000, 1000 + n):
        s.put_report(record(run, sub))
        s.put_job(JobState(run, sub, "x/y", "done"))
        s.log({"who": sub, "what": f"stored {run}"})
    s.close()


def test_concurrent_writers_in_two_processes_lose_no_index_entry(tmp_path: Path) -> None:
    directory = str(tmp_path / "cache")
    open_store(directory).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(directory, sub, 25)) for sub in ("CSC", "DT")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    s = open_store(directory)
    assert s.runs() == list(range(1024, 999, -1))
    for run in range(1000, 1025):
        assert set(s.run_summary(run) or {}) == {"CSC", "DT"}
    assert len(s.jobs(["done"])) == 50
    assert len(s.audit(limit=1000)) == 50
    assert [t[0] for t in s.history("DT", "h0", "beta_binomial")] == list(range(1000, 1025))
    s.close()


def test_disk_full_is_one_line_and_keeps_earlier_records(store: Store, monkeypatch) -> None:
    store.put_report(record(80))
    real_set = diskcache.Cache.set
    calls = {"n": 0}

    def full_after_three(self, key, value, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 3:
            raise sqlite3.OperationalError("database or disk is full")
        return real_set(self, key, value, *args, **kwargs)

    monkeypatch.setattr(diskcache.Cache, "set", full_after_three)
    with pytest.raises(StoreError) as info:
        store.put_report(record(81, digest="d2"))
    msg = str(info.value)
    assert "\n" not in msg
    assert str(store.directory) in msg
    assert "database or disk is full" in msg
    assert "free disk space" in msg
    assert "run 81 CSC" in msg
    with pytest.raises(StoreError):
        store.put_report(record(80, digest="d2"))  # a rewrite that fails keeps the old one
    monkeypatch.setattr(diskcache.Cache, "set", real_set)
    assert calls["n"] > 3
    assert store.runs() == [80]
    assert store.get_report(81, "CSC") is None
    assert store.get_arrays(81, "CSC", "h0") == {}
    old = store.get_report(80, "CSC")
    assert old is not None
    assert old.provenance.config_digest == "d1"
    assert [t[0] for t in store.history("CSC", "h0", "beta_binomial")] == [80]
    assert store.get_arrays(80, "CSC", "h0")["beta_binomial"]["pulls"]
    store.put_report(record(81))  # the store still works once there is space
    assert store.runs() == [81, 80]


def test_unopenable_directory_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot open"):
        open_store(blocker / "cache")


def test_provenance_helpers() -> None:
    assert code_version().startswith("0.1.0")
    assert code_version() is code_version()  # computed once
    p = make_provenance("abc", Path("config/CSC.json"), [3, 1], "because")
    assert p.reference_runs == (3, 1)
    assert p.created.endswith("Z")
    assert Provenance.from_dict(p.to_dict()) == p


def test_non_finite_scores_come_back_as_nan(store: Store) -> None:
    rec = record(90)
    bad = ComparisonResult("ks_test", "h9", Status.ERROR, math.nan, None, reason="boom")
    store.put_report(SubsystemRecord(**{**_fields(rec), "results": (bad,)}))
    got = store.get_report(90, "CSC")
    assert got is not None
    assert math.isnan(got.results[0].score)
    assert math.isnan(store.history("CSC", "h9", "ks_test")[0][2])
