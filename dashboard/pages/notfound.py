"""Dashboard layer: the 404 page and the guard that turns bad URL parts into clear messages.

Every page layout is wrapped by :func:`guarded`: a :class:`BadInput` becomes a message
page saying what was wrong; any other exception is logged and shown as one sentence —
never a traceback, never a blank page.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from dash import html

from dashboard.components import message_page
from dashboard.state import BadInput

logger = logging.getLogger(__name__)

TITLES = {400: "Not a valid address", 404: "Nothing stored here"}


def bad_input_page(err: BadInput) -> html.Div:
    """The message page of a bad URL part."""
    return message_page(
        TITLES.get(err.status, "Cannot show this page"), str(err), status=err.status
    )


def guarded(layout: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a page layout so bad input and bugs give a message page, not an error."""

    @functools.wraps(layout)
    def wrapper(**kwargs: Any) -> Any:
        try:
            return layout(**kwargs)
        except BadInput as err:
            return bad_input_page(err)
        except Exception:
            logger.exception("page %s failed with %r", layout.__module__, kwargs)
            return message_page(
                "This page failed",
                "An internal error occurred while building this page; it was logged on the "
                "server. Other pages and stored results are not affected.",
                status=500,
            )

    return wrapper


def layout(**_query: Any) -> html.Div:
    """The page for an address no page answers."""
    return message_page(
        "Page not found",
        "This address is not a page of autodqm. Pages: / (overview), /run/<run>, "
        "/run/<run>/<subsystem>, /alerts, /compare.",
        status=404,
    )
