"""dashboard.figures: the drill-down figures, checked through fig.data and fig.layout."""

# ruff: noqa: RUF001 - expected titles hold greek letters and the multiplication sign
from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest

from dashboard import figures
from dashboard.figures import (
    STATUS_STYLE,
    empty_figure,
    figure_for,
    overlay_1d,
    profile_plot,
    pull_map_2d,
    trend,
)
from engine.registry import build_registry
from engine.types import ComparisonResult, HistData, HistKind, Status

ROOT = Path(__file__).resolve().parents[2]
MakeHist = Callable[..., HistData]


def valid(fig: go.Figure) -> go.Figure:
    """Rebuild with plotly's validation: every property must exist and have a legal value."""
    assert isinstance(fig, go.Figure)
    go.Figure(fig.to_plotly_json())  # raises ValueError on an unknown property or bad value
    return fig


def res(comparator: str = "beta_binomial", **arrays: object) -> ComparisonResult:
    return ComparisonResult(
        comparator=comparator,
        path="h",
        status=Status.FLAGGED,
        score=2.0,
        threshold=1.0,
        arrays={k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()},
    )


def by_name(fig: go.Figure, name: str) -> list[go.Scatter]:
    return [t for t in fig.data if t.name == name]


def steps(trace: go.Scatter) -> np.ndarray:
    """The per-bin values of a step line (its last point repeats the last bin)."""
    return np.asarray(trace.y)[:-1]


def assert_red_blue(scale: object) -> None:
    """An explicit diverging scale (plotly.js knows no "RdBu_r" name): blue low, red high."""
    assert not isinstance(scale, str)
    stops = [tuple(s) for s in scale]  # type: ignore[attr-defined]
    assert stops[0] == (0.0, "rgb(5,48,97)")
    assert stops[-1] == (1.0, "rgb(103,0,31)")


# ---------------------------------------------------------------- overlay_1d


def test_overlay_traces_rows_and_normalisation(make_hist: MakeHist) -> None:
    data = make_hist([10.0, 20.0, 30.0, 40.0], 357130, variances=[4.0, 9.0, 16.0, 25.0])
    refs = [make_hist([1.0, 2.0, 3.0, 4.0], 357100), make_hist([2.0, 2.0, 2.0, 2.0], 357101)]
    pulls = [0.5, -12.0, 3.0, 30.0]
    rw = [11.0, 19.0, 31.0, 39.0]
    fig = valid(overlay_1d(data, refs, res(pulls=pulls, ref_weighted=rw), pull_cut=5.0))

    names = [t.name for t in fig.data]
    assert names == [
        "ref 357100",
        "ref 357101",
        "expected (probability-weighted)",
        "data 357130",
        "data 357130",
        "pull",
    ]
    ref0, ref1, expected, data_line, data_pts, pull = fig.data
    # references: one legend entry per run in one group, normalised to the data's 100 entries
    assert {ref0.legendgroup, ref1.legendgroup} == {"references"}
    np.testing.assert_allclose(steps(ref0), [10, 20, 30, 40])
    np.testing.assert_allclose(steps(ref1), [25, 25, 25, 25])
    assert ref0.opacity < 1
    assert ref0.line.width < data_line.line.width
    np.testing.assert_allclose(steps(expected), rw)
    assert expected.line.dash == "dash"
    # data: a step line over the edges and points with sqrt(variances) error bars
    np.testing.assert_allclose(data_line.x, [0, 1, 2, 3, 4])
    assert data_line.line.shape == "hv"
    np.testing.assert_allclose(data_pts.x, [0.5, 1.5, 2.5, 3.5])
    np.testing.assert_allclose(data_pts.error_y.array, [2, 3, 4, 5])
    assert not data_pts.showlegend
    # pulls: bars on the second row, capped for drawing, coloured by the uncapped value
    assert pull.type == "bar"
    assert (pull.xaxis, pull.yaxis) == ("x2", "y2")
    np.testing.assert_allclose(pull.y, [0.5, -10, 3, 10])
    np.testing.assert_allclose(pull.marker.color, pulls)
    assert (pull.marker.cmin, pull.marker.cmax) == (-10, 10)
    assert_red_blue(pull.marker.colorscale)
    assert all(t.xaxis in (None, "x") for t in fig.data[:-1])


def test_overlay_layout_rows_cut_lines_and_meta(make_hist: MakeHist) -> None:
    data = make_hist([5.0, 6.0], 357130, path="CSC/Timing", title="#chi^{2}/ndf")
    data = HistData(**{**_fields(data), "axis_titles": ("#eta", "p_{T} [GeV]")})
    fig = valid(overlay_1d(data, [], res(pulls=[1, 2]), pull_cap=4, pull_cut=3.0))
    lay = fig.layout
    assert lay.title.text == "χ²/ndf"
    assert lay.xaxis2.title.text == "η"
    assert lay.yaxis.title.text == "p_T [GeV]"
    assert lay.yaxis2.title.text == "pull (σ)"
    assert lay.yaxis2.range == (-4.4, 4.4)
    assert lay.xaxis.matches == "x2"
    assert lay.xaxis.showticklabels is False
    top, bottom = lay.yaxis.domain, lay.yaxis2.domain
    assert bottom[1] < top[0]
    assert 0.6 < (top[1] - top[0]) / (top[1] - top[0] + bottom[1] - bottom[0]) < 0.8
    cuts = sorted(s.y0 for s in lay.shapes)
    assert cuts == [-3.0, 3.0]
    assert all(s.line.dash == "dash" and s.yref == "y2" for s in lay.shapes)
    assert lay.meta == {"path": "CSC/Timing", "run": 357130, "comparator": "beta_binomial"}
    assert lay.paper_bgcolor == "rgba(0,0,0,0)"
    assert lay.template.layout.plot_bgcolor == "white"  # plotly_white
    assert "system-ui" in lay.font.family
    assert valid(overlay_1d(data, [], None, title="custom")).layout.title.text == "custom"


def _fields(h: HistData) -> dict[str, object]:
    return {f: getattr(h, f) for f in HistData.__slots__}  # type: ignore[attr-defined]


def test_overlay_hover_carries_counts_expected_and_pull(make_hist: MakeHist) -> None:
    data = make_hist([7.0, 9.0], 1, edges=[[0.0, 2.5, 5.0]])
    fig = valid(overlay_1d(data, [], res(pulls=[1.5, -2.0], ref_weighted=[6.0, 10.0])))
    pts = by_name(fig, "data 1")[1]
    for trace in (pts, fig.data[-1]):
        tpl = trace.hovertemplate
        assert "data:" in tpl
        assert "expected:" in tpl
        assert "pull:" in tpl
        assert "σ" in tpl
        assert "entries" in tpl
        cd = np.asarray(trace.customdata)
        np.testing.assert_allclose(cd[:, :5], [[0, 2.5, 7, 6, 1.5], [2.5, 5, 9, 10, -2]])
    # without a comparison the hover says nothing about expectations
    tpl = by_name(valid(overlay_1d(data, [], None)), "data 1")[1].hovertemplate
    assert "data:" in tpl
    assert "expected" not in tpl
    assert "pull" not in tpl


def test_overlay_uses_bin_labels(make_hist: MakeHist) -> None:
    labels = ("ME+1/1", "ME+1/2", "#splitline{ME+1/3}{ring 1}")
    data = make_hist([1.0, 2.0, 3.0], 1, labels=[labels])
    fig = valid(overlay_1d(data, [], res(pulls=[0, 1, 2])))
    xaxis = fig.layout.xaxis2
    assert xaxis.tickmode == "array"
    assert list(xaxis.tickvals) == [0, 1, 2]
    assert xaxis.ticktext == ("ME+1/1", "ME+1/2", "ME+1/3 / ring 1")
    pts = by_name(fig, "data 1")[1]
    assert pts.text == xaxis.ticktext
    assert "%{text}" in pts.hovertemplate
    np.testing.assert_allclose(pts.x, [0, 1, 2])


def test_overlay_log_y_keeps_zeros_at_the_floor(make_hist: MakeHist) -> None:
    data = make_hist([0.0, 4.0, 100.0, 0.0], 1)
    ref = make_hist([2.0, 0.0, 50.0, 1.0], 2)
    fig = valid(overlay_1d(data, [ref], res(ref_weighted=[0.0, 3, 99, 1]), logy=True))
    assert fig.layout.yaxis.type == "log"
    line, pts = by_name(fig, "data 1")
    np.testing.assert_allclose(steps(line), [0.5, 4, 100, 0.5])  # floor: half the smallest > 0
    np.testing.assert_allclose(pts.y, [0.5, 4, 100, 0.5])
    np.testing.assert_allclose(np.asarray(pts.customdata)[:, 2], [0, 4, 100, 0])  # true counts
    assert np.all(np.asarray(by_name(fig, "ref 2")[0].y) > 0)


def test_overlay_log_x(make_hist: MakeHist) -> None:
    data = make_hist([1.0, 2.0, 3.0], 1, edges=[[0.0, 1.0, 10.0, 100.0]])
    fig = valid(overlay_1d(data, [], None, logx=True))
    assert fig.layout.xaxis.type == fig.layout.xaxis2.type == "log"
    line = by_name(fig, "data 1")[0]
    np.testing.assert_allclose(line.x, [0.1, 1, 10, 100])  # the 0 edge drawn at a tenth
    hover = np.asarray(by_name(fig, "data 1")[1].customdata)
    np.testing.assert_allclose(hover[0, :2], [0, 1])  # the hover keeps the true edges
    negative = make_hist([1.0, 2.0], 1, edges=[[-2.0, -1.0, 0.0]])
    assert valid(overlay_1d(negative, [], None, logx=True)).layout.xaxis.type == "linear"


def test_overlay_variable_binning(make_hist: MakeHist) -> None:
    edges = [0.0, 1.0, 3.0, 7.0]
    data = make_hist([1.0, 2.0, 3.0], 1, edges=[edges])
    fig = valid(overlay_1d(data, [], res(pulls=[1, 2, 3])))
    np.testing.assert_allclose(by_name(fig, "data 1")[0].x, edges)
    np.testing.assert_allclose(fig.data[-1].width, [1, 2, 4])
    np.testing.assert_allclose(fig.data[-1].x, [0.5, 2, 5])


def test_overlay_without_result_says_there_are_no_pulls(make_hist: MakeHist) -> None:
    fig = valid(overlay_1d(make_hist([1.0, 2.0], 1), [make_hist([1.0, 1.0], 2)], None))
    assert [t.type for t in fig.data] == ["scatter"] * 3
    assert any("no per-bin pulls" in a.text for a in fig.layout.annotations)
    assert fig.layout.meta["comparator"] is None


def test_overlay_ks_and_pca_arrays(make_hist: MakeHist) -> None:
    data = make_hist([1.0, 2.0, 3.0], 1)
    ks = res("ks_test", ref=[2, 2, 2], cdf_diff=[0.1, 0.0, 0.0])
    fig = valid(overlay_1d(data, [], ks))
    np.testing.assert_allclose(steps(by_name(fig, "expected (reference scaled to data)")[0]), 2)


def test_overlay_odd_input_never_breaks(make_hist: MakeHist) -> None:
    one_bin = valid(overlay_1d(make_hist([5.0], 1), [make_hist([7.0], 2)], res(pulls=[0.3])))
    np.testing.assert_allclose(steps(by_name(one_bin, "ref 2")[0]), [5.0])
    nan = make_hist([1.0, np.nan, np.inf, 2.0], 1)
    fig = valid(overlay_1d(nan, [make_hist([1.0, 1, 1, 1], 2)], res(pulls=[np.nan] * 4)))
    assert len(fig.data) == 4
    # a reference with other binning is named in a note, not drawn
    fig = valid(overlay_1d(make_hist([1.0, 2.0], 1), [make_hist([1.0, 2.0, 3.0], 357102)], None))
    assert not by_name(fig, "ref 357102")
    assert any("ref 357102 not drawn" in a.text for a in fig.layout.annotations)
    # arrays of the wrong shape, and broken edges, are ignored
    bad = make_hist([1.0, 2.0], 1, edges=[[0.0, 0.0, 0.0]])
    fig = valid(overlay_1d(bad, [], res(pulls=[1, 2, 3], ref_weighted=[1.0])))
    assert [t.name for t in fig.data] == ["data 1", "data 1"]
    np.testing.assert_allclose(fig.data[0].x, [0, 1, 2])
    empty = make_hist(np.zeros(0), 1)
    assert valid(overlay_1d(empty, [], None)).layout.meta["empty"] is True


# ---------------------------------------------------------------- pull_map_2d


def _map_data(make_hist: MakeHist) -> tuple[HistData, list[HistData]]:
    v = np.array([[0.0, 5.0, 1.0], [0.0, 7.0, 2.0]])  # indexed [x, y]: 2 x bins, 3 y bins
    data = make_hist(v, 357130, axis_titles=("#eta", "#phi"))
    ref = make_hist(np.array([[0.0, 10.0, 0.0], [4.0, 14.0, 4.0]]), 357100)
    return data, [ref]


def test_pull_map_three_heatmaps_with_scales(make_hist: MakeHist) -> None:
    data, refs = _map_data(make_hist)
    pulls = np.array([[0.0, 1.0, 30.0], [-2.0, 0.5, -1.0]])
    fig = valid(
        pull_map_2d(data, refs, res("pull_values", pulls=pulls, ref=pulls + 9), pull_cap=25)
    )
    assert [t.type for t in fig.data] == ["heatmap"] * 3
    pull, dmap, rmap = fig.data
    assert [(t.xaxis, t.yaxis) for t in fig.data] == [("x", "y"), ("x2", "y2"), ("x3", "y3")]
    assert (pull.zmin, pull.zmax, pull.zmid) == (-25, 25, 0)
    assert_red_blue(pull.colorscale)
    assert dmap.colorscale == rmap.colorscale
    assert dmap.colorscale[0][1] == "#440154"
    assert fig.layout.yaxis2.showticklabels is False  # the panels share the first y axis
    assert (dmap.zmin, dmap.zmax) == (rmap.zmin, rmap.zmax)
    # z is [y][x]: the transpose of HistData's [x, y]
    z = np.asarray(dmap.z, dtype=float)
    assert z.shape == (3, 2)
    assert z[1, 1] == 7.0
    assert z[2, 0] == 1.0
    np.testing.assert_allclose(np.asarray(pull.z, dtype=float)[2], [30.0, -1.0])
    np.testing.assert_allclose(np.asarray(rmap.z, dtype=float)[1], [10.0, 9.5])
    assert rmap.name == "expected (reference scaled to data)"
    lay = fig.layout
    assert lay.xaxis2.matches == lay.xaxis3.matches == "x"
    assert lay.yaxis2.matches == lay.yaxis3.matches == "y"
    assert lay.xaxis.title.text == "η"
    assert lay.yaxis.title.text == "φ"
    assert lay.xaxis.domain[1] < lay.xaxis2.domain[0] < lay.xaxis2.domain[1] < lay.xaxis3.domain[0]
    assert lay.meta == {"path": "h", "run": 357130, "comparator": "pull_values"}
    assert {"pull (σ)", "data 357130"} <= {a.text.strip("</b>") for a in lay.annotations}


def test_pull_map_blank_bins_and_hover(make_hist: MakeHist) -> None:
    data, refs = _map_data(make_hist)
    pulls, rw = np.arange(6.0).reshape(2, 3) - 2, np.full((2, 3), 4.0)
    rw[0, 0] = 0.0  # as beta_binomial: nothing expected where the references are empty
    fig = valid(pull_map_2d(data, refs, res(pulls=pulls, ref_weighted=rw)))
    for trace in fig.data:
        z = np.asarray(trace.z, dtype=float)
        assert np.isnan(z[0, 0])  # empty in the data and the reference: blank
        assert np.isfinite(z[0, 1])  # empty in the data only: drawn
        assert trace.hoverongaps is False
        assert "η %{x" in trace.hovertemplate
        assert "φ %{y" in trace.hovertemplate
    # each map's hover reads its own value from z and the other two from customdata
    truth = {"pull": pulls.T, "data": data.values.T, "expected": rw.T}
    for trace, own in zip(fig.data, ("pull", "data", "expected"), strict=True):
        z, cd = np.asarray(trace.z, dtype=float), np.asarray(trace.customdata, dtype=float)
        assert cd.shape == (3, 2, 2)
        for line in trace.hovertemplate.split("<br>")[1:4]:
            quantity = line.split(":")[0]
            shown = z if "%{z" in line else cd[..., int(line.split("customdata[")[1][0])]
            assert (quantity == own) == ("%{z" in line)
            np.testing.assert_allclose(shown[1:], truth[quantity][1:])  # row 0 has a blank bin
    assert "pull: %{z:+.2f} σ" in fig.data[0].hovertemplate
    assert "entries" in fig.data[1].hovertemplate


def test_pull_map_reference_fallback_and_labels(make_hist: MakeHist) -> None:
    v = np.ones((2, 2)) * 10
    labels = (("ME+1/1", "ME+1/2"), ("ring 1", "ring 2"))
    data = make_hist(v, 1, labels=labels)
    refs = [make_hist(v * 2, 2), make_hist(v * 4, 3), make_hist(np.ones((3, 3)), 4)]
    fig = valid(pull_map_2d(data, refs, None))
    rmap = fig.data[2]
    assert rmap.name == "mean of 2 reference(s) scaled to data"
    np.testing.assert_allclose(np.asarray(rmap.z, dtype=float), 10.0)
    assert fig.layout.xaxis.ticktext == ("ME+1/1", "ME+1/2")
    assert fig.layout.yaxis.ticktext == ("ring 1", "ring 2")
    assert np.asarray(rmap.text)[1, 0] == "ME+1/1 × ring 2"
    assert "%{text}" in rmap.hovertemplate
    assert "no pulls" in rmap.hovertemplate
    assert any("ref 4 not drawn" in a.text for a in fig.layout.annotations)
    assert np.all(np.isnan(np.asarray(fig.data[0].z, dtype=float)))


def test_pull_map_without_any_reference(make_hist: MakeHist) -> None:
    fig = valid(pull_map_2d(make_hist(np.ones((2, 2)), 1), [], None))
    assert fig.data[2].name == "no reference with this binning"
    assert np.all(np.isnan(np.asarray(fig.data[2].z, dtype=float)))


# ---------------------------------------------------------------- profiles


def _profile(values: object, entries: object, run: int, errors: object) -> HistData:
    v = np.asarray(values, dtype=np.float64)
    return HistData(
        path="p",
        run=run,
        values=v,
        variances=np.asarray(errors, dtype=np.float64) ** 2,
        edges=tuple(np.arange(n + 1, dtype=np.float64) for n in v.shape),
        kind=HistKind.PROFILE if v.ndim == 1 else HistKind.PROFILE2D,
        bin_entries=np.asarray(entries, dtype=np.float64),
    )


def test_profile_1d_means_band_and_pulls() -> None:
    data = _profile([1.0, 2.0, 0.0], [10, 20, 0], 9, [0.1, 0.2, 0.0])
    ref = _profile([1.1, 2.1, 3.0], [10, 20, 30], 8, [0.1, 0.1, 0.1])
    result = res("profile_pull", pulls=[-1, -0.5, 0], ref_mean=[1.1, 2.1, 3], ref_error=[0.2] * 3)
    fig = valid(profile_plot(data, [ref], result, pull_cut=6))
    pts = by_name(fig, "data 9")[0]
    np.testing.assert_allclose(np.asarray(pts.y, dtype=float)[:2], [1, 2])
    assert np.isnan(np.asarray(pts.y, dtype=float)[2])  # no entries: not drawn
    np.testing.assert_allclose(pts.error_y.array, [0.1, 0.2, 0.0])
    upper, lower, mid = (t for t in fig.data if t.legendgroup == "expected")
    np.testing.assert_allclose(steps(upper), [1.3, 2.3, 3.2])
    assert lower.fill == "tonexty"
    assert mid.name == "expected (weighted reference mean)"
    assert by_name(fig, "ref 8")[0].marker.symbol == "circle-open"
    assert fig.data[-1].type == "bar"
    assert fig.layout.yaxis.title.text == "mean"
    assert "(mean)" in pts.hovertemplate


def test_profile_2d_draws_maps_of_means() -> None:
    data = _profile(np.ones((2, 2)), np.ones((2, 2)), 1, np.ones((2, 2)))
    result = res("profile_pull", pulls=np.zeros((2, 2)), ref_mean=np.full((2, 2), 3.0))
    fig = valid(profile_plot(data, [], result))
    assert [t.type for t in fig.data] == ["heatmap"] * 3
    assert fig.data[2].name == "expected (weighted reference mean)"
    np.testing.assert_allclose(np.asarray(fig.data[2].z, dtype=float), 3.0)


# ---------------------------------------------------------------- trend


def test_trend_status_is_symbol_colour_and_text() -> None:
    points = [(357102, "ok", 0.4), (357100, "flagged", 3.5), (357101, "skipped", 0.0)]
    points += [(357103, "error", float("nan")), (357104, "weird", 0.2)]
    fig = valid(trend(points, threshold=1.0, title="CSC timing"))
    line, *markers = fig.data
    assert list(line.x) == ["357100", "357101", "357102", "357103", "357104"]
    np.testing.assert_allclose(line.y, [3.5, np.nan, 0.4, np.nan, 0.2])  # no line via skip/error
    seen = {t.name: t for t in markers}
    assert set(seen) == {"ok", "flagged", "skipped", "error", "weird"}
    for status, (symbol, colour) in STATUS_STYLE.items():
        assert seen[status].marker.symbol == symbol
        assert seen[status].marker.color == colour
        assert status in seen[status].hovertemplate
    assert seen["weird"].marker.symbol == "circle-open"
    np.testing.assert_allclose(seen["error"].y, [0.0])  # a non-finite score is drawn at 0
    assert list(seen["flagged"].x) == ["357100"]
    lay = fig.layout
    assert lay.xaxis.type == "category"
    assert list(lay.xaxis.categoryarray) == list(line.x)
    assert lay.yaxis.title.text == "severity (× cut)"
    (cut,) = lay.shapes
    assert (cut.y0, cut.y1, cut.line.dash) == (1.0, 1.0, "dash")
    assert lay.title.text == "CSC timing"
    assert not valid(trend(points, threshold=None)).layout.shapes
    assert valid(trend([])).layout.meta["empty"] is True


# ---------------------------------------------------------------- dispatch


def test_figure_for_dispatches_on_kind_and_dimension(make_hist: MakeHist) -> None:
    h1, h2 = make_hist([1.0, 2.0], 1), make_hist(np.ones((2, 2)), 1)
    assert [t.type for t in valid(figure_for("overlay", h1, [], None)).data] == ["scatter"] * 2
    assert {t.type for t in valid(figure_for("overlay", h2, [], None)).data} == {"heatmap"}
    assert {t.type for t in valid(figure_for("pull_map", h2, [], None)).data} == {"heatmap"}
    assert valid(figure_for("pull_map", h1, [], None)).layout.yaxis2.title.text == "pull (σ)"
    prof = valid(figure_for("profile", h1, [], None))
    assert prof.layout.yaxis.title.text == "mean"
    # options a builder does not take are dropped; the others are passed on
    fig = valid(figure_for("pull_map", h2, [], None, logy=True, logx=True, pull_cap=3))
    assert fig.data[0].zmax == 3
    assert valid(figure_for("overlay", h1, [], None, logy=True)).layout.yaxis.type == "log"


@pytest.mark.parametrize(
    ("kind", "values", "message"),
    [
        ("none", [1.0], "has no plot"),
        ("sparkline", [1.0], "unknown plot kind 'sparkline'"),
        ("overlay", np.ones((2, 2, 2)), "cannot draw a 3D histogram"),
        ("overlay", np.float64(3.0), "cannot draw a 0D histogram"),
        ("overlay", np.zeros(0), "nothing to draw"),
        ("pull_map", np.zeros((0, 3)), "nothing to draw"),
    ],
)
def test_figure_for_explains_what_it_cannot_draw(
    make_hist: MakeHist, kind: str, values: object, message: str
) -> None:
    data = HistData(path="h", run=1, values=np.asarray(values), variances=None, edges=())
    fig = valid(figure_for(kind, data, [], res()))
    assert fig.layout.meta["empty"] is True
    assert message in fig.layout.meta["message"]
    assert fig.layout.annotations[0].text == fig.layout.meta["message"]
    assert (fig.layout.annotations[0].x, fig.layout.annotations[0].y) == (0.5, 0.5)


def test_figure_for_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    broken = HistData(path="h", run=1, values=np.array(["a", "b"]), variances=None, edges=())
    with caplog.at_level(logging.ERROR, logger="dashboard.figures"):
        fig = valid(figure_for("overlay", broken, [], None))
    assert "cannot draw h: ValueError" in fig.layout.meta["message"]
    assert caplog.records


def test_empty_figure() -> None:
    fig = valid(empty_figure("run 357130 has no CSC histograms in its file"))
    assert fig.data == ()
    assert fig.layout.xaxis.visible is False
    assert fig.layout.annotations[0].text == "run 357130 has no CSC histograms in its file"


def test_cached_template_is_not_shared_between_figures(make_hist: MakeHist) -> None:
    fig = overlay_1d(make_hist([1.0], 1), [], None)
    fig.layout.template.layout.font.size = 99
    assert overlay_1d(make_hist([1.0], 1), [], None).layout.template.layout.font.size != 99


# ---------------------------------------------------------------- end to end


def test_real_comparators_drawn_end_to_end(make_hist: MakeHist) -> None:
    rng = np.random.default_rng(7)
    registry = build_registry()
    shape1 = rng.uniform(50, 500, size=40)
    data1 = make_hist(rng.poisson(shape1), 357130, path="Timing")
    refs1 = [make_hist(rng.poisson(2 * shape1), 357100 + i, path="Timing") for i in range(3)]
    bb = registry.build("beta_binomial", {})
    r1 = bb.compare(data1, refs1)
    fig = valid(figure_for(bb.plot_kind, data1, refs1, r1, pull_cap=bb.pull_cap))
    assert [t.name for t in fig.data[:3]] == ["ref 357100", "ref 357101", "ref 357102"]
    np.testing.assert_allclose(
        steps(by_name(fig, "expected (probability-weighted)")[0]), r1.arrays["ref_weighted"]
    )
    np.testing.assert_allclose(fig.data[-1].marker.color, r1.arrays["pulls"])

    shape2 = rng.uniform(100, 1000, size=(12, 8))
    data2 = make_hist(rng.poisson(shape2), 357130, path="Occupancy")
    refs2 = [make_hist(rng.poisson(shape2), 357100, path="Occupancy")]
    pv = registry.build("pull_values", {"min_entries": 0})
    r2 = pv.compare(data2, refs2)
    fig = valid(figure_for(pv.plot_kind, data2, refs2, r2, pull_cap=pv.pull_cap))
    np.testing.assert_allclose(np.asarray(fig.data[0].z, dtype=float), r2.arrays["pulls"].T)
    np.testing.assert_allclose(np.asarray(fig.data[2].z, dtype=float), r2.arrays["ref"].T)
    assert fig.data[0].zmax == pv.pull_cap == 25
    r3 = bb.compare(data2, refs2)  # beta_binomial is an overlay comparator that runs on 2D
    fig = valid(figure_for(bb.plot_kind, data2, refs2, r3))
    assert fig.data[2].name == "expected (probability-weighted)"


def test_importing_figures_does_not_import_dash() -> None:
    code = "import sys, dashboard.figures, dashboard.latex; print('dash' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
    assert "import dash" not in (ROOT / "dashboard" / "figures.py").read_text()
    assert figures.__name__ == "dashboard.figures"


def test_learned_normal_range_is_a_band_and_profiles_tests_of_means_draw_as_profiles(
    make_hist: MakeHist,
) -> None:
    data = make_hist(np.array([10.0, 20.0, 30.0]), 9)
    ref = make_hist(np.array([11.0, 19.0, 31.0]), 8)
    result = res("variation_scan", pulls=[0, 0.2, -0.1], expected=[10, 20, 30], band=[1, 2, 3])
    fig = valid(figure_for("overlay", data, [ref], result))
    upper, lower, mid = (t for t in fig.data if t.legendgroup == "expected")
    np.testing.assert_allclose(steps(upper), [11, 22, 33])
    np.testing.assert_allclose(steps(lower), [9, 18, 27])
    assert lower.fill == "tonexty"
    assert mid.name == "normal (learned from the references)"
    prof = _profile([0.9, 0.8], [10, 20], 9, [0.1, 0.1])
    means = res("variation_scan", pulls=[0, -3], ref_mean=[0.9, 0.95], ref_error=[0.01, 0.01])
    fig = valid(figure_for("overlay", prof, [_profile([0.9, 0.95], [10, 20], 8, [0.1] * 2)], means))
    assert by_name(fig, "expected (weighted reference mean)")
    np.testing.assert_allclose(np.asarray(by_name(fig, "data 9")[0].y, dtype=float), [0.9, 0.8])


def test_the_worst_region_is_outlined(make_hist: MakeHist) -> None:
    region = np.zeros(6)
    region[2:4] = 1
    fig = valid(figure_for("overlay", make_hist(np.arange(6.0) + 5, 9),
                           [make_hist(np.arange(6.0) + 5, 8)], res("region_scan", pulls=np.zeros(6), region=region)))  # fmt: skip
    (box,) = [s for s in fig.layout.shapes if s.type == "rect"]
    assert (box.x0, box.x1, box.yref) == (2.0, 4.0, "paper")
    assert box.label.text == "worst region"
    reg2 = np.zeros((4, 3))
    reg2[1:3, 2] = 1
    data = make_hist(np.ones((4, 3)) * 5, 9)
    fig = valid(figure_for("pull_map", data, [make_hist(np.ones((4, 3)) * 5, 8)],
                           res("variation_scan", pulls=np.zeros((4, 3)), region=reg2)))  # fmt: skip
    boxes = [s for s in fig.layout.shapes if s.type == "rect"]
    assert [(b.xref, b.x0, b.x1, b.y0, b.y1) for b in boxes] == [
        (x, 1.0, 3.0, 2.0, 3.0) for x in ("x", "x2", "x3")]  # fmt: skip
    assert not [s for s in valid(figure_for("overlay", make_hist(np.ones(6), 9), [], res())).layout.shapes
                if s.type == "rect"]  # fmt: skip
