"""Dashboard layer: ``create_app`` — the Dash app (pages, shell, REST API) over a results store.

Nothing happens at import: the factory builds the app, attaches the store and config
(``dashboard.state``), registers the pages and the ``/api/v1`` routes. Every stylesheet
and script is served from ``assets/`` and the Dash packages themselves (no CDN).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import dash
import dash_bootstrap_components as dbc
import diskcache
from dash import Dash, Input, Output, _callback, html

from dashboard import api, ids, state
from engine.registry import Registry
from engine.service_config import ServiceConfig
from engine.settings import ROOT, Settings
from engine.store import Store

logger = logging.getLogger(__name__)

NAV = (("Overview", "/"), ("Compare", "/compare"), ("Alerts", "/alerts"))


@functools.cache
def _page_callbacks() -> tuple[dict[str, Any], tuple[dict[str, Any], ...]]:
    """Import the page modules once and keep the callbacks their ``@callback`` declared.

    Dash hands module-level callbacks to the first app that serves a request and then
    forgets them; keeping them here lets every app of the process (tests) get them.
    """
    from dashboard.pages import (  # noqa: F401
        alerts,
        compare,
        drilldown,
        identity,
        notfound,
        overview,
        run,
        subsystem,
    )

    keys = [
        k
        for k, v in _callback.GLOBAL_CALLBACK_MAP.items()
        if getattr(v.get("callback"), "__module__", "").startswith("dashboard.pages.")
    ]
    cb_map = {k: _callback.GLOBAL_CALLBACK_MAP.pop(k) for k in keys}
    outputs = set(keys)  # a list entry's "output" is its callback id
    cb_list = tuple(c for c in _callback.GLOBAL_CALLBACK_LIST if c["output"] in outputs)
    _callback.GLOBAL_CALLBACK_LIST[:] = [
        c for c in _callback.GLOBAL_CALLBACK_LIST if c["output"] not in outputs
    ]
    return cb_map, cb_list


def _register_pages() -> None:
    """Register every page (Dash's page registry is process-wide; re-registering replaces)."""
    from dashboard.pages import alerts, compare, drilldown, notfound, overview, run, subsystem

    register: Any = dash.register_page  # untyped in Dash
    register("overview", path="/", name="Overview", layout=overview.layout, order=0)
    # A template variable matches "/" too, so longer templates are tried first; the
    # drill-down splits the histogram path (which holds "/") out of the URL itself.
    register(
        "drilldown",
        path_template="/run/<run>/<subsystem>/<histogram>",
        name="Histogram",
        layout=drilldown.layout,
        order=1,
    )
    register(
        "run_subsystem",
        path_template="/run/<run>/<subsystem>",
        name="Run · subsystem",
        layout=subsystem.layout,
        order=2,
    )
    register("run", path_template="/run/<run>", name="Run", layout=run.layout_run, order=3)
    register("alerts", path="/alerts", name="Alerts", layout=alerts.layout, order=4)
    register("compare", path="/compare", name="Compare", layout=compare.layout, order=5)
    register(
        "compare_result",
        path_template="/compare/<job>",
        name="Comparison result",
        layout=compare.layout_result,
        order=6,
    )
    register("not_found_404", path="/404", name="Not found", layout=notfound.layout, order=9)


def shell(st: state.AppState) -> html.Div:
    """Navbar, the page container and a footer with the time zone and version."""
    navbar = dbc.Navbar(
        dbc.Container(
            [
                dbc.NavbarBrand("autodqm", href="/"),
                dbc.Nav(
                    [dbc.NavItem(dbc.NavLink(t, href=h, active="exact")) for t, h in NAV],
                    navbar=True,
                ),
            ],
            fluid=True,
        ),
        id=ids.SHELL_NAVBAR,
        color="dark",
        dark=True,
        className="mb-3",
    )
    store_dir = str(getattr(st.store, "directory", "") or "")
    footer = html.Footer(
        f"All times in {state.TIMEZONE} · autodqm {st.version}"
        + (f" · store {store_dir}" if store_dir else ""),
        id=ids.SHELL_FOOTER,
        className="footer text-muted small",
    )
    return html.Div(
        [navbar, dbc.Container(dash.page_container, fluid=True, className="page"), footer],
        id=ids.SHELL_ROOT,
    )


def kiosk_classes(search: str | None) -> tuple[str, str]:
    """(root class, navbar class) for the page's query string: kiosk hides the navbar."""
    query = (search or "").lstrip("?").split("&")
    kiosk = any(q.lower() in ("kiosk=1", "kiosk=true", "kiosk=yes") for q in query)
    return ("kiosk" if kiosk else "", "d-none" if kiosk else "mb-3")


def create_app(
    config: ServiceConfig | Settings, store: Store, *, registry: Registry | None = None
) -> Dash:
    """The dashboard over ``store``.

    Args:
        config: The service config (alerts are acknowledged through the service layer),
            or plain process settings (read-only use: the store and subsystem configs).
        store: The results store (``engine.store.open_store``).
        registry: The comparator registry (default: the built-ins, when needed).

    Returns:
        The Dash app; ``app.server`` is the WSGI (Flask) application.
    """
    if isinstance(config, ServiceConfig):
        st = state.AppState(store, config=config, registry=registry)
    elif isinstance(config, Settings):
        st = state.AppState(store, settings=config, registry=registry)
    else:
        msg = f"create_app: expected a ServiceConfig or Settings, found {type(config).__name__}"
        raise TypeError(msg)
    cb_map, cb_list = _page_callbacks()
    # The ad-hoc comparison's background callbacks: subprocesses, results on disk.
    background = dash.DiskcacheManager(diskcache.Cache(str(Path(store.directory) / "bg")))  # type: ignore[no-untyped-call]
    app = Dash(
        __name__,
        use_pages=True,
        pages_folder="",
        assets_folder=str(ROOT / "assets"),
        external_stylesheets=[],
        serve_locally=True,
        suppress_callback_exceptions=True,
        title="autodqm",
        update_title=None,  # type: ignore[arg-type]  # None is documented: no "Updating..."
        background_callback_manager=background,
    )
    state.install(app.server, st)
    _register_pages()
    app.callback_map.update(cb_map)
    app._callback_list.extend(cb_list)  # the page callbacks kept by _page_callbacks
    app.layout = shell(st)
    app.callback(
        Output(ids.SHELL_ROOT, "className"),
        Output(ids.SHELL_NAVBAR, "className"),
        Input(ids.PAGES_LOCATION, "search"),
    )(kiosk_classes)
    api.register(app.server)
    return app
