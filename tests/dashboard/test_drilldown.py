"""The histogram drill-down over results the service really computed from demo data: layout
trees, callbacks called as plain functions, bad URLs, verdicts, missing DQM files."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextvars import copy_context
from pathlib import Path
from typing import Any

import pytest
from dash import Dash, no_update
from dash._callback_context import context_value
from dash._utils import AttributeDict

from dashboard.app import create_app
from dashboard.pages import drilldown
from dashboard.verdicts import acting_user
from engine.registry import build_registry
from engine.service_config import load_service_config
from engine.settings import Settings
from engine.store import open_store

FLAGGED_1D = (357108, "CSC", "Segments/hSTimeDiff_m11a")  # the demo's injected timing shift
FLAGGED_2D = (357105, "CSC", "Occupancy/hORecHits")  # the demo's injected inefficiency


def walk(node: Any) -> Iterator[Any]:
    yield node
    children = getattr(node, "children", None) if not isinstance(node, (str, list, tuple)) else node
    if isinstance(node, str) or children is None:
        return
    for c in children if isinstance(children, (list, tuple)) else [children]:
        yield from walk(c)


def text(node: Any) -> str:
    return "".join(str(n) for n in walk(node) if isinstance(n, (str, int)))


def find(node: Any, id_: Any) -> Any:
    return next(n for n in walk(node) if getattr(n, "id", None) == id_)


def url_parts(run: int, sub: str, path: str) -> dict[str, str]:
    """The variables Dash's greedy template match gives for /run/<run>/<sub>/<path>."""
    head, _, last = f"{run}/{sub}/{path}".rpartition("/")
    first, _, middle = head.rpartition("/")
    return {"run": first, "subsystem": middle, "histogram": last}


@pytest.fixture(scope="module")
def app(demo_site: Any) -> Dash:
    return create_app(demo_site.config, demo_site.store)


def test_split_path_undoes_the_greedy_template_match() -> None:
    assert drilldown.split_path("357108/CSC/Segments", "hSTimeDiff_m11a", "x") == (
        "357108", "CSC", "Segments/hSTimeDiff_m11a/x",
    )  # fmt: skip
    assert drilldown.split_path("1", "CSC", "a%20b/c") == ("1", "CSC", "a b/c")


def test_1d_drilldown_draws_data_references_and_pulls(app: Dash, demo_site: Any) -> None:
    run, sub, path = FLAGGED_1D
    with app.server.test_request_context():
        page = drilldown.layout(**url_parts(run, sub, path), comparator="beta_binomial")
    assert page.id == "drill-root"
    tabs = find(page, "drill-tabs")
    assert tabs.value == "beta_binomial"
    assert {t.value for t in tabs.children} == {
        "beta_binomial",
        "region_scan",
        "variation_scan",
        "ks_test",
        "moments",
        "history_pca",
    }
    fig = find(page, "drill-figure").figure
    names = [t.name for t in fig.data]
    refs = demo_site.store.get_report(run, sub).reference_runs
    assert f"data {run}" in names
    assert {f"ref {r}" for r in refs} <= set(names)
    assert "expected (probability-weighted)" in names
    assert any(t.type == "bar" for t in fig.data)  # the pull panel
    words = text(page)
    assert "Flagged by beta_binomial: severity" in words
    assert "chi2 = " in words  # the comparator's own reason
    assert "Flagged by 3 of 3 deciding tests (" in words
    assert "most severe: " in words
    trend = find(page, "drill-trend").figure
    assert sorted(str(x) for t in trend.data[1:] for x in t.x) == sorted(
        str(r) for r in demo_site.store.runs()
    )
    hrefs = {n.href for n in walk(page) if getattr(n, "href", None)}
    other = next(r for r in demo_site.store.runs() if r != run)
    assert f"/run/{other}/{sub}/{path}?comparator=beta_binomial" in hrefs


def test_2d_drilldown_draws_pull_data_and_reference_maps(app: Dash) -> None:
    run, sub, path = FLAGGED_2D
    with app.server.test_request_context():
        page = drilldown.layout(**url_parts(run, sub, path))
    fig = find(page, "drill-figure").figure
    assert [t.type for t in fig.data].count("heatmap") == 3
    assert "Flagged by" in text(find(page, "drill-reason"))


def test_the_comparator_tab_callback_renders_its_panel(app: Dash) -> None:
    run, sub, path = FLAGGED_1D
    context = {"run": run, "subsystem": sub, "path": path}
    with app.server.test_request_context():
        panel = drilldown.switch_comparator("ks_test", context)
        assert drilldown.switch_comparator(None, context) is no_update
    assert "Flagged by ks_test" in text(panel)
    assert "KS distance" in text(panel)


def _click(verdict: str, fn: Any, *args: Any) -> Any:
    def run() -> Any:
        prop = json.dumps({"type": "drill-verdict-btn", "verdict": verdict}, separators=(",", ":"))
        context_value.set(
            AttributeDict(triggered_inputs=[{"prop_id": f"{prop}.n_clicks", "value": 1}])
        )
        return fn(*args)

    return copy_context().run(run)


def test_a_verdict_round_trips_through_the_service_and_the_store(app: Dash, demo_site: Any) -> None:
    run, sub, path = FLAGGED_1D
    context = {"run": run, "subsystem": sub, "path": path}
    store = demo_site.store
    with app.server.test_request_context():
        shown, msg = _click("real_problem", drilldown.give_verdict, [1, 0, 0, 0], "Ann",
                            context, "beta_binomial")  # fmt: skip
        assert msg == "saved"
        assert "real problem — by Ann" in text(shown)
        got = store.verdicts(run, sub)[path]["beta_binomial"]
        assert (got["verdict"], got["by"]) == ("real_problem", "Ann")
        assert any(e.get("action") == "verdict" and e.get("by") == "Ann" for e in store.audit(20))
        page = drilldown.layout(**url_parts(run, sub, path))
        assert "real problem — by Ann" in text(find(page, "drill-verdict"))
        _, msg = _click("", drilldown.give_verdict, [1, 0, 0, 1], "Ann", context, "beta_binomial")
        assert msg == "verdict cleared"
        assert "beta_binomial" not in store.verdicts(run, sub).get(path, {})
        # nobody named: nothing stored, a message says what to do
        shown, msg = _click("false_alarm", drilldown.give_verdict, [0, 1, 0, 0], "  ",
                            context, "beta_binomial")  # fmt: skip
        assert shown is no_update
        assert "type your name" in msg
    with app.server.test_request_context(environ_base={"REMOTE_USER": "sso-bob"}):
        assert acting_user("typed") == "sso-bob"  # an authenticating proxy's user wins


def test_remember_user_and_trend_clicks_are_plain_functions(app: Dash) -> None:
    def typed() -> Any:
        context_value.set(AttributeDict(triggered_inputs=[{"prop_id": "drill-user.value"}]))
        return drilldown.remember_user(" Ann ", None)

    assert copy_context().run(typed) == (no_update, "Ann")

    def loaded() -> Any:
        context_value.set(AttributeDict(triggered_inputs=[{"prop_id": "drill-user-store.data"}]))
        return drilldown.remember_user(None, "Ann")

    assert copy_context().run(loaded) == ("Ann", no_update)
    run, sub, path = FLAGGED_1D
    ctx = {"run": run, "subsystem": sub, "path": path}
    click = {"points": [{"x": "357105", "y": 0.1}]}
    assert drilldown.open_trend_point(click, ctx, "ks_test") == (
        f"/run/357105/{sub}/{path}?comparator=ks_test"
    )
    assert drilldown.open_trend_point({"points": [{"x": str(run)}]}, ctx, "ks_test") is no_update
    assert drilldown.open_trend_point(None, ctx, "ks_test") is no_update


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (
            url_parts(357108, "CSC", "Segments/hSTimeDiff_m11"),
            "'Segments/hSTimeDiff_m11a'",
        ),
        (url_parts(357108, "CSC", "Nope/hX"), "has no result for histogram 'Nope/hX'"),
        (
            url_parts(0, "CSC", "Segments/hSChiSq").__or__({"run": "3571O8"}),
            "'3571O8' is not a run number",
        ),
        (url_parts(357108, "CSX", "Segments/hSChiSq"), "unknown subsystem 'CSX'"),
        (url_parts(999999, "CSC", "Segments/hSChiSq"), "run 999999 has no stored results"),
        ({"run": "357108", "subsystem": "CSC"}, "expected /run/<run>/<subsystem>/<histogram path>"),
    ],
)
def test_bad_urls_get_a_clear_message(app: Dash, parts: dict[str, str], expected: str) -> None:
    with app.server.test_request_context():
        page = drilldown.layout(**parts)
    assert page.id == "message-page"
    assert expected in text(page)


def test_the_router_sends_histogram_urls_to_the_drilldown(app: Dash) -> None:
    run, sub, path = FLAGGED_1D
    client = app.server.test_client()
    client.get("/")
    deps = client.get("/_dash-dependencies").get_json()
    outputs = " ".join(d["output"] for d in deps)
    assert "drill-panel.children" in outputs
    assert "drill-verdict.children" in outputs
    router = next(d for d in deps if "_pages_content.children" in d["output"])
    for url, word in [
        (f"/run/{run}/{sub}/{path}", "drill-root"),
        (f"/run/{run}/{sub}", "runsub-grid"),
    ]:
        payload = {
            "output": router["output"],
            "outputs": [{"id": "_pages_content", "property": "children"},
                        {"id": "_pages_store", "property": "data"}],
            "inputs": [{"id": "_pages_location", "property": "pathname", "value": url},
                       {"id": "_pages_location", "property": "search", "value": ""}],
            "changedPropIds": ["_pages_location.pathname"], "state": [],
        }  # fmt: skip
        resp = client.post("/_dash-update-component", json=payload)
        assert resp.status_code == 200
        assert word in resp.get_data(as_text=True)


def test_a_missing_dqm_file_leaves_the_stored_results_on_the_page(
    demo_site: Any, tmp_path: Path
) -> None:
    run, sub, path = FLAGGED_1D
    partial = tmp_path / "demo"
    shutil.copytree(demo_site.demo, partial)
    for f in partial.rglob(f"*R000{run}__*.root"):
        f.unlink()
    toml = demo_site.config_path.read_text().replace(str(demo_site.demo), str(partial))
    (tmp_path / "autodqm.toml").write_text(
        toml.replace('cache_dir = "store"', f'cache_dir = "{demo_site.root / "store"}"')
    )
    config = load_service_config(tmp_path / "autodqm.toml", build_registry())
    app = create_app(config, demo_site.store)
    with app.server.test_request_context():
        page = drilldown.layout(**url_parts(run, sub, path))
    words = text(page)
    assert (
        f"the DQM file of data run {run} is not available from the source (no file of run {run}"
        in words
    )
    assert "Flagged by beta_binomial" in words  # stored scores and reason still shown
    assert find(page, "drill-trend").figure.data
    assert getattr(find(page, "drill-figure"), "figure", None) is None


def test_without_a_service_config_the_page_says_there_is_no_source(demo_site: Any) -> None:
    run, sub, path = FLAGGED_1D
    store = open_store(demo_site.root / "store")
    app = create_app(Settings(cache_dir=demo_site.root / "store"), store)
    with app.server.test_request_context():
        page = drilldown.layout(**url_parts(run, sub, path))
    assert "has no data source to read DQM files from" in text(page)
    assert "Flagged by" in text(page)
