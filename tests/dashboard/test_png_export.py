"""PNG export of plots: every graph of the drill-down downloads a 2x PNG named after it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dash import dcc

from dashboard.app import create_app
from dashboard.drill_view import graph_config
from dashboard.pages import drilldown

FLAGGED_1D = (357108, "CSC", "Segments/hSTimeDiff_m11a")  # the demo's injected timing shift


def walk(node: Any) -> Iterator[Any]:
    yield node
    children = getattr(node, "children", None) if not isinstance(node, (str, list, tuple)) else node
    if isinstance(node, str) or children is None:
        return
    for c in children if isinstance(children, (list, tuple)) else [children]:
        yield from walk(c)


def test_graph_config_names_the_png_after_run_subsystem_and_histogram() -> None:
    cfg = graph_config(357108, "CSC", "Segments/hSTimeDiff_m11a")
    assert cfg == {
        "toImageButtonOptions": {
            "format": "png",
            "filename": "357108_CSC_Segments_hSTimeDiff_m11a",
            "scale": 2,
        },
        "displaylogo": False,
    }
    trend = graph_config(1, "DT", "a/b/c", "ks_test_trend")
    assert trend["toImageButtonOptions"]["filename"] == "1_DT_a_b_c_ks_test_trend"


def test_every_drilldown_graph_exports_a_named_png(demo_site: Any) -> None:
    run, sub, path = FLAGGED_1D
    app = create_app(demo_site.config, demo_site.store)
    head, _, last = f"{run}/{sub}/{path}".rpartition("/")
    first, _, middle = head.rpartition("/")
    with app.server.test_request_context():
        page = drilldown.layout(
            run=first, subsystem=middle, histogram=last, comparator="beta_binomial"
        )
    graphs: list[Any] = [n for n in walk(page) if isinstance(n, dcc.Graph)]
    assert len(graphs) == 2  # the comparison and the trend
    names = []
    for g in graphs:
        opts = g.config["toImageButtonOptions"]
        assert opts["format"] == "png"
        assert opts["scale"] == 2
        assert g.config["displaylogo"] is False
        names.append(opts["filename"])
    assert names[0] == "357108_CSC_Segments_hSTimeDiff_m11a"
    assert names[1] == "357108_CSC_Segments_hSTimeDiff_m11a_beta_binomial_trend"
    assert all("/" not in n for n in names)
