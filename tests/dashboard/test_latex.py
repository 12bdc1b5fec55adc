"""dashboard.latex: ROOT TLatex titles of real CMS DQM histograms as unicode text."""

# ruff: noqa: RUF001 - expected titles hold greek letters and the multiplication sign
from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboard.latex import SYMBOLS, clean_root_latex


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("#eta vs #phi", "η vs φ"),
        ("Timing [ns]", "Timing [ns]"),
        ("#chi^{2}/ndf", "χ²/ndf"),
        ("p_{T} [GeV]", "p_T [GeV]"),
        ("#splitline{ME+1/1}{ring 1}", "ME+1/1 / ring 1"),
        ("Segment #theta [rad]", "Segment θ [rad]"),
        ("#Delta#phi(seg, rechit)", "Δφ(seg, rechit)"),
        ("#mu p_{T} resolution", "μ p_T resolution"),
        ("#sigma_{x} [cm]", "σₓ [cm]"),
        ("Local #phi [#circ]", "Local φ [°]"),
        ("#Delta t [#mus]", "Δ t [μs]"),  # TLatex matches command names by prefix
        ("E #times 10^{6}", "E × 10⁶"),
        ("x^{-3}", "x⁻³"),
        ("#pm 3#sigma", "± 3σ"),
        ("#sqrt{s} = 13.6 TeV", "√s = 13.6 TeV"),
        ("#sqrt{x+y}", "√(x+y)"),
        ("#sqrt[3]{x}", "∛x"),
        ("#bar{p}", "p\u0304"),
        ("#font[42]{Occupancy}", "Occupancy"),
        ("#color[2]{bad chambers}", "bad chambers"),
        ("#it{p}_{T}", "p_T"),
        ("#bf{CMS} #it{Preliminary}", "CMS Preliminary"),
        ("#font[22]{#color[4]{E_{T}}}", "E_T"),
        ("E_{T}^{miss}", "E_Tᵐⁱˢˢ"),
        ("#frac{1}{2}", "1/2"),
        ("#left(#frac{a}{b}#right)", "(a/b)"),
        ("N_{hits}", "Nₕᵢₜₛ"),
        ("m_{#mu#mu} [GeV]", "m_(μμ) [GeV]"),
        ("x^2", "x²"),
        ("#{a#}", "{a}"),  # escaped braces
        ("#", "#"),
        ("Chamber #1 hits", "Chamber #1 hits"),  # '#' before a digit is text
        ("ME_1_1 occupancy", "ME_1_1 occupancy"),  # a bare underscore is text
        ("#unknowncmd value", "unknowncmd value"),
        ("a}b", "ab"),  # a stray closing brace
        ("{unclosed", "unclosed"),
        ("", ""),
        ("  #eta  ", "η"),
    ],
)
def test_real_titles(title: str, expected: str) -> None:
    assert clean_root_latex(title) == expected


def test_greek_table_is_complete() -> None:
    lower = [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "epsilon",
        "zeta",
        "eta",
        "theta",
        "iota",
        "kappa",
        "lambda",
        "mu",
        "nu",
        "xi",
    ]
    lower += ["omicron", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega"]
    for name in lower + [n.capitalize() for n in lower]:
        assert len(SYMBOLS[name]) == 1
        assert clean_root_latex(f"#{name}") == SYMBOLS[name]


@given(st.text(alphabet=st.characters(blacklist_characters="#^{}"), max_size=60))
def test_plain_text_unchanged(text: str) -> None:
    assert clean_root_latex(text) == text


@given(st.text(alphabet="#^_{}[]ab 12etaphisqrtbarsplitlinefont", max_size=80))
def test_never_raises_on_any_input(text: str) -> None:
    out = clean_root_latex(text)
    assert isinstance(out, str)
    assert len(out) <= 4 * len(text) + 2


@pytest.mark.parametrize(
    "text",
    ["{" * 100_000, "}" * 100_000, "#" * 100_000, "^{" * 50_000, "#sqrt{" * 30_000, "_{x" * 40_000],
)
def test_pathological_input_is_linear(text: str) -> None:
    start = time.perf_counter()
    out = clean_root_latex(text)
    assert time.perf_counter() - start < 2.0  # a catastrophic (quadratic) parse takes minutes
    assert isinstance(out, str)
