"""The run/subsystem outlier grid over results the service really computed from demo data."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from dash import Dash, Patch

from dashboard.app import create_app
from dashboard.pages import subsystem
from engine.store import SubsystemRecord


def walk(node: Any) -> Iterator[Any]:
    yield node
    children = getattr(node, "children", None) if not isinstance(node, (str, list, tuple)) else node
    if isinstance(node, str) or children is None:
        return
    for c in children if isinstance(children, (list, tuple)) else [children]:
        yield from walk(c)


def text(node: Any) -> str:
    return "".join(str(n) for n in walk(node) if isinstance(n, (str, int)))


def find(node: Any, id_: str) -> Any:
    return next(n for n in walk(node) if getattr(n, "id", None) == id_)


@pytest.fixture(scope="module")
def app(demo_site: Any) -> Dash:
    return create_app(demo_site.config, demo_site.store)


def flagged_run(demo_site: Any) -> int:
    return next(
        r for r in demo_site.store.runs() if demo_site.store.run_summary(r)["CSC"]["n_flagged"]
    )


def test_grid_rows_are_most_severe_first_with_links_and_words(app: Dash, demo_site: Any) -> None:
    run = flagged_run(demo_site)
    with app.server.test_request_context():
        page = subsystem.layout(run=str(run), subsystem="csc")
    grid = find(page, "runsub-grid")
    rows = grid.rowData
    record = demo_site.store.get_report(run, "CSC")
    assert len(rows) == len(record.results)
    assert rows[0]["status"] == "flagged"
    ranks = {"flagged": 3, "error": 2, "skipped": 1, "ok": 0}
    keys = [(ranks[r["status"]], r["score"] or 0.0) for r in rows]
    assert keys == sorted(keys, reverse=True)
    top = rows[0]
    assert top["href"] == f"/run/{run}/CSC/{top['histogram']}?comparator={top['comparator']}"
    assert top["reason"]  # a flagged result says why
    assert top["scores"]  # and its named scores ("chi2 10.4 · max_pull 33.4")
    assert {c["field"] for c in grid.columnDefs} >= {
        "status", "histogram", "comparator", "score", "scores", "entries", "reason", "verdict"
    }  # fmt: skip
    status_col = next(c for c in grid.columnDefs if c["field"] == "status")
    assert status_col["cellRenderer"] == "StatusMark"  # symbol + word, never colour alone
    words = text(page)
    assert "References: " in words
    assert demo_site.store.get_report(run, "CSC").reference_reason in words
    hrefs = {n.href for n in walk(page) if getattr(n, "href", None)}
    assert f"/api/v1/runs/{run}/CSC?format=csv" in hrefs
    assert f"/api/v1/runs/{run}/CSC" in hrefs
    runs = sorted(demo_site.store.runs())
    i = runs.index(run)
    if i > 0:
        assert f"/run/{runs[i - 1]}/CSC" in hrefs
    if i + 1 < len(runs):
        assert f"/run/{runs[i + 1]}/CSC" in hrefs
    json.dumps(rows)  # rowData is plain JSON (no NaN objects, no numpy)


def test_query_parameters_preset_the_filters(app: Dash, demo_site: Any) -> None:
    run = flagged_run(demo_site)
    with app.server.test_request_context():
        page = subsystem.layout(run=str(run), subsystem="CSC", status="not_ok", q="Occ",
                                comparator="ks_test")  # fmt: skip
    grid = find(page, "runsub-grid")
    assert grid.filterModel == {
        "status": {"filterType": "text", "type": "notEqual", "filter": "ok"},
        "comparator": {"filterType": "text", "type": "equals", "filter": "ks_test"},
    }
    assert grid.dashGridOptions["quickFilterText"] == "Occ"
    assert find(page, "runsub-status").value == "not_ok"


def test_filter_callbacks_are_plain_functions() -> None:
    assert subsystem.set_filters("flagged", None) == {
        "status": {"filterType": "text", "type": "equals", "filter": "flagged"}
    }
    assert subsystem.set_filters("", "") == {}
    assert subsystem.set_filters("bogus", "beta_binomial") == {
        "comparator": {"filterType": "text", "type": "equals", "filter": "beta_binomial"}
    }
    patch = subsystem.set_quick_filter("hORec")
    assert isinstance(patch, Patch)
    assert "hORec" in json.dumps(patch.to_plotly_json())


def test_verdicts_show_in_the_grid(app: Dash, demo_site: Any) -> None:
    run = flagged_run(demo_site)
    record: SubsystemRecord = demo_site.store.get_report(run, "CSC")
    r = record.results[-1]
    before = sum(
        bool(x["verdict"])
        for x in subsystem.grid_rows(record, demo_site.store.verdicts(run, "CSC"))
    )
    demo_site.store.put_verdict(run, "CSC", r.path, r.comparator, "known_issue", "ann", "x")
    try:
        rows = subsystem.grid_rows(record, demo_site.store.verdicts(run, "CSC"))
        row = next(x for x in rows if x["histogram"] == r.path and x["comparator"] == r.comparator)
        assert row["verdict"] == "known issue"
        assert sum(bool(x["verdict"]) for x in rows) == before + 1  # other tests share the store
    finally:
        demo_site.store.put_verdict(run, "CSC", r.path, r.comparator, "", "ann", "x")


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"run": "abc", "subsystem": "CSC"}, "'abc' is not a run number"),
        ({"run": "357108", "subsystem": "CSX"}, "unknown subsystem 'CSX' (did you mean 'CSC'?)"),
        ({"run": "1", "subsystem": "CSC"}, "run 1 has no stored results"),
    ],
)
def test_bad_parts_get_a_message(app: Dash, kwargs: dict[str, str], expected: str) -> None:
    with app.server.test_request_context():
        page = subsystem.layout(**kwargs)
    assert page.id == "message-page"
    assert expected in text(page)


def test_the_router_serves_the_grid_and_it_is_fast(app: Dash, demo_site: Any) -> None:
    run = flagged_run(demo_site)
    client = app.server.test_client()
    client.get("/")
    deps = client.get("/_dash-dependencies").get_json()
    outputs = " ".join(d["output"] for d in deps)
    assert "runsub-grid.filterModel" in outputs
    assert "runsub-grid.dashGridOptions" in outputs
    router = next(d for d in deps if "_pages_content.children" in d["output"])
    payload = {
        "output": router["output"],
        "outputs": [{"id": "_pages_content", "property": "children"},
                    {"id": "_pages_store", "property": "data"}],
        "inputs": [{"id": "_pages_location", "property": "pathname", "value": f"/run/{run}/CSC"},
                   {"id": "_pages_location", "property": "search", "value": ""}],
        "changedPropIds": ["_pages_location.pathname"],
        "state": [],
    }  # fmt: skip
    t0 = time.perf_counter()
    resp = client.post("/_dash-update-component", json=payload)
    assert resp.status_code == 200
    assert time.perf_counter() - t0 < 5  # a sanity bound; budgets are in benchmarks/
    assert "runsub-grid" in resp.get_data(as_text=True)
