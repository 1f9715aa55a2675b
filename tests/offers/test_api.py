"""The Offer API as an integration sees it."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.config import Settings
from app.offers import service
from app.offers.models import Offer
from tests.factories import line_data, make_offer, offer_data

ISSUE_EXAMPLE = {
    "customer": {
        "company": "Acme Hellas SA",
        "contact_name": "Maria P.",
        "email": "maria@example.com",
    },
    "currency": "EUR",
    "valid_until": "2999-12-31",
    "lines": [
        {"description": "Pump PX-200", "quantity": "2", "unit_price": "1250.00", "vat_rate": "24"}
    ],
}


def test_create_answers_201_with_ids_urls_and_totals(api: TestClient) -> None:
    response = api.post("/api/v1/offers", json=ISSUE_EXAMPLE)

    assert response.status_code == 201
    body = response.json()
    assert len(body["id"]) == 26
    assert body["id"] == body["id"].upper()
    assert body["tracking_id"] == body["id"][:10]
    assert body["tracking_url"] == f"https://track.example.com/{body['id']}"
    assert body["pdf_url"] == f"https://track.example.com/api/v1/offers/{body['id']}/pdf"
    assert body["status"] == "draft"
    assert body["totals"] == {
        "net": "2500.00",
        "vat": [{"rate": "24", "net": "2500.00", "vat": "600.00"}],
        "vat_total": "600.00",
        "gross": "3100.00",
    }


def test_get_returns_what_was_created(api: TestClient) -> None:
    created = api.post("/api/v1/offers", json=offer_data(company="Nordwind GmbH")).json()

    fetched = api.get(f"/api/v1/offers/{created['id'].lower()}")

    assert fetched.status_code == 200
    assert fetched.json()["customer"]["company"] == "Nordwind GmbH"
    assert fetched.json()["lines"][0]["net"] == "2500.00"


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({**ISSUE_EXAMPLE, "customer": {"contact_name": "x"}}, ["body", "customer", "company"]),
        ({**ISSUE_EXAMPLE, "lines": [line_data(quantity="abc")]}, ["body", "lines", 0, "quantity"]),
        ({**ISSUE_EXAMPLE, "lines": [line_data(quantity="-1")]}, ["body", "lines", 0, "quantity"]),
        (
            {**ISSUE_EXAMPLE, "lines": [line_data(quantity="1e30")]},
            ["body", "lines", 0, "quantity"],
        ),
        ({**ISSUE_EXAMPLE, "lines": [line_data(vat_rate="140")]}, ["body", "lines", 0, "vat_rate"]),
        ({**ISSUE_EXAMPLE, "currency": "EURO"}, ["body", "currency"]),
        ({**ISSUE_EXAMPLE, "valid_until": "31.12.2026"}, ["body", "valid_until"]),
        ({**ISSUE_EXAMPLE, "valid_until": "2001-01-01"}, ["body", "valid_until"]),
        ({**ISSUE_EXAMPLE, "discount": "5"}, ["body", "discount"]),
        ({**ISSUE_EXAMPLE, "lines": [line_data()] * 501}, ["body", "lines"]),
    ],
)
def test_malformed_input_is_422_naming_the_field(
    api: TestClient, body: dict[str, Any], loc: list[str | int]
) -> None:
    response = api.post("/api/v1/offers", json=body)

    assert response.status_code == 422
    assert loc in [error["loc"] for error in response.json()["detail"]]


def test_missing_or_wrong_key_is_401(client: TestClient) -> None:
    assert client.post("/api/v1/offers", json=ISSUE_EXAMPLE).status_code == 401
    client.headers["Authorization"] = "Bearer ot_not-a-real-key"
    response = client.get("/api/v1/offers")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_unknown_id_is_404(api: TestClient) -> None:
    assert api.get("/api/v1/offers/01H0WARY2WHGGRF3K72D299T3T").status_code == 404
    assert api.get("/api/v1/offers/nonsense").status_code == 404
    assert api.post("/api/v1/offers/01H0WARY2WHGGRF3K72D299T3T/issue").status_code == 404


def test_update_changes_a_draft_and_replaces_its_lines(api: TestClient) -> None:
    offer = api.post("/api/v1/offers", json=ISSUE_EXAMPLE).json()

    response = api.patch(
        f"/api/v1/offers/{offer['id']}",
        json={"lines": [line_data(quantity="1", unit_price="10.00", vat_rate="13")], "notes": "Hi"},
    )

    assert response.status_code == 200
    assert response.json()["notes"] == "Hi"
    assert response.json()["totals"]["gross"] == "11.30"
    assert response.json()["customer"]["company"] == "Acme Hellas SA"


def test_issue_then_update_is_409_saying_why(api: TestClient) -> None:
    offer = api.post("/api/v1/offers", json=ISSUE_EXAMPLE).json()

    issued = api.post(f"/api/v1/offers/{offer['id']}/issue")
    again = api.post(f"/api/v1/offers/{offer['id']}/issue")
    update = api.patch(f"/api/v1/offers/{offer['id']}", json={"notes": "late change"})

    assert issued.status_code == 200
    assert issued.json()["status"] == "issued"
    assert issued.json()["issued_at"] is not None
    assert again.status_code == 409
    assert update.status_code == 409
    assert "it is issued" in update.json()["detail"]


def test_an_offer_without_lines_cannot_be_issued(api: TestClient) -> None:
    offer = api.post("/api/v1/offers", json=offer_data(lines=[])).json()

    response = api.post(f"/api/v1/offers/{offer['id']}/issue")

    assert response.status_code == 409
    assert "at least one line" in response.json()["detail"]


def test_revise_creates_a_new_offer_and_supersedes_the_old(api: TestClient) -> None:
    offer = api.post("/api/v1/offers", json=ISSUE_EXAMPLE).json()
    api.post(f"/api/v1/offers/{offer['id']}/issue")

    revision = api.post(f"/api/v1/offers/{offer['id']}/revise")
    old = api.get(f"/api/v1/offers/{offer['id']}").json()

    assert revision.status_code == 201
    assert revision.json()["id"] != offer["id"]
    assert revision.json()["supersedes_id"] == offer["id"]
    assert revision.json()["status"] == "draft"
    assert revision.json()["totals"] == offer["totals"]
    assert old["status"] == "superseded"
    assert old["superseded_by_id"] == revision.json()["id"]
    assert old["issued_at"] is not None
    assert api.post(f"/api/v1/offers/{offer['id']}/revise").status_code == 409


def test_a_draft_cannot_be_revised(api: TestClient) -> None:
    offer = api.post("/api/v1/offers", json=ISSUE_EXAMPLE).json()

    assert api.post(f"/api/v1/offers/{offer['id']}/revise").status_code == 409


def test_issued_offer_past_validity_reads_expired_everywhere(
    api: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True)
    offer.valid_until = service.today(settings) - timedelta(days=1)
    session.add(offer)
    session.commit()

    assert api.get(f"/api/v1/offers/{offer.id}").json()["status"] == "expired"
    expired = api.get("/api/v1/offers", params={"status": "expired"}).json()
    issued = api.get("/api/v1/offers", params={"status": "issued"}).json()
    assert [item["id"] for item in expired["items"]] == [offer.id]
    assert issued["items"] == []
    assert api.post(f"/api/v1/offers/{offer.id}/revise").status_code == 201


def test_list_filters_and_paginates_newest_first(
    api: TestClient, session: Session, settings: Settings
) -> None:
    older = make_offer(session, settings, company="Brightwater Foods")
    newer = [make_offer(session, settings, company=f"Acme {n}", issued=True) for n in range(3)]

    page = api.get("/api/v1/offers", params={"limit": 2}).json()
    rest = api.get("/api/v1/offers", params={"limit": 2, "offset": 2}).json()
    by_customer = api.get("/api/v1/offers", params={"customer": "brightwater"}).json()
    by_status = api.get("/api/v1/offers", params={"status": "issued"}).json()

    assert page["total"] == 4
    assert [o["id"] for o in page["items"] + rest["items"]] == [
        newer[2].id,
        newer[1].id,
        newer[0].id,
        older.id,
    ]
    assert [o["id"] for o in by_customer["items"]] == [older.id]
    assert by_status["total"] == 3


def test_list_created_range(api: TestClient, session: Session, settings: Settings) -> None:
    offer = make_offer(session, settings)
    start = (offer.created_at - timedelta(seconds=1)).isoformat()
    end = (offer.created_at + timedelta(seconds=1)).isoformat()

    inside = api.get("/api/v1/offers", params={"created_from": start, "created_to": end}).json()
    after = api.get("/api/v1/offers", params={"created_from": end}).json()

    assert [o["id"] for o in inside["items"]] == [offer.id]
    assert after["items"] == []


def test_list_rejects_bad_filters_with_422(api: TestClient) -> None:
    response = api.get("/api/v1/offers", params={"status": "lost", "limit": 0})

    assert response.status_code == 422
    locs = [error["loc"] for error in response.json()["detail"]]
    assert ["query", "status"] in locs
    assert ["query", "limit"] in locs


def test_amounts_survive_the_database_exactly(api: TestClient, session: Session) -> None:
    # Each column at its widest; both on one line would pass the trillion limit of a line.
    lines = [
        line_data(quantity="999999999.999", unit_price="0.0001"),
        line_data(quantity="0.001", unit_price="9999999999.9999"),
    ]

    offer = api.post("/api/v1/offers", json=offer_data(lines=lines)).json()
    session.expire_all()
    stored = session.get(Offer, offer["id"])

    assert stored is not None
    assert stored.lines[0].quantity == Decimal("999999999.999")
    assert stored.lines[1].unit_price == Decimal("9999999999.9999")


def test_openapi_documents_the_offer_api(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()

    assert "/api/v1/offers" in spec["paths"]
    assert "/api/v1/offers/{offer_id}/revise" in spec["paths"]
    assert client.get("/docs").status_code == 200
