"""The alerts page: list, filters, acknowledge, silences with expiry, audit log — through the store."""

from __future__ import annotations

from collections.abc import Iterator
from contextvars import copy_context
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dash import Dash, no_update
from dash._callback_context import context_value
from dash._utils import AttributeDict
from dash.exceptions import PreventUpdate

from dashboard import ids
from dashboard.app import create_app
from dashboard.pages import alerts, identity, overview
from engine.service_config import load_service_config
from engine.store import Store

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
ALL_ALERTS = {"unacked": False, "subsystem": ""}
ACK = {"type": ids.ALERTS_ACK, "id": "357102-CSC"}


def walk(node: Any) -> Iterator[Any]:
    yield node
    kids = node if isinstance(node, (list, tuple)) else getattr(node, "children", None)
    if isinstance(node, str) or kids is None:
        return
    for c in kids if isinstance(kids, (list, tuple)) else [kids]:
        yield from walk(c)


def text(node: Any) -> str:
    return "".join(str(n) for n in walk(node) if isinstance(n, (str, int)))


@pytest.fixture
def service_app(service_toml: Path, store: Store) -> Dash:
    """The dashboard with a service config: actions go through ``engine.service``."""
    return create_app(load_service_config(service_toml), store)


def test_layout_lists_the_alert_with_links_delivery_and_a_button(app: Dash) -> None:
    with app.server.test_request_context("/alerts"):
        page = alerts.layout()
    words = text(page)
    for expected in ("run 357102 · CSC", "✗ 3 flagged", "2024-05-03 12:01 UTC", "webhook: pending",
                     "Acting as", "No active silence", "Nobody has acted yet"):  # fmt: skip
        assert expected in words
    links = {n.href for n in walk(page) if getattr(n, "href", None)}
    assert {"/run/357102/CSC", "/run/357102/CSC/flagged/hCSC0"} <= links
    buttons = [n for n in walk(page) if getattr(n, "id", None) == ACK]
    assert [b.children for b in buttons] == ["Acknowledge"]
    stores = [n for n in walk(page) if getattr(n, "id", None) == ids.USER_STORE]
    assert stores[0].storage_type == "local"


def test_acknowledging_without_a_name_changes_nothing(service_app: Dash, store: Store) -> None:
    with service_app.server.test_request_context("/alerts"):
        message, *_ = alerts.handle(ACK, "   ", ALL_ALERTS, alerts.SilenceForm(), NOW)
    assert "Nothing changed" in text(message)
    assert "Type your name" in text(message)
    assert store.get_alert("357102-CSC").acked_by == ""  # type: ignore[union-attr]
    assert store.audit() == []


def test_acknowledge_goes_through_the_service_and_clears_the_banner(
    service_app: Dash, store: Store
) -> None:
    with service_app.server.test_request_context("/alerts"):
        assert overview.banner(overview.state.get()) is not None
        message, listing, _, audit = alerts.handle(
            ACK, "ann", ALL_ALERTS, alerts.SilenceForm(), NOW
        )
        assert overview.banner(overview.state.get()) is None
    assert "Alert 357102-CSC acknowledged by ann" in text(message)
    assert store.get_alert("357102-CSC").acked_by == "ann"  # type: ignore[union-attr]
    assert "acknowledged by ann" in text(listing)
    assert not [n for n in walk(listing) if getattr(n, "id", None) == ACK]
    entries = store.audit()
    assert [(e["action"], e["by"], e["alert"]) for e in entries] == [("ack", "ann", "357102-CSC")]
    assert "acknowledged alert 357102-CSC" in text(audit)
    assert service_app.server.extensions["autodqm"]._service is not None


def test_acknowledge_without_a_service_config_writes_store_and_audit(
    app: Dash, store: Store
) -> None:
    with app.server.test_request_context("/alerts"):
        alerts.handle(ACK, "bob", ALL_ALERTS, alerts.SilenceForm(), NOW)
    assert store.get_alert("357102-CSC").acked_by == "bob"  # type: ignore[union-attr]
    assert store.audit()[0]["via"] == "dashboard"


def _call_act(trigger: str, value: Any, *args: Any) -> Any:
    """The callback as Dash calls it: the triggering input set in the callback context."""

    def run() -> Any:
        context_value.set(AttributeDict(triggered_inputs=[{"prop_id": trigger, "value": value}]))
        return alerts.act(*args)

    return copy_context().run(run)


def test_the_callback_acts_on_a_click_and_ignores_new_buttons(
    service_app: Dash, store: Store
) -> None:
    prop = '{"id":"357102-CSC","type":"alerts-ack"}.n_clicks'
    form = [None, "*", "8h", "", ""]
    with service_app.server.test_request_context("/alerts"):
        with pytest.raises(PreventUpdate):
            _call_act(prop, None, [], None, [None], None, [None], "ann", *form)
        assert store.get_alert("357102-CSC").acked_by == ""  # type: ignore[union-attr]
        out = _call_act(prop, 1, [], None, [1], None, [], "ann", *form)
        assert "acknowledged by ann" in text(out[0])
        # the filter: unacknowledged only now shows none
        out = _call_act(f"{ids.ALERTS_UNACKED}.value", ["unacked"], ["unacked"], "", [], None,
                        [], "ann", *form)  # fmt: skip
        assert out[0] is None
        assert "No unacknowledged alert stored" in text(out[1])
        out = _call_act(f"{ids.ALERTS_SUBSYSTEM}.value", "DT", [], "DT", [], None, [], "", *form)
        assert "No alert of DT stored" in text(out[1])


def test_silence_round_trip_add_then_lift(service_app: Dash, store: Store) -> None:
    form = alerts.SilenceForm("CSC", "Occupancy/*", "8h", "", "HV trip, ticket 42")
    with service_app.server.test_request_context("/alerts"):
        message, _, silences, audit = alerts.handle(ids.SILENCE_ADD, "ann", ALL_ALERTS, form, NOW)
        assert "Silenced CSC / Occupancy/* until 2030-01-01 20:00 UTC" in text(message)
        (s,) = store.silences()
        assert (s.subsystem, s.pattern, s.by, s.reason) == ("CSC", "Occupancy/*", "ann",
                                                             "HV trip, ticket 42")  # fmt: skip
        assert s.until == "2030-01-01T20:00:00Z"
        assert "8.0 h left" in text(silences)
        assert "silenced CSC / Occupancy/* until 2030-01-01 20:00 UTC" in text(audit)
        lift = {"type": ids.ALERTS_LIFT, "id": s.id}
        assert [n for n in walk(silences) if getattr(n, "id", None) == lift]
        message, _, silences, _ = alerts.handle(lift, "bob", ALL_ALERTS, form, NOW)
    assert f"Silence {s.id} lifted by bob" in text(message)
    assert store.silences() == []
    assert store.get_silence(s.id).removed_by == "bob"  # type: ignore[union-attr]
    assert "No active silence" in text(silences)
    assert [e["action"] for e in store.audit()] == ["unsilence", "silence"]


def test_custom_until_and_wildcard_subsystem(service_app: Dash, store: Store) -> None:
    form = alerts.SilenceForm("*", "*", "custom", "2030-01-03 06:30", "shutdown")
    with service_app.server.test_request_context("/alerts"):
        alerts.handle(ids.SILENCE_ADD, "ann", ALL_ALERTS, form, NOW)
    assert store.silences()[0].until == "2030-01-03T06:30:00Z"
    assert store.silences()[0].subsystem == "*"


@pytest.mark.parametrize(
    ("form", "user", "words"),
    [
        (alerts.SilenceForm("CSC", "*", "8h", "", "x"), "", "Type your name"),
        (alerts.SilenceForm("CSC", " ", "8h", "", "x"), "ann", "Histogram pattern"),
        (alerts.SilenceForm("CSC", "*", "8h", "", " "), "ann", "Reason: say why"),
        (alerts.SilenceForm("NOPE", "*", "8h", "", "x"), "ann", "unknown subsystem 'NOPE'"),
        (alerts.SilenceForm("CSC", "*", "custom", "tomorrow", "x"), "ann",
         "Until 'tomorrow': expected a UTC date and time"),
        (alerts.SilenceForm("CSC", "*", "custom", "2029-12-31 10:00", "x"), "ann",
         "Until 2029-12-31 10:00 UTC is in the past"),
        (alerts.SilenceForm("CSC", "*", "3 weeks", "", "x"), "ann", "Duration '3 weeks'"),
    ],
)  # fmt: skip
def test_bad_silences_get_a_message_and_change_nothing(
    service_app: Dash, store: Store, form: alerts.SilenceForm, user: str, words: str
) -> None:
    with service_app.server.test_request_context("/alerts"):
        message, *_ = alerts.handle(ids.SILENCE_ADD, user, ALL_ALERTS, form, NOW)
    assert "Nothing changed" in text(message)
    assert words in text(message)
    assert store.silences(include_removed=True) == []
    assert store.audit() == []


def test_unknown_subsystem_filter_in_the_url_is_explained(app: Dash) -> None:
    with app.server.test_request_context("/alerts"):
        page = alerts.layout(subsystem="NOPE")
    assert "unknown subsystem 'NOPE'" in text(page)
    assert page.id == ids.MESSAGE_PAGE


def test_the_name_is_remembered_in_the_browser_store() -> None:
    assert identity.sync(ids.USER_NAME, "  Ann   Lee ", None) == (no_update, "Ann Lee")
    assert identity.sync(ids.USER_NAME, "Ann", "Ann") == (no_update, no_update)
    assert identity.sync(None, None, "Ann") == ("Ann", no_update)  # page load fills the input
    assert identity.sync(ids.USER_STORE, "", "Ann") == ("Ann", no_update)
    assert identity.sync(None, None, None) == (no_update, no_update)


def test_the_identity_is_injectable_in_one_place(service_app: Dash, store: Store) -> None:
    st = service_app.server.extensions["autodqm"]
    st.identify = lambda _typed: "sso:carol"  # what an SSO header reader would do
    with service_app.server.test_request_context("/alerts"):
        alerts.handle(ACK, "", ALL_ALERTS, alerts.SilenceForm(), NOW)
    assert store.get_alert("357102-CSC").acked_by == "sso:carol"  # type: ignore[union-attr]


def test_expired_silences_are_not_listed(service_app: Dash, store: Store) -> None:
    form = alerts.SilenceForm("DT", "*", "1h", "", "short")
    with service_app.server.test_request_context("/alerts"):
        alerts.handle(ids.SILENCE_ADD, "ann", ALL_ALERTS, form, datetime.now(UTC))
        later = datetime.now(UTC) + timedelta(hours=2)
        assert "No active silence" in text(alerts.silence_table(alerts.state.get(), later))
        assert "DT" in text(alerts.silence_table(alerts.state.get()))
