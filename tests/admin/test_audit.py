"""The audit log: every change from the admin, the API and the CLI, with who and when."""

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from app.audit import AuditLogEntry
from app.auth.service import create_api_key
from app.auth.staff import Role
from app.cli import cli
from app.config import get_settings
from app.errors import Conflict
from app.offers import service as offers_service
from app.offers.ids import hyphenate_tracking_id
from app.offers.models import Offer
from app.tracking import service as tracking_service
from app.tracking.models import StageUpdate
from app.tracking.schemas import StageUpdateCreate
from tests.factories import line_data, make_offer, offer_data

pytestmark = pytest.mark.concurrency


# Where the audit log lets a long address or id break: no character a reader sees.
WBR = "<wbr>"


def _entries(db: Session, offer_id: str | None = None) -> list[tuple[str, str]]:
    query = select(AuditLogEntry.actor, AuditLogEntry.action).order_by(col(AuditLogEntry.id))
    if offer_id:
        query = query.where(AuditLogEntry.offer_id == offer_id)
    rows = [(actor, action) for actor, action in db.exec(query).all()]
    db.rollback()
    return rows


def test_api_changes_are_logged_under_the_keys_name(web: TestClient, db: Session) -> None:
    _, token = create_api_key(db, "erp", actor="tests")
    headers = {"Authorization": f"Bearer {token}"}

    offer_id = web.post("/api/v1/offers", json=offer_data(), headers=headers).json()["id"]
    web.patch(f"/api/v1/offers/{offer_id}", json={"notes": "Delivery to gate 3"}, headers=headers)
    web.post(f"/api/v1/offers/{offer_id}/issue", headers=headers)
    web.post(f"/api/v1/offers/{offer_id}/activate", headers=headers)
    web.post(f"/api/v1/orders/{offer_id}/updates", json={"stage": "Shipped"}, headers=headers)

    assert _entries(db, offer_id) == [
        ("api:erp", "offer.create"),
        ("api:erp", "offer.update"),
        ("api:erp", "offer.issue"),
        ("api:erp", "offer.activate"),
        ("api:erp", "order.stage_update"),
    ]


def test_the_command_line_is_logged_as_cli(db: Session) -> None:
    runner = CliRunner()

    user = runner.invoke(
        cli, ["create-user", "ana@example.com", "--role", "admin"], input="a long password\n"
    )
    key = runner.invoke(cli, ["create-api-key", "crm"])

    assert user.exit_code == 0, user.output
    assert key.exit_code == 0, key.output
    assert _entries(db) == [("cli", "staff_user.create"), ("cli", "api_key.create")]


def test_customer_answers_are_logged_as_the_customer(web: TestClient, db: Session) -> None:
    settings = get_settings()
    accepted = make_offer(db, settings, issued=True)
    declined = make_offer(db, settings, issued=True)

    offers_service.accept_offer(
        db, accepted.id, signer_name="Maria P.", po_number="PO-1", settings=settings
    )
    offers_service.decline_offer(db, declined.id, reason="Too late for us", settings=settings)

    assert _entries(db, accepted.id)[-1] == ("customer", "offer.accept")
    assert _entries(db, declined.id)[-1] == ("customer", "offer.decline")


def test_a_refused_change_leaves_no_entry(db: Session) -> None:
    settings = get_settings()
    offer = make_offer(db, settings, issued=True)
    before = _entries(db, offer.id)

    with pytest.raises(Conflict):
        offers_service.issue_offer(db, offer.id, actor="tests", settings=settings)
    db.rollback()

    assert _entries(db, offer.id) == before


def test_activation_from_the_admin_is_idempotent_and_names_the_staff_member(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    offer = make_offer(db, get_settings(), issued=True, company="Acme Hellas SA")
    token = as_role(Role.SALES)

    first = web.post(f"/admin/offers/{offer.id}/activate", data={"csrf_token": token})
    second = web.post(f"/admin/offers/{offer.id}/activate", data={"csrf_token": token})

    assert first.status_code == second.status_code == 200
    assert "is active" in second.text
    db.expire_all()
    stored = db.get(Offer, offer.id)
    assert stored is not None and stored.activated_by == "staff:sales@example.com"
    updates = db.exec(select(StageUpdate).where(StageUpdate.offer_id == offer.id)).all()
    assert len(updates) == 1
    assert _entries(db, offer.id).count(("staff:sales@example.com", "offer.activate")) == 1


def test_the_order_page_shows_the_full_history_with_who_did_what(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    settings = get_settings()
    offer = make_offer(db, settings, issued=True)
    tracking_service.activate_offer(db, offer.id, actor="api:erp", settings=settings)
    tracking_service.add_stage_update(
        db, offer.id, StageUpdateCreate(stage="Shipped"), actor="cli", settings=settings
    )
    token = as_role(Role.SALES)
    web.post(
        f"/admin/orders/{offer.id}/stage-update",
        data={
            "stage": "delivered",
            "internal_note": "Signed by the gatekeeper",
            "csrf_token": token,
        },
    )

    page = web.get(f"/admin/order/details/{offer.id}").text

    history = page[page.index('id="history"') :]
    for who, what in (
        ("staff:sales@example.com", "Stage update: Delivered"),
        ("cli", "Stage update: Shipped"),
        ("api:erp", "Activated as order"),
        ("tests", "Issued the offer"),
        ("tests", "Created draft offer"),
    ):
        assert who in history and what in history
    assert history.index("Delivered") < history.index("Shipped") < history.index("Activated")
    assert "Signed by the gatekeeper" in page  # staff see internal notes


def test_the_audit_log_lists_changes_of_users_and_keys_for_admins(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    token = as_role(Role.ADMIN)
    web.post(
        "/admin/staff-user/create",
        data={
            "email": "Ben@Example.com",
            "role": "viewer",
            "password": "a long password",
            "csrf_token": token,
        },
    )

    page = web.get("/admin/audit-log-entry/list").text.replace(WBR, "")

    assert "Created staff user ben@example.com (viewer)" in page
    assert "staff:admin@example.com" in page


def test_who_changed_an_offers_price_is_found_by_its_tracking_id_with_the_amounts(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    _, key = create_api_key(db, "erp", actor="tests")
    headers = {"Authorization": f"Bearer {key}"}
    offer_id = web.post("/api/v1/offers", json=offer_data(), headers=headers).json()["id"]
    other_id = web.post("/api/v1/offers", json=offer_data(), headers=headers).json()["id"]
    cheaper = {"lines": [line_data(unit_price="1000.00")]}
    web.patch(f"/api/v1/offers/{offer_id}", json=cheaper, headers=headers)
    web.patch(f"/api/v1/offers/{other_id}", json={"notes": "Gate 3"}, headers=headers)
    as_role(Role.ADMIN)
    printed = hyphenate_tracking_id(offer_id[:10]).lower()  # as read off the PDF

    page = web.get("/admin/audit-log-entry/list", params={"offer": printed}).text.replace(WBR, "")

    assert "Changed lines (gross total 3100.00 → 2480.00 EUR)" in page
    assert "api:erp" in page
    assert other_id not in page  # only the offer asked about
    notes_only = web.get("/admin/audit-log-entry/list", params={"offer": other_id}).text.replace(
        WBR, ""
    )
    assert "Changed notes" in notes_only and "gross total" not in notes_only


def test_a_nul_character_in_the_audit_log_filters_finds_nothing_instead_of_failing(
    web: TestClient, as_role: Callable[[Role], str]
) -> None:
    """PostgreSQL's text refuses NUL: a pasted or crafted %00 in a filter reads as U+FFFD (as
    bytes that are not UTF-8 do), which matches nothing, instead of a 500."""
    as_role(Role.ADMIN)

    for field in ("actor", "action", "offer"):
        page = web.get("/admin/audit-log-entry/list", params={field: "zz\x00zz"})

        assert page.status_code == 200, field
        assert 'value="zz\ufffdzz"' in page.text, field
