"""REST API /api/v1: every endpoint, each 4xx case, CSV export, JSON errors (never HTML)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from dash import Dash
from flask.testing import FlaskClient

from dashboard.app import create_app
from engine.settings import Settings
from engine.store import Store


@pytest.fixture
def client(app: Dash) -> FlaskClient:
    return app.server.test_client()


def error(client: FlaskClient, url: str, status: int, method: str = "GET", **kw: object) -> str:
    resp = client.open(url, method=method, **kw)
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.is_json
    body = resp.get_json()
    assert body["status"] == status
    return str(body["error"])


def test_runs_newest_first_with_paging(client: FlaskClient) -> None:
    body = client.get("/api/v1/runs").get_json()
    assert body["runs"] == [357102, 357101, 357100]
    assert body["next"] is None
    page = client.get("/api/v1/runs?limit=2").get_json()
    assert page["runs"] == [357102, 357101]
    assert page["next"] == "/api/v1/runs?limit=2&before=357101"
    assert client.get(page["next"]).get_json()["runs"] == [357100]


@pytest.mark.parametrize(
    ("url", "status", "needle"),
    [
        ("/api/v1/runs?limit=abc", 400, "limit='abc'"),
        ("/api/v1/runs?limit=0", 400, "expected a whole number"),
        ("/api/v1/runs?before=x1", 400, "not a run number"),
        ("/api/v1/runs/abc", 400, "'abc' is not a run number"),
        ("/api/v1/runs/-5", 400, "not a run number"),
        ("/api/v1/runs/999999", 404, "run 999999 has no stored results; stored runs: 3"),
        ("/api/v1/runs/357102/NOPE", 404, "unknown subsystem 'NOPE'"),
        ("/api/v1/runs/357102/EMTF", 404, "no stored EMTF results"),
        ("/api/v1/runs/x/CSC", 400, "not a run number"),
        ("/api/v1/runs/357102/CSC?format=xml", 400, "expected json or csv"),
        ("/api/v1/runs/357102/CSC/No/Such/hist", 404, "has no result for histogram"),
        ("/api/v1/runs/357102/CSC/flagged/hCSC9", 404, "(did you mean 'flagged/hCSC2'"),
        ("/api/v1/alerts?limit=-1", 400, "limit="),
        ("/api/v1/alerts?run=abc", 400, "not a run number"),
        ("/api/v1/nothing/here", 404, "no API endpoint /api/v1/nothing/here"),
        ("/api/v1/outliers/abc", 400, "not a run number"),
        ("/api/v1/outliers/999999", 404, "run 999999 has no stored results"),
        ("/api/v1/outliers/357102?limit=x", 400, "limit="),
    ],
)
def test_bad_input_gets_a_json_4xx(client: FlaskClient, url: str, status: int, needle: str) -> None:
    assert needle in error(client, url, status)


def test_run_summary(client: FlaskClient) -> None:
    body = client.get("/api/v1/runs/357102").get_json()
    assert body["run"] == 357102
    assert set(body["subsystems"]) == {"CSC", "DT", "RPC"}
    assert body["subsystems"]["CSC"]["worst"] == "flagged"
    assert body["subsystems"]["CSC"]["n_flagged"] == 3
    assert body["subsystems"]["DT"]["counts"]["error"] == 1
    assert body["alerts"] == ["357102-CSC"]


def test_outliers_across_subsystems(client: FlaskClient) -> None:
    body = client.get("/api/v1/outliers/357102?limit=2").get_json()
    assert body["run"] == 357102
    assert body["flagged"] == 3
    assert [o["histogram"] for o in body["outliers"]] == ["flagged/hCSC2", "flagged/hCSC1"]
    top = body["outliers"][0]
    assert top["subsystem"] == "CSC"
    assert top["severity"] == 12.0
    assert top["flagged_by"] == ["beta_binomial"]
    assert top["summary"].startswith("Flagged by 1 of 1 deciding test (beta_binomial); most severe")
    assert client.get("/api/v1/outliers/357101").get_json()["outliers"] == []


def test_run_subsystem_follows_the_compare_contract_with_provenance(client: FlaskClient) -> None:
    body = client.get("/api/v1/runs/357102/CSC").get_json()
    assert body["data_run"] == 357102
    assert body["subsystem"] == "CSC"
    assert body["reference_runs"] == [357100, 357101]
    assert body["missing"] == ["Segments/hMissing"]
    assert body["provenance"]["config_digest"] == "digest-CSC"
    assert body["provenance"]["created"].endswith("Z")
    assert body["stale"] is False
    statuses = [r["status"] for r in body["results"]]
    assert statuses == ["flagged"] * 3 + ["ok"] * 3  # most severe first
    first = body["results"][0]
    assert set(first) >= {"histogram", "comparator", "status", "scores", "reason", "entries"}
    assert first["scores"] == {"chi2": 12.0, "max_pull": 24.0}
    assert "arrays" not in first


def test_csv_export(client: FlaskClient) -> None:
    resp = client.get("/api/v1/runs/357102/CSC?format=csv")
    assert resp.status_code == 200
    assert resp.mimetype == "text/csv"
    assert 'filename="autodqm_run357102_CSC.csv"' in resp.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert len(rows) == 6
    assert rows[0]["status"] == "flagged"
    assert rows[0]["score_max_pull"] == "24.0"
    assert rows[0]["reference_runs"] == "357100 357101"
    assert {r["config_digest"] for r in rows} == {"digest-CSC"}


def test_histogram_arrays(client: FlaskClient) -> None:
    body = client.get("/api/v1/runs/357102/CSC/flagged/hCSC0").get_json()
    assert body["histogram"] == "flagged/hCSC0"
    assert body["results"][0]["status"] == "flagged"
    assert body["available"] == {"beta_binomial": ["pulls", "ref_weighted"]}
    assert len(body["arrays"]["beta_binomial"]["pulls"]) == 8
    assert "not stored" in body["note"]


def test_alerts_and_acknowledging(client: FlaskClient, store: Store) -> None:
    body = client.get("/api/v1/alerts?unacked=1").get_json()
    assert [a["id"] for a in body["alerts"]] == ["357102-CSC"]
    assert body["alerts"][0]["acked_by"] == ""
    url = "/api/v1/alerts/357102-CSC/ack"
    assert "non-empty name" in error(client, url, 400, method="POST")
    assert "non-empty name" in error(client, url, 400, method="POST", json={"by": " "})
    assert "non-empty name" in error(client, url, 400, method="POST", json=["x"])
    assert "non-empty name" in error(client, url, 400, method="POST", data="not json")
    assert "no alert 'nope'" in error(client, "/api/v1/alerts/nope/ack", 404, method="POST",
                                      json={"by": "ann"})  # fmt: skip
    assert "use POST" in error(client, url, 405)
    resp = client.post(url, json={"by": "ann"})
    assert resp.status_code == 200
    assert resp.get_json()["acked_by"] == "ann"
    assert resp.get_json()["acked_at"].endswith("Z")
    assert client.get("/api/v1/alerts?unacked=1").get_json()["alerts"] == []
    assert client.get("/api/v1/alerts").get_json()["alerts"][0]["acked_by"] == "ann"
    assert store.audit(1)[0] | {"at": "", "seq": 0} == {
        "action": "ack", "alert": "357102-CSC", "by": "ann", "via": "api", "at": "", "seq": 0,
    }  # fmt: skip


def test_health(client: FlaskClient, store: Store) -> None:
    body = client.get("/api/v1/health").get_json()
    assert body == {
        "status": "ok",
        "store": "reachable",
        "runs": 3,
        "last_poll": None,
        "time_zone": "UTC",
        "version": body["version"],
    }
    store.put_cert_state("golden_json", {"seen": {}, "last_poll": "2024-05-03T12:30:00Z"})
    assert client.get("/api/v1/health").get_json()["last_poll"] == "2024-05-03T12:30:00Z"


def test_a_broken_store_gives_json_503_not_a_traceback(tmp_path: Path) -> None:
    from engine.store import open_store

    broken = open_store(tmp_path / "broken")
    client = create_app(Settings(cache_dir=tmp_path / "broken"), broken).server.test_client()
    broken.close()
    (tmp_path / "broken" / "cache.db").write_bytes(b"this is not a database" * 100)
    assert "results store is not available" in error(client, "/api/v1/runs", 503)
    resp = client.get("/api/v1/health")
    assert resp.status_code == 503
    assert resp.get_json()["status"] == "error"


def test_index_lists_endpoints(client: FlaskClient) -> None:
    body = client.get("/api/v1/").get_json()
    assert any("/api/v1/health" in e for e in body["endpoints"])
