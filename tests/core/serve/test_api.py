"""The HTTP contract of the scoring service (one service per module, over a demo copy)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.errors import ConfigError
from core.policy import publish_policy
from core.serve.api import create_app
from core.serve.service import ScoringService, ServiceConfig
from core.serve.tokens import TokenFile, tokens_path
from core.store import Store


@pytest.fixture(scope="module")
def served(demo_store: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[TestClient, dict[str, str], ScoringService]]:
    path = tmp_path_factory.mktemp("api") / "demo.duckdb"
    shutil.copy(demo_store, path)
    with Store.open(path) as store:
        listing = store.models.listing()
        model_id = str(listing[listing["detector"] == "zscore"]["model_id"].iloc[0])
        publish_policy(store, analyst="test", model_id=model_id, thresholds={"all": -1e9})
    tokens = TokenFile(tokens_path(path))
    keys = {role: tokens.add(role, role) for role in ("viewer", "analyst", "admin")}
    with ScoringService.open(path, ServiceConfig(fsync=False, wait_s=30, batch_ms=5)) as svc:
        with TestClient(create_app(svc, heartbeat_s=0.2)) as client:
            yield client, keys, svc


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def event(user: str, minute: int, **more: Any) -> dict[str, Any]:
    ts = dt.datetime(2026, 9, 11, 9) + dt.timedelta(minutes=minute)
    return {"user_id": user, "ts": ts.isoformat(), "event_type": "view", **more}


def test_tokens_and_roles(served: tuple[TestClient, dict[str, str], ScoringService]) -> None:
    client, keys, _ = served
    body = json.dumps([event("api_r", 0)])
    assert client.post("/v1/events", content=body).status_code == 401
    wrong = client.post("/v1/events", content=body, headers=auth("nope"))
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"] == "Bearer"
    denied = client.post("/v1/events", content=body, headers=auth(keys["viewer"]))
    assert denied.status_code == 403 and "analyst role" in denied.json()["detail"]
    assert client.get("/v1/alerts", headers=auth(keys["viewer"])).status_code == 200
    assert client.post("/v1/events", content=body,
                       headers=auth(keys["admin"])).status_code == 200


def test_a_revoked_token_is_refused_at_once(
        served: tuple[TestClient, dict[str, str], ScoringService]) -> None:
    client, _, service = served
    tokens = TokenFile(tokens_path(service.store.path))
    secret = tokens.add("short-lived", "viewer")
    assert client.get("/v1/alerts", headers=auth(secret)).status_code == 200
    tokens.revoke("short-lived")
    assert client.get("/v1/alerts", headers=auth(secret)).status_code == 401


def test_events_join_sessions_and_flagged_ones_raise_alerts(
        served: tuple[TestClient, dict[str, str], ScoringService]) -> None:
    client, keys, _ = served
    got = client.post("/v1/events", content=json.dumps([event("api_s", 0), event("api_s", 20)]),
                      params={"wait_for_store": "true"},
                      headers=auth(keys["analyst"]))
    assert got.status_code == 200, got.text
    later = "\n".join(json.dumps(e) for e in (event("api_s", 45), event("api_s", 90)))
    nd = client.post("/v1/events", content=later + "\n", params={"wait_for_store": "true"},
                     headers={**auth(keys["analyst"]), "Content-Type": "application/x-ndjson"})
    answers = got.json()["events"] + nd.json()["events"]
    assert [a["session_id"] for a in answers] == ["api_s@2026-09-11T09:00:00"] * 3 + [
        "api_s@2026-09-11T10:30:00"]  # 20 and 25 minutes fit the 30 minute gap; 45 do not
    assert all(a["flagged"] and 0 <= a["risk"] <= 100 and a["reasons"] for a in answers)
    alerts = client.get("/v1/alerts", params={"since": "2000-01-01T00:00:00Z", "limit": 1000},
                        headers=auth(keys["viewer"])).json()["alerts"]
    mine = [a for a in alerts if a["user_id"] == "api_s"]
    assert sorted(a["session_id"] for a in mine) == ["api_s@2026-09-11T09:00:00",
                                                     "api_s@2026-09-11T10:30:00"]
    stream = client.get("/v1/alerts/stream", params={"duration": 0.5},
                        headers=auth(keys["viewer"]))
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert "event: alert" in stream.text and "api_s@" in stream.text
    assert stream.text.rstrip().endswith("data: {}")


def test_bad_events_get_422_reasons_or_refuse_the_batch(
        served: tuple[TestClient, dict[str, str], ScoringService]) -> None:
    client, keys, service = served
    body = json.dumps([event("api_b", 0), {"user_id": "api_b", "ts": "later"}])
    whole = client.post("/v1/events?all_or_nothing=true", content=body,
                        headers=auth(keys["analyst"]))
    assert whole.status_code == 422
    assert whole.json()["events"] == [{"index": 1, "status": 422, "reason": (
        "ts later is not a timestamp (use ISO 8601, epoch seconds or milliseconds)")}]
    assert service.store.live.stored_sessions_of([]) == {}
    part = client.post("/v1/events", content=body, headers=auth(keys["analyst"]))
    assert part.status_code == 200
    assert [e["status"] for e in part.json()["events"]] == [200, 422]
    assert client.post("/v1/events", content=b"\xff",
                       headers=auth(keys["analyst"])).status_code == 400
    assert client.post("/v1/alerts", headers=auth(keys["analyst"])).status_code == 405
    assert client.get("/v1/alerts", params={"since": "yesterday"},
                      headers=auth(keys["viewer"])).status_code == 422


def test_a_too_large_body_is_413(served: tuple[TestClient, dict[str, str], ScoringService]
                                 ) -> None:
    _, keys, service = served
    with TestClient(create_app(service, max_body_bytes=100)) as small:
        got = small.post("/v1/events", content=json.dumps([event("api_l", 0, text="x" * 200)]),
                         headers=auth(keys["analyst"]))
    assert got.status_code == 413 and "at most 100 bytes" in got.json()["error"]


def test_a_full_log_answers_429_with_retry_after(demo_store_copy: Path) -> None:
    config = ServiceConfig(fsync=False, wait_s=0.05, max_pending=1)
    with (ScoringService.open(demo_store_copy, config, start=False) as service,  # never applies
          TestClient(create_app(service, insecure_local=True)) as client):
        first = client.post("/v1/events", content=json.dumps([event("api_f", 0)]))
        assert first.status_code == 202 and first.json()["events"][0]["seq"] == 1
        full = client.post("/v1/events", content=json.dumps([event("api_f", 1)]))
        assert full.status_code == 429 and int(full.headers["Retry-After"]) >= 1
        many = client.post("/v1/events", content=json.dumps([event("api_f", 1)] * 2))
        assert many.status_code == 413 and "queue bound" in many.json()["error"]


def test_inline_score_health_metrics_and_docs(
        served: tuple[TestClient, dict[str, str], ScoringService]) -> None:
    client, keys, _ = served
    scored = client.post("/v1/score", content=json.dumps([event("api_i", 0), event("api_i", 2)]),
                         headers=auth(keys["analyst"]))
    assert scored.status_code == 200 and scored.json()["flagged"] is True
    assert client.get("/healthz").json()["status"] == "ok"
    text = client.get("/metrics", headers=auth(keys["viewer"])).text
    assert 'anomalyst_requests_total{route="/v1/score",status="200"}' in text
    assert "anomalyst_queue_depth" in text and "anomalyst_events_stored_total" in text
    assert client.get("/metrics").status_code == 401
    assert client.get("/docs").status_code == 404
    assert "/v1/events" in client.get("/openapi.json").json()["paths"]


def test_no_tokens_and_no_insecure_local_is_refused(
        served: tuple[TestClient, dict[str, str], ScoringService], tmp_path: Path) -> None:
    _, _, service = served
    with pytest.raises(ConfigError, match="at least one API token"):
        create_app(service, tokens=TokenFile(tmp_path / "none.json"))
    with TestClient(create_app(service, insecure_local=True)) as local:
        assert local.get("/v1/alerts").status_code == 200
