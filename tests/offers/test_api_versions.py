"""The API's optimistic concurrency: a GET's ETag, sent back in If-Match, makes an update
refuse (412) when someone changed the record since; without If-Match an update saves."""

from collections.abc import Callable
from datetime import datetime, tzinfo

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app import db
from app.config import Settings
from app.customers.schemas import CustomerCreate
from app.customers.service import create_customer
from app.offers import service
from app.offers.schemas import OfferUpdate
from app.tracking import service as tracking_service
from app.versions import version_of
from tests.factories import make_offer


def test_an_update_sent_with_an_old_etag_is_refused_and_changes_nothing(
    api: TestClient, session: Session, settings: Settings
) -> None:
    url = f"/api/v1/offers/{make_offer(session, settings).id}"
    etag = api.get(url).headers["ETag"]

    first = api.patch(url, json={"notes": "First"}, headers={"If-Match": etag})
    stale = api.patch(url, json={"notes": "Second"}, headers={"If-Match": etag})

    assert first.status_code == 200 and first.headers["ETag"] != etag
    assert stale.status_code == 412
    assert stale.json()["detail"].startswith("This draft was changed at ")
    assert "tests" not in stale.json()["detail"]  # who changed it is the staff site's to say
    assert stale.headers["ETag"] == first.headers["ETag"] == api.get(url).headers["ETag"]
    assert api.get(url).json()["notes"] == "First"


def test_an_update_with_the_current_etag_or_without_one_saves(
    api: TestClient, session: Session, settings: Settings
) -> None:
    url = f"/api/v1/offers/{make_offer(session, settings).id}"
    current = api.get(url).headers["ETag"]

    matched = api.patch(url, json={"notes": "A"}, headers={"If-Match": f'"x", {current}'})
    unconditional = api.patch(url, json={"notes": "B"})
    any_version = api.patch(url, json={"notes": "C"}, headers={"If-Match": "*"})

    assert [r.status_code for r in (matched, unconditional, any_version)] == [200, 200, 200]
    assert api.get(url).json()["notes"] == "C"


def test_a_weak_etag_never_matches_an_if_match(
    api: TestClient, session: Session, settings: Settings
) -> None:
    url = f"/api/v1/offers/{make_offer(session, settings).id}"
    current = api.get(url).headers["ETag"]

    response = api.patch(url, json={"notes": "A"}, headers={"If-Match": f"W/{current}"})

    assert response.status_code == 412


def test_customer_records_take_if_match_too(api: TestClient, session: Session) -> None:
    customer = create_customer(session, CustomerCreate(company="Acme Hellas SA"), actor="tests")
    url = f"/api/v1/customers/{customer.id}"
    etag = api.get(url).headers["ETag"]

    first = api.patch(url, json={"city": "Athens"}, headers={"If-Match": etag})
    stale = api.patch(url, json={"city": "Patras"}, headers={"If-Match": etag})

    assert (first.status_code, stale.status_code) == (200, 412)
    assert stale.json()["detail"].startswith("This customer record was changed at ")
    assert api.get(url).json()["city"] == "Athens"


def test_a_delete_sent_with_an_old_etag_is_refused_and_keeps_the_record(
    api: TestClient, session: Session
) -> None:
    customer = create_customer(session, CustomerCreate(company="Acme Hellas SA"), actor="tests")
    url = f"/api/v1/customers/{customer.id}"
    etag = api.get(url).headers["ETag"]
    changed = api.patch(url, json={"city": "Athens"}).headers["ETag"]

    stale = api.delete(url, headers={"If-Match": etag})
    current = api.delete(url, headers={"If-Match": changed})

    assert stale.status_code == 412 and stale.headers["ETag"] == changed
    assert current.status_code == 204
    assert api.get(url).status_code == 404


def test_an_issue_sent_with_an_old_etag_is_refused_and_leaves_the_draft(
    api: TestClient, session: Session, settings: Settings
) -> None:
    url = f"/api/v1/offers/{make_offer(session, settings).id}"
    etag = api.get(url).headers["ETag"]
    changed = api.patch(url, json={"notes": "Delivery in May"}).headers["ETag"]

    stale = api.post(f"{url}/issue", headers={"If-Match": etag})
    issued = api.post(f"{url}/issue", headers={"If-Match": changed})

    assert stale.status_code == 412 and stale.headers["ETag"] == changed
    assert stale.json()["detail"].startswith("This draft was changed at ")
    assert issued.status_code == 200 and issued.json()["status"] == "issued"
    assert issued.headers["ETag"] == api.get(url).headers["ETag"] != changed


def test_a_revise_sent_with_an_old_etag_is_refused_and_makes_no_revision(
    api: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True)
    url = f"/api/v1/offers/{offer.id}"
    etag = api.get(url).headers["ETag"]
    service.decline_offer(session, offer.id, reason="Too dear", settings=settings)
    declined = api.get(url).headers["ETag"]

    stale = api.post(f"{url}/revise", headers={"If-Match": etag})
    unrevised = api.get(url).json()
    revised = api.post(f"{url}/revise", headers={"If-Match": declined})

    assert stale.status_code == 412 and stale.headers["ETag"] == declined
    assert stale.json()["detail"].startswith("This offer was changed at ")
    assert (unrevised["status"], unrevised["superseded_by_id"]) == ("declined", None)
    assert revised.status_code == 201
    revision = f"/api/v1/offers/{revised.json()['id']}"
    assert revised.headers["ETag"] == api.get(revision).headers["ETag"]
    assert api.get(url).json()["status"] == "superseded"


def test_an_activation_sent_with_an_old_etag_is_refused_and_leaves_the_offer(
    api: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True)
    url = f"/api/v1/offers/{offer.id}"
    etag = api.get(url).headers["ETag"]
    service.accept_offer(
        session, offer.id, signer_name="Maria", po_number="PO-7", settings=settings
    )
    accepted = api.get(url).headers["ETag"]

    stale = api.post(f"{url}/activate", headers={"If-Match": etag})
    unactivated = api.get(url).json()["status"]
    activated = api.post(f"{url}/activate", headers={"If-Match": accepted})

    assert stale.status_code == 412 and stale.headers["ETag"] == accepted
    assert stale.json()["detail"].startswith("This offer was changed at ")
    assert unactivated == "accepted"
    assert activated.status_code == 200 and activated.json()["status"] == "ordered"
    assert activated.headers["ETag"] == api.get(url).headers["ETag"] != accepted


def test_a_second_activation_with_the_etag_read_before_the_first_is_refused(
    api: TestClient, session: Session, settings: Settings
) -> None:
    url = f"/api/v1/offers/{make_offer(session, settings, issued=True).id}"
    etag = api.get(url).headers["ETag"]

    first = api.post(f"{url}/activate", headers={"If-Match": etag})
    second = api.post(f"{url}/activate", headers={"If-Match": etag})
    unconditional = api.post(f"{url}/activate")  # a retry that asks nothing stays harmless

    assert first.status_code == 200
    assert second.status_code == 412 and second.headers["ETag"] == first.headers["ETag"]
    assert unconditional.status_code == 200
    assert unconditional.headers["ETag"] == first.headers["ETag"]


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """Every ``utcnow()`` of the app answers one instant, as on a fast machine or a node whose
    clock is behind: changes follow each other within one microsecond."""
    instant = db.utcnow()

    class Frozen(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> "Frozen":
            return cls.combine(instant.date(), instant.timetz())

    monkeypatch.setattr(db, "datetime", Frozen)
    return instant


def test_a_revise_after_the_customer_declined_within_the_same_microsecond_is_refused(
    api: TestClient, session: Session, settings: Settings, frozen_clock: datetime
) -> None:
    offer = make_offer(session, settings, issued=True)
    url = f"/api/v1/offers/{offer.id}"
    etag = api.get(url).headers["ETag"]
    service.decline_offer(session, offer.id, reason="Too dear", settings=settings)

    stale = api.post(f"{url}/revise", headers={"If-Match": etag})

    assert stale.status_code == 412
    assert api.get(url).json()["status"] == "declined"


STEPS: dict[str, Callable[[Session, str, Settings], object]] = {
    "update": lambda s, offer_id, settings: service.update_offer(
        s, offer_id, OfferUpdate(notes="May"), actor="tests", settings=settings
    ),
    "issue": lambda s, offer_id, settings: service.issue_offer(
        s, offer_id, actor="tests", settings=settings
    ),
    "accept": lambda s, offer_id, settings: service.accept_offer(
        s, offer_id, signer_name="Maria", po_number="", settings=settings
    ),
    "decline": lambda s, offer_id, settings: service.decline_offer(
        s, offer_id, reason="Too dear", settings=settings
    ),
    "activate": lambda s, offer_id, settings: tracking_service.activate_offer(
        s, offer_id, actor="tests", settings=settings
    ),
    "revise": lambda s, offer_id, settings: service.revise_offer(
        s, offer_id, actor="tests", settings=settings
    ),
}


@pytest.mark.parametrize(
    "steps",
    [("update", "issue", "accept", "activate"), ("issue", "decline", "revise")],
    ids=" then ".join,
)
def test_every_change_of_an_offer_is_a_new_version_within_one_microsecond(
    session: Session, settings: Settings, frozen_clock: datetime, steps: tuple[str, ...]
) -> None:
    offer = make_offer(session, settings)
    seen = [version_of(offer.updated_at)]

    for step in steps:
        STEPS[step](session, offer.id, settings)
        seen.append(version_of(service.get_offer(session, offer.id).updated_at))

    assert len(set(seen)) == len(seen), dict(zip(("create", *steps), seen, strict=True))
