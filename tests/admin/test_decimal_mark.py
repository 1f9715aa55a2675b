"""A staff user's decimal mark, and CSV downloads laid out for the spreadsheet that opens them.

Excel opens a CSV by the computer's regional settings: with a decimal comma (German, French and
most European settings) it splits columns at semicolons only, and it takes a file without a
UTF-8 byte-order mark for the legacy code page (Müller shows as MÃ¼ller). Each staff user
chooses their decimal mark on their account page (the offer editor reads it too:
tests/admin/test_editor.py); every staff download carries the byte-order mark; the API's CSV,
read by programs, stays as it was.
"""

import csv
import io
import re
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx2 as httpx
from fastapi.testclient import TestClient
from sqlmodel import Session

from app import csvsafe
from app.auth.service import create_api_key
from app.auth.staff import Role
from app.config import get_settings
from app.csvsafe import BOM
from app.formats import DecimalMark
from app.offers import service as offers_service
from tests.admin.conftest import csrf_from
from tests.factories import line_data, make_offer

BERLIN = ZoneInfo("Europe/Berlin")


def _rows(text: str, delimiter: str) -> list[dict[str, str]]:
    assert text.startswith(BOM), "no UTF-8 mark: Excel would show Müller as MÃ¼ller"
    return list(csv.DictReader(io.StringIO(text.removeprefix(BOM)), delimiter=delimiter))


def _choose(web: TestClient, mark: str) -> httpx.Response:
    token = csrf_from(web.get("/admin/account").text)
    return web.post(
        "/admin/account/decimal-mark",
        data={"decimal_mark": mark, "csrf_token": token},
        follow_redirects=False,
    )


def _offer_with_amounts(db: Session) -> str:
    lines = [line_data(quantity="3", unit_price="12.5", vat_rate="19")]
    return make_offer(db, get_settings(), company="Müller Söhne GmbH", lines=lines).id


def test_amounts_with_a_decimal_comma_in_columns_split_at_semicolons() -> None:
    text = io.StringIO()
    writer = csvsafe.SafeWriter(text, BERLIN, DecimalMark.COMMA)
    writer.writeheader(["what", "amount", "rate", "count", "code"])
    writer.writerow(["Pump; large", Decimal("1250.50"), 0.125, 3, "1.5"])

    assert (
        text.getvalue()
        == f'{BOM}what;amount;rate;count;code\r\n"Pump; large";1250,50;0,125;3;1.5\r\n'
    )


def test_a_program_s_csv_has_no_mark_and_keeps_commas_and_points() -> None:
    text = io.StringIO()
    writer = csvsafe.SafeWriter(text, BERLIN)
    writer.writeheader(["amount"])
    writer.writerow([Decimal("12.50")])

    assert text.getvalue() == "amount\r\n12.50\r\n"


def test_offers_export_for_the_users_decimal_mark_with_their_amounts(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    offer_id = _offer_with_amounts(db)
    as_role(Role.VIEWER)

    plain = web.get("/admin/offer/export/csv")
    assert plain.status_code == 200
    (row,) = [r for r in _rows(plain.text, ",") if r["id"] == offer_id]
    assert (row["customer_company"], row["net_total"]) == ("Müller Söhne GmbH", "37.50")
    assert (row["vat_total"], row["gross_total"]) == ("7.13", "44.63")

    assert _choose(web, "comma").status_code == 303
    assert re.search(
        r'value="comma" checked>\s*<span[^>]*>Decimal comma', web.get("/admin/account").text
    )

    chosen = web.get("/admin/offer/export/csv")
    (row,) = [r for r in _rows(chosen.text, ";") if r["id"] == offer_id]
    assert (row["net_total"], row["vat_total"], row["gross_total"]) == ("37,50", "7,13", "44,63")


def test_the_dashboard_downloads_follow_the_mark_and_the_api_stays_as_it_was(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    as_role(Role.VIEWER)
    assert _choose(web, "comma").status_code == 303
    today = offers_service.today(get_settings())
    period = {"from": (today - timedelta(days=6)).isoformat(), "to": today.isoformat()}

    download = web.get("/admin/analytics/csv/scans_per_day", params=period)
    assert download.status_code == 200
    rows = _rows(download.text, ";")
    assert list(rows[0]) == ["day", "scans", "unique_visitors"] and len(rows) == 7

    _, key = create_api_key(db, "sheets", actor="tests")
    api = web.get(
        "/api/v1/analytics/scans-per-day",
        params={**period, "format": "csv"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert api.status_code == 200
    assert api.text.startswith("day,scans,unique_visitors\r\n")


def test_a_mark_that_does_not_exist_is_refused_beside_its_choices(
    web: TestClient, as_role: Callable[[Role], str]
) -> None:
    as_role(Role.SALES)
    refused = _choose(web, "tabs")

    assert refused.status_code == 422
    assert 'id="decimal_mark-error"' in refused.text
    assert "Choose the decimal point or the decimal comma." in refused.text
    plain = web.get("/admin/offer/export/csv")
    assert plain.text.startswith(BOM + "id,")  # unchanged: still commas
