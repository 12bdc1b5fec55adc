"""Browser tests: the real WSGI app (waitress) in headless system Chromium via playwright.

Each page is loaded, checked for its words, screenshotted (a pytest tmp dir, and the
directory ``AUTODQM_SCREENSHOTS`` names when set), and must log no console error and
fetch nothing from outside the dashboard.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

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
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"{CHROMIUM} is missing: apt-get install -y chromium (scripts/test does)",
    ),
]
playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install -e .[dev]")
waitress = pytest.importorskip("waitress", reason="pip install -e .[dev]")


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
    table = tab.page.locator("#runsub-table table")
    expect(table).to_contain_text("flagged/hCSC0")
    expect(table.locator("tbody tr").first).to_contain_text("✗ flagged")
    shoot(tab, shots, "run-subsystem")
    tab.page.locator("h1 a[href='/run/357102']").click()
    expect(tab.page).to_have_url(tab.base + "/run/357102")
    expect(tab.page.locator("#run-summary")).to_contain_text("the 2 latest certified runs before")
    shoot(tab, shots, "run")
    tab.page.get_by_role("link", name="Alerts").first.click()
    expect(tab.page).to_have_url(tab.base + "/alerts")
    expect(tab.page.locator("table")).to_contain_text("run 357102 · CSC")
    shoot(tab, shots, "alerts")
    tab.check()
