"""Dashboard layer: "acting as" — the name a person types once, remembered by the browser.

Not a page: the widget the alerts and compare pages put above their actions. The name
lives in a ``dcc.Store(storage_type="local")``, so it survives reloads and is shared
by every page of the browser. Who acts is decided by :func:`dashboard.state.acting_user`
(SSO replaces it later); an action without a name is refused with a message.
"""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import Input, Output, callback, ctx, dcc, html, no_update

from dashboard import ids

NO_NAME = "Type your name in “Acting as” first: every action is recorded with who did it."


def widget() -> html.Div:
    """The "Acting as" input and the browser store that remembers it."""
    return html.Div(
        [
            dcc.Store(id=ids.USER_STORE, storage_type="local"),
            dbc.InputGroup(
                [
                    dbc.InputGroupText("Acting as"),
                    dbc.Input(
                        id=ids.USER_NAME,
                        type="text",
                        placeholder="your name (recorded with every action)",
                        debounce=True,
                        maxlength=80,
                        autocomplete="name",
                    ),
                ],
                size="sm",
                className="acting-as",
                style={"maxWidth": "28rem"},
            ),
        ],
        className="mb-3",
    )


@callback(
    Output(ids.USER_NAME, "value"),
    Output(ids.USER_STORE, "data"),
    Input(ids.USER_NAME, "value"),
    Input(ids.USER_STORE, "data"),
)
def remember(typed: str | None, stored: str | None) -> tuple[Any, Any]:
    """Typing saves the name in the browser; loading a page fills the input from it."""
    return sync(ctx.triggered_id if ctx.triggered else None, typed, stored)


def sync(trigger: str | None, typed: str | None, stored: str | None) -> tuple[Any, Any]:
    """(input value, stored name) after ``trigger`` changed (None: the page loaded)."""
    if trigger == ids.USER_NAME:
        name = " ".join((typed or "").split())
        return no_update, name if name != (stored or "") else no_update
    if stored and stored != typed:
        return stored, no_update
    return no_update, no_update
