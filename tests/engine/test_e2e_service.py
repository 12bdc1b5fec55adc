"""End to end: ``autodqm scheduler`` in a subprocess, a golden JSON that gains runs, a local
webhook receiver and SMTP server; then ``kill -9`` mid-processing and a restart."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.demo import DemoOptions, generate, load_runs
from engine.settings import ROOT
from engine.store import Store, open_store
from tests.engine.alert_servers import SMTPServer, WebhookReceiver
from tests.engine.test_service import write_config

SUBSYSTEMS = ("CSC", "RPC")
ACTIVE = ("fetching", "comparing")
RUN_RE = re.compile(r"\brun (\d+)")

pytestmark = pytest.mark.slow


def write_golden(path: Path, runs: list[int]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({str(r): [[1, 100]] for r in runs}))
    tmp.replace(path)  # the scheduler never reads half a file


def wait_for(what: str, cond: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path,
             timeout: float = 40.0, step: float = 0.05) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        if proc.poll() is not None:
            pytest.fail(f"scheduler exited ({proc.returncode}) waiting for {what}:\n"
                        + log.read_text()[-3000:])  # fmt: skip
        time.sleep(step)
    pytest.fail(f"timed out waiting for {what}:\n" + log.read_text()[-3000:])


def states(store: Store) -> dict[tuple[int, str], str]:
    return {(j.run, j.subsystem): j.state for j in store.jobs()}


def settled(store: Store, runs: list[int], hook: WebhookReceiver, smtp: SMTPServer) -> bool:
    """Every job of ``runs`` done and every alert of them delivered on both channels."""
    st = states(store)
    if any(st.get((r, s)) != "done" for r in runs for s in SUBSYSTEMS):
        return False
    alerts = [a for a in store.alerts(limit=1000) if a.run in runs]
    return all(v.startswith("sent") for a in alerts for v in a.deliveries.values())


class Scheduler:
    """``autodqm scheduler --config CFG`` in a subprocess, logging to a file."""

    def __init__(self, cfg: Path, log: Path) -> None:
        self.cfg = cfg
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> subprocess.Popen[bytes]:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_PROXY": "127.0.0.1,localhost"}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "engine.cli", "scheduler", "--config", str(self.cfg)],
                cwd=self.cfg.parent, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        return self.proc

    def stop(self, sig: int) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        return self.proc.wait(timeout=30)

    def reap(self) -> None:
        """Kill what is left of the process group (worker processes of a SIGKILLed scheduler)."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)


@pytest.fixture
def servers() -> Iterator[tuple[WebhookReceiver, SMTPServer]]:
    with WebhookReceiver() as hook, SMTPServer() as smtp:
        yield hook, smtp


def test_scheduler_end_to_end_with_kill_9_and_restart(
    tmp_path: Path, servers: tuple[WebhookReceiver, SMTPServer]
) -> None:
    hook, smtp = servers
    demo = tmp_path / "demo"
    generate(demo, DemoOptions(runs=8, seed=3))
    infos = load_runs(demo)
    certified = sorted(r.run for r in infos if r.certified)
    uncertified = sorted(r.run for r in infos if not r.certified)
    assert uncertified, "seed 3 has an uncertified run: it must get no result"
    truth = json.loads((demo / "truth.json").read_text())
    failed_subs = {(f["run"], f["subsystem"]) for f in truth if f["subsystem"] in SUBSYSTEMS}
    strong = {f["run"] for f in truth if f["subsystem"] in SUBSYSTEMS and f["level"] == "strong"}
    healthy = [r for r in certified if not any(run == r for run, _ in failed_subs)]
    golden = tmp_path / "golden.json"
    first = certified[:5]
    write_golden(golden, first)
    alerts_cfg = (
        f'webhooks = ["{hook.url}"]\nsmtp_host = "127.0.0.1"\nsmtp_port = {smtp.port}\n'
        'email_to = ["shift@example.org"]\nretry_seconds = 1\ntimeout_seconds = 5'
    )
    cfg = write_config(tmp_path / "autodqm.toml", demo, golden, subsystems=SUBSYSTEMS,
                       poll_seconds=1, alerts=alerts_cfg,
                       scheduler="workers = 2\nmax_attempts = 5\nbackoff_seconds = 1")  # fmt: skip
    store = open_store(tmp_path / "store")
    log = tmp_path / "scheduler.log"
    sched = Scheduler(cfg, log)
    try:
        proc = sched.start()
        # 1. the first certified runs are processed and alerted
        wait_for("the first runs", lambda: settled(store, first, hook, smtp), proc, log)
        # 2. the golden JSON gains runs; kill -9 while a job is in progress
        write_golden(golden, certified)
        wait_for("a job in progress", lambda: any(s in ACTIVE for s in states(store).values()),
                 proc, log, step=0.01)  # fmt: skip
        assert sched.stop(signal.SIGKILL) == -signal.SIGKILL
        sched.reap()
        in_progress = [k for k, s in states(store).items() if s in ACTIVE]
        assert in_progress
        # 3. a restart finishes everything, alerts each run once
        proc = sched.start()
        wait_for("every certified run", lambda: settled(store, certified, hook, smtp), proc, log)
        time.sleep(1.5)  # one more poll and delivery round: nothing new may go out
        assert sched.stop(signal.SIGTERM) == 0
    finally:
        sched.reap()
    text = log.read_text()
    assert "requeued 1 interrupted jobs" in text or "requeued 2 interrupted jobs" in text

    assert sorted(store.runs()) == certified
    assert not set(store.runs()) & set(uncertified)
    assert states(store) == {(r, s): "done" for r in certified for s in SUBSYSTEMS}
    for run, sub in in_progress:
        job = store.get_job(run, sub)
        assert job is not None
        assert job.attempts == 1  # the interruption counted, then it went through

    flagged_runs = {
        r for r in certified if any(c["n_flagged"] for c in (store.run_summary(r) or {}).values())
    }
    assert strong <= flagged_runs  # every strong injected failure alerted
    assert not flagged_runs & set(healthy)  # no alert for a healthy run
    assert {a.run for a in store.alerts(limit=1000)} == flagged_runs

    posts = [p.json()["text"] for p in hook.posts]
    mails = [m.message for m in smtp.mails]
    post_runs = Counter(int(RUN_RE.search(t).group(1)) for t in posts)  # type: ignore[union-attr]
    mail_runs = Counter(int(RUN_RE.search(m["Subject"]).group(1)) for m in mails)  # type: ignore[union-attr]
    assert post_runs == Counter(dict.fromkeys(flagged_runs, 1)), posts
    assert mail_runs == Counter(dict.fromkeys(flagged_runs, 1)), [m["Subject"] for m in mails]
    for m in mails:
        assert m.get_body(("plain",)) is not None
        assert m.get_body(("html",)) is not None
