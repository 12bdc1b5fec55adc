"""Offline control rooms: nothing served refers to a CDN or any outside URL."""

from __future__ import annotations

import re
from pathlib import Path

from dash import Dash
from flask.testing import FlaskClient

from engine.settings import ROOT

URL = re.compile(r"""https?://[^\s"'()<>]+""")
#: URLs that are names, not fetches: the SVG XML namespace inside Bootstrap's data: URIs.
NOT_FETCHED = {"http://www.w3.org/2000/svg"}
ASSETS = ROOT / "assets"


def outside_urls(text: str, own: str = "http://localhost") -> list[str]:
    """URLs in ``text`` other than XML namespaces and links to the dashboard itself."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)  # licence headers in CSS comments
    return [u for u in URL.findall(text) if u not in NOT_FETCHED and not u.startswith(own)]


def fetch(client: FlaskClient, url: str) -> tuple[int, str]:
    """Status and text of a GET (closing the response: static files are open files)."""
    with client.get(url) as resp:
        return resp.status_code, resp.get_data().decode("utf-8", errors="replace")


def test_bootstrap_css_is_vendored_with_its_licence() -> None:
    css = (ASSETS / "bootstrap.min.css").read_text(encoding="utf-8")
    assert "Bootstrap  v5.3.6" in css[:200]
    assert "Licensed under MIT" in css[:300]
    assert len(css) > 200_000


def test_no_asset_refers_to_an_outside_url() -> None:
    files = sorted(p for p in ASSETS.rglob("*") if p.is_file() and p.suffix != ".md")
    assert {p.name for p in files} >= {"bootstrap.min.css", "autodqm.css"}
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert outside_urls(text) == [], path.name
        assert "@import" not in text, path.name


def test_served_index_layout_and_assets_are_local(app: Dash) -> None:
    client = app.server.test_client()
    index = fetch(client, "/")[1]
    assert outside_urls(index) == []
    srcs = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', index)
    assert srcs, "the index page links no script or stylesheet"
    assert all(s.startswith("/") and not s.startswith("//") for s in srcs), srcs
    css = [s for s in srcs if "/assets/" in s]
    assert any("bootstrap.min.css" in s for s in css)
    assert any("autodqm.css" in s for s in css)
    for src in srcs:  # every script and stylesheet the page loads is served by us
        assert fetch(client, src)[0] == 200, src
    for s in css:
        assert outside_urls(fetch(client, s)[1]) == [], s
    assert outside_urls(fetch(client, "/_dash-layout")[1]) == []
    for page in ("/run/357102", "/run/357102/CSC", "/alerts"):
        assert outside_urls(fetch(client, page)[1]) == [], page


def test_the_dash_app_uses_no_external_stylesheets(app: Dash) -> None:
    assert app.config.external_stylesheets == []
    assert app.config.external_scripts == []
    assert app.config.serve_locally is True
    assert Path(app.config.assets_folder) == ASSETS
