"""Run Registry client and certification source, against a local server that answers like the API.

The fake server implements what ``datasets_filtered_ordered`` does with the filters
the client sends (``and`` of rules; ``=``, ``>``, ``like``, ``or``), newest run first,
paged by ``page``/``page_size``; a rule it does not know is answered with an error, so
the client cannot send something the real API would not understand without a failure.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from engine.errors import ConfigError, FetchError
from engine.runmeta import meta_from_runregistry
from engine.runregistry import (
    RunRegistryClient,
    RunRegistrySource,
    dataset_filter,
    run_class,
    sso_token,
)

T0 = datetime(2022, 8, 1, 14, 2, tzinfo=UTC)
NAME = "/PromptReco/Collisions2022/DQM"


def dataset(
    run: int, state: str = "COMPLETED", cls: str = "Collisions22", name: str = NAME
) -> dict[str, Any]:
    """A dataset as the API returns it (nested Run / dataset_attributes)."""
    return {
        "run_number": run,
        "name": name,
        "dataset_attributes": {"global_state": state, "csc_state": "OPEN"},
        "Run": {
            "rr_attributes": {"class": cls, "state": "SIGNOFF", "significant": True},
            "oms_attributes": {
                "recorded_lumi": 100.0 + run % 100,
                "duration": 3600,
                "ls_duration": 150,
                "hlt_physics_counter": 2_000_000,
            },
        },
        "DatasetTripletCache": {"triplet_summary": {}},
    }


def _value(ds: dict[str, Any], key: str) -> Any:
    if key == "run_number":
        return ds["run_number"]
    if key == "name":
        return ds["name"]
    if key == "rr_attributes.class":
        return ds["Run"]["rr_attributes"]["class"]
    if key.startswith("dataset_attributes."):
        return ds["dataset_attributes"].get(key.split(".", 1)[1])
    raise KeyError(key)


def _test(value: Any, cond: dict[str, Any]) -> bool:
    (op, arg), *rest = cond.items()
    if rest:
        raise KeyError(f"more than one operator: {cond}")
    if op == "or":
        return any(_test(value, c) for c in arg)
    if op == "=":
        return bool(value == arg)
    if op == ">":
        return bool(value > arg)
    if op == "like":
        return re.fullmatch(".*".join(map(re.escape, arg.split("%"))), value) is not None
    raise KeyError(f"operator {op}")


def matches(ds: dict[str, Any], flt: dict[str, Any]) -> bool:
    rules = [{k: v} for k, v in flt.items() if k != "and"] + list(flt.get("and", []))
    return all(_test(_value(ds, k), c) for rule in rules for k, c in rule.items())


@dataclass
class FakeRR:
    datasets: list[dict[str, Any]] = field(default_factory=list)
    mode: str = "ok"  # ok | 500 | badjson | err | notalist
    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    def answer(self, body: dict[str, Any]) -> tuple[int, bytes]:
        if self.mode == "500":
            return 500, b"Internal Server Error"
        if self.mode == "badjson":
            return 200, b"<html>SSO login</html>"
        if self.mode == "err":
            return 200, json.dumps({"err": "Token expired\nplease log in"}).encode()
        try:
            rows = [d for d in self.datasets if matches(d, body["filter"])]
        except (KeyError, TypeError) as err:
            return 500, json.dumps({"err": f"bad filter: {err}"}).encode()
        rows.sort(key=lambda d: (-d["run_number"], d["name"]))
        size, page = body["page_size"], body["page"]
        part = rows[page * size : (page + 1) * size]
        out: dict[str, Any] = {
            "datasets": part,
            "pages": math.ceil(len(rows) / size),
            "count": len(rows),
        }
        if self.mode == "notalist":
            out["datasets"] = "nope"
        return 200, json.dumps(out).encode()


@pytest.fixture
def rr() -> Iterator[tuple[str, FakeRR]]:
    fake = FakeRR()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            fake.bodies.append(body)
            fake.headers.append(dict(self.headers))
            if self.path != "/api/datasets_filtered_ordered":
                status, data = 404, b"Not found"
            else:
                status, data = fake.answer(body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api", fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_filter_has_the_api_shape() -> None:
    flt = dataset_filter(
        min_run=357000, dataset_class="Collisions22", name_like="/PromptReco/%/DQM"
    )
    assert flt == {
        "and": [
            {"run_number": {">": 357000}},
            {"rr_attributes.class": {"=": "Collisions22"}},
            {"name": {"like": "/PromptReco/%/DQM"}},
            {"dataset_attributes.global_state": {"or": [{"=": "COMPLETED"}]}},
        ]
    }
    exact = dataset_filter(name_like=NAME, states=("SIGNOFF", "COMPLETED"), workspace="csc")
    assert {"name": {"=": NAME}} in exact["and"]
    assert exact["and"][-1] == {
        "dataset_attributes.csc_state": {"or": [{"=": "SIGNOFF"}, {"=": "COMPLETED"}]}
    }


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"states": ("DONE",)}, "expected some of OPEN, SIGNOFF, COMPLETED"),
        ({"workspace": "c sc"}, "workspace"),
    ],
)
def test_bad_filter_settings_are_config_errors(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        dataset_filter(**kwargs)


def test_client_reads_every_page_with_token(rr: tuple[str, FakeRR]) -> None:
    url, fake = rr
    fake.datasets = [dataset(r) for r in range(357100, 357107)]
    client = RunRegistryClient(url, token=lambda: "t0k", page_size=3)
    rows = client.datasets(dataset_filter(dataset_class="Collisions22", name_like=NAME))
    assert sorted(d["run_number"] for d in rows) == list(range(357100, 357107))
    assert [b["page"] for b in fake.bodies] == [0, 1, 2]
    assert all(b["page_size"] == 3 for b in fake.bodies)
    assert fake.headers[0]["Authorization"] == "Bearer t0k"
    assert fake.headers[0]["Content-Type"] == "application/json"
    assert run_class(rows[0]) == "Collisions22"


def test_source_reports_new_completed_datasets_above_the_watermark(rr: tuple[str, FakeRR]) -> None:
    url, fake = rr
    fake.datasets = [
        dataset(357100),
        dataset(357101, state="OPEN"),
        dataset(357102, cls="Cosmics22"),
        dataset(357103, name="/Express/Collisions2022/DQM"),
        dataset(357104),
    ]
    src = RunRegistrySource(
        RunRegistryClient(url, page_size=2), "Collisions22", "/PromptReco/%/DQM", lookback=10
    )
    first = src.poll(T0)
    assert first.new_runs == [357100, 357104]
    assert first.all_runs[357100] == [(1, 150)]  # ranges from OMS ls_duration
    assert src.state.watermark == 357094  # highest seen - lookback
    fake.datasets[1] = dataset(357101)  # signed off late
    fake.datasets.append(dataset(357110))
    fake.datasets.append(dataset(357090))  # below the watermark: not asked for
    second = src.poll(T0)
    assert second.new_runs == [357101, 357110]
    assert second.removed == []
    assert fake.bodies[-1]["filter"]["and"][0] == {"run_number": {">": 357094}}
    assert src.state.watermark == 357100
    assert src.poll(T0).new_runs == []
    saved = json.loads(json.dumps(src.state.to_dict()))
    again = RunRegistrySource(RunRegistryClient(url), "Collisions22", "/PromptReco/%/DQM", saved)
    assert again.poll(T0).new_runs == []


@pytest.mark.parametrize(
    ("mode", "fragment"),
    [
        ("500", "HTTP 500 from the Run Registry: Internal Server Error"),
        ("badjson", "expected a JSON answer, found '<html>SSO login</html>'"),
        ("err", "the Run Registry answered an error: Token expired please log in"),
        ("notalist", "page 0: expected a 'datasets' list, found str"),
    ],
)
def test_errors_are_one_line_and_keep_the_state(
    rr: tuple[str, FakeRR], mode: str, fragment: str
) -> None:
    url, fake = rr
    fake.datasets = [dataset(357100)]
    src = RunRegistrySource(RunRegistryClient(url), "Collisions22", NAME)
    src.poll(T0)
    before = src.state
    fake.mode = mode
    with pytest.raises(FetchError) as exc:
        src.poll(T0)
    assert fragment in str(exc.value)
    assert "\n" not in str(exc.value)
    assert src.state == before
    fake.mode = "ok"
    fake.datasets.append(dataset(357101))
    assert src.poll(T0).new_runs == [357101]


def test_unreachable_registry_is_a_fetch_error() -> None:
    client = RunRegistryClient("http://127.0.0.1:9/api", timeout=(1, 1))
    with pytest.raises(FetchError, match="cannot reach the Run Registry"):
        client.datasets(dataset_filter())


def test_run_metadata_from_registry_datasets(rr: tuple[str, FakeRR]) -> None:
    url, fake = rr
    fake.datasets = [dataset(357105)]
    meta = meta_from_runregistry(RunRegistryClient(url).datasets(dataset_filter()))
    m = meta[357105]
    assert (m.lumi, m.duration_s, m.n_lumisections, m.events) == (105.0, 3600.0, 150, 2_000_000)
    assert m.origin == "Run Registry"


def test_sso_token_needs_the_optional_extra() -> None:
    try:
        import cernrequests  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match=r"pip install 'autodqm\[runregistry\]'"):
            sso_token("id", "secret")
    else:
        assert callable(sso_token("id", "secret"))
