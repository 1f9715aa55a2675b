"""An offer's language: set through the API, checked against app.i18n, defaulted by a setting."""

from fastapi.testclient import TestClient
from sqlmodel import Session

from app.config import Settings
from app.offers import service
from app.offers.schemas import OfferCreate
from tests.factories import offer_data


def test_an_offer_is_created_and_changed_in_a_language(api: TestClient) -> None:
    created = api.post("/api/v1/offers", json=offer_data(language="de"))
    assert created.status_code == 201 and created.json()["language"] == "de"

    offer_id = created.json()["id"]
    changed = api.patch(f"/api/v1/offers/{offer_id}", json={"language": "el"})
    assert changed.status_code == 200 and changed.json()["language"] == "el"
    assert api.get(f"/api/v1/offers/{offer_id}").json()["language"] == "el"


def test_an_unknown_language_is_a_422_naming_the_field(api: TestClient) -> None:
    for body in (offer_data(language="fr"), offer_data(language="DE"), offer_data(language="")):
        response = api.post("/api/v1/offers", json=body)
        assert response.status_code == 422
        [error] = response.json()["detail"]
        assert error["loc"] == ["body", "language"] and "en, de, el" in error["msg"]

    offer_id = api.post("/api/v1/offers", json=offer_data()).json()["id"]
    response = api.patch(f"/api/v1/offers/{offer_id}", json={"language": "xx"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "language"]


def test_the_default_language_comes_from_the_setting(session: Session) -> None:
    data = OfferCreate.model_validate(offer_data())
    greek = Settings(default_language="el", public_base_url="https://track.example.com")

    offer = service.create_offer(session, data, actor="test", settings=greek)

    assert offer.language == "el"


def test_a_revision_keeps_the_language(session: Session, settings: Settings) -> None:
    data = OfferCreate.model_validate(offer_data(language="de"))
    offer = service.create_offer(session, data, actor="test", settings=settings)
    service.issue_offer(session, offer.id, actor="test", settings=settings)

    revision = service.revise_offer(session, offer.id, actor="test", settings=settings)

    assert revision.language == "de"
