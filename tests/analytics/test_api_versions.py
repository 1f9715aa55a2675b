"""Campaigns and placements in the API take part in optimistic concurrency as offers and
customer records do: a GET's ETag, sent back in If-Match, makes a PATCH refuse (412) when
someone changed the record since."""

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.analytics import webhooks
from app.analytics.schemas import WebhookEndpointCreate
from app.audit import AuditLogEntry
from tests.factories import make_campaign, make_placement


def _campaign(session: Session) -> str:
    return f"/api/v1/campaigns/{make_campaign(session).id}"


def _placement(session: Session) -> str:
    return f"/api/v1/placements/{make_placement(session, make_campaign(session).id or 0).id}"


def _webhook_endpoint(session: Session) -> str:
    data = WebhookEndpointCreate(url="https://hook.example.com/", event_types=["scan.created"])
    return f"/api/v1/webhooks/{webhooks.create_endpoint(session, data, actor='tests').id}"


RECORDS = {
    "campaign": (_campaign, {"utm_medium": "poster"}, {"utm_medium": "flyer"}, "utm_medium"),
    "placement": (_placement, {"name": "Shop window"}, {"name": "Counter"}, "name"),
    "webhook endpoint": (
        _webhook_endpoint,
        {"url": "https://warehouse.example.com/in"},
        {"url": "https://hook.example.com/v2"},
        "url",
    ),
}


@pytest.mark.parametrize("noun", RECORDS)
def test_a_change_sent_with_an_old_etag_is_refused_and_changes_nothing(
    api: TestClient, session: Session, noun: str
) -> None:
    make, first_change, second_change, field = RECORDS[noun]
    url = make(session)
    etag = api.get(url).headers["ETag"]

    first = api.patch(url, json=first_change, headers={"If-Match": etag})
    stale = api.patch(url, json=second_change, headers={"If-Match": etag})

    assert first.status_code == 200 and first.headers["ETag"] != etag
    assert stale.status_code == 412
    assert stale.json()["detail"].startswith(f"This {noun} was changed at ")
    assert stale.headers["ETag"] == first.headers["ETag"] == api.get(url).headers["ETag"]
    assert api.get(url).json()[field] == first_change[field]


@pytest.mark.parametrize("noun", RECORDS)
def test_a_change_with_the_current_etag_or_without_one_saves(
    api: TestClient, session: Session, noun: str
) -> None:
    make, first_change, second_change, field = RECORDS[noun]
    url = make(session)
    current = api.get(url).headers["ETag"]

    matched = api.patch(url, json=first_change, headers={"If-Match": current})
    unconditional = api.patch(url, json=second_change)

    assert (matched.status_code, unconditional.status_code) == (200, 200)
    assert api.get(url).json()[field] == second_change[field]


def test_a_webhook_endpoint_rotated_or_deleted_from_an_old_etag_is_left_as_it_is(
    api: TestClient, session: Session
) -> None:
    url = _webhook_endpoint(session)
    etag = api.get(url).headers["ETag"]
    assert api.patch(url, json={"event_types": ["offer.accepted"]}).status_code == 200

    rotated = api.post(f"{url}/rotate-secret", headers={"If-Match": etag})
    deleted = api.delete(url, headers={"If-Match": etag})

    assert (rotated.status_code, deleted.status_code) == (412, 412)
    assert api.get(url).json()["event_types"] == ["offer.accepted"]
    current = api.get(url).headers["ETag"]
    fresh = api.post(f"{url}/rotate-secret", headers={"If-Match": current})
    assert fresh.status_code == 200 and fresh.headers["ETag"] != current
    assert api.delete(url, headers={"If-Match": fresh.headers["ETag"]}).status_code == 204
    assert api.get(url).status_code == 404


def test_a_deleted_webhook_endpoint_stays_in_the_audit_log_with_its_address(
    api: TestClient, session: Session
) -> None:
    url = _webhook_endpoint(session)

    assert api.delete(url).status_code == 204

    query = select(AuditLogEntry).order_by(col(AuditLogEntry.id).desc())
    entry = session.exec(query).first()
    assert entry is not None and entry.action == "webhook.deleted"
    assert entry.entity_id == url.rsplit("/", 1)[1] and entry.actor.startswith("api")
    assert "https://hook.example.com/" in entry.summary


VERSIONED = [
    ("get", "/api/v1/offers/{offer_id}"),
    ("patch", "/api/v1/offers/{offer_id}"),
    ("post", "/api/v1/offers/{offer_id}/issue"),
    ("post", "/api/v1/offers/{offer_id}/revise"),
    ("post", "/api/v1/offers/{offer_id}/activate"),
    ("get", "/api/v1/customers/{customer_id}"),
    ("patch", "/api/v1/customers/{customer_id}"),
    ("get", "/api/v1/campaigns/{campaign_id}"),
    ("patch", "/api/v1/campaigns/{campaign_id}"),
    ("get", "/api/v1/placements/{placement_id}"),
    ("patch", "/api/v1/placements/{placement_id}"),
    ("get", "/api/v1/webhooks/{endpoint_id}"),
    ("patch", "/api/v1/webhooks/{endpoint_id}"),
    ("post", "/api/v1/webhooks/{endpoint_id}/rotate-secret"),
]


@pytest.mark.parametrize(("method", "path"), VERSIONED, ids=[f"{m} {p}" for m, p in VERSIONED])
def test_the_schema_documents_the_etag_and_if_match(app: FastAPI, method: str, path: str) -> None:
    operation: dict[str, Any] = app.openapi()["paths"][path][method]
    answers = operation["responses"]
    success = answers["201" if path.endswith("/revise") else "200"]

    assert "ETag" in success["headers"]
    assert "content" in success  # the body's schema is still documented beside the header
    if method != "get":
        headers = [p["name"] for p in operation["parameters"] if p["in"] == "header"]
        assert "if-match" in headers
        assert "412" in answers
