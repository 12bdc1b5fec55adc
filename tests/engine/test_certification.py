"""Certification sources: golden JSON (path and URL), every run of a data source, the state."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from engine.certification import (
    CertState,
    GoldenJSONSource,
    SourceCertification,
    diff_state,
    load_golden,
    parse_golden,
)
from engine.errors import ConfigError, FetchError
from engine.sources import LocalSource

T0 = datetime(2022, 8, 1, 14, 2, tzinfo=UTC)


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


def test_golden_json_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.json: cannot read"):
        load_golden(tmp_path / "nope.json")


def write(path: Path, runs: dict[int, list[list[int]]]) -> None:
    path.write_text(json.dumps({str(r): v for r, v in runs.items()}))


def test_growing_file_yields_exactly_the_new_runs(tmp_path: Path) -> None:
    path = tmp_path / "golden.json"
    write(path, {100: [[1, 50]], 101: [[1, 20]]})
    src = GoldenJSONSource(path)
    first = src.poll(T0)
    assert first.new_runs == [100, 101]
    assert first.changed == {}
    write(path, {100: [[1, 50]], 101: [[1, 20]], 103: [[1, 9]], 102: [[2, 7]]})
    second = src.poll(T0 + timedelta(minutes=10))
    assert second.new_runs == [102, 103]
    assert second.changed == {}
    assert sorted(second.all_runs) == [100, 101, 102, 103]
    assert src.poll(T0 + timedelta(minutes=20)).new_runs == []
    assert src.state.last_new == (T0 + timedelta(minutes=10)).isoformat(timespec="seconds")
    assert src.state.last_poll == (T0 + timedelta(minutes=20)).isoformat(timespec="seconds")


def test_changed_range_is_reported_once_as_changed_not_new(tmp_path: Path) -> None:
    path = tmp_path / "golden.json"
    write(path, {100: [[1, 50]], 101: [[1, 20]]})
    src = GoldenJSONSource(path)
    src.poll(T0)
    write(path, {100: [[1, 30], [35, 50]], 101: [[1, 20]]})
    update = src.poll(T0)
    assert update.new_runs == []
    assert update.changed == {100: ([(1, 50)], [(1, 30), (35, 50)])}
    assert src.poll(T0).changed == {}


def test_removed_run_is_reported_once_and_new_again_if_it_returns(tmp_path: Path) -> None:
    path = tmp_path / "golden.json"
    write(path, {100: [[1, 50]], 101: [[1, 20]]})
    src = GoldenJSONSource(path)
    src.poll(T0)
    write(path, {100: [[1, 50]]})
    assert src.poll(T0).removed == [101]
    assert src.poll(T0).removed == []
    write(path, {100: [[1, 50]], 101: [[1, 20]]})
    assert src.poll(T0).new_runs == [101]


def test_state_round_trips_through_json_and_a_new_source(tmp_path: Path) -> None:
    path = tmp_path / "golden.json"
    write(path, {100: [[1, 50]], 101: [[1, 20]]})
    src = GoldenJSONSource(path)
    src.poll(T0)
    saved = json.loads(json.dumps(src.state.to_dict()))
    assert CertState.from_dict(saved) == src.state
    write(path, {100: [[1, 50]], 101: [[1, 20]], 104: [[1, 3]]})
    again = GoldenJSONSource(path, saved)  # e.g. after a restart of the scheduler
    assert again.poll(T0).new_runs == [104]


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ([], "expected an object"),
        ({"seen": {"x": [[1, 2]]}}, "key 'x'"),
        ({"watermark": -1}, "watermark: expected a run number"),
        ({"watermark": "5"}, "watermark"),
    ],
)
def test_bad_persisted_state_is_a_one_line_error(raw: Any, fragment: str) -> None:
    with pytest.raises(ConfigError, match="state") as exc:
        CertState.from_dict(raw, "state.json")
    assert fragment in str(exc.value)
    assert "\n" not in str(exc.value)


def test_malformed_poll_keeps_every_seen_run(tmp_path: Path) -> None:
    path = tmp_path / "golden.json"
    write(path, {100: [[1, 50]], 101: [[1, 20]]})
    src = GoldenJSONSource(path)
    src.poll(T0)
    before = src.state
    path.write_text('{"100": [[1, 50]], "101": [[1, 20]], "102": [[1,')  # half-written
    with pytest.raises(ConfigError, match=r"golden\.json: line 1 column") as exc:
        src.poll(T0 + timedelta(minutes=5))
    assert "\n" not in str(exc.value)
    assert src.state == before
    path.unlink()
    with pytest.raises(ConfigError, match="cannot read"):
        src.poll(T0)
    assert src.state == before
    write(path, {100: [[1, 50]], 101: [[1, 20]], 102: [[1, 4]]})
    update = src.poll(T0 + timedelta(minutes=10))
    assert update.new_runs == [102]
    assert update.changed == {}


def test_diff_state_is_pure() -> None:
    state = CertState({1: [(1, 2)]})
    update, nxt = diff_state(state, {1: [(1, 2)], 2: []}, T0)
    assert update.new_runs == [2]
    assert state.seen == {1: [(1, 2)]}
    assert nxt.seen == {1: [(1, 2)], 2: []}
    update, _ = diff_state(nxt, {2: []}, T0, asked_above=1)
    assert update.removed == []  # run 1 was not asked for


# -- URL ------------------------------------------------------------------------------------
class Golden:
    """What the local server answers: a status and a body."""

    def __init__(self) -> None:
        self.status = 200
        self.body = b"{}"
        self.requests = 0


@pytest.fixture
def golden_server() -> Iterator[tuple[str, Golden]]:
    content = Golden()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            content.requests += 1
            self.send_response(content.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(content.body)))
            self.end_headers()
            self.wfile.write(content.body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/golden.json", content
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_url_source_grows_between_polls(golden_server: tuple[str, Golden]) -> None:
    url, content = golden_server
    content.body = json.dumps({"100": [[1, 50]]}).encode()
    src = GoldenJSONSource(url, timeout=(2, 5))
    assert src.poll(T0).new_runs == [100]
    content.body = json.dumps({"100": [[1, 50]], "105": [[1, 8]], "103": [[1, 2]]}).encode()
    assert src.poll(T0).new_runs == [103, 105]
    assert content.requests == 2  # re-read on every poll
    assert src.describe() == f"golden JSON {url}"


@pytest.mark.parametrize("status", [404, 500])
def test_url_http_errors_are_one_line_fetch_errors(
    golden_server: tuple[str, Golden], status: int
) -> None:
    url, content = golden_server
    content.body = json.dumps({"100": [[1, 50]]}).encode()
    src = GoldenJSONSource(url)
    src.poll(T0)
    before = src.state
    content.status = status
    with pytest.raises(FetchError, match=f"HTTP {status}") as exc:
        src.poll(T0)
    assert exc.value.status == status
    assert exc.value.url == url
    assert "\n" not in str(exc.value)
    assert src.state == before


def test_url_malformed_body_is_a_config_error_naming_the_url(
    golden_server: tuple[str, Golden],
) -> None:
    url, content = golden_server
    content.body = b"<html>login page</html>"
    with pytest.raises(ConfigError, match=f"^{url}: line 1 column 1"):
        GoldenJSONSource(url).poll(T0)


def test_unreachable_url_is_a_fetch_error() -> None:
    url = "http://127.0.0.1:9/golden.json"  # discard port: nothing listens
    with pytest.raises(FetchError, match=r"127\.0\.0\.1:9/golden\.json: cannot download") as exc:
        GoldenJSONSource(url, timeout=(1, 1)).poll(T0)
    assert "\n" not in str(exc.value)


# -- every run of the data source -------------------------------------------------------------
def add_run(root: Path, run: int) -> None:
    folder = root / "OfflineData" / "Run2022" / "SingleMuon" / f"{run // 100:07d}xx"
    folder.mkdir(parents=True, exist_ok=True)
    name = f"DQM_V0001_R{run:09d}__SingleMuon__Run2022C-PromptReco-v1__DQMIO.root"
    (folder / name).write_bytes(b"x")


def test_every_run_of_the_data_source_counts_as_certified(tmp_path: Path) -> None:
    add_run(tmp_path, 357100)
    add_run(tmp_path, 357101)
    cert = SourceCertification(LocalSource(tmp_path), "Run2022", "SingleMuon")
    first = cert.poll(T0)
    assert first.new_runs == [357100, 357101]
    assert first.all_runs == {357100: [], 357101: []}
    add_run(tmp_path, 357105)
    assert cert.poll(T0).new_runs == [357105]
    restarted = SourceCertification(
        LocalSource(tmp_path), "Run2022", "SingleMuon", cert.state.to_dict()
    )
    assert restarted.poll(T0).new_runs == []
    assert "Run2022/SingleMuon" in cert.describe()
