"""The scheduler's pure parts: plan_jobs and the per-(run, subsystem) state machine."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine import jobs
from engine.errors import DQMError
from engine.service_config import (
    AlertConfig,
    CertConfig,
    SchedulerConfig,
    ServiceConfig,
    SourceConfig,
    StorageConfig,
    WatchConfig,
)
from engine.store import JobState
from engine.times import parse_iso, utc_iso

T0 = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


def config(poll: float = 600.0, name: str = "", retry: float = 60.0) -> ServiceConfig:
    return ServiceConfig(
        path=Path("/nowhere/autodqm.toml"),
        storage=StorageConfig(Path("/nowhere/cache"), Path("/nowhere/data")),
        source=SourceConfig("local", Path("/nowhere/demo")),
        certification=CertConfig("golden_json", Path("/nowhere/golden.json"), "", poll, name),
        watches=(WatchConfig("Run2022", "SingleMuon", ("CSC",), Path("/nowhere")),),
        alerts=AlertConfig(retry_seconds=retry),
        scheduler=SchedulerConfig(workers=2),
    )


def test_plan_jobs_one_poll_job_per_source_plus_work_and_deliver() -> None:
    specs = jobs.plan_jobs(config(poll=600.0, name="golden"))
    assert [s.id for s in specs] == ["poll:golden", "work", "deliver"]
    poll, work, deliver = specs
    assert poll.seconds == 600.0
    assert poll.func == "engine.jobs:poll"
    assert dict(poll.kwargs) == {"source_name": "golden"}
    assert work.seconds == jobs.WORK_SECONDS
    assert deliver.seconds == 60.0
    assert all(s.run_at_start for s in specs)
    assert (poll.max_instances, work.max_instances, deliver.max_instances) == (1, 2, 1)


def test_plan_jobs_is_pure_and_follows_the_config() -> None:
    cfg = config(poll=1.0, retry=30.0)
    assert jobs.plan_jobs(cfg) == jobs.plan_jobs(cfg)
    specs = {s.id: s for s in jobs.plan_jobs(cfg)}
    assert set(specs) == {"poll:golden_json", "work", "deliver"}  # unnamed: the kind
    assert specs["work"].seconds == 1.0  # never slower than the poll
    assert specs["deliver"].seconds == 1.0


def test_plan_jobs_functions_exist() -> None:
    from engine.scheduler import resolve

    for spec in jobs.plan_jobs(config()):
        assert callable(resolve(spec))


def test_a_job_goes_queued_fetching_comparing_done() -> None:
    job = jobs.new_job(357100, "CSC", "Run2022/SingleMuon", T0)
    assert (job.state, job.attempts, job.updated) == ("queued", 0, "2026-05-01T12:00:00Z")
    seen = [job.state]
    for i in range(3):
        job = jobs.advance(job, T0 + timedelta(seconds=i + 1))
        seen.append(job.state)
    assert seen == ["queued", "fetching", "comparing", "done"]
    assert job.updated == "2026-05-01T12:00:03Z"
    with pytest.raises(DQMError, match=r"cannot move on from state 'done'.*--force"):
        jobs.advance(job, T0)


def test_failures_back_off_exponentially_then_give_up() -> None:
    job = jobs.advance(jobs.new_job(1, "CSC", "d", T0), T0)
    tries = []
    for _ in range(3):
        job = jobs.fail(job, "HTTP 500", T0, max_attempts=4, backoff_seconds=30)
        tries.append(parse_iso(job.next_try) - T0)
        assert job.state == "failed"
        assert job.error == "HTTP 500"
        job = jobs.advance(job, T0)  # a worker retries it
    assert tries == [timedelta(seconds=30), timedelta(seconds=60), timedelta(seconds=120)]
    job = jobs.fail(job, "HTTP 500", T0, max_attempts=4, backoff_seconds=30)
    assert (job.state, job.attempts, job.next_try) == ("failed", 4, "")
    assert "gave up after 4 attempts" in job.error
    assert not jobs.is_due(job, T0 + timedelta(days=365))
    with pytest.raises(DQMError, match="gave up after 4 attempts"):
        jobs.advance(job, T0)


def test_due_jobs_newest_run_first_and_retries_only_when_their_time_has_come() -> None:
    q = [jobs.new_job(r, s, "d", T0) for r in (100, 300, 200) for s in ("RPC", "CSC")]
    failed = jobs.fail(jobs.new_job(400, "CSC", "d", T0), "x", T0, max_attempts=5,
                       backoff_seconds=60)  # fmt: skip
    done = replace(jobs.new_job(500, "CSC", "d", T0), state="done")
    running = replace(jobs.new_job(600, "CSC", "d", T0), state="fetching")
    pool = [*q, failed, done, running]
    assert [(j.run, j.subsystem) for j in jobs.due(pool, T0)] == [
        (300, "CSC"), (300, "RPC"), (200, "CSC"), (200, "RPC"), (100, "CSC"), (100, "RPC"),
    ]  # fmt: skip
    later = jobs.due(pool, T0 + timedelta(seconds=60))
    assert later[0].run == 400


def test_interrupted_jobs_go_back_to_queued_and_count_as_an_attempt() -> None:
    job = jobs.advance(jobs.new_job(1, "CSC", "d", T0), T0)
    back = jobs.interrupted(job, T0, max_attempts=3)
    assert (back.state, back.attempts, back.error) == ("queued", 1, "interrupted while fetching")
    done = replace(job, state="done")
    assert jobs.interrupted(done, T0, max_attempts=3) is done
    # a job that kills its process every time ends failed instead of looping forever
    for _ in range(2):
        back = jobs.interrupted(jobs.advance(back, T0), T0, max_attempts=3)
    assert back.state == "failed"
    assert back.attempts == 3
    assert not jobs.is_due(back, T0 + timedelta(days=1))


def test_requeue_resets_attempts() -> None:
    job = jobs.fail(jobs.new_job(1, "CSC", "d", T0), "x", T0, max_attempts=1, backoff_seconds=1)
    again = jobs.requeue(job, T0 + timedelta(hours=1), "forced")
    assert (again.state, again.attempts, again.next_try, again.error) == ("queued", 0, "", "forced")
    assert isinstance(again, JobState)


def test_iso_round_trip() -> None:
    t = datetime(2026, 5, 1, 14, 0, 0, tzinfo=UTC)
    assert utc_iso(t) == "2026-05-01T14:00:00Z"
    assert parse_iso(utc_iso(t)) == t
    assert parse_iso("2026-05-01T14:00:00") == t
