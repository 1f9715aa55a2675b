"""The staff user's decimal mark beyond the offer editor (tests/admin/test_editor.py): every
field of the staff site that takes a number with decimals reads it with their mark (the list
filters' totals, the QR artwork's width), shows what was typed back, and refuses anything
else beside the field in the editor's words; the amounts and rates staff pages show are
written with the same mark. The customer's pages keep the customer's language."""

import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from app.auth.staff import Role
from app.config import get_settings
from app.formats import DecimalMark
from app.tracking import service as tracking_service
from tests.admin.conftest import StaffLogin, csrf_from, sign_in
from tests.admin.test_analytics_pages import _cells, _range
from tests.analytics.test_attribution import World
from tests.factories import line_data, make_campaign, make_offer, make_placement

pytestmark = pytest.mark.concurrency


@pytest.fixture
def comma_user(web: TestClient, make_staff: Callable[..., StaffLogin]) -> Callable[[Role], None]:
    """Sign in with ``role`` and choose the decimal comma on "Your account"."""

    def sign_in_with_comma(role: Role) -> None:
        sign_in(web, make_staff(role))
        token = csrf_from(web.get("/admin/account").text)
        chosen = web.post(
            "/admin/account/decimal-mark",
            data={"decimal_mark": "comma", "csrf_token": token},
            follow_redirects=False,
        )
        assert chosen.status_code == 303

    return sign_in_with_comma


def _offer(db: Session, company: str, price: str, *, issued: bool = False) -> str:
    lines = [line_data(quantity="1", unit_price=price, vat_rate="0")]
    return make_offer(db, get_settings(), company=company, lines=lines, issued=issued).id


def _order(db: Session, company: str, price: str) -> str:
    offer_id = _offer(db, company, price, issued=True)
    return tracking_service.activate_offer(db, offer_id, actor="tests", settings=get_settings()).id


def _field(html: str, field_id: str) -> str:
    match = re.search(rf'<input[^>]*\bid="{field_id}"[^>]*>', html)
    assert match, f"no field {field_id}"
    return match.group(0)


def _error_beside(html: str, error_id: str) -> str | None:
    match = re.search(rf'id="{error_id}">(.*?)</div>', html, re.S)
    return " ".join(match.group(1).split()) if match else None


@pytest.mark.parametrize("listed", ["offer", "order"])
def test_a_comma_user_filters_a_list_by_a_total_typed_with_a_comma(
    web: TestClient, comma_user: Callable[[Role], None], db: Session, listed: str
) -> None:
    make = _order if listed == "order" else _offer
    make(db, "Exact Amount GmbH", "1250.50")
    make(db, "A Cent Short GmbH", "1250.49")
    comma_user(Role.VIEWER)

    page = web.get(f"/admin/{listed}/list", params={"gross_min": "1250,50"})

    assert page.status_code == 200
    field = _field(page.text, "filter-gross_min")
    assert 'value="1250,50"' in field and 'inputmode="decimal"' in field
    assert "is-invalid" not in field
    assert "Exact Amount GmbH" in page.text and "A Cent Short GmbH" not in page.text
    assert "1.250,50\xa0€" in page.text  # the list's total, with the user's mark
    exported = web.get(f"/admin/{listed}/export/csv", params={"gross_min": "1250,50"}).text
    assert "Exact Amount GmbH" in exported and "A Cent Short GmbH" not in exported


def test_a_total_filter_that_is_no_number_is_refused_beside_its_field(
    web: TestClient, comma_user: Callable[[Role], None], db: Session
) -> None:
    _offer(db, "Still Listed GmbH", "10")
    comma_user(Role.VIEWER)

    page = web.get("/admin/offer/list", params={"gross_min": "1.250,50", "gross_max": "2000"})

    assert page.status_code == 200  # the list, not an error page
    field = _field(page.text, "filter-gross_min")
    assert "is-invalid" in field and 'aria-describedby="filter-gross_min-error"' in field
    assert 'value="1.250,50"' in field  # what was typed, to correct
    error = _error_beside(page.text, "filter-gross_min-error")
    assert error == f"{DecimalMark.COMMA.help} This filter is not applied."
    assert _error_beside(page.text, "filter-gross_max-error") is None
    assert "Still Listed GmbH" in page.text  # the other filter (up to 2000) still applies


def test_a_point_user_s_comma_is_refused_in_the_point_s_words(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    _offer(db, "Any GmbH", "10")
    as_role(Role.VIEWER)
    page = web.get("/admin/offer/list", params={"gross_max": "1250,50"})
    assert page.status_code == 200
    error = _error_beside(page.text, "filter-gross_max-error")
    assert error == f"{DecimalMark.POINT.help} This filter is not applied."
    listed = web.get("/admin/offer/list", params={"gross_max": "1250.50"})
    assert "Any GmbH" in listed.text and "€10.00" in listed.text


def test_a_comma_user_downloads_qr_artwork_of_a_width_typed_with_a_comma(
    web: TestClient, comma_user: Callable[[Role], None], db: Session
) -> None:
    placement = make_placement(db, make_campaign(db, name="Fair").id or 0)
    comma_user(Role.VIEWER)
    base = f"/admin/analytics/placements/{placement.id}/qr"

    page = web.get(f"/admin/analytics/placements/{placement.id}")
    field = _field(page.text, "size_mm")
    assert 'inputmode="decimal"' in field and 'type="number"' not in field

    svg = web.get(base, params={"size_mm": "1250,50", "error": "M", "fmt": "svg"})
    assert svg.status_code == 200
    width = re.search(rb'width="([\d.]+)mm"', svg.content)
    assert width and float(width.group(1)) == pytest.approx(1250.5, abs=0.001)

    refused = web.get(base, params={"size_mm": "30.5,0", "error": "M", "fmt": "svg"})
    assert refused.status_code == 422
    field = _field(refused.text, "size_mm")
    assert 'value="30.5,0"' in field and 'aria-describedby="art-error"' in field
    assert _error_beside(refused.text, "art-error") == DecimalMark.COMMA.help
    small = web.get(base, params={"size_mm": "2,5", "error": "M", "fmt": "svg"})
    assert _error_beside(small.text, "art-error") == "Choose a width between 5 and 2000 mm."


def test_amounts_on_staff_pages_follow_the_mark_and_the_customer_s_page_its_language(
    web: TestClient, comma_user: Callable[[Role], None], db: Session
) -> None:
    offer_id = _offer(db, "Shown GmbH", "1250.50", issued=True)
    comma_user(Role.SALES)

    details = web.get(f"/admin/offer/details/{offer_id}").text
    assert "1.250,50\xa0€" in details and "€1,250.50" not in details
    draft = _offer(db, "Draft GmbH", "1250.50")
    editor = web.get(f"/admin/offers/{draft}/edit").text
    assert 'value="1250,5"' in _field(editor, "lines-0-unit_price")  # as the field takes it
    total = re.search(r'id="total-gross"><strong>(.*?)</strong>', editor)
    assert total and total.group(1) == "1.250,50\xa0€"

    token = csrf_from(editor)
    typed = {"lines-0-description": "Pump", "lines-0-quantity": "2", "lines-0-vat_rate": "0"}
    while_typing = web.post(
        "/admin/offers/editor/totals",
        data={**typed, "lines-0-unit_price": "1250,50", "csrf_token": token},
        headers={"HX-Request": "true"},
    )
    assert 'id="total-gross"><strong>2.501,00\xa0€</strong>' in while_typing.text

    english = web.get(f"/{offer_id}", headers={"Accept-Language": "en"}).text
    assert "€1,250.50" in english and "1.250,50" not in english


def test_the_dashboard_writes_revenue_and_rates_with_a_comma(
    web: TestClient, comma_user: Callable[[Role], None], db: Session
) -> None:
    World(db, get_settings())
    comma_user(Role.VIEWER)
    html = web.get("/admin/analytics/", params=_range()).text
    by_placement = {row[0]: row for row in _cells(html, "att-placement-first_touch")}
    assert by_placement["P1"][4:6] == ["60,0%", "6.300,00 €"]  # (the cells' spaces made plain)
    chart = html.split('id="chart-estimate-placement"', 1)[1].split("</svg>", 1)[0]
    rates = re.findall(r"\d+[.,]\d%", chart)
    assert rates and all("," in rate for rate in rates), rates


def test_the_database_takes_no_other_decimal_mark(
    db: Session, make_staff: Callable[..., StaffLogin]
) -> None:
    make_staff(Role.VIEWER, "check@example.com")
    with pytest.raises(IntegrityError, match="ck_staff_user_decimal_mark"):
        db.execute(
            text("UPDATE staff_user SET decimal_mark = 'dot' WHERE email = 'check@example.com'")
        )
    db.rollback()


def test_the_editor_reads_numbers_by_the_same_rule_as_the_rest_of_the_staff_site(
    web: TestClient, comma_user: Callable[[Role], None]
) -> None:
    """ "1e3" and "1_000" pass Python's own reading of a number, but are no number a person
    types: the editor refuses them as the list filters and the QR width do."""
    comma_user(Role.SALES)
    token = csrf_from(web.get("/admin/offers/new").text)
    form = {
        "csrf_token": token,
        "customer-company": "Rule GmbH",
        "lines-0-description": "Pump",
        "lines-0-quantity": "1e3",
        "lines-0-unit_price": "1_000",
        "lines-0-vat_rate": "19,5",
    }
    refused = web.post("/admin/offers/new", data=form, follow_redirects=False)
    assert refused.status_code == 422
    for name in ("lines-0-quantity", "lines-0-unit_price"):
        assert _error_beside(refused.text, f"{name}-error") == DecimalMark.COMMA.help, name
    assert _error_beside(refused.text, "lines-0-vat_rate-error") is None
    assert 'value="1e3"' in _field(refused.text, "lines-0-quantity")  # as typed, to correct


@pytest.mark.parametrize(
    ("mark", "typed"),
    [
        (DecimalMark.COMMA, "1.250"),  # a German's 1250, with its thousands separator
        (DecimalMark.COMMA, "12.5"),
        (DecimalMark.POINT, "1,250"),
        (DecimalMark.POINT, "12,5"),
    ],
)
def test_the_other_mark_is_refused_not_read_as_decimals(mark: DecimalMark, typed: str) -> None:
    with pytest.raises(ValueError, match=re.escape(mark.help)):
        mark.parse(typed)


def test_a_comma_user_s_thousands_point_is_refused_not_read_as_a_decimal_point(
    web: TestClient, comma_user: Callable[[Role], None], db: Session
) -> None:
    """Someone who writes 1.250,50 means one thousand two hundred and fifty by "1.250": it was
    read as 1.25, an offer priced a thousand times too low without a word."""
    comma_user(Role.SALES)
    token = csrf_from(web.get("/admin/offers/new").text)
    form = {
        "csrf_token": token,
        "customer-company": "Tausend GmbH",
        "lines-0-description": "Pump",
        "lines-0-quantity": "2",
        "lines-0-unit_price": "1.250",
        "lines-0-vat_rate": "19",
    }

    refused = web.post("/admin/offers/new", data=form, follow_redirects=False)
    listed = web.get("/admin/offer/list", params={"gross_min": "1.250"})

    assert refused.status_code == 422, refused.headers.get("location")
    assert _error_beside(refused.text, "lines-0-unit_price-error") == DecimalMark.COMMA.help
    assert 'value="1.250"' in _field(refused.text, "lines-0-unit_price")  # to correct
    with Session(db.get_bind()) as session:
        assert session.execute(text("SELECT count(*) FROM offer")).scalar_one() == 0
    error = _error_beside(listed.text, "filter-gross_min-error")
    assert error == f"{DecimalMark.COMMA.help} This filter is not applied."


def test_a_number_longer_than_any_field_takes_is_refused_beside_it_not_sent_to_the_database(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    """A link typed by hand: PostgreSQL's numbers hold 16,383 decimals, and this list answered
    "value overflows numeric format" with a server error."""
    _offer(db, "Still Listed GmbH", "10")
    as_role(Role.VIEWER)
    typed = "0." + "0" * 20_000 + "1"

    page = web.get("/admin/offer/list", params={"gross_min": typed})
    exported = web.get("/admin/offer/export/csv", params={"gross_min": typed})

    assert page.status_code == 200 and "Still Listed GmbH" in page.text
    error = _error_beside(page.text, "filter-gross_min-error")
    assert error == "Write the number in at most 30 characters. This filter is not applied."
    assert exported.status_code == 200 and "Still Listed GmbH" in exported.text
