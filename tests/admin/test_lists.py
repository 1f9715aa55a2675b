"""The staff lists: several filters at once, human column labels, the gross total column."""

import re
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, select

from app.auth.staff import Role, StaffUser
from app.config import get_settings
from app.customers import service as customers
from app.customers.schemas import CustomerCreate
from app.db import utcnow
from app.offers.models import Offer
from app.tracking import service as tracking_service
from app.tracking.schemas import StageUpdateCreate
from tests.admin.conftest import StaffLogin, sign_in
from tests.factories import line_data, make_offer

pytestmark = pytest.mark.concurrency


def _offer(db: Session, company: str, price: str, **extra: Any) -> str:
    lines = [line_data(quantity="1", unit_price=price, vat_rate="20")]
    return make_offer(db, get_settings(), company=company, lines=lines, **extra).id


def test_offers_filter_by_owner_customer_date_and_amount_at_once(
    web: TestClient, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    me = make_staff(Role.SALES)
    my_id = db.exec(select(StaffUser.id).where(StaffUser.email == me.email)).one()
    small = _offer(db, "Alpha Small GmbH", "100")  # 120.00 gross
    big = _offer(db, "Alpha Big GmbH", "1000")  # 1,200.00 gross
    old = _offer(db, "Alpha Old GmbH", "1000")
    _offer(db, "Beta AG", "1000")
    mine = [small, big, old]
    db.execute(update(Offer).where(Offer.id.in_(mine)).values(owner_id=my_id))  # type: ignore[attr-defined]
    long_ago = utcnow() - timedelta(days=90)
    db.execute(update(Offer).where(Offer.id == old).values(created_at=long_ago))  # type: ignore[arg-type]
    db.commit()
    sign_in(web, me)
    since = (utcnow() - timedelta(days=7)).date().isoformat()

    page = web.get(
        "/admin/offer/list",
        params={"owner": "mine", "customer": "alpha", "created_from": since, "gross_min": "500"},
    ).text

    assert "Alpha Big GmbH" in page
    for absent in ("Alpha Small GmbH", "Alpha Old GmbH", "Beta AG"):
        assert absent not in page, absent
    assert "Total (gross)" in page and "€1,200.00" in page
    assert "Beta AG" in web.get("/admin/offer/list", params={"gross_max": "2000"}).text


def test_orders_and_audit_log_read_in_human_words(
    web: TestClient, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    _offer(db, "Gamma SA", "10")
    sign_in(web, make_staff(Role.ADMIN))
    assert "Total (gross)" in web.get("/admin/order/list").text
    users_page = web.get("/admin/staff-user/list").text
    assert "Last sign-in" in users_page and "last_login_at" not in users_page
    keys_page = web.get("/admin/api-key/list").text
    assert "Last used" in keys_page and "last_used_at" not in keys_page

    audit = web.get("/admin/audit-log-entry/list", params={"action": "offer.create"}).text
    assert "Created draft offer for Gamma SA" in audit and "What happened" in audit
    none = web.get("/admin/audit-log-entry/list", params={"actor": "nobody-at-all"}).text
    assert "Created draft offer for Gamma SA" not in none


def _activated(db: Session, company: str) -> str:
    settings = get_settings()
    offer = make_offer(db, settings, issued=True, company=company)
    tracking_service.activate_offer(db, offer.id, actor="tests", settings=settings)
    return offer.id


def test_select_all_on_a_page_without_javascript_ticks_every_row_of_that_page_only(
    web: TestClient, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    orders = [_activated(db, f"Order {n} GmbH") for n in range(3)]
    token = sign_in(web, make_staff(Role.SALES))
    plain = web.get("/admin/order/list").text
    assert re.search(r'href="[^"]*/admin/order/list\?select=1">Select all on this page', plain)
    assert " checked>" not in plain

    ticked = web.get("/admin/order/list", params={"select": "1"}).text
    boxes = re.findall(r'<input[^>]*name="pks" value="([^"]+)"[^>]* checked>', ticked)
    assert sorted(boxes) == sorted(orders)
    # The header's box comes ticked, hidden (with its label) until JavaScript shows it.
    assert re.search(
        r'<label class="tick-target" hidden><input [^>]*aria-label="Select all rows on this page"'
        r" checked>",
        ticked,
    )
    assert "Clear selection" in ticked
    # Another page's number ticks nothing here: "select all" never carries over to page 2.
    assert " checked>" not in web.get("/admin/order/list", params={"select": "2"}).text

    # The ticked boxes post as any ticked by hand would: the bulk action gets every order.
    bulk = web.post(
        "/admin/order/action/bulk-stage-update",
        data={"pks": boxes, "csrf_token": token},
    )
    assert "Add a stage update to 3 orders" in bulk.text


def test_search_finds_greek_and_accented_names_in_any_case(
    web: TestClient, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    """SQLite's own lower() folds ASCII only: a search for a Greek company found nothing, even
    typed exactly as stored, because the term was lowered and the column was not."""
    greek = {"company": "Ελληνικά Προϊόντα ΑΕ", "contact_name": "Μαρία Παπαδοπούλου"}
    _offer(db, greek["company"], "100", customer=greek)
    _offer(db, "ÉNERGIE Lumière SAS", "100")
    customers.create_customer(
        db, CustomerCreate(company="Ωμέγα Τεχνική ΕΠΕ", contact_name="Νίκος"), actor="tests"
    )
    sign_in(web, make_staff(Role.SALES))

    for term in ("Ελληνικά", "ελληνικά", "ΕΛΛΗΝΙΚΆ", "παπαδοπούλου"):
        assert "Ελληνικά Προϊόντα ΑΕ" in web.get("/admin/offer/list", params={"search": term}).text
    assert "ÉNERGIE Lumière" in web.get("/admin/offer/list", params={"search": "énergie"}).text
    filtered = web.get("/admin/offer/list", params={"customer": "ελληνικά"}).text
    assert "Ελληνικά Προϊόντα ΑΕ" in filtered
    assert "Ωμέγα Τεχνική ΕΠΕ" in web.get("/admin/customers", params={"q": "ωμέγα"}).text


def test_offer_and_stage_update_lists_write_dates_and_stages_as_the_other_pages_do(
    web: TestClient, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    """Beside "Dec 7, 2026, 17:15", "Valid until" and "Expected delivery" read "2027-01-06",
    the stage its key ("in_production") and a stage update's page its column names and
    timestamps with microseconds ("created_at 2026-12-07 16:09:46.856075+00:00")."""
    settings = get_settings()
    order_id = _activated(db, "Nordwind GmbH")
    db.execute(update(Offer).where(Offer.id == order_id).values(valid_until=date(2027, 1, 6)))  # type: ignore[arg-type]
    db.commit()
    data = StageUpdateCreate(
        stage="in_production", expected_delivery_date=date(2099, 1, 20), carrier="DHL"
    )
    added = tracking_service.add_stage_update(db, order_id, data, actor="tests", settings=settings)
    sign_in(web, make_staff(Role.SALES))

    offers = web.get("/admin/offer/list").text
    assert "Jan 6, 2027" in offers and "2027-01-06" not in offers
    updates = web.get("/admin/stage-update/list").text
    assert "Jan 20, 2099" in updates and "2099-01-20" not in updates
    assert ">In production<" in updates and "in_production" not in updates
    # Each update links to its order, where the stage history and the next update are.
    assert re.search(rf'<a href="[^"]*/admin/order/details/{order_id}">{order_id}</a>', updates)
    details = web.get(f"/admin/stage-update/details/{added.update.id}").text
    for label in ("Internal note", "Carrier", "Tracking number", "Carrier tracking link"):
        assert f">{label}<" in details, label
    assert ">In production<" in details and "Jan 20, 2099" in details
    for raw in ("created_at", "internal_note", "tracking_number", "+00:00"):
        assert raw not in details, raw


@pytest.mark.parametrize("param", ["owner", "customer"])
def test_a_filter_by_a_number_no_row_can_have_finds_nothing_instead_of_failing(
    web: TestClient, make_staff: Callable[..., StaffLogin], db: Session, param: str
) -> None:
    """A number past SQLite's INTEGER (a hand-edited or mangled link) was a 500."""
    _offer(db, "Alpha GmbH", "100")
    sign_in(web, make_staff(Role.SALES))

    for identity in ("offer", "order"):
        page = web.get(f"/admin/{identity}/list", params={param: "9" * 30})
        assert page.status_code == 200
        assert "Alpha GmbH" not in page.text
        # "²".isdigit(), but int("²") fails: not a number, so no such filter.
        assert web.get(f"/admin/{identity}/list", params={param: "²"}).status_code == 200


@pytest.mark.parametrize(
    ("listed", "param"),
    [
        ("offer", "created_to"),
        ("order", "created_to"),
        ("audit-log-entry", "to"),
        ("offer", "created_from"),
        ("audit-log-entry", "from"),
    ],
)
def test_a_date_at_the_calendar_s_end_is_refused_beside_its_field_not_a_server_error(
    web: TestClient, make_staff: Callable[..., StaffLogin], db: Session, listed: str, param: str
) -> None:
    """A hand-edited link: "until 9999-12-31" looked for times before the day after it, which
    no date can be ("date value out of range", a 500); "from 0001-01-01" at midnight here was
    before the first moment in UTC. Such a date is refused as a typo is, the list shown."""
    _offer(db, "Alpha GmbH", "100")
    sign_in(web, make_staff(Role.ADMIN))
    day = "0001-01-01" if param.endswith("from") else "9999-12-31"

    page = web.get(f"/admin/{listed}/list", params={param: day})
    typo = web.get(f"/admin/{listed}/list", params={param: "2026-02-30"})
    exported = web.get(f"/admin/{listed}/export/csv", params={param: day})

    assert page.status_code == 200 and exported.status_code == 200
    for answer in (page, typo):
        error = re.search(rf'id="filter-{param}-error">(.*?)</div>', answer.text, re.S)
        assert error, f"nothing said beside {param}"
        assert " ".join(error.group(1).split()) == (
            "Enter a date as YYYY-MM-DD, e.g. 2026-12-07. This filter is not applied."
        )
