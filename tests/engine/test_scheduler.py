"""The APScheduler wiring: the planned jobs with their defaults, and a short real run."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from engine.demo import DemoOptions, generate, load_runs
from engine.registry import build_registry
from engine.scheduler import MISFIRE_GRACE_SECONDS, build_scheduler
from engine.service import Service
from engine.service_config import load_service_config
from engine.store import open_store
from tests.engine.test_service import write_config


def test_build_scheduler_adds_the_planned_jobs_and_starts_nothing(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    generate(demo, DemoOptions(runs=4, seed=5, subsystems=("RPC",)))
    runs = sorted(r.run for r in load_runs(demo) if r.certified)
    golden = tmp_path / "golden.json"
    golden.write_text(json.dumps({str(r): [[1, 9]] for r in runs[-2:]}))
    cfg = write_config(tmp_path / "a.toml", demo, golden, subsystems=("RPC",), poll_seconds=1)
    registry = build_registry()
    config = load_service_config(cfg, registry)
    service = Service(config, open_store(config.storage.cache_dir), registry)

    assert isinstance(build_scheduler(service, blocking=True), BlockingScheduler)
    sched = build_scheduler(service, blocking=False)
    assert isinstance(sched, BackgroundScheduler)
    assert not sched.running
    assert sorted(j.id for j in sched.get_jobs()) == ["deliver", "poll:golden_json", "work"]
    sched.start()
    try:
        jobs = {j.id: j for j in sched.get_jobs()}
        for job in jobs.values():
            assert job.coalesce
            assert job.misfire_grace_time == MISFIRE_GRACE_SECONDS
            assert job.args == (service,)
            assert job.trigger.interval.total_seconds() == 1.0
        assert jobs["poll:golden_json"].kwargs == {"source_name": "golden_json"}
        assert (jobs["poll:golden_json"].max_instances, jobs["work"].max_instances) == (1, 2)

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            done = {j.run for j in service.store.jobs(states=("done",))}
            if done == set(runs[-2:]):
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"not processed in time: {service.store.jobs()}")
    finally:
        service.stop()
        sched.shutdown(wait=True)
    assert sorted(service.store.runs()) == runs[-2:]
