"""Issue 14.1: no CSV we write lets a spreadsheet run a formula from text someone else typed."""

import csv
import io
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app import csvsafe
from app.analytics import scanfeed
from app.auth.staff import Role
from app.config import Settings, get_settings
from tests.factories import make_campaign, make_offer, make_placement


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ('=HYPERLINK("x")', '\'=HYPERLINK("x")'),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(1+1)", "'@SUM(1+1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("Acme = good", "Acme = good"),
        ("-12.50", "-12.50"),
        ("+49", "+49"),
        (-3, -3),
        (None, None),
    ],
)
def test_formula_cells_get_a_leading_quote(cell: object, written: object) -> None:
    assert csvsafe.neutralise(cell) == written


def _table(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_a_scans_referrer_host_is_neutralised_in_scans_csv(
    api: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True)
    page = api.get(f"/{offer.id}", headers={"Referer": 'http://=hyperlink("x").example/'})
    assert page.status_code == 200

    exported = api.get("/api/v1/analytics/export/scans.csv")

    hosts = [row["referrer_host"] for row in _table(exported.text)]
    assert hosts == ['\'=hyperlink("x").example']


def test_conversion_keys_are_neutralised_in_conversions_csv(
    api: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True)
    conversion = {"external_key": "=1+2", "type": "order", "currency": "EUR", "channel": "@pos"}
    made = api.post("/api/v1/conversions", json={**conversion, "code": offer.id})
    assert made.status_code == 201, made.text

    rows = _table(api.get("/api/v1/analytics/export/conversions.csv").text)

    assert [(r["external_key"], r["channel"]) for r in rows] == [("'=1+2", "'@pos")]


def test_campaign_and_placement_names_are_neutralised_in_breakdowns(
    api: TestClient, session: Session, settings: Settings
) -> None:
    campaign = make_campaign(session, name="=cmd|'/C calc'!A0")
    assert campaign.id is not None
    placement = make_placement(session, campaign.id, name="+SUM(1,1)")
    offer = make_offer(session, settings, issued=True)
    assert api.get(f"/c/{placement.slug}", follow_redirects=False).status_code in (302, 303, 307)
    assert api.get(f"/{offer.id}").status_code == 200
    scanfeed.derive(session, settings.zone)  # the server's scan feed, after the commits

    by_campaign = api.get("/api/v1/analytics/breakdown", params={"by": "campaign", "format": "csv"})
    by_placement = api.get(
        "/api/v1/analytics/breakdown", params={"by": "placement", "format": "csv"}
    )

    assert "'=cmd|'/C calc'!A0" in {r["label"] for r in _table(by_campaign.text)}
    assert "'+SUM(1,1)" in {r["label"] for r in _table(by_placement.text)}


@pytest.mark.concurrency
def test_the_staff_offer_export_is_neutralised(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    make_offer(
        db,
        get_settings(),
        customer={
            "company": '=HYPERLINK("https://evil.example","Click")',
            "contact_name": "+cmd|' /C calc'!A0",
            "email": "x@example.com",
        },
    )
    as_role(Role.VIEWER)

    exported = web.get("/admin/offer/export/csv")

    assert exported.status_code == 200
    (row,) = _table(exported.text)
    assert row["customer_company"] == '\'=HYPERLINK("https://evil.example","Click")'
    assert row["customer_contact_name"] == "'+cmd|' /C calc'!A0"
