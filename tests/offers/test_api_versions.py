"""The API's optimistic concurrency: a GET's ETag, sent back in If-Match, makes an update
refuse (412) when someone changed the record since; without If-Match an update saves."""

from fastapi.testclient import TestClient
from sqlmodel import Session

from app.config import Settings
from app.customers.schemas import CustomerCreate
from app.customers.service import create_customer
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
