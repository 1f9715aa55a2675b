"""Activation and stage updates through the API."""

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.config import Settings
from app.db import utcnow
from app.offers import service as offers_service
from tests.factories import make_offer


def test_activation_makes_an_order_once(
    api: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True)

    first = api.post(f"/api/v1/offers/{offer.id}/activate")
    second = api.post(f"/api/v1/offers/{offer.id}/activate")

    assert first.status_code == second.status_code == 200
    assert first.json()["status"] == "ordered"
    assert first.json()["ordered_at"] == second.json()["ordered_at"]
    session.refresh(offer)
    assert offer.activated_by == "api:tests"
    updates = api.get(f"/api/v1/orders/{offer.tracking_id}/updates").json()
    assert [u["stage"] for u in updates] == ["confirmed"]


def test_an_accepted_offer_can_be_activated(
    api: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True)
    offers_service.accept_offer(session, offer.id, signer_name="M", po_number="", settings=settings)

    assert api.post(f"/api/v1/offers/{offer.id}/activate").json()["status"] == "ordered"


def test_drafts_expired_and_superseded_offers_cannot_be_activated(
    api: TestClient, session: Session, settings: Settings
) -> None:
    draft = make_offer(session, settings)
    expired = make_offer(session, settings, issued=True)
    expired.valid_until = offers_service.today(settings) - timedelta(days=1)
    session.add(expired)
    session.commit()
    superseded = make_offer(session, settings, issued=True)
    offers_service.revise_offer(session, superseded.id, actor="tests", settings=settings)

    for offer, state in ((draft, "draft"), (expired, "expired"), (superseded, "superseded")):
        response = api.post(f"/api/v1/offers/{offer.id}/activate")
        assert response.status_code == 409
        assert f"it is {state}" in response.json()["detail"]


@pytest.mark.parametrize(
    "stage", ["In production", "IN PRODUCTION", "in_production", " in production "]
)
def test_stage_update_by_label_or_key_and_any_code_spelling(
    api: TestClient, session: Session, settings: Settings, stage: str
) -> None:
    offer = make_offer(session, settings, issued=True)
    api.post(f"/api/v1/offers/{offer.id}/activate")
    code = f"{offer.tracking_id[:5].lower()}-{offer.tracking_id[5:]}"

    response = api.post(
        f"/api/v1/orders/{code}/updates", json={"stage": stage, "public_note": "Machining started"}
    )

    assert response.status_code == 201
    body = response.json()
    assert (body["stage"], body["stage_label"]) == ("in_production", "In production")
    assert body["public_note"] == "Machining started"
    assert body["created_by"] == "api:tests"
    assert body["tracking_id"] == offer.tracking_id


def test_history_is_newest_first_with_internal_notes(
    api: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True)
    api.post(f"/api/v1/offers/{offer.id}/activate")
    api.post(
        f"/api/v1/orders/{offer.id}/updates",
        json={"stage": "quality_check", "internal_note": "QA by Jo"},
    )

    updates = api.get(f"/api/v1/orders/{offer.id}/updates").json()

    assert [u["stage"] for u in updates] == ["quality_check", "confirmed"]
    assert updates[0]["internal_note"] == "QA by Jo"


def test_stage_update_errors(api: TestClient, session: Session, settings: Settings) -> None:
    issued = make_offer(session, settings, issued=True)
    order = make_offer(session, settings, issued=True)
    api.post(f"/api/v1/offers/{order.id}/activate")
    url = f"/api/v1/orders/{order.tracking_id}/updates"

    unknown_stage = api.post(url, json={"stage": "Teleported"})
    bad_link = api.post(url, json={"stage": "Shipped", "tracking_link": "javascript:alert(1)"})
    naive_time = api.post(url, json={"stage": "Shipped", "happened_at": "2026-11-01T10:00:00"})
    not_an_order = api.post(
        f"/api/v1/orders/{issued.tracking_id}/updates", json={"stage": "Shipped"}
    )
    bad_code = api.post("/api/v1/orders/01H0WARYUW/updates", json={"stage": "Shipped"})

    assert unknown_stage.status_code == 422
    assert unknown_stage.json()["detail"][0]["loc"] == ["body", "stage"]
    assert "In production" in unknown_stage.json()["detail"][0]["msg"]
    assert bad_link.status_code == 422
    assert bad_link.json()["detail"][0]["loc"] == ["body", "tracking_link"]
    assert naive_time.status_code == 422
    assert not_an_order.status_code == 404
    assert bad_code.status_code == 400


def test_an_expected_delivery_before_the_updates_day_is_refused_at_its_field(
    api: TestClient, session: Session, settings: Settings
) -> None:
    order = make_offer(session, settings, issued=True)
    api.post(f"/api/v1/offers/{order.id}/activate")
    url = f"/api/v1/orders/{order.id}/updates"
    today = offers_service.today(settings)
    yesterday = str(today - timedelta(days=1))

    typo = api.post(url, json={"stage": "Shipped", "expected_delivery_date": yesterday})
    after_typo = [u["stage"] for u in api.get(url).json()]
    on_the_day = api.post(url, json={"stage": "Shipped", "expected_delivery_date": str(today)})
    # Entered late for a day that is past: the date it named was then still to come.
    three_days_ago = (utcnow() - timedelta(days=3)).isoformat()
    recorded = api.post(
        url,
        json={
            "stage": "Shipped",
            "happened_at": three_days_ago,
            "expected_delivery_date": yesterday,
        },
    )

    assert typo.status_code == 422
    (error,) = typo.json()["detail"]
    assert error["loc"] == ["body", "expected_delivery_date"]
    assert error["msg"] == (
        f"The expected delivery date {yesterday} lies before the day of this update, "
        f"{today}: check it for a typo."
    )
    assert after_typo == ["confirmed"]
    assert (on_the_day.status_code, recorded.status_code) == (201, 201)


def test_an_update_dated_in_the_future_is_refused_at_its_field(
    api: TestClient, session: Session, settings: Settings
) -> None:
    order = make_offer(session, settings, issued=True)
    api.post(f"/api/v1/offers/{order.id}/activate")
    url = f"/api/v1/orders/{order.id}/updates"
    tomorrow = (utcnow() + timedelta(days=1)).isoformat()
    a_clock_ahead = (utcnow() + timedelta(minutes=2)).isoformat()

    future = api.post(url, json={"stage": "Shipped", "happened_at": tomorrow})
    after_it = [u["stage"] for u in api.get(url).json()]
    skewed = api.post(url, json={"stage": "Shipped", "happened_at": a_clock_ahead})

    assert future.status_code == 422
    (error,) = future.json()["detail"]
    assert error["loc"] == ["body", "happened_at"]
    assert "lies in the future" in error["msg"]
    assert after_it == ["confirmed"]
    assert skewed.status_code == 201


def test_order_api_needs_a_key(client: TestClient) -> None:
    assert client.post("/api/v1/orders/01H0WARY2W/updates", json={"stage": "x"}).status_code == 401
