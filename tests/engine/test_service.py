"""The service layer against a real store and generated demo data (no scheduler threads)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine import jobs
from engine.demo import DemoOptions, generate, load_runs
from engine.errors import DQMError
from engine.registry import Registry, build_registry
from engine.service import Service
from engine.service_config import load_service_config
from engine.service_work import choose_references
from engine.settings import ROOT
from engine.store import open_store

T0 = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
CONFIG_DIR = ROOT / "config" / "subsystems"


def write_config(
    path: Path,
    demo: Path,
    golden: Path,
    *,
    subsystems: tuple[str, ...] = ("CSC", "RPC"),
    config_dir: Path = CONFIG_DIR,
    poll_seconds: float = 600,
    alerts: str = "",
    scheduler: str = "workers = 2\nmax_attempts = 3\nbackoff_seconds = 30",
) -> Path:
    """A service config for demo data; stores in ``path.parent / "store"``."""
    subs = ", ".join(f'"{s}"' for s in subsystems)
    path.write_text(
        f"""
[storage]
cache_dir = "store"
data_dir = "files"
[source]
kind = "local"
path = "{demo}"
[certification]
kind = "golden_json"
path = "{golden}"
poll_seconds = {poll_seconds}
[[watch]]
series = "Run2022"
sample = "SingleMuon"
subsystems = [{subs}]
config_dir = "{config_dir}"
[alerts]
{alerts}
[scheduler]
{scheduler}
"""
    )
    return path


@dataclass
class Demo:
    dir: Path
    certified: list[int]
    uncertified: list[int]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    out = tmp_path_factory.mktemp("demo")
    generate(out, DemoOptions(runs=8, seed=3))
    runs = load_runs(out)
    return Demo(
        out,
        sorted(r.run for r in runs if r.certified),
        sorted(r.run for r in runs if not r.certified),
    )


@pytest.fixture(scope="module")
def registry() -> Registry:
    return build_registry()


def make_service(cfg: Path, registry: Registry, *, clock: datetime = T0) -> Service:
    config = load_service_config(cfg, registry)
    return Service(config, open_store(config.storage.cache_dir), registry, now=lambda: clock)


@pytest.fixture(scope="module")
def processed(
    demo: Demo, registry: Registry, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """Every certified run polled and processed once (CSC, RPC), in one store."""
    tmp = tmp_path_factory.mktemp("processed")
    svc = make_service(write_config(tmp / "a.toml", demo.dir, demo.dir / "golden.json"), registry)
    svc.poll("golden_json")
    assert svc.drain() == 2 * len(demo.certified)
    yield svc
    svc.close()


@pytest.fixture
def fresh(demo: Demo, registry: Registry, tmp_path: Path) -> Iterator[Service]:
    """A new store; RPC only; workers=1 (jobs run in this thread)."""
    cfg = write_config(tmp_path / "a.toml", demo.dir, demo.dir / "golden.json",
                       subsystems=("RPC",), scheduler="workers = 1\nmax_attempts = 3")  # fmt: skip
    svc = make_service(cfg, registry)
    yield svc
    svc.close()


def test_first_poll_queues_every_certified_run_and_a_second_poll_nothing(
    fresh: Service, demo: Demo
) -> None:
    res = fresh.poll("golden_json", T0)
    assert sorted(res.new_runs) == demo.certified
    assert sorted(j.run for j in res.queued) == demo.certified
    assert {j.state for j in fresh.store.jobs()} == {"queued"}
    due = jobs.due(fresh.store.jobs(), T0)
    assert [j.run for j in due] == sorted(demo.certified, reverse=True)  # newest first
    again = fresh.poll("golden_json", T0 + timedelta(minutes=10))
    assert (again.new_runs, again.queued) == ((), ())
    state = fresh.store.get_cert_state("golden_json")
    assert state is not None
    assert sorted(int(r) for r in state["seen"]) == demo.certified


def test_results_stored_for_exactly_the_certified_runs(processed: Service, demo: Demo) -> None:
    assert sorted(processed.store.runs()) == demo.certified
    assert {(j.run, j.subsystem, j.state) for j in processed.store.jobs()} == {
        (r, s, "done") for r in demo.certified for s in ("CSC", "RPC")
    }
    for run in demo.certified:
        for sub in ("CSC", "RPC"):
            rec = processed.store.get_report(run, sub)
            assert rec is not None
            assert rec.provenance.config_digest == processed.watched[sub].config.digest
            assert rec.dataset == "Run2022/SingleMuon"
            assert len(rec.reference_runs) == 4
            assert run not in rec.reference_runs
            assert set(rec.reference_runs) <= set(demo.certified)
            assert rec.reference_reason
            assert rec.results


def test_one_alert_per_subsystem_with_flagged_results(processed: Service, demo: Demo) -> None:
    with_flags = set()
    for run in demo.certified:
        summary = processed.store.run_summary(run) or {}
        with_flags |= {(run, s) for s, cell in summary.items() if cell["n_flagged"]}
    alerts = processed.store.alerts(limit=100)
    assert {(a.run, a.subsystem) for a in alerts} == with_flags
    truth = json.loads((demo.dir / "truth.json").read_text())
    strong = {(f["run"], f["subsystem"]) for f in truth if f["level"] == "strong"}
    assert strong & {(r, s) for r in demo.certified for s in ("CSC", "RPC")} <= with_flags
    assert with_flags  # the demo data has injected failures in RPC
    for a in alerts:
        assert a.id == f"{a.run}-{a.subsystem}"
        assert a.link.endswith(f"/run/{a.run}/{a.subsystem}")


def test_a_flagged_run_is_no_reference(processed: Service, demo: Demo) -> None:
    w = processed.watched["RPC"]
    bad = [r for r in demo.certified if (processed.store.run_summary(r) or {})["RPC"]["n_flagged"]]
    assert bad
    for run in demo.certified:
        choice = choose_references(processed.store, w, run, set(demo.certified), processed.files(w))
        assert not set(choice.runs) & set(bad)
        assert len(choice.runs) == 4
        if any(b != run and abs(demo.certified.index(b) - demo.certified.index(run)) <= 2
               for b in bad):  # fmt: skip
            assert "flagged" in choice.reason


def test_process_leaves_done_work_alone_and_force_recomputes_without_a_new_alert(
    fresh: Service, demo: Demo
) -> None:
    run = demo.certified[-1]
    first = fresh.process(run, "RPC", T0)
    assert first.state == "done"
    rec = fresh.store.get_report(run, "RPC")
    assert rec is not None
    assert rec.provenance.created == "2026-05-01T12:00:00Z"
    later = T0 + timedelta(hours=1)
    assert fresh.process(run, "RPC", later) == first  # done: nothing redone
    fresh.enqueue(run, "RPC", force=True, now=later)
    again = fresh.process(run, "RPC", later)
    assert again.state == "done"
    rec2 = fresh.store.get_report(run, "RPC")
    assert rec2 is not None
    assert rec2.provenance.created == "2026-05-01T13:00:00Z"
    assert [r.to_dict() for r in rec2.results] == [r.to_dict() for r in rec.results]
    with pytest.raises(DQMError, match="'DT' is not watched"):
        fresh.process(run, "DT", later)


def test_an_interrupted_job_is_requeued_and_finished(fresh: Service, demo: Demo) -> None:
    run = demo.certified[-1]
    job = jobs.advance(fresh.enqueue(run, "RPC", now=T0), T0)  # fetching, then the process died
    fresh.store.put_job(job)
    assert fresh.process_next(T0) is None  # nobody takes a job that looks in progress
    back = fresh.requeue_interrupted(T0)
    assert [(j.run, j.state, j.attempts) for j in back] == [(run, "queued", 1)]
    done = fresh.process_next(T0)
    assert done is not None
    assert (done.state, done.attempts) == ("done", 1)
    assert fresh.store.get_report(run, "RPC") is not None


def test_a_broken_file_fails_with_backoff_then_recovers(
    demo: Demo, registry: Registry, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(demo.dir / "OfflineData", data / "OfflineData")
    victim = max(demo.certified)
    (f,) = (data / "OfflineData").rglob(f"*R000{victim}__*.root")
    good = f.read_bytes()
    f.write_bytes(good[:5000])  # truncated
    cfg = write_config(tmp_path / "a.toml", data, demo.dir / "golden.json", subsystems=("RPC",),
                       scheduler="workers = 1\nmax_attempts = 2\nbackoff_seconds = 30")  # fmt: skip
    svc = make_service(cfg, registry)
    svc.enqueue(victim, "RPC", now=T0)
    job = svc.process_next(T0)
    assert job is not None
    assert (job.state, job.attempts, job.next_try) == ("failed", 1, "2026-05-01T12:00:30Z")
    assert str(victim) in job.error or "truncated" in job.error or job.error
    assert svc.process_next(T0 + timedelta(seconds=29)) is None  # not yet
    job = svc.process_next(T0 + timedelta(seconds=30))
    assert job is not None
    assert (job.state, job.attempts, job.next_try) == ("failed", 2, "")
    assert "gave up after 2 attempts" in job.error
    assert svc.process_next(T0 + timedelta(days=1)) is None
    assert svc.store.get_report(victim, "RPC") is None
    f.write_bytes(good)  # fixed; a person queues it again
    assert svc.enqueue(victim, "RPC", now=T0).state == "queued"
    job = svc.process_next(T0)
    assert job is not None
    assert job.state == "done"
    svc.close()


def test_a_changed_subsystem_config_requeues_exactly_its_reports(
    demo: Demo, registry: Registry, tmp_path: Path
) -> None:
    golden = tmp_path / "golden.json"
    runs = demo.certified[-2:]
    golden.write_text(json.dumps({str(r): [[1, 10]] for r in demo.certified}))
    cfg = write_config(tmp_path / "a.toml", demo.dir, golden,
                       scheduler="workers = 1\nbackfill = 2")  # fmt: skip
    svc = make_service(cfg, registry)
    res = svc.poll("golden_json", T0)
    assert sorted({j.run for j in res.queued}) == runs  # backfill: the newest 2 only
    assert sorted(res.ignored) == demo.certified[:-2]
    assert svc.drain(T0) == 4
    changed = tmp_path / "configs"
    shutil.copytree(CONFIG_DIR, changed)
    rpc = json.loads((changed / "RPC.json").read_text())
    rpc["hists"] = rpc["hists"][:-1]
    (changed / "RPC.json").write_text(json.dumps(rpc))
    cfg2 = write_config(tmp_path / "b.toml", demo.dir, golden, config_dir=changed,
                        scheduler="workers = 1")  # fmt: skip
    svc2 = make_service(cfg2, registry)
    requeued = svc2.requeue_stale(T0)
    assert sorted((j.run, j.subsystem) for j in requeued) == [(r, "RPC") for r in runs]
    assert {j.state for j in svc2.store.jobs() if j.subsystem == "CSC"} == {"done"}
    assert svc2.drain(T0) == 2
    assert svc2.store.stale("RPC") == []
    rec = svc2.store.get_report(runs[0], "RPC")
    assert rec is not None
    assert rec.provenance.config_digest == svc2.watched["RPC"].config.digest


def test_people_actions_are_audited(fresh: Service, demo: Demo) -> None:
    run = (
        next(r for r in reversed(demo.certified) if r == 357109) if 357109 in demo.certified else 0
    )
    assert run, "seed 3 has a strong RPC failure in run 357109"
    until = T0 + timedelta(hours=2)
    sid = fresh.silence("RPC", "AllHits/*", until, "ana", "known noisy", T0)
    fresh.process(run, "RPC", T0)
    alert = fresh.store.get_alert(f"{run}-RPC")
    assert alert is not None
    assert "ana (silence" in alert.silenced_by  # every flagged histogram is silenced
    assert not alert.deliveries  # never sent
    fresh.ack_alert(alert.id, "bob", T0)
    assert fresh.store.get_alert(alert.id).acked_by == "bob"  # type: ignore[union-attr]
    fresh.unsilence(sid, "ana", T0)
    fresh.set_verdict(run, "RPC", "AllHits/x", "ks_test", "bad", "carl", T0)
    assert fresh.store.verdicts(run, "RPC")["AllHits/x"]["ks_test"]["by"] == "carl"
    actions = [(e["action"], e["by"]) for e in fresh.store.audit()]
    assert actions[:4] == [("verdict", "carl"), ("unsilence", "ana"), ("ack", "bob"),
                           ("silence", "ana")]  # fmt: skip
    with pytest.raises(DQMError, match="end in the future"):
        fresh.silence("RPC", "*", T0, "ana", "x", T0)
    with pytest.raises(DQMError, match="no alert"):
        fresh.ack_alert("1-XYZ", "bob", T0)


def test_process_command_prints_a_line_per_subsystem(
    demo: Demo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine.cli import main

    cfg = write_config(tmp_path / "a.toml", demo.dir, demo.dir / "golden.json",
                       scheduler="workers = 1")  # fmt: skip
    run = demo.certified[-1]
    assert main(["process", str(run), "--config", str(cfg), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(o["run"], o["subsystem"], o["state"]) for o in out] == [
        (run, "CSC", "done"), (run, "RPC", "done"),
    ]  # fmt: skip
    assert all(len(o["reference_runs"]) == 4 and o["counts"] for o in out)
    assert main(["process", str(run), "--subsystem", "RPC", "--config", str(cfg)]) == 0
    assert capsys.readouterr().out.startswith(f"run {run} RPC: done (")
    assert main(["process", str(min(demo.certified) - 1), "--config", str(cfg)]) == 2
    assert "not found in Run2022/SingleMuon (closest:" in capsys.readouterr().err
    assert main(["process", str(run), "--subsystem", "DT", "--config", str(cfg)]) == 2
    assert "'DT' is not watched" in capsys.readouterr().err
