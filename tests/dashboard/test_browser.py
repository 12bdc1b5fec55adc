"""Browser tests: the real WSGI app (waitress) in headless system Chromium via playwright.

Each page is loaded, checked for its words, screenshotted (a pytest tmp dir, and the
directory ``AUTODQM_SCREENSHOTS`` names when set), and must log no console error and
fetch nothing from outside the dashboard.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import waitress
from playwright import sync_api as playwright_api

from dashboard.app import create_app
from engine.settings import Settings
from engine.store import open_store

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--force-prefers-reduced-motion",
]  # fmt: skip

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(  # in CI a missing browser fails the tests instead
        not Path(CHROMIUM).exists() and not os.environ.get("CI"),
        reason=f"{CHROMIUM} is missing: apt-get install -y chromium (scripts/test does)",
    ),
]


@pytest.fixture(scope="session")
def base_url(
    tmp_path_factory: pytest.TempPathFactory, fill_store: Callable[[Any], None]
) -> Iterator[str]:
    """The dashboard over a filled store, served by waitress on a free local port."""
    root = tmp_path_factory.mktemp("browser")
    store = open_store(root / "store")
    fill_store(store)
    app = create_app(Settings(cache_dir=root / "store"), store)
    server = waitress.create_server(app.server, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.close()
    thread.join(timeout=5)
    store.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Where screenshots go: a tmp dir, plus $AUTODQM_SCREENSHOTS if set."""
    dirs = [tmp_path_factory.mktemp("screenshots")]
    extra = os.environ.get("AUTODQM_SCREENSHOTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        dirs.append(Path(extra))
    return dirs


@dataclass
class Tab:
    """A page with its console errors and the URLs it requested."""

    page: Any
    base: str
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def check(self) -> None:
        assert self.errors == []
        outside = [u for u in self.requests if not u.startswith((self.base, "data:"))]
        assert outside == []


@pytest.fixture
def tab(browser: Any, base_url: str) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    t = Tab(page, base_url)
    page.on("console", lambda m: t.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: t.errors.append(str(e)))
    page.on("request", lambda r: t.requests.append(r.url))
    page.set_default_timeout(15_000)
    yield t
    context.close()


def shoot(tab: Tab, shots: list[Path], name: str) -> None:
    tab.page.wait_for_load_state("networkidle")
    first = shots[0] / f"{name}.png"
    tab.page.screenshot(path=str(first), full_page=True)
    assert first.stat().st_size > 5_000
    for d in shots[1:]:
        shutil.copy(first, d / first.name)


def test_overview(tab: Tab, shots: list[Path]) -> None:
    expect = playwright_api.expect
    tab.page.goto(tab.base + "/")
    matrix = tab.page.locator("#overview-matrix table.matrix")
    expect(matrix).to_be_visible()
    expect(matrix).to_contain_text("✗ 3 flagged")
    expect(matrix).to_contain_text("! 1 error")
    expect(matrix).to_contain_text("○ 2 skipped")
    expect(tab.page.locator(".alert-banner")).to_contain_text("1 unacknowledged alert")
    expect(tab.page.locator("#shell-navbar")).to_be_visible()
    expect(tab.page.locator("#shell-footer")).to_contain_text("All times in UTC")
    shoot(tab, shots, "overview")
    tab.check()


def test_kiosk(tab: Tab, shots: list[Path]) -> None:
    expect = playwright_api.expect
    tab.page.goto(tab.base + "/?kiosk=1")
    expect(tab.page.locator("#overview-matrix table.matrix")).to_contain_text("✗ 3 flagged")
    expect(tab.page.locator("#shell-root")).to_have_class("kiosk")
    expect(tab.page.locator("#shell-navbar")).to_be_hidden()
    expect(tab.page.locator("#overview-status")).to_contain_text("highlighted: CSC (1/4)")
    size = tab.page.eval_on_selector("#shell-root", "e => getComputedStyle(e).fontSize")
    assert float(size.removesuffix("px")) > 18
    shoot(tab, shots, "overview-kiosk")
    tab.check()


@pytest.mark.parametrize(
    ("path", "words", "name"),
    [
        ("/run/abc", "'abc' is not a run number", "run-letters"),
        ("/run/999999", "run 999999 has no stored results", "run-unknown"),
        ("/run/357102/NOPE", "unknown subsystem 'NOPE'", "subsystem-unknown"),
        ("/no/such/page", "Page not found", "not-found"),
    ],
)
def test_bad_urls_get_a_clear_message(
    tab: Tab, shots: list[Path], path: str, words: str, name: str
) -> None:
    expect = playwright_api.expect
    tab.page.goto(tab.base + path)
    msg = tab.page.locator("#message-page")
    expect(msg).to_be_visible()
    expect(msg).to_contain_text(words)
    expect(msg.get_by_role("link", name="← back to the overview")).to_be_visible()
    shoot(tab, shots, name)
    tab.check()


def test_click_from_the_overview_to_a_run_and_a_subsystem(tab: Tab, shots: list[Path]) -> None:
    expect = playwright_api.expect
    tab.page.goto(tab.base + "/")
    tab.page.locator("#overview-matrix a[href='/run/357102/CSC']").click()
    expect(tab.page).to_have_url(tab.base + "/run/357102/CSC")
    grid = tab.page.locator("#runsub-grid")
    expect(grid).to_contain_text("flagged/hCSC0")
    expect(grid.locator(".ag-center-cols-container .ag-row[row-index='0']")).to_contain_text(
        "flagged"
    )
    shoot(tab, shots, "run-subsystem")
    tab.page.locator("h1 a[href='/run/357102']").click()
    expect(tab.page).to_have_url(tab.base + "/run/357102")
    expect(tab.page.locator("#run-summary")).to_contain_text("the 2 latest certified runs before")
    expect(tab.page.locator("#run-outliers")).to_contain_text("flagged/hCSC2")
    shoot(tab, shots, "run")
    tab.page.get_by_role("link", name="Alerts").first.click()
    expect(tab.page).to_have_url(tab.base + "/alerts")
    expect(tab.page.locator("#alerts-list table")).to_contain_text("run 357102 · CSC")
    shoot(tab, shots, "alerts")
    tab.check()


# -- the demo site: results of the real service on generated demo data ----------------------
@pytest.fixture(scope="session")
def demo_url(demo_site: Any) -> Iterator[str]:
    """The dashboard over the demo site (a service config: DQM files readable)."""
    app = create_app(demo_site.config, demo_site.store)
    server = waitress.create_server(app.server, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.close()
    thread.join(timeout=5)


@pytest.fixture
def demo_tab(browser: Any, demo_url: str) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    t = Tab(page, demo_url)
    page.on("console", lambda m: t.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: t.errors.append(str(e)))
    page.on("request", lambda r: t.requests.append(r.url))
    page.set_default_timeout(20_000)
    yield t
    context.close()


def test_overview_to_grid_to_drilldown_and_a_verdict(demo_tab: Tab, shots: list[Path]) -> None:
    expect = playwright_api.expect
    page = demo_tab.page
    page.goto(demo_tab.base + "/")
    page.locator("#overview-matrix td.st-bg-flagged a").first.click()
    expect(page).to_have_url(re.compile(r"/run/\d+/[A-Z]+$"))
    top = page.locator("#runsub-grid .ag-center-cols-container .ag-row[row-index='0']")
    expect(top).to_contain_text("flagged")
    shoot(demo_tab, shots, "grid")
    link = top.locator("a.hist-link")
    name = link.inner_text()
    link.click()
    expect(page.locator("#drill-root h1")).to_contain_text(name)
    expect(
        page.locator("#drill-figure.js-plotly-plot, #drill-figure .js-plotly-plot")
    ).to_have_count(1)
    expect(page.locator("#drill-reason")).to_contain_text("Flagged by")
    expect(page.locator("#drill-trend .js-plotly-plot, #drill-trend.js-plotly-plot")).to_have_count(
        1
    )
    page.locator("#drill-user").fill("Shift Leader")
    page.get_by_role("button", name="false alarm").click()
    expect(page.locator("#drill-verdict")).to_contain_text("false alarm — by Shift Leader")
    shoot(demo_tab, shots, "drilldown-verdict")
    demo_tab.check()


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/run/357108/CSC/Segments/hSTimeDiff_m11a?comparator=beta_binomial", "drilldown-1d"),
        ("/run/357105/CSC/Occupancy/hORecHits", "drilldown-2d"),
    ],
)
def test_drilldown_pages_draw(demo_tab: Tab, shots: list[Path], path: str, name: str) -> None:
    expect = playwright_api.expect
    demo_tab.page.goto(demo_tab.base + path)
    expect(demo_tab.page.locator("#drill-figure .main-svg").first).to_be_visible()
    expect(demo_tab.page.locator("#drill-reason")).to_contain_text("Flagged by")
    shoot(demo_tab, shots, name)
    demo_tab.check()


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/run/357108/CSC/Segments/hNoSuchThing", "has no result for histogram"),
        ("/run/35x108/CSC/Segments/hSChiSqm41", "is not a run number"),
        ("/run/357108/NOPE/Segments/hSChiSqm41", "unknown subsystem 'NOPE'"),
        ("/run/1/CSC/Segments/hSChiSqm41", "run 1 has no stored results"),
    ],
)
def test_bad_drilldown_urls_get_a_clear_message(demo_tab: Tab, path: str, words: str) -> None:
    expect = playwright_api.expect
    demo_tab.page.goto(demo_tab.base + path)
    expect(demo_tab.page.locator("#message-page")).to_contain_text(words)
    demo_tab.check()


# -- actions: acknowledge an alert, run an ad-hoc comparison (a service config over demo data) --
@pytest.fixture(scope="session")
def service_url(
    tmp_path_factory: pytest.TempPathFactory, fill_store: Callable[[Any], None]
) -> Iterator[str]:
    """The dashboard with a service config over 5 demo runs of CSC, plus the filled store."""
    from engine.demo import DemoOptions, generate
    from engine.service_config import load_service_config
    from engine.settings import ROOT

    root = tmp_path_factory.mktemp("service")
    generate(root / "demo", DemoOptions(runs=5, subsystems=("CSC",)))
    toml = root / "autodqm.toml"
    toml.write_text(
        '[storage]\ncache_dir = "store"\n[source]\nkind = "local"\npath = "demo"\n'
        '[certification]\nkind = "golden_json"\npath = "demo/golden.json"\n'
        '[[watch]]\nseries = "Run2022"\nsample = "SingleMuon"\nsubsystems = ["CSC"]\n'
        f'config_dir = "{ROOT / "config" / "subsystems"}"\n'
        'references = { policy = "previous_good", count = 2 }\n'
    )
    config = load_service_config(toml)
    store = open_store(config.storage.cache_dir)
    fill_store(store)
    app = create_app(config, store)
    server = waitress.create_server(app.server, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.close()
    thread.join(timeout=5)
    store.close()


@pytest.fixture
def stab(browser: Any, service_url: str) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    t = Tab(page, service_url)
    page.on("console", lambda m: t.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: t.errors.append(str(e)))
    page.on("request", lambda r: t.requests.append(r.url))
    page.set_default_timeout(15_000)
    yield t
    context.close()


def test_acknowledge_an_alert(stab: Tab, shots: list[Path]) -> None:
    expect = playwright_api.expect
    page = stab.page
    page.goto(stab.base + "/")
    expect(page.locator(".alert-banner")).to_contain_text("1 unacknowledged alert")
    page.goto(stab.base + "/alerts")
    button = page.get_by_role("button", name="Acknowledge")
    button.click()  # no name yet: refused, nothing changes
    expect(page.locator("#alerts-message")).to_contain_text("Nothing changed: Type your name")
    expect(button).to_be_visible()
    page.locator("#user-name").fill("Ann Lee")
    page.locator("#user-name").press("Enter")
    button.click()
    expect(page.locator("#alerts-message")).to_contain_text("acknowledged by Ann Lee")
    expect(page.locator("#alerts-list")).to_contain_text("✓ acknowledged by Ann Lee")
    expect(page.locator("#alerts-audit")).to_contain_text("acknowledged alert 357102-CSC")
    page.locator("#silence-reason").fill("known HV trip")
    page.get_by_role("button", name="Add silence").click()
    expect(page.locator("#alerts-silences")).to_contain_text("known HV trip")
    shoot(stab, shots, "alerts-acknowledged")
    page.goto(stab.base + "/")
    expect(page.locator("#overview-matrix table.matrix")).to_be_visible()
    expect(page.locator(".alert-banner")).to_have_count(0)
    page.goto(stab.base + "/alerts")
    expect(page.locator("#user-name")).to_have_value("Ann Lee")  # remembered by the browser
    stab.check()


def test_run_an_adhoc_comparison(stab: Tab, shots: list[Path]) -> None:
    expect = playwright_api.expect
    page = stab.page
    page.goto(stab.base + "/compare?run=357118&refs=357118")
    expect(page.locator("#compare-message")).to_contain_text("is the data run itself")
    page.get_by_role("button", name="Compare", exact=True).click()
    expect(page.locator("#compare-message")).to_contain_text(
        "Cannot compare: Reference run 357118 is the data run itself"
    )
    shoot(stab, shots, "compare-bad-reference")
    page.goto(stab.base + "/compare")
    expect(page.locator("#compare-run")).to_contain_text("357118 · certified")
    expect(page.locator("#compare-refs-why")).to_contain_text("previous_good")
    shoot(stab, shots, "compare")
    page.get_by_role("button", name="Compare", exact=True).click()
    expect(page.locator("#compare-progress-wrap")).to_have_class("mb-3")  # the progress bar
    expect(page.get_by_role("button", name="Cancel")).to_be_enabled()
    expect(page).to_have_url(re.compile(r"/compare/[0-9a-f]{12}$"), timeout=30_000)
    result = page.locator("#compare-result")
    expect(result).to_contain_text("Ad-hoc comparison · run 357118 · CSC")
    expect(result.locator("tbody tr").first).to_contain_text("✗ flagged")
    shoot(stab, shots, "compare-result")
    url = page.url
    page.goto(url)  # the address can be shared: it loads by itself
    expect(page.locator("#compare-result")).to_contain_text("references 357111, 357117")
    stab.check()
