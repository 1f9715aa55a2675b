"""The analytics pages of the staff site: the campaign dashboard on a known data set, its CSV
downloads, campaign/placement/webhook screens per role, field errors, CSRF and the audit log."""

import csv
import io
import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.admin.analytics.webhooks import TICKED_AT_FIRST
from app.analytics import outbox, webhooks
from app.analytics.models import Campaign, Placement, WebhookDelivery, WebhookEndpoint
from app.analytics.schemas import WEBHOOK_EVENT_TYPES, WebhookEndpointCreate
from app.audit import AuditLogEntry
from app.auth.service import create_api_key
from app.auth.staff import Role
from app.config import get_settings
from app.db import utcnow
from app.offers import service as offers_service
from app.templating import format_date
from tests.admin.conftest import csrf_from, session_cookie_text
from tests.analytics.test_attribution import BREAKDOWNS, World, _scan
from tests.analytics.test_webhooks import Receiver, _drain, _loopback_allowed  # noqa: F401
from tests.factories import make_campaign, make_creative, make_offer, make_placement
from tests.scanlogs import ScanOrigin

pytestmark = pytest.mark.concurrency
SignIn = Callable[[Role], str]


@pytest.fixture
def world(db: Session) -> World:
    return World(db, get_settings())


def _range() -> dict[str, str]:
    today = offers_service.today(get_settings())
    return {"from": (today - timedelta(days=29)).isoformat(), "to": today.isoformat()}


def _cells(html: str, table_id: str) -> list[list[str]]:
    table = html.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)
    return [
        [
            " ".join(re.sub(r"<[^>]+>", " ", c).split())
            for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        for row in rows
        if "<td" in row
    ]


# --- the dashboard -----------------------------------------------------------------------


def test_dashboard_shows_the_known_figures(web: TestClient, as_role: SignIn, world: World) -> None:
    as_role(Role.VIEWER)
    page = web.get("/admin/analytics/", params=_range())
    assert page.status_code == 200
    html = page.text
    # P1: 7 human scans by 5 visitors; P2: 4 scans by 4 visitors (bots and old scans left out);
    # one more scan of an offer outside the campaign.
    assert "<strong>12</strong> scans, <strong>10</strong> unique visitors" in html
    by_placement = {row[0]: row for row in _cells(html, "att-placement-first_touch")}
    assert by_placement["P1"][1:5] == ["7", "5", "3", "60.0%"]
    assert by_placement["P1"][5] == "€6,300.00"
    last = {row[0]: row for row in _cells(html, "att-placement-last_touch")}
    assert last["P2"][3] == "3"  # B and the offer's acceptance and order, last scanned at P2
    # Charts are SVG images with a title, and the table alternative sits beside them.
    assert '<svg class="ot-chart" id="chart-daily"' in html
    assert '<title id="chart-estimate-placement-t">' in html
    assert 'role="img"' in html
    assert _cells(html, "funnel-table") == [
        ["Issued", "4"],
        ["Scanned", "2"],
        ["Accepted", "1"],
        ["Ordered", "1"],
    ]
    for by, rows in BREAKDOWNS.items():
        if by != "campaign":  # the dashboard shows campaigns in the attribution tables
            assert _cells(html, f"scans-by-{by}") == [[r[1], str(r[2]), str(r[3])] for r in rows]
    assert _cells(html, "ttc-table") == [
        ["under 1 hour", "0"],
        ["1 to 24 hours", "3"],
        ["1 to 7 days", "1"],
        ["7 to 30 days", "0"],
        ["over 30 days", "0"],
    ]
    # htmx comes from our own static files, with the CSP nonce.
    assert re.search(r'<script src="[^"]*/static/htmx.min.js" nonce="[^"]+"', html)
    assert "onclick=" not in html and "onchange=" not in html


def test_conversions_without_a_scan_get_no_made_up_estimate(
    web: TestClient, as_role: SignIn, db: Session, world: World
) -> None:
    settings = get_settings()
    outside = make_offer(db, settings, issued=True)  # in no campaign, never scanned
    offers_service.accept_offer(db, outside.id, signer_name="X", po_number="", settings=settings)
    as_role(Role.VIEWER)
    html = web.get("/admin/analytics/", params=_range()).text
    # The row of conversions credited to no campaign has no visitors: no rate, no estimate.
    unattributed = {row[0]: row for row in _cells(html, "att-campaign-last_touch")}["(none)"]
    assert unattributed[1:5] == ["0", "0", "1", "–"]
    assert unattributed[7:] == ["–", "–", "–"]
    known = {row[0]: row for row in _cells(html, "att-campaign-last_touch")}["Known"]
    assert known[9] == "100%"  # the only campaign with visitors is the best of one
    estimates = html.split('id="chart-estimate-campaign"', 1)[1].split("</svg>", 1)[0]
    assert "Known" in estimates and "(none)" not in estimates
    rates = html.split('id="chart-rate-campaign"', 1)[1].split("</svg>", 1)[0]
    assert "(none)" not in rates


def test_a_conversion_rate_of_nought_is_charted_not_called_no_data(
    web: TestClient, as_role: SignIn, db: Session
) -> None:
    campaign = make_campaign(db, name="Quiet")
    placement = make_placement(db, campaign.id or 0, name="Door")
    scan: ScanOrigin = {
        "campaign_id": campaign.id,
        "placement_id": placement.id,
        "creative_id": None,
    }
    for visitor in ("v1", "v2"):
        _scan(db, utcnow(), visitor, **scan)
    as_role(Role.VIEWER)
    html = web.get("/admin/analytics/", params=_range()).text
    assert _cells(html, "att-campaign-last_touch")[0][:5] == ["Quiet", "2", "2", "0", "0.0%"]
    rates = html.split('id="chart-rate-campaign"', 1)[1].split("</svg>", 1)[0]
    assert "No data in this range" not in rates and "Quiet" in rates
    today = offers_service.today(get_settings()).isoformat()
    one_day = web.get("/admin/analytics/", params={"from": today, "to": today}).text
    assert "(1 day):" in one_day


def test_same_named_creatives_of_two_campaigns_are_told_apart(
    web: TestClient, as_role: SignIn, db: Session
) -> None:
    for name in ("Spring", "Summer"):
        campaign_id = make_campaign(db, name=name).id or 0
        creative = make_creative(db, campaign_id, name="Poster A")
        placement = make_placement(db, campaign_id, name="Door" if name == "Spring" else "Till")
        origin: ScanOrigin = {
            "campaign_id": campaign_id,
            "placement_id": placement.id,
            "creative_id": creative.id,
        }
        _scan(db, utcnow(), f"visitor of {name}", **origin)
    as_role(Role.VIEWER)
    html = web.get("/admin/analytics/", params=_range()).text
    creatives = {row[0] for row in _cells(html, "att-creative-last_touch")}
    assert creatives == {"Poster A (Spring)", "Poster A (Summer)"}
    assert {row[0] for row in _cells(html, "scans-by-creative")} == creatives
    assert {row[0] for row in _cells(html, "att-placement-last_touch")} == {"Door", "Till"}


def test_panels_follow_the_date_range(web: TestClient, as_role: SignIn, world: World) -> None:
    as_role(Role.VIEWER)
    today = offers_service.today(get_settings())
    recent = web.get(
        "/admin/analytics/panels",
        params={"from": (today - timedelta(days=1)).isoformat(), "to": today.isoformat()},
    )
    assert recent.status_code == 200
    assert "<html" not in recent.text  # a fragment for htmx, not a page
    assert "<strong>2</strong> scans" in recent.text  # only the offer's two scans of today
    assert recent.headers["HX-Push-Url"].startswith("/admin/analytics/?from=")
    wrong = web.get("/admin/analytics/panels", params={"from": "2026-05-02", "to": "2026-05-01"})
    assert wrong.status_code == 200 and "must not be after" in wrong.text
    assert "HX-Push-Url" not in wrong.headers
    old = web.get("/admin/analytics/panels", params={"from": "2020-01-01", "to": "2020-01-31"})
    assert "<strong>0</strong> scans" in old.text and "No data in this range" in old.text


def test_htmx_asking_for_the_dashboard_gets_only_its_panels(
    web: TestClient, as_role: SignIn, world: World
) -> None:
    as_role(Role.VIEWER)
    today = offers_service.today(get_settings())
    params = {"from": (today - timedelta(days=1)).isoformat(), "to": today.isoformat()}

    fragment = web.get("/admin/analytics/", params=params, headers={"HX-Request": "true"})
    page = web.get("/admin/analytics/", params=params)

    assert fragment.status_code == page.status_code == 200
    assert "HX-Request" in fragment.headers["Vary"] and "HX-Request" in page.headers["Vary"]
    # The fragment: the panels (rendered by jinja-partials), without the layout or the form.
    assert "<strong>2</strong> scans" in fragment.text
    assert "<html" not in fragment.text and 'class="analytics-range"' not in fragment.text
    assert fragment.headers["HX-Push-Url"].startswith("/admin/analytics/?from=")
    # The page: layout, form and the same panels, rendered by the same partial.
    assert "<html" in page.text and 'class="analytics-range"' in page.text
    assert "<strong>2</strong> scans" in page.text
    assert 'hx-get="https://track.example.com/admin/analytics/"' in page.text  # asks the page
    # htmx restoring the page from history gets all of it.
    restore = {"HX-Request": "true", "HX-History-Restore-Request": "true"}
    assert "<html" in web.get("/admin/analytics/", params=params, headers=restore).text


def test_a_bad_range_is_explained_next_to_its_field(web: TestClient, as_role: SignIn) -> None:
    as_role(Role.VIEWER)
    page = web.get("/admin/analytics/", params={"from": "2026-05-02", "to": "2026-05-01"})
    assert page.status_code == 422
    assert 'id="from-error"' in page.text and "must not be after" in page.text
    page = web.get("/admin/analytics/", params={"from": "yesterday"})
    assert 'id="from-error"' in page.text and "YYYY-MM-DD" in page.text


def test_csv_downloads_match_the_api_export(web: TestClient, as_role: SignIn, world: World) -> None:
    as_role(Role.VIEWER)
    params = {**_range(), "by": "placement", "model": "first_touch"}
    response = web.get("/admin/analytics/csv/attribution", params=params)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = {r["label"]: r for r in csv.DictReader(io.StringIO(response.text))}
    assert (rows["P1"]["scans"], rows["P1"]["conversions"]) == ("7", "3")
    page = web.get("/admin/analytics/", params=_range()).text
    tables = ("scans_per_day", "funnel", "time_to_convert", "breakdown", "attribution", "scans")
    for table in tables:
        assert f"/admin/analytics/csv/{table}?" in page
        link = re.search(rf'href="([^"]*/csv/{table}\?[^"]*)"', page)
        assert link
        got = web.get(link.group(1).replace("&amp;", "&"))
        assert got.status_code == 200 and got.text.count("\n") >= 1
    events = web.get("/admin/analytics/csv/conversions", params=_range())
    assert len(list(csv.DictReader(io.StringIO(events.text)))) == 4  # A, B, acceptance, order


def test_an_excel_user_with_a_decimal_comma_reads_rates_and_revenue_as_numbers(
    web: TestClient, as_role: SignIn, world: World
) -> None:
    """The attribution CSV for a decimal comma (Your account): the rate and each revenue
    amount carry a decimal comma, as that Excel reads a number."""
    as_role(Role.VIEWER)
    token = csrf_from(web.get("/admin/account").text)
    chosen = {"decimal_mark": "comma", "csrf_token": token}
    assert web.post("/admin/account/decimal-mark", data=chosen).status_code == 200
    params = {**_range(), "by": "placement", "model": "first_touch"}
    response = web.get("/admin/analytics/csv/attribution", params=params)
    text = response.text.removeprefix("\ufeff")
    rows = {r["label"]: r for r in csv.DictReader(io.StringIO(text), delimiter=";")}
    assert rows["P1"]["revenue"] == "EUR 6300,00"
    assert rows["P1"]["conversion_rate"] == "0,6"


def test_a_breakdown_csv_link_without_by_gets_the_first_panels_csv(
    web: TestClient, as_role: SignIn, world: World
) -> None:
    as_role(Role.VIEWER)

    shortened = web.get("/admin/analytics/csv/breakdown", params=_range())

    assert shortened.status_code == 200
    assert shortened.headers["content-type"].startswith("text/csv")
    by_channel = web.get("/admin/analytics/csv/breakdown", params={**_range(), "by": "channel"})
    assert shortened.text == by_channel.text
    assert list(csv.DictReader(io.StringIO(shortened.text)))  # figures, not just a header


def test_a_breakdown_csv_by_campaign_is_made_as_the_api_makes_it(
    web: TestClient, as_role: SignIn, world: World
) -> None:
    as_role(Role.VIEWER)

    response = web.get("/admin/analytics/csv/breakdown", params={**_range(), "by": "campaign"})

    assert response.status_code == 200
    assert {row["label"] for row in csv.DictReader(io.StringIO(response.text))} >= {"Known"}


@pytest.mark.parametrize(
    ("path", "params", "status", "says"),
    [
        (
            "breakdown",
            {"by": "colour"},
            422,
            "Scans can be broken down by channel, device, campaign, placement or creative",
        ),
        (
            "attribution",
            {"by": "channel"},
            422,
            "Conversions can be attributed by campaign, creative or placement",
        ),
        ("attribution", {"model": "x"}, 422, "The attribution model is first_touch or last_touch"),
        ("funnel", {"from": "yesterday"}, 422, "From: Enter a date as YYYY-MM-DD."),
        (
            "scans",
            {"from": "2026-05-02", "to": "2026-05-01"},
            422,
            "From: The start must not be after the end.",
        ),
        ("nope", {}, 404, "There is no such CSV download"),
    ],
)
def test_a_csv_link_edited_by_hand_gets_a_page_saying_what_to_choose(
    web: TestClient, as_role: SignIn, path: str, params: dict[str, str], status: int, says: str
) -> None:
    as_role(Role.VIEWER)

    response = web.get(f"/admin/analytics/csv/{path}", params=params)

    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    card = response.text.split('class="card error-card"', 1)[1].split("</div>", 1)[0]
    assert says in card and "query." not in card


def test_signed_out_visitors_are_sent_to_sign_in(web: TestClient) -> None:
    for path in ("/admin/analytics/", "/admin/analytics/csv/funnel", "/admin/analytics/campaigns"):
        response = web.get(path, follow_redirects=False)
        assert response.status_code == 303 and "/admin/login" in response.headers["location"]


# --- campaigns, creatives, placements ----------------------------------------------------


def test_viewer_reads_campaigns_but_cannot_change_them(
    web: TestClient, as_role: SignIn, db: Session
) -> None:
    campaign = make_campaign(db, name="Winter")
    placement = make_placement(db, campaign.id or 0)
    token = as_role(Role.VIEWER)
    listing = web.get("/admin/analytics/campaigns")
    assert listing.status_code == 200 and "Winter" in listing.text
    assert "Create campaign" not in listing.text
    assert web.get(f"/admin/analytics/campaigns/{campaign.id}").status_code == 200
    assert web.get(f"/admin/analytics/placements/{placement.id}").status_code == 200
    for path, data in (
        ("/admin/analytics/campaigns", {"name": "Sneaky"}),
        (f"/admin/analytics/campaigns/{campaign.id}", {"name": "Renamed"}),
        (f"/admin/analytics/campaigns/{campaign.id}/creatives", {"name": "K"}),
        (f"/admin/analytics/campaigns/{campaign.id}/placements", {"name": "P"}),
        (f"/admin/analytics/placements/{placement.id}", {"name": "P"}),
    ):
        response = web.post(path, data={**data, "csrf_token": token})
        assert response.status_code == 403, path
    assert db.exec(select(Campaign).where(Campaign.name == "Sneaky")).first() is None


def test_sales_creates_a_campaign_and_it_is_audited(
    web: TestClient, as_role: SignIn, db: Session
) -> None:
    token = as_role(Role.SALES)
    response = web.post(
        "/admin/analytics/campaigns",
        data={"name": "Spring fair", "utm_medium": "poster", "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303
    campaign = db.exec(select(Campaign).where(Campaign.name == "Spring fair")).one()
    assert (campaign.utm_medium, campaign.utm_campaign) == ("poster", "spring-fair")
    entry = db.exec(select(AuditLogEntry).where(AuditLogEntry.action == "campaign.created")).one()
    assert (entry.actor, entry.entity_id) == ("staff:sales@example.com", str(campaign.id))


def test_campaign_field_errors_are_shown_next_to_the_field(
    web: TestClient, as_role: SignIn, db: Session
) -> None:
    token = as_role(Role.SALES)
    response = web.post(
        "/admin/analytics/campaigns",
        data={"name": "", "starts_on": "2026-13-01", "csrf_token": token},
    )
    assert response.status_code == 422
    assert 'id="name-error"' in response.text and 'id="starts_on-error"' in response.text
    assert db.exec(select(Campaign)).first() is None
    assert (
        db.exec(select(AuditLogEntry).where(AuditLogEntry.action == "campaign.created")).first()
        is None
    )


def test_campaign_dates_in_the_wrong_order_are_refused_beside_the_end_date(
    web: TestClient, as_role: SignIn, db: Session
) -> None:
    token = as_role(Role.SALES)
    dates = {"starts_on": "2026-12-20", "ends_on": "2026-12-01", "csrf_token": token}
    created = web.post("/admin/analytics/campaigns", data={"name": "Xmas", **dates})
    assert created.status_code == 422
    error = 'id="ends_on-error">The end date must not be before the start date.'
    assert error in created.text and "starts_on must not" not in created.text
    assert db.exec(select(Campaign)).first() is None
    campaign = make_campaign(db, name="Winter")
    utm = {"utm_source": "offertrack", "utm_medium": "qr", "utm_campaign": "winter"}
    edited = web.post(
        f"/admin/analytics/campaigns/{campaign.id}", data={"name": "Winter", **utm, **dates}
    )
    assert edited.status_code == 422 and error in edited.text


def test_a_name_or_code_taken_already_is_refused_beside_its_field(
    web: TestClient, as_role: SignIn, db: Session
) -> None:
    campaign_id = make_campaign(db, name="Spring").id or 0
    make_placement(db, campaign_id, name="Door", slug="door47")
    token = as_role(Role.SALES)
    path = f"/admin/analytics/campaigns/{campaign_id}/placements"
    form = {"fallback_url": "https://shop.example.com/", "csrf_token": token}
    code = web.post(path, data={**form, "name": "Window", "slug": "door47"})
    assert code.status_code == 422
    assert 'id="slug-error">The code &#39;door47&#39; is taken already' in code.text
    name = web.post(path, data={**form, "name": "Door", "slug": "door48"})
    assert name.status_code == 422 and 'id="name-error">The placement name' in name.text
    campaign = web.post("/admin/analytics/campaigns", data={"name": "Spring", "csrf_token": token})
    assert campaign.status_code == 422 and 'id="name-error">The campaign name' in campaign.text
    assert [p.name for p in db.exec(select(Placement)).all()] == ["Door"]  # nothing else saved


def test_a_placement_code_error_says_what_a_code_may_hold(
    web: TestClient, as_role: SignIn, db: Session
) -> None:
    campaign_id = make_campaign(db, name="Codes").id or 0
    token = as_role(Role.SALES)
    form = {"name": "Tent", "slug": "a", "fallback_url": "https://shop.example.com/"}
    bad = web.post(
        f"/admin/analytics/campaigns/{campaign_id}/placements", data={**form, "csrf_token": token}
    )
    assert bad.status_code == 422
    assert 'id="slug-error">must be 2 to 40 letters, digits, hyphens or underscores' in bad.text
    assert "pattern" not in bad.text


def test_a_placement_is_created_from_its_campaign_and_lands_on_its_rules_form(
    web: TestClient, as_role: SignIn, db: Session
) -> None:
    campaign_id = make_campaign(db, name="Rules").id or 0
    creative = make_creative(db, campaign_id, name="Blue")
    token = as_role(Role.SALES)
    form = {
        "name": "Table tent",
        "fallback_url": "https://shop.example.com/",
        "fallback_creative_id": str(creative.id),
        "split_mode": "weighted",
        "csrf_token": token,
    }
    bad = web.post(
        f"/admin/analytics/campaigns/{campaign_id}/placements",
        data={**form, "fallback_url": "shop.example.com"},
    )
    assert bad.status_code == 422 and 'id="fallback_url-error"' in bad.text
    assert 'value="Table tent"' in bad.text
    assert db.exec(select(Placement)).first() is None
    db.rollback()
    response = web.post(
        f"/admin/analytics/campaigns/{campaign_id}/placements", data=form, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    page = web.get(response.headers["location"]).text
    assert "add its routing rules below" in page and "Add rule" in page
    assert "(creative Blue)" in page  # the fallback, by name
    actions = db.exec(select(AuditLogEntry.action)).all()
    assert "placement.created" in actions


def test_a_placement_page_says_its_split_and_time_zone_in_words(
    web: TestClient, as_role: SignIn, db: Session
) -> None:
    campaign_id = make_campaign(db, name="Words").id or 0
    rules = [
        {
            "when": {"time_from": "08:00", "time_to": "12:00"},
            "destinations": [{"url": "https://x.example/"}],
        }
    ]
    placement = make_placement(db, campaign_id, split_mode="thompson", rules=rules)
    as_role(Role.SALES)
    page = web.get(f"/admin/analytics/placements/{placement.id}").text
    zone = get_settings().timezone
    assert zone  # named on the page, never an empty "local to ."
    assert "A/B split: Thompson sampling (towards the better converter)." in page
    assert "A/B split: thompson" not in page
    assert f"Times and dates are local to {zone}." in page
    assert f"Local time in {zone};" in page  # beside the rules form's time fields
    assert '<option value="thompson" selected>Thompson sampling' in page


def test_qr_artwork_download_and_too_dense_message(
    web: TestClient, as_role: SignIn, db: Session
) -> None:
    campaign = make_campaign(db, name="Art")
    placement = make_placement(db, campaign.id or 0)
    as_role(Role.VIEWER)
    base = f"/admin/analytics/placements/{placement.id}/qr"
    svg = web.get(base, params={"size_mm": "30", "error": "M", "fmt": "svg"})
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    png = web.get(base, params={"size_mm": "30", "error": "H", "fmt": "png"})
    assert png.content.startswith(b"\x89PNG")
    pdf = web.get(base, params={"size_mm": "40", "fmt": "pdf"})
    assert pdf.content.startswith(b"%PDF")
    dense = web.get(base, params={"size_mm": "6", "error": "H", "fmt": "svg"})
    assert dense.status_code == 422
    assert re.search(r"The smallest size that works at error level H is \d+ mm", dense.text)
    assert web.get(base, params={"size_mm": "abc"}).status_code == 422


# --- webhooks ----------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.VIEWER, Role.SALES])
def test_webhooks_are_for_admins_only(
    web: TestClient, as_role: SignIn, db: Session, role: Role
) -> None:
    token = as_role(role)
    assert web.get("/admin/analytics/webhooks").status_code == 403
    response = web.post(
        "/admin/analytics/webhooks",
        data={"url": "https://w.example.com/", "event_types": "scan.created", "csrf_token": token},
    )
    assert response.status_code == 403
    assert db.exec(select(WebhookEndpoint)).first() is None
    assert "Webhooks" not in web.get("/admin/analytics/").text.split("page-wrapper")[0]


def test_admin_manages_an_endpoint(web: TestClient, as_role: SignIn, db: Session) -> None:
    token = as_role(Role.ADMIN)
    form = web.get("/admin/analytics/webhooks").text
    # Every event type the API offers, the staff alerts' included; the campaign ones ticked.
    for event_type in WEBHOOK_EVENT_TYPES:
        ticked = event_type in TICKED_AT_FIRST
        assert (f'value="{event_type}" checked' in form) is ticked, event_type
        assert f'value="{event_type}"' in form, event_type
    bad = web.post("/admin/analytics/webhooks", data={"url": "not a url", "csrf_token": token})
    assert bad.status_code == 422 and 'id="url-error"' in bad.text
    empty = web.post("/admin/analytics/webhooks", data={"url": " ", "csrf_token": token})
    said = re.search(r'id="url-error">([^<]*)<', empty.text)
    assert empty.status_code == 422 and said is not None
    assert said.group(1).startswith("Required: enter a full web address starting with https://")
    created = web.post(
        "/admin/analytics/webhooks",
        data={
            "url": "https://w.example.com/in",
            "event_types": ["scan.created", "offer.accepted"],
            "csrf_token": token,
        },
    )
    assert created.status_code == 200
    endpoint = db.exec(select(WebhookEndpoint)).one()
    secret, endpoint_id = endpoint.secret, endpoint.id
    db.rollback()  # end the read: SQLite lets one writer in at a time, and the site writes next
    assert created.url.path == f"/admin/analytics/webhooks/{endpoint_id}"
    assert secret in created.text  # shown once, on the endpoint's page
    assert secret not in web.get(f"/admin/analytics/webhooks/{endpoint_id}").text
    off = web.post(
        f"/admin/analytics/webhooks/{endpoint_id}/enabled",
        data={"enabled": "false", "csrf_token": token},
        follow_redirects=False,
    )
    assert off.status_code == 303
    db.refresh(endpoint)
    assert endpoint.enabled is False
    old = endpoint.secret
    db.rollback()
    rotated = web.post(
        f"/admin/analytics/webhooks/{endpoint_id}/rotate-secret", data={"csrf_token": token}
    )
    db.refresh(endpoint)
    assert endpoint.secret != old and endpoint.secret in rotated.text
    assert "Delivery log" in rotated.text
    db.rollback()
    assert endpoint.secret not in web.get(rotated.url).text
    actions = set(db.exec(select(AuditLogEntry.action)).all())
    assert {"webhook.created", "webhook.disabled", "webhook.secret_rotated"} <= actions


@pytest.mark.parametrize("action", ["create", "rotate"])
def test_a_reload_after_creating_or_rotating_sends_nothing_again_and_shows_no_secret(
    web: TestClient, as_role: SignIn, db: Session, action: str
) -> None:
    token = as_role(Role.ADMIN)
    path = "/admin/analytics/webhooks"
    form: dict[str, str | list[str]] = {"url": "https://w.example.com/in"}
    if action == "rotate":
        made = webhooks.create_endpoint(
            db,
            WebhookEndpointCreate(url="https://w.example.com/in", event_types=["scan.created"]),
            actor="t",
        )
        path, form = f"{path}/{made.id}/rotate-secret", {}
        db.rollback()

    answer = web.post(
        path,
        data={**form, "event_types": ["scan.created"], "csrf_token": token},
        follow_redirects=False,
    )
    endpoint = db.exec(select(WebhookEndpoint).execution_options(populate_existing=True)).one()
    secret, endpoint_id = endpoint.secret, endpoint.id
    # Read before the rollback: reading the expired row after it would hold SQLite's writer
    # lock through the page below, which records the secret as shown.
    db.rollback()
    assert answer.status_code == 303 and secret not in answer.text
    assert answer.headers["location"].endswith(f"/admin/analytics/webhooks/{endpoint_id}")
    assert secret not in answer.headers["location"] and secret not in session_cookie_text(web)
    shown = web.get(answer.headers["location"])
    reloaded = web.get(answer.headers["location"])

    assert shown.text.count(secret) == 1 and 'aria-label="Signing secret"' in shown.text
    assert secret not in reloaded.text and "Signing secret" not in reloaded.text
    assert len(db.exec(select(WebhookEndpoint)).all()) == 1
    assert db.exec(select(WebhookEndpoint.secret)).one() == secret  # not rotated again
    rotations = db.exec(
        select(AuditLogEntry).where(AuditLogEntry.action == "webhook.secret_rotated")
    ).all()
    assert len(rotations) == (1 if action == "rotate" else 0)


def test_a_failing_endpoint_says_since_when(web: TestClient, as_role: SignIn, db: Session) -> None:
    as_role(Role.ADMIN)
    endpoint = webhooks.create_endpoint(
        db,
        WebhookEndpointCreate(url="https://w.example.com/in", event_types=["scan.created"]),
        actor="t",
    )
    since = utcnow() - timedelta(hours=3)
    endpoint.failure_count, endpoint.failing_since = 25, since
    db.add(endpoint)
    db.commit()

    page = web.get(f"/admin/analytics/webhooks/{endpoint.id}").text
    listed = web.get("/admin/analytics/webhooks").text

    when = format_date(since)
    assert f"failing since {when} (25 failed attempts in a row)" in page
    assert f"Enabled, failing since {when}" in listed


def _deliver_two_events(db: Session) -> tuple[int, str, list[str]]:
    """An endpoint whose receiver fails the first attempt and accepts the rest, and two
    events sent to it by the real worker: one failure, then two deliveries."""
    receiver = Receiver(fail_first=1)
    try:
        data = WebhookEndpointCreate(url=receiver.url, event_types=list(TICKED_AT_FIRST))
        endpoint = webhooks.create_endpoint(db, data, actor="test")
        receiver.secret = endpoint.secret
        outbox.emit(db, "conversion.created", {"n": 1})
        outbox.emit(db, "offer.accepted", {"n": 2})
        db.commit()
        fast = get_settings().model_copy(update={"webhook_retry_base_seconds": 0.05})
        _drain(db.get_bind(), fast, lambda: len(receiver.events) == 2)  # type: ignore[arg-type]
    finally:
        receiver.close()
    assert receiver.bad_signatures == 0 and endpoint.id is not None
    types = [e["type"] for e in receiver.events]
    return endpoint.id, endpoint.secret, types


@pytest.mark.usefixtures("_loopback_allowed")
def test_the_delivery_log_lists_each_attempt(web: TestClient, as_role: SignIn, db: Session) -> None:
    endpoint_id, _, arrived = _deliver_two_events(db)
    assert arrived == ["conversion.created", "offer.accepted"]
    as_role(Role.ADMIN)
    page = web.get(f"/admin/analytics/webhooks/{endpoint_id}")
    assert page.status_code == 200
    endpoint = db.get(WebhookEndpoint, endpoint_id)
    assert endpoint is not None
    assert f'<span class="mono">{endpoint.url}</span></h2>' in page.text
    attempts = db.exec(
        select(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id)
        .order_by(col(WebhookDelivery.id).desc())
    ).all()
    rows = _cells(page.text, "delivery-log")
    # Newest first: the second event, the first one's retry, the first one's failure.
    assert [(r[1], r[3], r[4], r[6] or "") for r in rows] == [
        ("offer.accepted", "Delivered", "204", ""),
        ("conversion.created", "Delivered", "204", ""),
        ("conversion.created", "Failed", "500", "HTTP 500"),
    ]
    assert [r[0] for r in rows] == [format_date(a.attempted_at) for a in attempts]
    assert [r[2] for r in rows] == [a.event_id for a in attempts]
    assert rows[0][0].startswith(format_date(utcnow())[:12])  # today, in the local zone
    _, token = create_api_key(db, "warehouse", actor="tests")
    api_rows = web.get(
        f"/api/v1/webhooks/{endpoint_id}/deliveries", headers={"Authorization": f"Bearer {token}"}
    ).json()
    assert [(d["event_type"], d["status_code"]) for d in api_rows] == [
        ("offer.accepted", 204),
        ("conversion.created", 204),
        ("conversion.created", 500),
    ]


@pytest.mark.parametrize("role", [Role.VIEWER, Role.SALES])
def test_viewers_and_sales_never_see_a_webhook_secret(
    web: TestClient, as_role: SignIn, db: Session, role: Role
) -> None:
    endpoint_id, secret, _ = _deliver_two_events(db)
    as_role(role)
    for path in (
        f"/admin/analytics/webhooks/{endpoint_id}",
        "/admin/analytics/webhooks",
        "/admin/audit-log-entry/list",
    ):
        page = web.get(path)
        assert page.status_code == 403, path
        assert secret not in page.text and "Delivery log" not in page.text
    forged = web.post(
        f"/admin/analytics/webhooks/{endpoint_id}/rotate-secret",
        data={"csrf_token": csrf_from(web.get("/admin/analytics/").text)},
    )
    assert forged.status_code == 403 and "whsec_" not in forged.text
    db.expire_all()
    endpoint = db.get(WebhookEndpoint, endpoint_id)
    assert endpoint is not None and endpoint.secret == secret  # not rotated either
    for path in ("/admin/", "/admin/analytics/"):
        assert secret not in web.get(path).text


def test_a_form_without_its_csrf_token_is_refused(
    web: TestClient, as_role: SignIn, db: Session
) -> None:
    as_role(Role.ADMIN)
    for path, data in (
        ("/admin/analytics/campaigns", {"name": "Forged"}),
        ("/admin/analytics/webhooks", {"url": "https://evil.example.com/"}),
    ):
        response = web.post(path, data=data)
        assert response.status_code == 403 and "could not be verified" in response.text
    assert db.exec(select(Campaign)).first() is None
    assert db.exec(select(WebhookEndpoint)).first() is None
    assert csrf_from(web.get("/admin/analytics/campaigns").text)


# --- every role against every page and action --------------------------------------------

ROLES = (Role.VIEWER, Role.SALES, Role.ADMIN)
PAGES = {  # path (with {c}, {p}, {w} for ids) → lowest role that may open it
    "/admin/analytics/": Role.VIEWER,
    "/admin/analytics/panels": Role.VIEWER,
    "/admin/analytics/csv/funnel": Role.VIEWER,
    "/admin/analytics/campaigns": Role.VIEWER,
    "/admin/analytics/campaigns/{c}": Role.VIEWER,
    "/admin/analytics/placements/{p}": Role.VIEWER,
    "/admin/analytics/placements/{p}/qr?size_mm=30&fmt=svg": Role.VIEWER,
    "/admin/analytics/webhooks": Role.ADMIN,
    "/admin/analytics/webhooks/{w}": Role.ADMIN,
}
ACTIONS = {  # path → (form, lowest role allowed, the answer when allowed)
    "/admin/analytics/campaigns": ({"name": "New one"}, Role.SALES, 303),
    "/admin/analytics/campaigns/{c}": (
        {"name": "Renamed", "utm_source": "s", "utm_medium": "m", "utm_campaign": "c"},
        Role.SALES,
        303,
    ),
    "/admin/analytics/campaigns/{c}/creatives": ({"name": "Green"}, Role.SALES, 303),
    "/admin/analytics/campaigns/{c}/placements": (
        {"name": "Door", "fallback_url": "https://shop.example.com/", "split_mode": "weighted"},
        Role.SALES,
        303,
    ),
    "/admin/analytics/placements/{p}": (
        {"name": "Desk", "fallback_url": "https://shop.example.com/d", "split_mode": "weighted"},
        Role.SALES,
        303,
    ),
    "/admin/analytics/webhooks": (
        {"url": "https://w.example.com/", "event_types": "scan.created"},
        Role.ADMIN,
        303,
    ),
    "/admin/analytics/webhooks/{w}/enabled": ({"enabled": "false"}, Role.ADMIN, 303),
    "/admin/analytics/webhooks/{w}/rotate-secret": ({}, Role.ADMIN, 303),
}


@pytest.fixture
def ids(db: Session) -> dict[str, int]:
    from app.analytics import webhooks
    from app.analytics.schemas import WebhookEndpointCreate

    campaign = make_campaign(db, name="Matrix")
    placement = make_placement(db, campaign.id or 0)
    endpoint = webhooks.create_endpoint(
        db,
        WebhookEndpointCreate(url="https://hook.example.com/", event_types=["scan.created"]),
        actor="test",
    )
    found = {"c": campaign.id or 0, "p": placement.id or 0, "w": endpoint.id or 0}
    db.rollback()
    return found


@pytest.mark.parametrize("role", ROLES)
def test_each_role_against_each_page(
    web: TestClient, as_role: SignIn, ids: dict[str, int], role: Role
) -> None:
    as_role(role)
    for path, lowest in PAGES.items():
        response = web.get(path.format(**ids), follow_redirects=False)
        expected = 200 if role.includes(lowest) else 403
        assert response.status_code == expected, (role, path)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_against_each_action(
    web: TestClient, as_role: SignIn, db: Session, ids: dict[str, int], role: Role
) -> None:
    token = as_role(role)
    for path, (form, lowest, allowed) in ACTIONS.items():
        response = web.post(
            path.format(**ids), data={**form, "csrf_token": token}, follow_redirects=False
        )
        expected = allowed if role.includes(lowest) else 403
        assert response.status_code == expected, (role, path, response.text[:300])
    # The fixture's own rows were created with actor "test"; count what the staff user did.
    entries = db.exec(select(AuditLogEntry.action).where(AuditLogEntry.actor != "test")).all()
    changed = [
        a for a in entries if a.split(".")[0] in {"campaign", "creative", "placement", "webhook"}
    ]
    assert len(changed) == sum(role.includes(lowest) for _, lowest, _ in ACTIONS.values())


@pytest.mark.parametrize(
    "path",
    [
        "/admin/analytics/campaigns/99999999999999999999",
        "/admin/analytics/placements/2147483648",
        "/admin/analytics/webhooks/0",
    ],
)
def test_an_impossible_id_gets_a_clear_page_not_an_error(
    web: TestClient, as_role: SignIn, path: str
) -> None:
    as_role(Role.ADMIN)

    response = web.get(path)

    assert response.status_code == 422
    assert "Something went wrong" not in response.text


def test_sqladmin_pages_with_an_impossible_id_are_not_an_error(
    web: TestClient, as_role: SignIn
) -> None:
    as_role(Role.ADMIN)

    for view in ("staff-user", "api-key", "stage-update"):
        response = web.get(f"/admin/{view}/details/99999999999999999999")
        assert response.status_code < 500, view
