"""Customer records through the API, and offers written for them."""

import importlib.util
from pathlib import Path
from types import ModuleType

from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import Session

from app.config import Settings
from app.customers.models import Customer
from app.offers.models import Offer
from tests.factories import line_data, make_offer
from tests.offers.test_pdf import page_texts

ACME = {
    "company": "Acme Hellas SA",
    "contact_name": "Maria Papadopoulou",
    "email": "maria@acme.example",
    "address_lines": "Leoforos Kifisias 12\n3rd floor",
    "postcode": "11526",
    "city": "Athens",
    "country": "Greece",
    "vat_id": "EL123456789",
    "language": "el",
}


def _create(api: TestClient, **data: str) -> dict[str, object]:
    response = api.post("/api/v1/customers", json={**ACME, **data})
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def test_create_read_and_patch_a_customer(api: TestClient) -> None:
    created = _create(api)
    assert created["vat_id"] == "EL123456789"

    changed = api.patch(f"/api/v1/customers/{created['id']}", json={"city": "Marousi"})
    assert changed.status_code == 200
    again = api.get(f"/api/v1/customers/{created['id']}").json()
    assert (again["city"], again["company"]) == ("Marousi", "Acme Hellas SA")


def test_search_by_company_contact_email_or_vat_id(api: TestClient) -> None:
    _create(api)
    _create(api, company="Nordwind GmbH", contact_name="Jan", email="jan@nw.example", vat_id="DE1")
    for term in ("acme", "papadopoulou", "maria@acme", "el1234"):
        items = api.get("/api/v1/customers", params={"q": term}).json()["items"]
        assert [c["company"] for c in items] == ["Acme Hellas SA"], term
    assert api.get("/api/v1/customers").json()["total"] == 2


def test_bad_input_names_the_field(api: TestClient) -> None:
    response = api.post("/api/v1/customers", json={**ACME, "language": "xx", "email": "nope"})
    assert response.status_code == 422
    fields = {tuple(e["loc"]) for e in response.json()["detail"]}
    assert {("body", "language"), ("body", "email")} <= fields
    assert api.get("/api/v1/customers/999999").status_code == 404


def test_customers_need_an_api_key(client: TestClient) -> None:
    assert client.get("/api/v1/customers").status_code == 401


def test_an_offer_for_a_customer_record_keeps_its_snapshot(api: TestClient) -> None:
    customer = _create(api)
    response = api.post(
        "/api/v1/offers",
        json={"customer_id": customer["id"], "customer_reference": "RFQ-9", "lines": [line_data()]},
    )
    assert response.status_code == 201, response.text
    offer = response.json()
    assert offer["customer"]["company"] == "Acme Hellas SA"
    assert offer["customer"]["vat_id"] == "EL123456789"
    assert offer["customer"]["reference"] == "RFQ-9"
    assert offer["customer"]["id"] == customer["id"]
    assert api.post(f"/api/v1/offers/{offer['id']}/issue").status_code == 200

    api.patch(f"/api/v1/customers/{customer['id']}", json={"company": "Acme Renamed SA"})

    issued = api.get(f"/api/v1/offers/{offer['id']}").json()
    assert issued["customer"]["company"] == "Acme Hellas SA"


def test_an_offer_takes_exactly_one_of_customer_and_customer_id(api: TestClient) -> None:
    customer = _create(api)
    both = {"customer": {"company": "X"}, "customer_id": customer["id"], "lines": []}
    assert api.post("/api/v1/offers", json=both).status_code == 422
    assert api.post("/api/v1/offers", json={"lines": []}).status_code == 422
    unknown = api.post("/api/v1/offers", json={"customer_id": 999999, "lines": []})
    assert unknown.status_code == 422
    assert ["body", "customer_id"] in [e["loc"] for e in unknown.json()["detail"]]


def test_the_pdf_prints_the_postal_address_and_vat_id(api: TestClient) -> None:
    customer = _create(api)
    offer = api.post(
        "/api/v1/offers", json={"customer_id": customer["id"], "lines": [line_data()]}
    ).json()
    pdf = api.get(f"/api/v1/offers/{offer['id']}/pdf")
    text_ = " ".join(page_texts(pdf.content))
    for expected in ("Leoforos Kifisias 12", "11526 Athens", "Greece", "EL123456789"):
        assert expected in text_


def _migration() -> ModuleType:
    path = next((Path(__file__).parents[2] / "alembic" / "versions").glob("*_c0570e000001_*.py"))
    spec = importlib.util.spec_from_file_location("customers_migration", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_migration_backfills_customers_from_existing_offers(
    session: Session, settings: Settings
) -> None:
    """The migration's backfill, run on offers that were written without customer records."""
    migration = _migration()
    first = make_offer(session, settings, company="Backfill Ltd")
    second = make_offer(session, settings, company="Backfill Ltd")
    other = make_offer(session, settings, company="Other AG")
    session.execute(text("UPDATE offer SET customer_id = NULL"))
    session.execute(text(migration.BACKFILL_CUSTOMERS))
    session.execute(text(migration.LINK_OFFERS))
    session.expire_all()

    linked = {session.get(Offer, o.id).customer_id for o in (first, second)}  # type: ignore[union-attr]
    assert len(linked) == 1 and None not in linked
    record = session.get(Customer, linked.pop())
    assert record is not None and record.company == "Backfill Ltd"
    assert session.get(Offer, other.id).customer_id != record.id  # type: ignore[union-attr]


def test_deleting_a_customer_keeps_the_offers_copy(api: TestClient, session: Session) -> None:
    customer = _create(api)
    offer = api.post(
        "/api/v1/offers", json={"customer_id": customer["id"], "lines": [line_data()]}
    ).json()

    assert api.delete(f"/api/v1/customers/{customer['id']}").status_code == 204

    assert api.get(f"/api/v1/customers/{customer['id']}").status_code == 404
    session.expire_all()  # the database unlinked the offer (ON DELETE SET NULL)
    kept = api.get(f"/api/v1/offers/{offer['id']}").json()["customer"]
    assert (kept["company"], kept["vat_id"], kept["id"]) == ("Acme Hellas SA", "EL123456789", None)


def test_deleting_a_customer_deletes_its_personal_data_from_the_history_too(
    api: TestClient, session: Session
) -> None:
    """The record's history (the audit log, which nobody may edit) names what changed and
    who changed it, never the values: deleting the record leaves no contact's name, address,
    e-mail or phone anywhere."""
    customer = _create(api, phone="+30 210 5550101")
    changed = {
        "contact_name": "Eleni Georgiou",
        "email": "eleni@acme.example",
        "phone": "+30 210 5550102",
        "address_lines": "Odos Ermou 5",
        "notes": "Eleni prefers calls after 10",
    }
    assert api.patch(f"/api/v1/customers/{customer['id']}", json=changed).status_code == 200
    assert api.delete(f"/api/v1/customers/{customer['id']}").status_code == 204

    history = session.execute(text("SELECT * FROM audit_log")).all()
    personal = [*changed.values(), "Maria Papadopoulou", "maria@acme.example", "5550101"]
    personal += ["Leoforos Kifisias"]
    assert [value for value in personal if value in str(history)] == []
    assert "contact_name" in str(history)  # what changed, and when, stays known


SOLE_TRADER = {"company": "Jonas Weber Elektroinstallation", "contact_name": "Jonas Weber"}


def _entries_about(session: Session, customer_id: object) -> list[tuple[str, str]]:
    rows = session.execute(
        text(
            "SELECT action, summary FROM audit_log WHERE entity_type = 'customer'"
            " AND entity_id = :id ORDER BY id"
        ),
        {"id": str(customer_id)},
    )
    return [(str(action), str(summary)) for action, summary in rows]


def test_a_deleted_sole_traders_name_is_in_no_audit_entry(
    api: TestClient, session: Session
) -> None:
    """A sole trader's company is a person's name: the history names the record by id, so
    once it is deleted no entry names the person."""
    customer = _create(api, **SOLE_TRADER)
    renamed = {"company": "Weber Elektro (Jonas Weber)"}
    assert api.patch(f"/api/v1/customers/{customer['id']}", json=renamed).status_code == 200
    assert api.delete(f"/api/v1/customers/{customer['id']}").status_code == 204

    history = session.execute(text("SELECT * FROM audit_log")).all()
    assert "Weber" not in str(history)
    assert _entries_about(session, customer["id"]) == [
        ("customer.create", f"Created customer record {customer['id']}"),
        ("customer.update", "Changed company"),
        ("customer.delete", f"Deleted customer record {customer['id']}"),
    ]


def test_deleting_a_customer_rewords_an_entry_that_still_names_it(
    api: TestClient, session: Session
) -> None:
    """An entry written before records were named by id (or by a node not yet upgraded)
    named the company; the deletion leaves it naming the record by id instead, with its
    who and when as they were."""
    customer = _create(api, **SOLE_TRADER)
    session.execute(
        text(
            "UPDATE audit_log SET summary = 'Created customer Jonas Weber Elektroinstallation'"
            " WHERE entity_type = 'customer' AND entity_id = :id"
        ),
        {"id": str(customer["id"])},
    )
    before = session.execute(text("SELECT id, actor, occurred_at FROM audit_log")).all()

    assert api.delete(f"/api/v1/customers/{customer['id']}").status_code == 204

    assert "Weber" not in str(session.execute(text("SELECT * FROM audit_log")).all())
    assert _entries_about(session, customer["id"])[0] == (
        "customer.create",
        f"Created customer record {customer['id']}",
    )
    after = session.execute(text("SELECT id, actor, occurred_at FROM audit_log")).all()
    assert set(before) <= set(after)
