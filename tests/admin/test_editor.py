"""The offer editor and customer pages of the staff site, as staff use them through forms."""

import re
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.auth.staff import Role, StaffUser
from app.config import get_settings
from app.customers.models import Customer
from app.customers.schemas import CustomerCreate
from app.customers.service import create_customer
from app.formats import DecimalMark
from app.offers import service as offers_service
from app.offers import terms
from app.offers.models import Offer, OfferStatus
from app.templating import format_date
from app.tracking import service as tracking_service
from app.tracking.schemas import StageUpdateCreate
from tests.admin.conftest import StaffLogin, csrf_from, sign_in
from tests.factories import make_offer

pytestmark = pytest.mark.concurrency


def _lines(*rows: tuple[str, str, str, str]) -> dict[str, str]:
    data: dict[str, str] = {}
    for i, (description, quantity, price, vat) in enumerate(rows):
        data |= {
            f"lines-{i}-description": description,
            f"lines-{i}-quantity": quantity,
            f"lines-{i}-unit_price": price,
            f"lines-{i}-vat_rate": vat,
        }
    return data


THREE_LINES = _lines(
    ("Pump PX-200", "2", "1250.00", "24"),
    ("Installation", "8", "85", "24"),
    ("Manual (printed)", "1", "30", "6"),
)


def _offers(db: Session) -> list[Offer]:
    """The stored offers, read in a session of its own that ends at once: on SQLite an open
    transaction here would hold the write lock the server needs."""
    with Session(db.get_bind()) as session:
        return list(session.exec(select(Offer)).all())


def _user_id(db: Session, email: str) -> int:
    with Session(db.get_bind()) as session:
        user_id = session.exec(select(StaffUser.id).where(StaffUser.email == email)).one()
    assert user_id is not None
    return user_id


def test_sales_writes_a_three_line_draft_with_two_vat_rates(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    token = as_role(Role.SALES)
    form = {"csrf_token": token, "customer-company": "Acme Hellas SA", "currency": "EUR"}

    response = web.post("/admin/offers/new", data=form | THREE_LINES, follow_redirects=False)

    assert response.status_code == 303, response.text
    [offer] = _offers(db)
    assert [line.description for line in offer.lines] == [
        "Pump PX-200",
        "Installation",
        "Manual (printed)",
    ]
    assert offer.owner_id == _user_id(db, "sales@example.com")
    page = web.get(response.headers["location"]).text
    # 2500 + 680 at 24 % (763.20) and 30 at 6 % (1.80): 3,975.00 gross
    assert "€3,975.00" in page
    assert "VAT 24 % on €3,180.00" in page and "VAT 6 % on €30.00" in page


def test_an_offer_with_an_invalid_line_is_not_stored_and_the_error_sits_beside_it(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    token = as_role(Role.SALES)
    bad = THREE_LINES | {"lines-1-quantity": "eight"}
    form = {"csrf_token": token, "customer-company": "Acme Hellas SA"} | bad

    response = web.post("/admin/offers/new", data=form)

    assert response.status_code == 422
    assert _offers(db) == []
    html = response.text
    assert re.search(r'id="lines-1-quantity"[^>]*value="eight"', html)
    assert 'id="lines-1-quantity-error"' in html
    assert 'value="Manual (printed)"' in html


def test_a_price_written_with_a_decimal_comma_is_explained_beside_it(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    """ "1.250,50" (as Germans and Greeks write it) answered "Input should be a valid decimal"."""
    token = as_role(Role.SALES)
    form = {"csrf_token": token, "customer-company": "Acme Hellas SA"}

    response = web.post(
        "/admin/offers/new", data=form | THREE_LINES | {"lines-0-unit_price": "1.250,50"}
    )

    assert response.status_code == 422 and _offers(db) == []
    error = re.search(r'id="lines-0-unit_price-error"[^>]*>([^<]*)<', response.text)
    assert error, response.text
    assert error.group(1).strip() == DecimalMark.POINT.help
    assert "e.g. 1250.50 (Your account sets a decimal comma instead)" in DecimalMark.POINT.help
    assert re.search(r'id="lines-0-unit_price"[^>]*value="1.250,50"', response.text)


def _use_decimal_comma(web: TestClient) -> None:
    token = csrf_from(web.get("/admin/account").text)
    chosen = web.post(
        "/admin/account/decimal-mark", data={"decimal_mark": "comma", "csrf_token": token}
    )
    assert chosen.status_code == 200 and "Saved: the staff site" in chosen.text


def test_a_user_of_the_decimal_comma_types_prices_as_their_phone_writes_them(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    """A phone set to German or Greek shows only a comma on its number pad: "1250,50" was
    refused, so a price with cents could not be typed on it at all."""
    token = as_role(Role.SALES)
    _use_decimal_comma(web)
    lines = _lines(("Pump PX-200", "2,5", "1250,50", "19")) | {"lines-0-discount_percent": "7,5"}
    form = {"csrf_token": token, "customer-company": "Müller GmbH"} | lines

    totals = web.post("/admin/offers/editor/totals", data=form)
    saved = web.post("/admin/offers/new", data=form, follow_redirects=False)

    assert "2.891,78\xa0€" in totals.text  # 2.5 × 1250.50 − 7.5 %, with the user's comma
    assert saved.status_code == 303, saved.text
    (offer,) = _offers(db)
    (line,) = offer.lines
    assert (line.quantity, line.unit_price, line.discount_percent) == (
        Decimal("2.5"),
        Decimal("1250.50"),
        Decimal("7.5"),
    )
    page = web.get(saved.headers["location"]).text
    assert re.search(r'id="lines-0-unit_price"[^>]*value="1250,5"', page), "shown as typed"
    assert re.search(r'id="lines-0-quantity"[^>]*value="2,5"', page)


def test_a_user_of_the_decimal_comma_is_told_how_to_write_a_number_they_cannot_use(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    token = as_role(Role.SALES)
    _use_decimal_comma(web)
    form = {"csrf_token": token, "customer-company": "Müller GmbH"}

    response = web.post(
        "/admin/offers/new", data=form | THREE_LINES | {"lines-0-unit_price": "1.250,50"}
    )

    assert response.status_code == 422 and _offers(db) == []
    error = re.search(r'id="lines-0-unit_price-error"[^>]*>([^<]*)<', response.text)
    assert error and error.group(1).strip() == DecimalMark.COMMA.help
    assert "e.g. 1250,50" in DecimalMark.COMMA.help


def test_a_customer_must_be_picked_or_typed_but_not_both(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    token = as_role(Role.SALES)
    record = create_customer(db, CustomerCreate(company="Nordwind GmbH"), actor="tests")
    neither = web.post("/admin/offers/new", data={"csrf_token": token} | THREE_LINES)
    both = web.post(
        "/admin/offers/new",
        data={"csrf_token": token, "customer_id": str(record.id), "customer-company": "X"}
        | THREE_LINES,
    )
    assert neither.status_code == both.status_code == 422
    assert 'id="customer-company-error"' in neither.text
    assert 'id="customer_id-error"' in both.text
    assert _offers(db) == []


def test_an_offer_for_a_customer_record_prints_its_address(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    token = as_role(Role.SALES)
    record = create_customer(
        db,
        CustomerCreate(company="Nordwind GmbH", city="Hamburg", vat_id="DE999", language="de"),
        actor="tests",
    )
    response = web.post(
        "/admin/offers/new",
        data={"csrf_token": token, "customer_id": str(record.id)} | THREE_LINES,
        follow_redirects=False,
    )
    assert response.status_code == 303
    [offer] = _offers(db)
    assert (offer.customer_id, offer.customer_city, offer.customer_vat_id) == (
        record.id,
        "Hamburg",
        "DE999",
    )
    assert offer.language == "de"


def test_totals_partial_comes_back_alone_with_each_lines_net(
    web: TestClient, as_role: Callable[[Role], str]
) -> None:
    token = as_role(Role.SALES)
    half_typed = THREE_LINES | {"lines-2-quantity": ""}

    response = web.post(
        "/admin/offers/editor/totals",
        data={"csrf_token": token, "currency": "EUR"} | half_typed,
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 200
    html = response.text
    assert "<html" not in html and "Save draft" not in html
    assert 'id="totals"' in html
    assert "€3,943.20" in html  # lines 1 and 2 only: 3180 net + 763.20 VAT
    assert re.search(r'id="line-net-1" hx-swap-oob="true">€680.00<', html)
    assert re.search(r'id="line-net-2" hx-swap-oob="true">—<', html)
    assert "1 line not counted until complete" in html


def test_line_buttons_change_the_form_without_storing(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    token = as_role(Role.SALES)
    base = {"csrf_token": token, "customer-company": "Acme"} | THREE_LINES

    moved = web.post("/admin/offers/new", data=base | {"op": "up-2"}).text
    removed = web.post("/admin/offers/new", data=base | {"op": "remove-0"}).text
    added = web.post("/admin/offers/new", data=base | {"op": "add"}).text

    assert re.search(r'id="lines-1-description"[^>]*value="Manual \(printed\)"', moved)
    assert re.search(r'id="lines-2-description"[^>]*value="Installation"', moved)
    assert re.search(r'id="lines-0-description"[^>]*value="Installation"', removed)
    assert 'id="lines-3-description"' in added
    assert "€875.00" in removed  # 680 at 24 % and 30 at 6 %: the pump is gone
    assert _offers(db) == []


def test_the_editor_sets_the_offers_language_for_a_typed_customer_and_over_a_record(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    """The PDF, the mails and the customer's pages speak the offer's language; without a
    choice in the editor a customer typed in got the default language, which staff first saw
    on the send form of the issued offer, too late to change."""
    token = as_role(Role.SALES)
    editor = web.get("/admin/offers/new").text
    assert re.search(r'<label[^>]*for="language"', editor)
    assert '<option value="de">Deutsch</option>' in editor
    record = create_customer(
        db, CustomerCreate(company="Nordwind GmbH", language="de"), actor="tests"
    )
    typed = {"csrf_token": token, "customer-company": "Acme Hellas SA", "language": "el"}
    for_record = {"csrf_token": token, "customer_id": str(record.id)}

    web.post("/admin/offers/new", data=typed | {"customer_reference": "typed"} | THREE_LINES)
    web.post(
        "/admin/offers/new",
        data=for_record | {"customer_reference": "record's", "language": ""} | THREE_LINES,
    )
    web.post(
        "/admin/offers/new",
        data=for_record | {"customer_reference": "chosen", "language": "en"} | THREE_LINES,
    )

    language = {offer.customer_reference: offer.language for offer in _offers(db)}
    assert language == {"typed": "el", "record's": "de", "chosen": "en"}
    [greek] = [offer for offer in _offers(db) if offer.language == "el"]
    edited = web.get(f"/admin/offers/{greek.id}/edit").text
    assert '<option value="el" selected>Ελληνικά</option>' in edited


def test_saving_a_draft_changes_it_through_the_service_and_admins_reassign_the_owner(
    web: TestClient, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    offer = make_offer(db, get_settings(), company="Acme Hellas SA")
    make_staff(Role.SALES, "other@example.com")
    token = sign_in(web, make_staff(Role.ADMIN))
    other = _user_id(db, "other@example.com")
    form = {
        "csrf_token": token,
        "customer-company": "Acme Hellas SA",
        "currency": "EUR",
        "owner_id": str(other),
        "terms": "Payment 14 days net.",
    } | _lines(("Pump PX-300", "1", "999.99", "24"))

    response = web.post(f"/admin/offers/{offer.id}/edit", data=form, follow_redirects=False)

    assert response.status_code == 303, response.text
    [stored] = _offers(db)
    assert [line.description for line in stored.lines] == ["Pump PX-300"]
    assert (stored.owner_id, stored.terms) == (other, "Payment 14 days net.")


def test_a_save_refused_for_its_owner_keeps_none_of_the_drafts_changes(
    web: TestClient, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    offer = make_offer(db, get_settings(), company="Acme Hellas SA")
    token = sign_in(web, make_staff(Role.ADMIN))
    form = {
        "csrf_token": token,
        "customer-company": "Acme Hellas SA",
        "currency": "EUR",
        "owner_id": "999999",  # a user deleted meanwhile, or a forged form
        "terms": "Payment 14 days net.",
    } | _lines(("Pump PX-300", "1", "999.99", "24"))

    response = web.post(f"/admin/offers/{offer.id}/edit", data=form)

    assert response.status_code == 422
    assert "No staff user with id 999999" in response.text
    db.expire_all()
    [stored] = _offers(db)
    assert stored.terms != "Payment 14 days net." and stored.updated_at == offer.updated_at


def test_an_issued_offer_opens_read_only_and_duplicates_into_a_draft(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    issued = make_offer(db, get_settings(), issued=True, company="Acme Hellas SA")
    token = as_role(Role.SALES)
    page = web.get(f"/admin/offers/{issued.id}/edit").text
    assert "it no longer changes" in page and '<fieldset class="card-body" disabled>' in page

    response = web.post(
        f"/admin/offers/{issued.id}/duplicate", data={"csrf_token": token}, follow_redirects=False
    )

    assert response.status_code == 303
    copy = next(o for o in _offers(db) if o.id != issued.id)
    assert copy.status == OfferStatus.DRAFT and copy.supersedes_id is None
    assert copy.owner_id == _user_id(db, "sales@example.com")
    assert [line.description for line in copy.lines] == [line.description for line in issued.lines]


def test_issuing_asks_for_confirmation_on_a_page_that_works_without_javascript(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    draft = make_offer(db, get_settings(), company="Acme Hellas SA")
    as_role(Role.SALES)

    page = web.get(f"/admin/offers/{draft.id}/issue")

    assert page.status_code == 200
    assert re.search(
        rf'<form method="post" action="[^"]*/admin/offers/{draft.id}/issue"', page.text
    )
    assert "never change again" in page.text
    assert _offers(db)[0].status == OfferStatus.DRAFT  # opening the page changed nothing


def test_a_terms_template_is_inserted_into_the_terms(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    template = terms.save_template(
        db, None, name="Standard", kind="terms", body="Payment 30 days net.", actor="tests"
    )
    token = as_role(Role.SALES)
    form = {"csrf_token": token, "op": "use-terms", "terms_template": str(template.id)}

    page = web.post("/admin/offers/new", data=form | THREE_LINES).text

    assert re.search(r'<textarea[^>]*id="terms"[^>]*>Payment 30 days net.</textarea>', page)


def test_a_viewer_reads_the_editor_and_every_post_is_refused(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    offer = make_offer(db, get_settings(), company="Acme Hellas SA")
    record = create_customer(db, CustomerCreate(company="Nordwind GmbH"), actor="tests")
    token = as_role(Role.VIEWER)

    for url in (f"/admin/offers/{offer.id}/edit", "/admin/offers/new", "/admin/customers"):
        page = web.get(url)
        assert page.status_code == 200, url
        assert "Save draft" not in page.text and "New customer" not in page.text
    assert '<fieldset class="card-body" disabled>' in web.get("/admin/offers/new").text
    posts = [
        "/admin/offers/new",
        f"/admin/offers/{offer.id}/edit",
        "/admin/offers/editor/totals",
        f"/admin/offers/{offer.id}/duplicate",
        f"/admin/offers/{offer.id}/issue",
        "/admin/customers/new",
        f"/admin/customers/{record.id}",
    ]
    for url in posts:
        data = {"csrf_token": token, "customer-company": "X", "company": "X"} | THREE_LINES
        assert web.post(url, data=data).status_code == 403, url
    assert len(_offers(db)) == 1 and _offers(db)[0].status == OfferStatus.DRAFT


def test_customer_form_keeps_what_was_typed_beside_each_error(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    token = as_role(Role.SALES)
    typed = {"csrf_token": token, "company": "", "email": "not-an-address", "city": "Athens"}

    response = web.post("/admin/customers/new", data=typed | {"language": "el"})

    assert response.status_code == 422
    assert 'id="company-error"' in response.text and 'id="email-error"' in response.text
    assert 'value="not-an-address"' in response.text and 'value="Athens"' in response.text
    with Session(db.get_bind()) as session:
        assert session.exec(select(Customer)).all() == []

    saved = web.post(
        "/admin/customers/new",
        data=typed | {"company": "Acme Hellas SA", "email": "m@acme.example", "language": "el"},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    listing = web.get("/admin/customers", params={"q": "acme"}).text
    assert "Acme Hellas SA" in listing


def test_saving_a_customer_that_is_gone_is_not_found_rather_than_a_form_error(
    web: TestClient, as_role: Callable[[Role], str]
) -> None:
    token = as_role(Role.SALES)
    typed = {"csrf_token": token, "company": "Acme Hellas SA", "language": "en"}

    response = web.post("/admin/customers/999999", data=typed, follow_redirects=False)

    assert response.status_code == 404
    assert 'id="company-error"' not in response.text


def test_totals_use_the_api_pricing() -> None:
    from app.admin.editor_forms import preview, read_form

    form = read_form({"currency": "JPY"} | _lines(("Bolt", "3", "0.5", "10")), DecimalMark.POINT)
    result = preview(form, "EUR")
    assert result.totals.net == Decimal(2)  # 1.5 rounds half up to 2 yen


def test_the_stage_update_form_preselects_the_next_stage(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    settings = get_settings()
    offer = make_offer(db, settings, issued=True, company="Acme Hellas SA")
    order_id = offer.id
    tracking_service.activate_offer(db, order_id, actor="tests", settings=settings)
    first, second = tracking_service.list_stages(db)[:2]
    tracking_service.add_stage_update(
        db, order_id, StageUpdateCreate(stage=first.key), actor="tests", settings=settings
    )
    db.rollback()
    as_role(Role.SALES)

    for url in (f"/admin/orders/{order_id}/stage-update", f"/admin/order/details/{order_id}"):
        page = web.get(url).text
        assert re.search(rf'<option value="{second.key}" selected>', page), url


def test_a_bulk_stage_update_without_a_stage_says_so_beside_it(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    """The bulk form starts at "Choose a stage…": sent so, it answered "String should have at
    least 1 character", on a page without a heading of its own."""
    settings = get_settings()
    offer = make_offer(db, settings, issued=True, company="Acme Hellas SA")
    order_id = offer.id
    tracking_service.activate_offer(db, order_id, actor="tests", settings=settings)
    db.rollback()
    token = as_role(Role.SALES)

    response = web.post(
        "/admin/orders/bulk-stage-update",
        data={"csrf_token": token, "pks": order_id, "stage": "", "public_note": "Shipped today"},
    )

    assert response.status_code == 422
    error = re.search(r'id="stage-error"[^>]*>([^<]*)<', response.text)
    assert error and error.group(1).strip() == "This is required."
    assert re.search(r"<h1[^>]*>Add a stage update</h1>", response.text)
    assert "Shipped today</textarea>" in response.text


@pytest.mark.parametrize("form", ["one order", "bulk"])
def test_an_expected_delivery_in_the_past_is_refused_beside_it_on_either_stage_form(
    web: TestClient, as_role: Callable[[Role], str], db: Session, form: str
) -> None:
    settings = get_settings()
    orders = [make_offer(db, settings, issued=True, company=c).id for c in ("Acme", "Nordwind")]
    for order_id in orders:
        tracking_service.activate_offer(db, order_id, actor="tests", settings=settings)
    db.rollback()
    token = as_role(Role.SALES)
    yesterday = offers_service.today(settings) - timedelta(days=1)
    typed = {"stage": "shipped", "public_note": "Shipped", "expected_delivery_date": str(yesterday)}
    url, pks = {
        "one order": (f"/admin/orders/{orders[0]}/stage-update", {}),
        "bulk": ("/admin/orders/bulk-stage-update", {"pks": orders}),
    }[form]

    response = web.post(url, data={"csrf_token": token, **typed, **pks})

    assert response.status_code == 422
    error = re.search(r'id="expected_delivery_date-error"[^>]*>([^<]*)<', response.text)
    # Written as the site writes dates (the date field shows them so), not as ISO.
    today = offers_service.today(settings)
    assert error and error.group(1).strip() == (
        f"The expected delivery date {format_date(yesterday)} lies before the day of this "
        f"update, {format_date(today)}: check it for a typo."
    )
    assert f'value="{yesterday}"' in response.text and "Shipped</textarea>" in response.text
    db.expire_all()
    histories = [tracking_service.build_timeline(db, db.get_one(Offer, o)) for o in orders]
    assert [[stage.key for _, stage in h.updates] for h in histories] == [["confirmed"]] * 2


def test_activating_and_revising_ask_first(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    offer_id = make_offer(db, get_settings(), issued=True, company="Acme Hellas SA").id
    db.rollback()
    as_role(Role.SALES)
    details = web.get(f"/admin/offer/details/{offer_id}").text
    # A link to the question, carrying the version the page shows (app.versions).
    assert f"/admin/offers/{offer_id}/activate?version=" in details

    for step, words in (("activate", "Yes, activate"), ("revise", "Yes, revise")):
        page = web.get(f"/admin/offers/{offer_id}/{step}")
        assert page.status_code == 200 and words in page.text
    assert _offers(db)[0].status == OfferStatus.ISSUED


def test_admins_keep_terms_templates_and_others_may_not(
    web: TestClient, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    sales_token = sign_in(web, make_staff(Role.SALES))
    refused = web.post(
        "/admin/terms-templates/new",
        data={"csrf_token": sales_token, "name": "X", "kind": "terms", "body": "Y"},
    )
    assert refused.status_code == 403
    web.cookies.clear()
    token = sign_in(web, make_staff(Role.ADMIN))

    empty = web.post(
        "/admin/terms-templates/new",
        data={"csrf_token": token, "name": "Standard", "kind": "terms", "body": ""},
    )
    assert empty.status_code == 422 and 'id="body-error"' in empty.text
    assert 'value="Standard"' in empty.text
    saved = web.post(
        "/admin/terms-templates/new",
        data={"csrf_token": token, "name": "Standard", "kind": "terms", "body": "Net 30."},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    again = web.post(
        "/admin/terms-templates/new",
        data={"csrf_token": token, "name": "Standard", "kind": "notes", "body": "Other"},
    )
    assert again.status_code == 422 and "exists already" in again.text
    with Session(db.get_bind()) as session:
        assert [(t.name, t.body) for t in terms.list_templates(session)] == [
            ("Standard", "Net 30.")
        ]


def test_disabling_a_user_needs_the_confirmation_box(
    web: TestClient, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    make_staff(Role.SALES, "leaving@example.com")
    token = sign_in(web, make_staff(Role.ADMIN))
    user_id = _user_id(db, "leaving@example.com")
    form = {"csrf_token": token, "role": "sales", "new_password": ""}

    unconfirmed = web.post(f"/admin/staff-user/edit/{user_id}", data=form)

    assert unconfirmed.status_code == 400 and "to confirm. Nothing was changed." in unconfirmed.text
    with Session(db.get_bind()) as session:
        assert session.get(StaffUser, user_id).is_active  # type: ignore[union-attr]
    confirmed = web.post(f"/admin/staff-user/edit/{user_id}", data=form | {"confirm_disable": "y"})
    assert confirmed.status_code in (200, 302, 303)
    with Session(db.get_bind()) as session:
        assert not session.get(StaffUser, user_id).is_active  # type: ignore[union-attr]


def test_the_fallback_creative_is_chosen_by_name(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    from tests.factories import make_campaign, make_creative, make_placement

    campaign = make_campaign(db)
    assert campaign.id is not None
    creative = make_creative(db, campaign.id, name="Blue poster")
    placement = make_placement(db, campaign.id)
    db.rollback()
    as_role(Role.SALES)

    page = web.get(f"/admin/analytics/placements/{placement.id}").text

    assert re.search(rf'<option value="{creative.id}"[^>]*>Blue poster</option>', page)
    assert "Fallback creative id" not in page


def _error_beside(html: str, field: str) -> str:
    error = re.search(rf'id="{field}-error"[^>]*>([^<]*)<', html)
    assert error, f"no error beside {field}"
    return error.group(1).strip()


def test_out_of_range_numbers_are_explained_in_plain_words_beside_their_fields(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    """Pydantic's own words ("Input should be greater than or equal to 0", "Decimal input
    should have no more than 12 digits in total") describe the check, not what to type."""
    token = as_role(Role.SALES)
    odd = {
        "lines-0-unit_price": "-85",
        "lines-0-discount_percent": "150",
        "lines-1-quantity": "99999999999999",
        "lines-2-unit_price": "30.123456789",
        "lines-2-vat_rate": "Infinity",
        "currency": "€€€",
    }
    form = {"csrf_token": token, "customer-company": "Acme Hellas SA"} | THREE_LINES | odd

    html = web.post("/admin/offers/new", data=form).text

    assert _offers(db) == []
    assert _error_beside(html, "lines-0-unit_price") == "Must be 0 or more."
    assert _error_beside(html, "lines-0-discount_percent") == "Must be 100 or less."
    assert _error_beside(html, "lines-1-quantity") == "Too many digits: at most 12 in all."
    assert _error_beside(html, "lines-2-unit_price") == "At most 4 decimal places."
    assert _error_beside(html, "lines-2-vat_rate") == DecimalMark.POINT.help
    assert (
        _error_beside(html, "currency") == "Write the three-letter code of the currency, e.g. EUR."
    )
    assert "Input should" not in html and "Decimal input" not in html and "should match" not in html


def test_a_line_whose_amount_is_too_large_is_marked_beside_its_price(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    """The refusal of quantity × unit price (a check of the whole line) had no field of its
    own: the page said "correct the fields marked below" and marked none."""
    token = as_role(Role.SALES)
    huge = {"lines-1-quantity": "999999", "lines-1-unit_price": "99999999"}
    form = {"csrf_token": token, "customer-company": "Acme Hellas SA"} | THREE_LINES | huge

    response = web.post("/admin/offers/new", data=form)

    assert response.status_code == 422 and _offers(db) == []
    assert _error_beside(response.text, "lines-1-unit_price") == (
        "Quantity × unit price must stay below 1,000,000,000,000."
    )
    assert 'aria-describedby="lines-1-unit_price-error"' in response.text


def test_a_comma_user_reads_the_line_limit_with_their_own_grouping(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    """ "must stay below 1,000,000,000,000" reads as a little over one to someone who writes
    1.250,50: the limit is written as the rest of their staff site writes numbers."""
    token = as_role(Role.SALES)
    _use_decimal_comma(web)
    huge = {"lines-1-quantity": "999999", "lines-1-unit_price": "99999999"}
    form = {"csrf_token": token, "customer-company": "Müller GmbH"} | THREE_LINES | huge

    response = web.post("/admin/offers/new", data=form)

    assert response.status_code == 422 and _offers(db) == []
    assert _error_beside(response.text, "lines-1-unit_price") == (
        "Quantity × unit price must stay below 1.000.000.000.000."
    )


@pytest.mark.parametrize(
    "odd", [{"op": "remove-²"}, {"op": "use-terms", "terms_template": "²"}], ids=["line", "terms"]
)
def test_a_button_value_that_is_no_number_changes_nothing_instead_of_failing(
    web: TestClient, as_role: Callable[[Role], str], db: Session, odd: dict[str, str]
) -> None:
    """ "²" passes str.isdigit() but not int(): a mangled button value was a 500. Now it is no
    known button: the form comes back, or is saved as "Save draft" would."""
    token = as_role(Role.SALES)
    form = {"csrf_token": token, "customer-company": "Acme Hellas SA"} | THREE_LINES | odd

    response = web.post("/admin/offers/new", data=form)

    assert response.status_code == 200
    assert 'value="Manual (printed)"' in response.text


def test_a_date_the_stage_form_cannot_read_is_explained_in_plain_words(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    """A browser without a date picker sends what was typed: "99999-01-01" answered "Input
    should be a valid date or datetime, invalid date separator, expected `-`"."""
    settings = get_settings()
    order_id = make_offer(db, settings, issued=True, company="Acme").id
    tracking_service.activate_offer(db, order_id, actor="tests", settings=settings)
    db.rollback()
    token = as_role(Role.SALES)
    typed = {"stage": "shipped", "expected_delivery_date": "99999-01-01"}

    response = web.post(
        f"/admin/orders/{order_id}/stage-update", data={"csrf_token": token, **typed}
    )

    assert response.status_code == 422
    assert _error_beside(response.text, "expected_delivery_date") == (
        "Write the date as year-month-day, e.g. 2027-01-31."
    )


@pytest.mark.parametrize("form", ["one order", "bulk"])
def test_a_stage_form_with_two_mistakes_shows_both_at_once(
    web: TestClient, as_role: Callable[[Role], str], db: Session, form: str
) -> None:
    """A bad carrier link hid the past delivery date: corrected, the form came back again."""
    settings = get_settings()
    order_id = make_offer(db, settings, issued=True, company="Acme").id
    tracking_service.activate_offer(db, order_id, actor="tests", settings=settings)
    db.rollback()
    token = as_role(Role.SALES)
    yesterday = offers_service.today(settings) - timedelta(days=1)
    typed = {
        "stage": "shipped",
        "expected_delivery_date": str(yesterday),
        "tracking_link": "javascript:alert(1)",
    }
    url, pks = {
        "one order": (f"/admin/orders/{order_id}/stage-update", {}),
        "bulk": ("/admin/orders/bulk-stage-update", {"pks": [order_id]}),
    }[form]

    response = web.post(url, data={"csrf_token": token, **typed, **pks})

    assert response.status_code == 422
    assert _error_beside(response.text, "tracking_link") == "must be an http or https link"
    assert _error_beside(response.text, "expected_delivery_date").startswith(
        f"The expected delivery date {format_date(yesterday)} lies before the day of this update"
    )
