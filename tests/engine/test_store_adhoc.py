"""The store's ad-hoc comparison records (the dashboard's ``/compare/<job>``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.store import StoreError, open_store


def test_adhoc_round_trip_survives_reopening(tmp_path: Path) -> None:
    record = {"job": "abc123", "data_run": 357130, "report": {"results": [{"status": "ok"}]}}
    with open_store(tmp_path / "s") as store:
        assert store.get_adhoc("abc123") is None
        store.put_adhoc("abc123", record)
        assert store.get_adhoc("abc123") == record
        assert store.runs() == []  # an ad-hoc result is not a stored run
    with open_store(tmp_path / "s") as store:
        assert store.get_adhoc("abc123") == record
        assert store.get_adhoc("other") is None


def test_adhoc_needs_a_job_id(tmp_path: Path) -> None:
    with open_store(tmp_path / "s") as store, pytest.raises(StoreError, match="job id"):
        store.put_adhoc("", {"x": 1})
