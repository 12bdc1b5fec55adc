"""Alerts: building, formatting, and grouped, retried, idempotent delivery to a real local
webhook receiver and a real local SMTP server, with a real results store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from engine.alert_format import flagged_by_text
from engine.alerts import (
    EMAIL_CHANNEL,
    Deliverer,
    ack,
    build_alert,
    email_message,
    send_email,
    send_webhook,
    webhook_channel,
    webhook_payload,
)
from engine.errors import DQMError, FetchError
from engine.provenance import Provenance
from engine.service_config import AlertConfig
from engine.store import Alert, JobState, Silence, Store, SubsystemRecord, open_store
from engine.types import ComparisonResult, Status
from tests.engine.alert_servers import SMTPServer, WebhookReceiver, closed_port

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
RUN = 357130


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def res(
    path: str,
    score: float,
    status: Status = Status.FLAGGED,
    reason: str = "",
    comp: str = "ks_test",
) -> ComparisonResult:
    return ComparisonResult(comp, path, status, score, 0.5, reason or f"ks {score} > 0.5")


def record(subsystem: str, results: list[ComparisonResult], run: int = RUN) -> SubsystemRecord:
    prov = Provenance("digest", f"config/subsystems/{subsystem}.json", "0.1.0", iso(T0), (1, 2))
    return SubsystemRecord(
        run, subsystem, "Run2022/SingleMuon", (1, 2), "previous good", prov, tuple(results)
    )


FLAGGED = {
    "CSC": [res("Occupancy/a", 3.0), res("Occupancy/b", 9.0), res("Timing/c", 5.0)],
    "RPC": [res("Hits/x", 1.5), res("Hits/ok", 0.1, Status.OK)],
    "DT": [res("Eff/y", 2.0, comp="beta_binomial")],
}


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as h:
        yield h


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    with SMTPServer() as s:
        yield s


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(tmp_path / "store") as s:
        yield s


def config(hook: WebhookReceiver | None, smtp: SMTPServer | None, **kw: object) -> AlertConfig:
    base = AlertConfig(
        webhooks=(hook.url,) if hook else (),
        smtp_host="127.0.0.1",
        smtp_port=smtp.port if smtp else closed_port(),
        email_from="autodqm@example.org",
        email_to=("oncall@example.org", "expert@example.org"),
        dashboard_url="http://dqm.example:8050/",
        max_outliers=2,
        retry_seconds=60,
        group_seconds=300,
        timeout_seconds=2,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def put_alerts(
    store: Store, cfg: AlertConfig, records: list[SubsystemRecord], now: datetime
) -> int:
    """What the service does after storing reports: one alert per report worth one."""
    made = 0
    for rec in records:
        store.put_report(rec)
        alert = build_alert(rec, cfg, store.silences(active_at=iso(now)), now)
        if alert is not None:
            store.put_alert(alert)
            made += 1
    return made


# ------------------------------------------------------------------------------ build_alert
def test_alert_lists_top_outliers_by_score_with_deep_link() -> None:
    cfg = config(None, None, webhooks=("https://mm.example/hooks/abc",))
    alert = build_alert(record("CSC", FLAGGED["CSC"]), cfg, [], T0)
    assert alert is not None
    assert alert.id == f"{RUN}-CSC"
    assert (alert.run, alert.subsystem, alert.dataset) == (RUN, "CSC", "Run2022/SingleMuon")
    assert alert.n_flagged == 3
    assert [t["histogram"] for t in alert.top] == ["Occupancy/b", "Timing/c"]  # max_outliers=2
    assert [t["score"] for t in alert.top] == [9.0, 5.0]
    assert alert.top[0]["comparator"] == "ks_test"
    assert alert.top[0]["reason"] == "ks 9.0 > 0.5"
    assert alert.link == f"http://dqm.example:8050/run/{RUN}/CSC"
    assert alert.created == "2024-05-01T12:00:00Z"
    assert alert.deliveries == {webhook_channel("https://mm.example/hooks/abc"): "pending",
                                EMAIL_CHANNEL: "pending"}  # fmt: skip
    assert not alert.silenced_by


def test_a_histogram_flagged_by_several_tests_is_one_outlier() -> None:
    rs = [res("Occupancy/a", 2.0, comp="beta_binomial"), res("Occupancy/a", 7.0, comp="variation_scan"),
          res("Occupancy/a", 0.3, Status.OK, comp="ks_test"), res("Timing/t", 3.0)]  # fmt: skip
    alert = build_alert(record("CSC", rs), config(None, None), [], T0)
    assert alert is not None
    assert alert.n_flagged == 2
    assert [(t["histogram"], t["comparator"], t["score"]) for t in alert.top] == [
        ("Occupancy/a", "variation_scan", 7.0), ("Timing/t", "ks_test", 3.0)]  # fmt: skip
    assert alert.top[0]["flagged_by"] == ["variation_scan", "beta_binomial"]
    assert flagged_by_text(alert.top[0]) == "variation_scan (also beta_binomial)"
    assert flagged_by_text(alert.top[1]) == "ks_test"


def test_no_alert_below_min_severity() -> None:
    rs = [res("a", 0.1, Status.OK), res("b", 0.0, Status.SKIPPED), res("c", 0.0, Status.ERROR)]
    assert build_alert(record("CSC", rs), config(None, None), [], T0) is None
    strict = build_alert(record("CSC", rs), config(None, None, min_severity="error"), [], T0)
    assert strict is not None
    assert [t["histogram"] for t in strict.top] == ["c"]
    with pytest.raises(DQMError, match="min_severity: 'bad'"):
        build_alert(record("CSC", rs), config(None, None, min_severity="bad"), [], T0)


def silence(sub: str, pattern: str, until: datetime, sid: str = "s1") -> Silence:
    return Silence(sid, sub, pattern, iso(until), "alice", "known noisy", iso(T0))


def test_silences_cover_by_subsystem_and_pattern_until_they_expire() -> None:
    cfg = config(None, None)
    rec = record("CSC", FLAGGED["CSC"])
    later = T0 + timedelta(hours=1)
    # part of the flagged histograms silenced: the alert is about the others
    part = build_alert(rec, cfg, [silence("CSC", "Occupancy/*", later)], T0)
    assert part is not None
    assert [t["histogram"] for t in part.top] == ["Timing/c"]
    assert part.n_flagged == 1
    assert not part.silenced_by
    # every flagged histogram silenced: recorded as silenced, with nothing to deliver
    full = build_alert(rec, cfg, [silence("*", "*", later, "s9")], T0)
    assert full is not None
    assert "alice" in full.silenced_by
    assert "s9" in full.silenced_by
    assert full.deliveries == {}
    # another subsystem's silence, an expired one and a lifted one do not count
    others = [
        silence("RPC", "*", later),
        silence("CSC", "*", T0 - timedelta(seconds=1)),
        replace(silence("CSC", "*", later), removed_by="bob", removed_at=iso(T0)),
    ]
    loud = build_alert(rec, cfg, others, T0)
    assert loud is not None
    assert not loud.silenced_by
    assert loud.n_flagged == 3


# ------------------------------------------------------------------------------ formatting
def run_alerts(cfg: AlertConfig) -> list[Alert]:
    out = []
    for sub, rs in FLAGGED.items():
        a = build_alert(record(sub, rs), cfg, [], T0)
        assert a is not None
        out.append(a)
    return out


def test_webhook_payload_has_run_subsystems_outliers_and_links() -> None:
    cfg = config(None, None)
    alerts = run_alerts(cfg)
    alerts[0] = replace(alerts[0], top=(
        {**alerts[0].top[0], "reason": "412 entries < 10000 & more"}, *alerts[0].top[1:]))  # fmt: skip
    payload = webhook_payload(alerts)
    assert set(payload) == {"text"}
    text = payload["text"]
    assert f"run {RUN}: 5 flagged in CSC, DT, RPC" in text
    assert "Run2022/SingleMuon" in text
    for sub in ("CSC", "RPC", "DT"):
        assert f"<http://dqm.example:8050/run/{RUN}/{sub}|" in text
    assert f"<http://dqm.example:8050/run/{RUN}|" in text
    # outliers ordered by score, with comparator, score and reason; the rest counted
    assert text.index("`Occupancy/b`") < text.index("`Timing/c`")
    assert "`Occupancy/a`" not in text
    assert "and 1 more" in text
    assert "ks_test score 9" in text
    assert "beta_binomial score 2" in text
    assert "412 entries &lt; 10000 &amp; more" in text  # Slack escaping


def test_email_has_both_parts_headers_and_escaped_html() -> None:
    cfg = config(None, None)
    alerts = run_alerts(cfg)
    alerts[1] = replace(alerts[1], top=({**alerts[1].top[0], "reason": "<b>x</b> & y"},))
    msg = email_message(alerts, cfg, now=T0)
    assert msg["Subject"] == f"[autodqm] run {RUN}: 5 flagged in CSC, DT, RPC"
    assert msg["From"] == "autodqm@example.org"
    assert msg["To"] == "oncall@example.org, expert@example.org"
    assert msg["Date"] == "Wed, 01 May 2024 12:00:00 +0000"
    assert msg["Message-ID"]
    assert msg.get_content_type() == "multipart/alternative"
    plain = msg.get_body(("plain",))
    rich = msg.get_body(("html",))
    assert isinstance(plain, EmailMessage)
    assert isinstance(rich, EmailMessage)
    text, page = plain.get_content(), rich.get_content()
    assert f"http://dqm.example:8050/run/{RUN}/RPC" in text
    assert "<b>x</b> & y" in text
    assert "&lt;b&gt;x&lt;/b&gt; &amp; y" in page
    assert "<b>x</b>" not in page
    assert f'<a href="http://dqm.example:8050/run/{RUN}/CSC">CSC</a>' in page
    assert f'href="http://dqm.example:8050/run/{RUN}/CSC/Occupancy/b"' in page
    assert f'<a href="http://dqm.example:8050/run/{RUN}">' in page


# ------------------------------------------------------------------------------ senders
def test_send_webhook_errors_are_one_line_without_the_secret(hook: WebhookReceiver) -> None:
    hook.mode = "error"
    with pytest.raises(FetchError) as err:
        send_webhook(hook.url, {"text": "hi"}, timeout=2)
    assert err.value.status == 500
    assert "HTTP 500" in str(err.value)
    refused = f"http://127.0.0.1:{closed_port()}/hooks/secret-token"
    with pytest.raises(FetchError) as err2:
        send_webhook(refused, {"text": "hi"}, timeout=2)
    for e in (err.value, err2.value):
        assert "\n" not in str(e)
        assert "secret-token" not in str(e)
    assert "ConnectionError" in str(err2.value)


def test_send_email_logs_in_when_configured(
    smtp: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config(None, smtp, smtp_user="dqm", smtp_password_env="TEST_SMTP_PW")
    msg = email_message(run_alerts(cfg), cfg, now=T0)
    with pytest.raises(DQMError, match="TEST_SMTP_PW"):
        send_email(msg, cfg, timeout=2)
    monkeypatch.setenv("TEST_SMTP_PW", "s3cret")
    send_email(msg, cfg, timeout=2)
    (mail,) = smtp.wait_for(1)
    assert mail.auth == "dqm:s3cret"
    assert mail.mail_from == "autodqm@example.org"
    assert mail.rcpt_to == ["oncall@example.org", "expert@example.org"]


# ------------------------------------------------------------------------------ delivery
def test_one_run_three_subsystems_one_post_one_email_then_nothing(
    store: Store, hook: WebhookReceiver, smtp: SMTPServer
) -> None:
    cfg = config(hook, smtp)
    healthy = record("CSC", [res("Occupancy/a", 0.1, Status.OK)], run=RUN + 1)
    records = [record(s, rs) for s, rs in FLAGGED.items()]
    assert put_alerts(store, cfg, [*records, healthy], T0) == 3
    report = Deliverer(store, cfg, T0).deliver_pending()
    assert sorted(report.sent) == sorted([(RUN, webhook_channel(hook.url)), (RUN, EMAIL_CHANNEL)])
    assert report.failed == []
    (post,) = hook.posts
    text = post.json()["text"]
    assert all(sub in text for sub in ("CSC", "RPC", "DT"))
    assert str(RUN + 1) not in text
    (mail,) = smtp.mails
    assert mail.message["Subject"] == f"[autodqm] run {RUN}: 5 flagged in CSC, DT, RPC"
    for a in store.alerts():
        assert set(a.deliveries) == {webhook_channel(hook.url), EMAIL_CHANNEL}
        assert all(s.startswith("sent 2024-05-01T12:00:00Z") for s in a.deliveries.values())
    again = Deliverer(store, cfg, T0 + timedelta(hours=1)).deliver_pending()
    assert (again.sent, again.failed) == ([], [])
    assert len(hook.posts) == 1
    assert len(smtp.mails) == 1


def test_run_without_flagged_results_sends_nothing(
    store: Store, hook: WebhookReceiver, smtp: SMTPServer
) -> None:
    cfg = config(hook, smtp)
    ok = [res("a", 0.1, Status.OK), res("b", 0.0, Status.SKIPPED, "few entries")]
    assert put_alerts(store, cfg, [record("CSC", ok), record("RPC", ok)], T0) == 0
    report = Deliverer(store, cfg, T0).deliver_pending()
    assert (report.sent, report.failed) == ([], [])
    assert hook.posts == []
    assert smtp.mails == []


def test_silenced_alert_is_recorded_but_never_sent(
    store: Store, hook: WebhookReceiver, smtp: SMTPServer
) -> None:
    cfg = config(hook, smtp)
    store.add_silence(silence("CSC", "*", T0 + timedelta(days=1)))
    put_alerts(store, cfg, [record("CSC", FLAGGED["CSC"])], T0)
    stored = store.get_alert(f"{RUN}-CSC")
    assert stored is not None
    assert "alice" in stored.silenced_by
    report = Deliverer(store, cfg, T0).deliver_pending()
    assert report.sent == []
    assert hook.posts == []
    assert smtp.mails == []


def test_alerts_wait_for_the_runs_other_jobs(
    store: Store, hook: WebhookReceiver, smtp: SMTPServer
) -> None:
    cfg = config(hook, smtp)
    put_alerts(store, cfg, [record("CSC", FLAGGED["CSC"])], T0)
    store.put_job(JobState(RUN, "RPC", "Run2022/SingleMuon", "comparing", updated=iso(T0)))
    report = Deliverer(store, cfg, T0 + timedelta(seconds=10)).deliver_pending()
    assert report.waiting == [RUN]
    assert hook.posts == []
    # the RPC job finishes with an alert of its own: one message covers both
    store.put_job(JobState(RUN, "RPC", "Run2022/SingleMuon", "done", updated=iso(T0)))
    put_alerts(store, cfg, [record("RPC", FLAGGED["RPC"])], T0)
    Deliverer(store, cfg, T0 + timedelta(seconds=20)).deliver_pending()
    (post,) = hook.posts
    assert "CSC, RPC" in post.json()["text"]
    assert len(smtp.mails) == 1


def test_group_wait_has_a_safety_net(store: Store, hook: WebhookReceiver, smtp: SMTPServer) -> None:
    cfg = config(hook, smtp)
    put_alerts(store, cfg, [record("CSC", FLAGGED["CSC"])], T0)
    store.put_job(JobState(RUN, "RPC", "Run2022/SingleMuon", "fetching", updated=iso(T0)))
    assert Deliverer(store, cfg, T0 + timedelta(seconds=299)).deliver_pending().waiting == [RUN]
    report = Deliverer(store, cfg, T0 + timedelta(seconds=300)).deliver_pending()
    assert len(report.sent) == 2
    assert len(hook.posts) == 1


def test_a_500_is_logged_and_retried_with_backoff_then_sent_once(
    store: Store, hook: WebhookReceiver, smtp: SMTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = config(hook, smtp)
    channel = webhook_channel(hook.url)
    put_alerts(store, cfg, [record(s, rs) for s, rs in FLAGGED.items()], T0)
    hook.mode = "error"
    first = Deliverer(store, cfg, T0).deliver_pending()
    assert [(r, c) for r, c, _ in first.failed] == [(RUN, channel)]
    assert "HTTP 500" in first.failed[0][2]
    assert first.sent == [(RUN, EMAIL_CHANNEL)]  # the email is independent
    assert "delivery failed" in caplog.text
    assert "HTTP 500" in caplog.text
    state = store.get_delivery(RUN, channel)
    assert state is not None
    assert state["attempts"] == 1
    assert state["state"].startswith("failed 2024-05-01T12:00:00Z: ")
    assert state["next_try"] == "2024-05-01T12:01:00Z"  # retry_seconds * 2**0
    alert = store.get_alert(f"{RUN}-CSC")
    assert alert is not None
    assert alert.deliveries[channel].startswith("failed")
    hook.mode = "ok"
    early = Deliverer(store, cfg, T0 + timedelta(seconds=59)).deliver_pending()
    assert early.deferred == [(RUN, channel, "2024-05-01T12:01:00Z")]
    assert len(hook.posts) == 1
    hook.mode = "error"
    second = Deliverer(store, cfg, T0 + timedelta(seconds=60)).deliver_pending()
    assert len(second.failed) == 1
    state = store.get_delivery(RUN, channel)
    assert state is not None
    assert state["next_try"] == "2024-05-01T12:03:00Z"  # 60 s + 60 * 2**1
    hook.mode = "ok"
    third = Deliverer(store, cfg, T0 + timedelta(seconds=180)).deliver_pending()
    assert third.sent == [(RUN, channel)]
    Deliverer(store, cfg, T0 + timedelta(hours=5)).deliver_pending()
    assert [p.answered for p in hook.posts] == [500, 500, 200]
    assert len(hook.accepted) == 1
    assert len(smtp.mails) == 1


def test_a_hanging_receiver_times_out_and_is_retried(
    store: Store, hook: WebhookReceiver, smtp: SMTPServer
) -> None:
    cfg = config(hook, smtp, timeout_seconds=0.3)
    put_alerts(store, cfg, [record("CSC", FLAGGED["CSC"])], T0)
    hook.mode = "hang"
    started = time.monotonic()
    first = Deliverer(store, cfg, T0).deliver_pending()
    assert time.monotonic() - started < 5
    ((run, _, reason),) = first.failed
    assert run == RUN
    assert "Timeout" in reason
    hook.mode = "ok"
    later = Deliverer(store, cfg, T0 + timedelta(minutes=1)).deliver_pending()
    assert later.sent == [(RUN, webhook_channel(hook.url))]
    assert len(hook.accepted) == 1


def test_sent_channels_are_never_resent_after_a_restart(
    tmp_path: Path, hook: WebhookReceiver, smtp: SMTPServer
) -> None:
    cfg = config(hook, smtp)
    with open_store(tmp_path / "s") as store:
        put_alerts(store, cfg, [record("CSC", FLAGGED["CSC"])], T0)
        hook.mode = "error"
        Deliverer(store, cfg, T0).deliver_pending()  # email sent, webhook failed
    with open_store(tmp_path / "s") as store:  # a new process: same directory
        hook.mode = "ok"
        report = Deliverer(store, cfg, T0 + timedelta(minutes=2)).deliver_pending()
        assert report.sent == [(RUN, webhook_channel(hook.url))]
    with open_store(tmp_path / "s") as store:
        report = Deliverer(store, cfg, T0 + timedelta(days=1)).deliver_pending()
        assert (report.sent, report.failed, report.deferred) == ([], [], [])
    assert len(hook.accepted) == 1
    assert len(smtp.mails) == 1


def test_a_subsystem_alerted_after_the_run_message_gets_a_follow_up(
    store: Store, hook: WebhookReceiver, smtp: SMTPServer
) -> None:
    cfg = config(hook, smtp)
    put_alerts(store, cfg, [record("CSC", FLAGGED["CSC"])], T0)
    Deliverer(store, cfg, T0).deliver_pending()
    put_alerts(store, cfg, [record("DT", FLAGGED["DT"])], T0 + timedelta(minutes=5))
    report = Deliverer(store, cfg, T0 + timedelta(minutes=5)).deliver_pending()
    assert len(report.sent) == 2
    first, follow = (p.json()["text"] for p in hook.posts)
    assert "CSC" in first
    assert f"run {RUN}: additional subsystem DT (1 flagged)" in follow
    assert "CSC" not in follow
    subjects = [m.message["Subject"] for m in smtp.mails]
    assert subjects[1] == f"[autodqm] run {RUN}: additional subsystem DT (1 flagged)"
    assert store.get_delivery(RUN, EMAIL_CHANNEL, batch=1) is not None


def test_smtp_refusing_the_connection_fails_with_a_one_line_reason(
    store: Store, hook: WebhookReceiver
) -> None:
    cfg = config(hook, None)  # smtp_port: nothing listens there
    put_alerts(store, cfg, [record("CSC", FLAGGED["CSC"])], T0)
    report = Deliverer(store, cfg, T0).deliver_pending()
    assert report.sent == [(RUN, webhook_channel(hook.url))]
    ((run, channel, reason),) = report.failed
    assert (run, channel) == (RUN, EMAIL_CHANNEL)
    assert "\n" not in reason
    assert "ConnectionRefusedError" in reason
    assert f"smtp://127.0.0.1:{cfg.smtp_port}" in reason
    alert = store.get_alert(f"{RUN}-CSC")
    assert alert is not None
    assert alert.deliveries[EMAIL_CHANNEL] == f"failed 2024-05-01T12:00:00Z: {reason}"


def test_a_rejected_message_is_retried(
    store: Store, hook: WebhookReceiver, smtp: SMTPServer
) -> None:
    cfg = config(None, smtp)
    put_alerts(store, cfg, [record("CSC", FLAGGED["CSC"])], T0)
    smtp.fail_mail_from = True
    report = Deliverer(store, cfg, T0).deliver_pending()
    assert "451" in report.failed[0][2]
    smtp.fail_mail_from = False
    assert Deliverer(store, cfg, T0 + timedelta(minutes=1)).deliver_pending().sent
    assert len(smtp.mails) == 1


def test_a_channel_removed_from_the_config_is_dropped(
    store: Store, hook: WebhookReceiver, smtp: SMTPServer
) -> None:
    cfg = config(hook, smtp)
    put_alerts(store, cfg, [record("CSC", FLAGGED["CSC"])], T0)
    report = Deliverer(store, replace(cfg, webhooks=()), T0).deliver_pending()
    assert report.dropped == [(RUN, webhook_channel(hook.url))]
    assert report.sent == [(RUN, EMAIL_CHANNEL)]
    assert hook.posts == []
    assert Deliverer(store, cfg, T0 + timedelta(hours=1)).deliver_pending().sent == []


def test_ack_records_who_and_when_in_the_audit_log(store: Store) -> None:
    cfg = config(None, None)
    put_alerts(store, cfg, [record("CSC", FLAGGED["CSC"])], T0)
    alert = ack(store, f"{RUN}-CSC", "carol", T0 + timedelta(minutes=3))
    assert (alert.acked_by, alert.acked_at) == ("carol", "2024-05-01T12:03:00Z")
    stored = store.get_alert(f"{RUN}-CSC")
    assert stored is not None
    assert stored.acked_by == "carol"
    (event,) = store.audit(10)
    assert (event["action"], event["alert"], event["by"]) == ("ack", f"{RUN}-CSC", "carol")
    assert store.alerts(unacked_only=True) == []
    with pytest.raises(DQMError, match="no alert '1-XYZ'"):
        ack(store, "1-XYZ", "carol", T0)
    with pytest.raises(DQMError, match="say who"):
        ack(store, f"{RUN}-CSC", " ", T0)


def test_delivery_never_raises_when_the_store_fails(tmp_path: Path, hook: WebhookReceiver) -> None:
    cfg = config(hook, None, email_to=())
    store = open_store(tmp_path / "s")
    put_alerts(store, cfg, [record("CSC", FLAGGED["CSC"])], T0)
    store.close()
    (tmp_path / "s" / "cache.db").write_bytes(b"not a database")
    report = Deliverer(store, cfg, T0).deliver_pending()
    assert report.sent == []
    assert len(report.errors) == 1
    assert "\n" not in report.errors[0]
    store.close()
