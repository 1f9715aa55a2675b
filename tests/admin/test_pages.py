"""What staff see and do: search in any spelling, filters, dashboard, forms with field errors,
bulk stage updates, API keys shown once."""

import base64
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection
from sqlmodel import Session, select

from app.admin import queries
from app.admin.access import SESSION_COOKIE
from app.auth.models import ApiKey
from app.auth.service import authenticate, create_api_key
from app.auth.staff import Role
from app.config import get_settings
from app.db import utcnow
from app.offers import service as offers_service
from app.offers.ids import hyphenate_tracking_id
from app.offers.models import Offer
from app.tracking import service as tracking_service
from app.tracking.models import Channel, CodeForm, ScanEvent, StageUpdate
from app.tracking.partitions import Month, add_month
from app.tracking.scanrows import insert_scans
from app.tracking.schemas import StageUpdateCreate
from tests.conftest import TEST_DATABASE_URL
from tests.factories import make_offer
from tests.plans import analyze, assert_reads_at_most, bulk_offers, captured
from tests.tracking.test_retention import scan

pytestmark = pytest.mark.concurrency


def _order(db: Session, company: str, **extra: str) -> Offer:
    settings = get_settings()
    offer = make_offer(db, settings, issued=True, company=company, **extra)
    return tracking_service.activate_offer(db, offer.id, actor="tests", settings=settings)


def _spellings(offer: Offer) -> list[str]:
    short = offer.tracking_id
    hyphenated = hyphenate_tracking_id(short)
    return [
        hyphenated.lower(),
        f"  {short.lower()}  ",
        " ".join(short),
        short.replace("0", "O").replace("1", "l"),
        offer.id.lower(),
        hyphenate_tracking_id(offer.id),
    ]


def test_search_finds_an_order_by_its_tracking_id_in_any_spelling(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    wanted = _order(db, "Acme Hellas SA")
    other = _order(db, "Nordwind GmbH")
    as_role(Role.VIEWER)

    for spelling in _spellings(wanted):
        page = web.get("/admin/order/list", params={"search": spelling}).text
        assert "Acme Hellas SA" in page, spelling
        assert "Nordwind GmbH" not in page, spelling
    assert hyphenate_tracking_id(other.tracking_id) in web.get("/admin/order/list").text


def test_search_finds_offers_by_company_and_customer_reference(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    settings = get_settings()
    make_offer(
        db,
        settings,
        company="Acme Hellas SA",
        customer={"company": "Acme Hellas SA", "reference": "RFQ-7781"},
    )
    make_offer(db, settings, company="Nordwind GmbH")
    as_role(Role.VIEWER)

    by_company = web.get("/admin/offer/list", params={"search": "hellas"}).text
    by_reference = web.get("/admin/offer/list", params={"search": "rfq-7781"}).text
    not_a_code = web.get("/admin/offer/list", params={"search": "zzzz"}).text

    assert "Acme Hellas SA" in by_company and "Nordwind GmbH" not in by_company
    assert "Acme Hellas SA" in by_reference and "Nordwind GmbH" not in by_reference
    assert "Acme Hellas SA" not in not_a_code and "Nordwind GmbH" not in not_a_code


def test_offers_filter_by_status_as_the_customer_sees_it_newest_first(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    settings = get_settings()
    make_offer(db, settings, company="Old Draft AG")
    expired = make_offer(db, settings, issued=True, company="Expired Ltd")
    expired.valid_until = offers_service.today(settings) - timedelta(days=1)
    db.add(expired)
    db.commit()
    make_offer(db, settings, issued=True, company="Fresh Issued SA")
    as_role(Role.VIEWER)

    issued = web.get("/admin/offer/list", params={"status": "issued"}).text
    expired_page = web.get("/admin/offer/list", params={"status": "expired"}).text
    everything = web.get("/admin/offer/list").text

    assert "Fresh Issued SA" in issued and "Expired Ltd" not in issued
    assert "Expired Ltd" in expired_page and "Fresh Issued SA" not in expired_page
    assert (
        everything.index("Fresh Issued SA")
        < everything.index("Expired Ltd")
        < everything.index("Old Draft AG")
    )


def test_orders_filter_by_current_stage_and_show_it(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    shipped = _order(db, "Shipped GmbH")
    tracking_service.add_stage_update(
        db, shipped.id, StageUpdateCreate(stage="Shipped"), actor="tests", settings=get_settings()
    )
    _order(db, "Just Ordered SA")
    as_role(Role.VIEWER)

    page = web.get("/admin/order/list", params={"stage": "shipped"}).text

    assert "Shipped GmbH" in page and "Just Ordered SA" not in page
    everything = web.get("/admin/order/list").text
    assert "Order confirmed" in everything and "Shipped" in everything


def test_the_dashboard_counts_this_months_offers_stages_late_orders_and_human_scans(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    settings = get_settings()
    make_offer(db, settings, issued=True)
    late = _order(db, "Late Delivery AG")
    yesterday = offers_service.today(settings) - timedelta(days=1)
    # Entered the day before yesterday, the date it named has passed since.
    update = StageUpdateCreate(
        stage="In production",
        happened_at=utcnow() - timedelta(days=2),
        expected_delivery_date=yesterday,
    )
    tracking_service.add_stage_update(db, late.id, update, actor="tests", settings=settings)
    for is_bot in (False, False, True):
        db.add(
            ScanEvent(
                offer_id=late.id,
                occurred_at=utcnow(),
                code_form=CodeForm.SHORT,
                channel=Channel.QR,
                device_class="bot" if is_bot else "mobile",
                is_bot=is_bot,
            )
        )
    # a campaign code's redirect is a scan event too, but not a view of a tracking page
    db.add(
        ScanEvent(
            offer_id=None,
            occurred_at=utcnow(),
            code_form=CodeForm.CAMPAIGN,
            channel=Channel.QR,
            device_class="mobile",
        )
    )
    db.commit()
    as_role(Role.VIEWER)

    page = web.get("/admin/").text

    assert 'id="stat-issued">2<' in page
    assert 'id="stat-ordered">1<' in page
    assert 'id="stat-scans">2<' in page
    overdue = page[page.index('id="overdue"') :]
    assert "Late Delivery AG" in overdue and "In production" in overdue
    per_stage = page[page.index('id="orders-per-stage"') : page.index('id="overdue"')]
    assert 'In production</a></td><td class="text-end">1' in per_stage


def test_accepted_this_month_starts_at_local_midnight_of_the_first(
    web: TestClient, as_role: Callable[[Role], str], db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 1 March, 00:30 in Berlin, while it is still February in UTC.
    now = datetime(2026, 2, 28, 23, 30, tzinfo=UTC)
    monkeypatch.setattr(offers_service, "utcnow", lambda: now)
    settings = get_settings()
    accepted_at = {
        "This Month One": datetime(2026, 2, 28, 23, 10, tzinfo=UTC),  # 00:10 on 1 March
        "This Month Two": now,
        "Last Month": datetime(2026, 2, 28, 22, 50, tzinfo=UTC),  # 23:50 on 28 February
    }
    for company, when in accepted_at.items():
        offer = make_offer(db, settings, issued=True, company=company)
        offers_service.accept_offer(
            db, offer.id, signer_name="Maria", po_number="", settings=settings
        )
        offer.accepted_at = when
        db.add(offer)
    db.commit()
    as_role(Role.VIEWER)

    page = web.get("/admin/").text

    assert 'id="stat-accepted">2<' in page


def test_an_admin_changes_the_stage_list_and_orders_follow_it(
    web: TestClient,
    as_role: Callable[[Role], str],
    db: Session,
    restored_stage_list: None,
) -> None:
    order = _order(db, "Nordwind GmbH")
    _, api_token = create_api_key(db, "erp", actor="tests")
    token = as_role(Role.ADMIN)

    def post(path: str, **fields: str) -> int:
        data = fields | {"csrf_token": token}
        return web.post(path, data=data, follow_redirects=False).status_code

    added = post("/admin/order-stage/create", key="customs", label="Customs clearance")
    renamed = post("/admin/order-stage/edit/quality_check", label="Final inspection", position="3")
    moved_last = post("/admin/order-stage/edit/delivered", label="Delivered", position="20")
    moved_in = post("/admin/order-stage/edit/customs", label="Customs clearance", position="6")
    api = web.post(
        f"/api/v1/orders/{hyphenate_tracking_id(order.tracking_id).lower()}/updates",
        json={"stage": "CUSTOMS CLEARANCE", "public_note": "Held at the border"},
        headers={"Authorization": f"Bearer {api_token}"},
    )
    page = web.get(f"/{order.tracking_id}").text

    assert [added, renamed, moved_last, moved_in] == [302, 302, 302, 302]
    assert api.status_code == 201, api.text
    steps = page[page.index('<ol class="steps">') : page.index("</ol>")]
    labels = re.findall(r'<span class="label">([^<]+)</span>', steps)
    assert labels == [
        "Order confirmed",
        "In production",
        "Final inspection",
        "Ready for dispatch",
        "Shipped",
        "Customs clearance",
        "Delivered",
    ]
    assert "Current stage: <strong>Customs clearance</strong>" in page
    assert "Held at the border" in page
    assert "Quality check" not in page


def test_a_stage_update_form_shows_errors_next_to_the_fields_and_keeps_the_input(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    order = _order(db, "Acme Hellas SA")
    token = as_role(Role.SALES)

    response = web.post(
        f"/admin/orders/{order.id}/stage-update",
        data={
            "stage": "",
            "public_note": "Leaves Friday",
            "tracking_link": "javascript:alert(1)",
            "csrf_token": token,
        },
    )

    assert response.status_code == 422
    assert 'id="stage-error"' in response.text
    assert 'id="tracking_link-error">must be an http or https link' in response.text
    assert "Leaves Friday" in response.text
    db.expire_all()
    assert len(db.exec(select(StageUpdate).where(StageUpdate.offer_id == order.id)).all()) == 1


def test_a_bulk_stage_update_reaches_every_selected_order_and_only_those(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    first, second, untouched = (_order(db, name) for name in ("One AG", "Two AG", "Three AG"))
    token = as_role(Role.SALES)

    chosen = web.post(
        "/admin/order/action/bulk-stage-update",
        data={"pks": [first.id, second.id], "csrf_token": token},
    )
    assert "Add a stage update to 2 orders" in chosen.text
    done = web.post(
        "/admin/orders/bulk-stage-update",
        data={
            "pks": [first.id, second.id],
            "stage": "shipped",
            "carrier": "DHL",
            "csrf_token": token,
        },
    )

    assert "Stage update added to 2 orders" in done.text
    db.expire_all()
    for order, stages in ((first, 2), (second, 2), (untouched, 1)):
        rows = db.exec(select(StageUpdate).where(StageUpdate.offer_id == order.id)).all()
        assert len(rows) == stages
    db.rollback()


def test_a_bulk_stage_update_naming_an_order_twice_updates_it_once(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    order = _order(db, "One AG")
    token = as_role(Role.SALES)

    done = web.post(
        "/admin/orders/bulk-stage-update",
        data={"pks": [order.id, order.tracking_id], "stage": "shipped", "csrf_token": token},
    )

    assert "Stage update added to 1 order." in done.text
    db.expire_all()
    assert len(db.exec(select(StageUpdate).where(StageUpdate.offer_id == order.id)).all()) == 2


def test_a_bulk_update_with_a_non_order_changes_nothing(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    order = _order(db, "One AG")
    offer = make_offer(db, get_settings(), issued=True)
    token = as_role(Role.SALES)

    response = web.post(
        "/admin/orders/bulk-stage-update",
        data={"pks": [order.id, offer.id], "stage": "shipped", "csrf_token": token},
    )

    assert response.status_code == 422
    assert "Nothing was changed" in response.text
    db.expire_all()
    assert len(db.exec(select(StageUpdate).where(StageUpdate.offer_id == order.id)).all()) == 1


def test_an_api_key_named_like_an_active_one_but_for_capitals_is_refused_beside_the_name(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    # "CRM" and "crm" were both active: the audit log showed two keys a reader took for one.
    token = as_role(Role.ADMIN)
    web.post("/admin/api-key/create", data={"name": "CRM", "csrf_token": token})

    again = web.post("/admin/api-key/create", data={"name": "crm", "csrf_token": token})

    assert again.status_code == 400
    feedback = again.text.split('invalid-feedback">', 1)[1].split("<", 1)[0]
    assert feedback.startswith("An active API key is called &#39;CRM&#39; already")
    assert 'name="name"' in again.text.split('invalid-feedback">', 1)[0].rsplit("<label", 1)[1]
    db.rollback()
    assert db.exec(select(ApiKey.name)).all() == ["CRM"]


def test_an_api_key_token_is_shown_once_and_works(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    token = as_role(Role.ADMIN)

    answer = web.post(
        "/admin/api-key/create",
        data={"name": "crm", "csrf_token": token},
        follow_redirects=False,
    )
    # Post/Redirect/Get: the token is on the page after, so a reload creates no second key.
    assert answer.status_code in {302, 303} and 'id="secret-value"' not in answer.text
    created = web.get(answer.headers["location"])
    reloaded = web.get(answer.headers["location"])

    assert created.headers["cache-control"].startswith("no-store")
    shown = created.text.split('id="secret-value">', 1)[1].split("</textarea>", 1)[0]
    assert shown.startswith("ot_")
    assert authenticate(db, shown).name == "crm"
    db.rollback()
    assert shown not in reloaded.text and 'id="secret-value"' not in reloaded.text
    assert shown not in web.get("/admin/api-key/list").text
    assert len(db.exec(select(ApiKey).where(ApiKey.name == "crm")).all()) == 1
    # The staff session is a signed cookie anyone holding it can read: the token went sealed.
    payload = (web.cookies.get(SESSION_COOKIE) or "").split(".")[0]
    assert shown not in base64.b64decode(payload + "=" * (-len(payload) % 4)).decode()


def test_user_forms_show_field_errors_next_to_the_field(
    web: TestClient, as_role: Callable[[Role], str]
) -> None:
    token = as_role(Role.ADMIN)

    response = web.post(
        "/admin/staff-user/create",
        data={"email": "not an address", "role": "sales", "password": "short", "csrf_token": token},
    )

    assert response.status_code == 400
    assert "Enter an e-mail address like ana@example.com." in response.text
    assert "Field must be between 10 and 1024 characters long." in response.text


def test_offer_page_offers_the_actions_the_role_allows(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    offer = make_offer(db, get_settings(), issued=True)
    as_role(Role.VIEWER)
    viewer_page = web.get(f"/admin/offer/details/{offer.id}").text
    web.cookies.clear()
    as_role(Role.SALES)
    sales_page = web.get(f"/admin/offer/details/{offer.id}").text

    assert "Download PDF" in viewer_page and "Open tracking page" in viewer_page
    assert "Activate as order" not in viewer_page
    assert "Activate as order" in sales_page and "Revise" in sales_page
    pdf = web.get(f"/admin/offers/{offer.id}/pdf")
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")


# The middle of a month whose scan partition no test run has made yet (PostgreSQL).
MID_MONTH = datetime(2031, 1, 15, 12, tzinfo=UTC)
COUNT_OF_OFFERS = "SELECT count(*) AS count_1 FROM offer WHERE"


def _orders_at(connection: Connection, prefix: str, count: int, at: datetime) -> None:
    """``count`` orders issued, accepted and ordered at ``at``."""
    valid_until = at.date() + timedelta(days=30)
    ordered = {"status": "'ordered'", "accepted_at": ":at", "ordered_at": ":at"}
    bulk_offers(connection, count, prefix, at=at, valid_until=valid_until, **ordered)


def test_the_dashboards_figures_of_the_month_read_its_offers_not_every_offer(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every view of the staff dashboard counts the offers issued, accepted and ordered this
    month; each count read every offer there ever was."""
    monkeypatch.setattr(offers_service, "utcnow", lambda: MID_MONTH)
    connection = session.connection()
    _orders_at(connection, "L", 20_000, MID_MONTH - timedelta(days=365))
    _orders_at(connection, "T", 3, MID_MONTH - timedelta(days=1))

    with captured(connection.engine) as statements:
        figures = queries.dashboard(session, get_settings())

    assert (figures.issued, figures.accepted, figures.ordered) == (3, 3, 3)
    counts = [
        s
        for s in statements
        if " ".join(s[0].split()).startswith(COUNT_OF_OFFERS) and "_at >=" in s[0]
    ]
    assert len(counts) == 3
    assert_reads_at_most(connection, counts, "offer", 1_000)  # 20,003 each before
    analyze(connection, "offer")
    assert_reads_at_most(connection, counts, "offer", 1_000)


def _view(at: datetime) -> dict[str, object]:
    return scan("", at) | {"offer_id": None}


@pytest.mark.skipif(not TEST_DATABASE_URL.startswith("postgresql"), reason="PostgreSQL's planner")
def test_the_dashboards_scans_of_today_read_todays_not_the_months_partition(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A month's partition has no statistics at its start: counting today's scans from a lower
    bound alone, PostgreSQL read the whole month's partition at every view."""
    monkeypatch.setattr(offers_service, "utcnow", lambda: MID_MONTH)
    connection = session.connection()
    add_month(connection, Month(2031, 1))
    # Views by a tracking page's code form; the count looks at nothing else.
    earlier = [_view(MID_MONTH - timedelta(days=1 + n % 10)) for n in range(20_000)]
    insert_scans(connection, [*earlier, *(_view(MID_MONTH) for _ in range(5))])

    with captured(connection.engine) as statements:
        assert queries.dashboard(session, get_settings()).scans_today == 5

    assert_reads_at_most(connection, statements, "scan_event", 1_000)  # 20,005 before
    analyze(connection, "scan_event_p2031_01")
    assert_reads_at_most(connection, statements, "scan_event", 1_000)


def test_a_rows_first_column_opens_it_for_a_thumb_on_a_phone(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    offer = make_offer(db, get_settings(), issued=True)
    as_role(Role.VIEWER)

    listed = web.get("/admin/offer/list").text

    details = f'/admin/offer/details/{offer.id}">'
    code = hyphenate_tracking_id(offer.tracking_id)
    assert f'{details}<span class="tracking-id">{code}</span></a>' in listed  # kept whole
    # the others stay text: one link per row besides the icons
    assert listed.count(f"/admin/offer/details/{offer.id}") == 2
