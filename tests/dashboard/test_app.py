"""The Dash app: shell, page registration, overview callback, kiosk mode, bad-URL messages."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dash import Dash, no_update

from dashboard.app import create_app, kiosk_classes
from dashboard.pages import overview, run, subsystem
from engine.settings import Settings
from engine.store import Store


def walk(node: Any) -> Iterator[Any]:
    """Every component and string in a layout tree."""
    yield node
    children = getattr(node, "children", None) if not isinstance(node, (str, list, tuple)) else node
    if isinstance(node, str) or children is None:
        return
    if isinstance(children, (list, tuple)):
        for c in children:
            yield from walk(c)
    else:
        yield from walk(children)


def text(node: Any) -> str:
    """The visible text of a layout tree (strings joined as the browser shows them)."""
    return "".join(str(n) for n in walk(node) if isinstance(n, (str, int))).strip()


def hrefs(node: Any) -> set[str]:
    return {n.href for n in walk(node) if getattr(n, "href", None)}


def test_index_and_layout_are_served(app: Dash) -> None:
    client = app.server.test_client()
    assert client.get("/").status_code == 200
    layout = client.get("/_dash-layout")
    assert layout.status_code == 200
    body = layout.get_data(as_text=True)
    for word in ("Overview", "Compare", "Alerts", "All times in UTC", "_pages_content"):
        assert word in body


def test_dependencies_list_the_page_callbacks_in_every_app(
    settings: Settings, store: Store
) -> None:
    for _ in range(2):  # a second app in the same process gets the module-level callbacks too
        client = create_app(settings, store).server.test_client()
        client.get("/")
        deps = client.get("/_dash-dependencies").get_json()
        outputs = " ".join(d["output"] for d in deps)
        assert "overview-matrix.children" in outputs
        assert "shell-root.className" in outputs


def test_overview_callback_returns_the_matrix_with_symbols_and_words(app: Dash) -> None:
    with app.server.app_context():
        matrix, banner, status = overview.refresh(1, 0, {"kiosk": False, "limit": 20})
    words = text(matrix)
    assert "✗ 3 flagged" in words
    assert "! 1 error" in words
    assert "○ 2 skipped" in words
    assert "✓ ok" in words
    assert "— not processed" in words  # EMTF is configured but never stored
    heads = [text(th) for th in matrix.children[0].children.children]
    assert heads == ["Run", "CSC", "DT", "EMTF", "RPC"]
    rows = matrix.children[1].children
    assert [text(r.children[0])[:6] for r in rows] == ["357102", "357101", "357100"]
    links = hrefs(matrix)
    assert {"/run/357102", "/run/357102/CSC", "/run/357100/RPC"} <= links
    classes = {getattr(n, "className", "") for n in walk(matrix)}
    assert {"cell st-bg-flagged", "cell st-bg-error", "cell st-bg-ok"} <= classes
    assert "357102 CSC (3 flagged)" in text(banner)
    assert "/alerts" in hrefs(banner)
    assert "latest 3 runs" in status
    assert "UTC" in status


def test_banner_disappears_once_the_alert_is_acknowledged(app: Dash, store: Store) -> None:
    store.ack_alert("357102-CSC", "shifter")
    with app.server.app_context():
        _, banner, _ = overview.refresh(2, 0, {"kiosk": False, "limit": 20})
    assert banner is None


def test_kiosk_mode_refreshes_faster_and_rotates_the_highlight(app: Dash) -> None:
    with app.server.app_context():
        page = overview.layout(kiosk="1")
        normal = overview.layout()
        matrix, _, status = overview.refresh(3, 1, {"kiosk": True, "limit": 20})
    intervals = {n.id: n for n in walk(page) if type(n).__name__ == "Interval"}
    assert intervals["overview-refresh"].interval == overview.KIOSK_REFRESH_MS
    assert intervals["overview-rotate"].disabled is False
    assert "overview-kiosk" in page.className
    normal_iv = {n.id: n for n in walk(normal) if type(n).__name__ == "Interval"}
    assert normal_iv["overview-refresh"].interval == overview.REFRESH_MS
    assert normal_iv["overview-rotate"].disabled is True
    assert "highlighted: DT (2/4)" in status
    highlighted = [
        text(n) for n in walk(matrix) if "hl" in str(getattr(n, "className", "")).split()
    ]
    assert highlighted[0] == "DT"
    assert len(highlighted) == 4  # the header and the three run rows
    assert kiosk_classes("?kiosk=1") == ("kiosk", "d-none")
    assert kiosk_classes("?runs=5") == ("", "mb-3")


def test_empty_store_says_why(tmp_path: Path, empty_store: Store) -> None:
    app = create_app(Settings(cache_dir=tmp_path / "empty"), empty_store)
    with app.server.app_context():
        matrix, banner, _ = overview.refresh(1, 0, {"kiosk": False, "limit": 20})
    assert "No run stored yet — the scheduler has not processed any certified run" in text(matrix)
    assert "last poll: never" in text(matrix)
    assert banner is None


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"run": "abc"}, "'abc' is not a run number"),
        ({"run": "999999"}, "run 999999 has no stored results; stored runs: 3, from 357100"),
        ({"run": "12 34"}, "is not a run number"),
    ],
)
def test_run_page_explains_bad_runs(app: Dash, kwargs: dict[str, str], expected: str) -> None:
    with app.server.app_context():
        page = run.layout_run(**kwargs)
    assert page.id == "message-page"
    assert expected in text(page)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"run": "abc", "subsystem": "CSC"}, "'abc' is not a run number"),
        ({"run": "357102", "subsystem": "CSX"}, "unknown subsystem 'CSX' (did you mean 'CSC'?)"),
        ({"run": "357102", "subsystem": "EMTF"}, "run 357102 has no stored EMTF results"),
        ({"run": "1", "subsystem": "CSC"}, "run 1 has no stored results"),
    ],
)
def test_run_subsystem_page_explains_bad_parts(
    app: Dash, kwargs: dict[str, str], expected: str
) -> None:
    with app.server.app_context():
        page = subsystem.layout(**kwargs)
    assert page.id == "message-page"
    assert expected in text(page)


def test_run_pages_show_stored_summaries_most_severe_first(app: Dash) -> None:
    with app.server.app_context():
        page = subsystem.layout(run="357102", subsystem="csc")  # case-insensitive
        run_page = run.layout_run(run="357102")
    grid = next(n for n in walk(page) if getattr(n, "id", None) == "runsub-grid")
    assert [r["status"] for r in grid.rowData] == ["flagged"] * 3 + ["ok"] * 3
    assert "3 flagged" in text(page)
    assert "357100, 357101" in text(page)
    assert "/api/v1/runs/357102/CSC?format=csv" in hrefs(page)
    assert {"/run/357102/CSC", "/run/357102/DT", "/run/357102/RPC"} <= hrefs(run_page)
    assert "the 2 latest certified runs before" in text(run_page)
    table = next(n for n in walk(run_page) if getattr(n, "id", None) == "run-outliers")
    assert "Most severe histograms across subsystems" in text(run_page)
    # CSC's three flagged histograms, most severe first, each linking to its drill-down
    links = [
        n.href for n in walk(table) if str(getattr(n, "href", "")).startswith("/run/357102/CSC/")
    ]
    assert links == [f"/run/357102/CSC/flagged/hCSC{i}?comparator=beta_binomial" for i in (2, 1, 0)]
    assert "1 of 1: beta_binomial" in text(table)
    with app.server.app_context():
        quiet = run.layout_run(run="357101")
    assert "No histogram of run 357101 is flagged by any test." in text(quiet)


def _route(app: Dash, pathname: str, search: str = "") -> dict[str, Any]:
    """What the pages router answers for a URL (the request the browser makes)."""
    client = app.server.test_client()
    client.get("/")
    deps = client.get("/_dash-dependencies").get_json()
    router = next(d for d in deps if "_pages_content.children" in d["output"])
    payload = {
        "output": router["output"],
        "outputs": [
            {"id": "_pages_content", "property": "children"},
            {"id": "_pages_store", "property": "data"},
        ],
        "inputs": [
            {"id": "_pages_location", "property": "pathname", "value": pathname},
            {"id": "_pages_location", "property": "search", "value": search},
        ],
        "changedPropIds": ["_pages_location.pathname"],
        "state": [],
    }
    resp = client.post("/_dash-update-component", json=payload)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    return json.loads(resp.get_data(as_text=True))


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/run/abc", "is not a run number"),
        ("/run/999999", "run 999999 has no stored results"),
        ("/run/357102/NOPE", "unknown subsystem 'NOPE'"),
        ("/no/such/page", "Page not found"),
        ("/run/357102/CSC", "Occupancy/hCSC0"),
        ("/alerts", "run 357102 · CSC"),
        ("/compare", "autodqm compare"),
    ],
)
def test_router_answers_every_url_with_a_page(app: Dash, path: str, expected: str) -> None:
    out = _route(app, path)
    assert expected in json.dumps(out, ensure_ascii=False)
    assert "Traceback" not in json.dumps(out)


def test_overview_bad_runs_parameter_and_broken_store(tmp_path: Path) -> None:
    from engine.store import open_store

    broken = open_store(tmp_path / "broken")
    app = create_app(Settings(cache_dir=tmp_path / "broken"), broken)
    with app.server.app_context():
        page = overview.layout(runs="many")
        assert "runs='many': expected a whole number from 1 to 200" in text(page)
        broken.close()
        (tmp_path / "broken" / "cache.db").write_bytes(b"not a database" * 100)
        matrix, banner, status = overview.refresh(5, 0, {"kiosk": False, "limit": 20})
    assert status.startswith("⚠ the results store is not reachable")
    assert matrix is no_update
    assert banner is no_update
