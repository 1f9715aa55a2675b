"""A placement's page in the staff site: routing rules edited row by row (no JSON) through the
API's own validation, the QR code it prints (decoded), and its last 30 days in figures."""

import re
from collections.abc import Callable

import pytest
import zxingcpp
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from weasyprint import HTML

from app.analytics.models import Placement
from app.audit import AuditLogEntry
from app.auth.service import create_api_key
from app.auth.staff import Role
from app.config import get_settings
from tests.admin.test_analytics_pages import _cells
from tests.analytics.test_attribution import World
from tests.factories import make_campaign, make_creative, make_placement
from tests.offers.test_pdf import decoded_qr_codes

pytestmark = pytest.mark.concurrency
SignIn = Callable[[Role], str]
BASE = {"name": "Table tent", "fallback_url": "https://shop.example.com/", "split_mode": "weighted"}


@pytest.fixture
def world(db: Session) -> World:
    return World(db, get_settings())


def _two_variant_rule(blue: int, green: int) -> dict[str, str | list[str]]:
    return {
        "rules-0-name": "Night owls on phones",
        "rules-0-os": ["ios", "android"],
        "rules-0-languages": "de, EN-gb",
        "rules-0-weekdays": ["1", "5"],
        "rules-0-date_from": "2026-12-01",
        "rules-0-date_to": "2027-01-31",
        "rules-0-time_from": "22:00",
        "rules-0-time_to": "06:00",
        "rules-0-destinations-0-url": "https://shop.example.com/a",
        "rules-0-destinations-0-creative_id": str(blue),
        "rules-0-destinations-0-weight": "3",
        "rules-0-destinations-1-url": "https://shop.example.com/b",
        "rules-0-destinations-1-creative_id": str(green),
        "rules-0-destinations-1-weight": "1",
    }


EXPECTED_WHEN = {
    "os": ["ios", "android"],
    "languages": ["de", "en-gb"],
    "weekdays": [1, 5],
    "date_from": "2026-12-01",
    "date_to": "2027-01-31",
    "time_from": "22:00:00",
    "time_to": "06:00:00",
}


def _rules(db: Session, placement: Placement) -> list[dict[str, object]]:
    """The stored rules, read in a transaction ended at once (SQLite: one writer at a time)."""
    db.refresh(placement)
    rules = list(placement.rules)
    db.rollback()
    return rules


def test_rules_are_written_in_rows_and_stored_as_the_api_stores_them(
    web: TestClient, as_role: SignIn, db: Session
) -> None:
    campaign = make_campaign(db, name="Rows")
    blue = make_creative(db, campaign.id or 0, name="Blue").id or 0
    green = make_creative(db, campaign.id or 0, name="Green").id or 0
    placement = make_placement(db, campaign.id or 0, name="Table tent")
    url = f"/admin/analytics/placements/{placement.id}"
    token = as_role(Role.SALES)
    page = web.get(url).text
    assert 'name="rules"' not in page and "No rules: every visitor goes" in page

    # "Add rule" and "Add variant" come back with a row more, what was typed kept, nothing saved.
    added = web.post(url, data={**BASE, "op": "add-rule", "csrf_token": token})
    assert added.status_code == 200 and 'id="rules-0-destinations-0-url"' in added.text
    form = {**BASE, **_two_variant_rule(blue, green), "csrf_token": token}
    del form["rules-0-destinations-1-url"]
    more = web.post(url, data={**form, "op": "add-variant-0"})
    assert 'id="rules-0-destinations-1-url"' in more.text
    assert 'value="Night owls on phones"' in more.text
    assert '<option value="' + str(blue) + '" selected>Blue</option>' in more.text
    assert _rules(db, placement) == []

    saved = web.post(
        url,
        data={**BASE, **_two_variant_rule(blue, green), "csrf_token": token},
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    stored = _rules(db, placement)
    assert stored == [
        {
            "name": "Night owls on phones",
            "when": EXPECTED_WHEN,
            "destinations": [
                {"url": "https://shop.example.com/a", "creative_id": blue, "weight": 3},
                {"url": "https://shop.example.com/b", "creative_id": green, "weight": 1},
            ],
        }
    ]
    # The same rules sent as JSON to the API are stored identically: one schema, one shape.
    _, api_token = create_api_key(db, "rules-test", actor="tests")
    other = make_placement(db, campaign.id or 0, name="Door")
    response = web.patch(
        f"/api/v1/placements/{other.id}",
        json={"rules": stored},
        headers={"Authorization": f"Bearer {api_token}"},
    )
    assert response.status_code == 200, response.text
    assert _rules(db, other) == stored
    shown = web.get(url).text
    assert "device is iOS or Android" in shown and "(creative Blue), weight 3" in shown
    assert 'value="de, en-gb"' in shown
    assert 'id="rules-0-weekdays-5" name="rules-0-weekdays" value="5" checked' in shown


def test_bad_rows_come_back_with_each_error_beside_its_field(
    web: TestClient, as_role: SignIn, db: Session
) -> None:
    campaign = make_campaign(db, name="Bad rows")
    placement = make_placement(db, campaign.id or 0, name="Table tent")
    url = f"/admin/analytics/placements/{placement.id}"
    token = as_role(Role.SALES)
    bad = {
        **BASE,
        "rules-0-languages": "english!",
        "rules-0-destinations-0-url": "shop.example.com/no-scheme",
        "rules-0-destinations-0-weight": "0",
        "rules-1-date_from": "2027-02-01",
        "rules-1-date_to": "2027-01-01",
        "rules-1-destinations-0-url": "https://shop.example.com/ok",
        "rules-2-time_from": "22:00",
        "rules-2-destinations-0-url": "https://shop.example.com/late",
        "csrf_token": token,
    }
    response = web.post(url, data=bad)
    assert response.status_code == 422
    html = response.text
    for field in (
        "rules-0-languages",
        "rules-0-destinations-0-url",
        "rules-0-destinations-0-weight",
        "rules-1-when",  # a date range the wrong way round
        "rules-2-when",  # a time window needs both ends
    ):
        assert f'id="{field}-error"' in html, field
    assert "must be an absolute http or https URL" in html
    # Beside the weight, what a weight is and what to enter, not Pydantic's "greater than".
    weight_error = _field_error(html, "rules-0-destinations-0-weight")
    assert weight_error.startswith("Enter a whole number from 1 to 1000")
    assert "greater than" not in html
    # In the words of the fields' labels (From date, Until date, From time, Until time).
    assert "The until date must not be before the from date" in html
    assert "Give both a from time and an until time" in html
    assert 'value="shop.example.com/no-scheme"' in html and 'value="english!"' in html
    assert _rules(db, placement) == []
    actions = db.exec(select(AuditLogEntry.action)).all()
    assert "placement.updated" not in actions


def test_a_rule_without_a_destination_and_a_foreign_creative_are_refused_at_their_row(
    web: TestClient, as_role: SignIn, db: Session
) -> None:
    campaign = make_campaign(db, name="Mine")
    stranger = make_creative(db, make_campaign(db, name="Theirs").id or 0, name="Red").id
    placement = make_placement(db, campaign.id or 0)
    url = f"/admin/analytics/placements/{placement.id}"
    token = as_role(Role.SALES)
    no_target = web.post(url, data={**BASE, "rules-0-os": "ios", "csrf_token": token})
    assert no_target.status_code == 422
    assert 'id="rules-0-destinations-error"' in no_target.text
    assert 'id="rules-0-os-ios" name="rules-0-os" value="ios" checked' in no_target.text
    foreign = web.post(
        url,
        data={
            **BASE,
            "rules-0-destinations-0-url": "https://shop.example.com/x",
            "rules-0-destinations-0-creative_id": str(stranger),
            "csrf_token": token,
        },
    )
    assert foreign.status_code == 422
    assert 'id="rules-0-destinations-0-creative_id-error"' in foreign.text
    assert "is not a creative of this campaign" in foreign.text
    assert _rules(db, placement) == []


def test_rows_move_and_go_and_blank_rows_are_left_out(
    web: TestClient, as_role: SignIn, db: Session
) -> None:
    campaign = make_campaign(db, name="Order")
    placement = make_placement(db, campaign.id or 0)
    url = f"/admin/analytics/placements/{placement.id}"
    token = as_role(Role.SALES)
    rows = {
        **BASE,
        "rules-0-name": "first",
        "rules-0-destinations-0-url": "https://shop.example.com/1",
        "rules-1-name": "second",
        "rules-1-destinations-0-url": "https://shop.example.com/2",
        "rules-1-destinations-1-url": "https://shop.example.com/2b",
        "rules-2-destinations-0-weight": "1",  # an added row nobody filled in
        "csrf_token": token,
    }
    moved = web.post(url, data={**rows, "op": "up-rule-1"}).text
    assert moved.index('value="second"') < moved.index('value="first"')
    fewer = web.post(url, data={**rows, "op": "remove-variant-1-1"}).text
    assert "https://shop.example.com/2b" not in fewer
    gone = web.post(url, data={**rows, "op": "remove-rule-0"}).text
    assert 'value="first"' not in gone and 'id="rules-0-name"' in gone
    stale = web.post(url, data={**rows, "op": "remove-rule-7"})  # a row gone in another tab
    assert stale.status_code == 200 and 'value="first"' in stale.text
    assert _rules(db, placement) == []  # a row button never saves

    assert web.post(url, data=rows, follow_redirects=False).status_code == 303
    stored = _rules(db, placement)
    assert [r["name"] for r in stored] == ["first", "second"]
    assert len(stored[1]["destinations"]) == 2  # type: ignore[arg-type]


def test_a_viewer_sees_the_page_but_no_form_and_its_posts_are_refused(
    web: TestClient, as_role: SignIn, db: Session
) -> None:
    campaign = make_campaign(db, name="Look only")
    placement = make_placement(db, campaign.id or 0)
    url = f"/admin/analytics/placements/{placement.id}"
    token = as_role(Role.VIEWER)
    page = web.get(url)
    assert page.status_code == 200 and 'id="placement-qr"' in page.text
    assert "Add rule" not in page.text and "Save placement" not in page.text
    for op in ("add-rule", "add-variant-0", "save"):
        refused = web.post(
            url,
            data={
                **BASE,
                "rules-0-destinations-0-url": "https://x.example.com/",
                "op": op,
                "csrf_token": token,
            },
        )
        assert refused.status_code == 403, op
    assert _rules(db, placement) == []


def test_the_page_shows_the_qr_code_it_prints_and_it_decodes_to_the_code(
    web: TestClient, as_role: SignIn, db: Session
) -> None:
    campaign = make_campaign(db, name="Print")
    placement = make_placement(db, campaign.id or 0)
    as_role(Role.VIEWER)
    html = web.get(f"/admin/analytics/placements/{placement.id}").text
    svg = re.search(r'<div role="img"[^>]*id="placement-qr">(<svg.*?</svg>)', html, re.S)
    assert svg, "no QR code on the page"
    # Rasterised as a printer would get it: WeasyPrint draws the page's SVG into a PDF.
    pdf = HTML(string=f"<html><body style='width:60mm'>{svg.group(1)}</body></html>").write_pdf()
    codes = [code for found, _, _ in decoded_qr_codes(pdf) for code in found]
    expected = f"{get_settings().public_base_url}/c/{placement.slug}"
    assert [c.text for c in codes] == [expected]
    assert codes[0].format == zxingcpp.BarcodeFormat.QRCode


def test_the_page_shows_its_scans_and_conversions_of_the_last_30_days(
    web: TestClient, as_role: SignIn, world: World
) -> None:
    as_role(Role.VIEWER)
    html = web.get(f"/admin/analytics/placements/{world.p2}").text
    # P2: 4 human scans by 4 visitors; 3 conversions last touched there (B, the offer's
    # acceptance and its order), 50 + 3100 + 3100 EUR.
    assert _cells(html, "placement-totals") == [["4", "4", "3", "75.0%", "€6,250.00"]]
    days = {row[0]: row[1:] for row in _cells(html, "placement-days")}
    assert len(days) == 30
    assert days[world.day.isoformat()] == ["3", "3", "0"]
    assert sum(int(r[0]) for r in days.values()) == 4
    assert sum(int(r[2]) for r in days.values()) == 3
    assert '<svg class="ot-chart" id="chart-placement"' in html
    other = web.get(f"/admin/analytics/placements/{world.p1}").text
    assert _cells(other, "placement-totals")[0][:3] == ["7", "5", "1"]


def test_rules_sent_as_json_through_the_api_show_in_the_form_as_stored(
    web: TestClient, as_role: SignIn, db: Session
) -> None:
    campaign = make_campaign(db, name="From the API")
    rule = {
        "when": {"time_from": "08:30:15", "time_to": "17:00:00", "languages": ["pt-br"]},
        "destinations": [{"url": "https://shop.example.com/pt"}],
    }
    placement = make_placement(db, campaign.id or 0, rules=[rule])
    as_role(Role.SALES)
    html = web.get(f"/admin/analytics/placements/{placement.id}").text
    assert 'id="rules-0-time_from" name="rules-0-time_from" value="08:30:15"' in html
    assert 'id="rules-0-time_to" name="rules-0-time_to" value="17:00"' in html
    assert 'value="pt-br"' in html and 'value="https://shop.example.com/pt"' in html


def _field_error(html: str, field: str) -> str:
    """The message shown beside a form field."""
    found = re.search(rf'id="{field}-error">([^<]*)<', html)
    assert found, field
    return found.group(1)
