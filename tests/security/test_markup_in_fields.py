"""Markup typed into any text field (by a customer, through the API, or by staff) is shown as
text wherever it appears: the customer's page, every page of the staff site, the PDF's HTML
and the mails."""

import email
import re
from datetime import date
from email.policy import default

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from app.admin import users
from app.analytics import campaigns, webhooks
from app.analytics.schemas import (
    CampaignCreate,
    CreativeCreate,
    PlacementCreate,
    WebhookEndpointCreate,
)
from app.auth.service import create_api_key
from app.auth.staff import Role
from app.config import TEMPLATES_DIR, get_settings
from app.customers import service as customers_service
from app.customers.schemas import CustomerCreate
from app.notifications import questions
from app.notifications.models import MailOutbox
from app.offers import service as offers_service
from app.offers import terms
from app.offers.pdf import quotation_html
from app.tracking import service as tracking_service
from app.tracking.codes import parse_tracking_code
from app.tracking.schemas import StageUpdateCreate
from tests.admin.conftest import StaffLogin, sign_in
from tests.admin.staffroutes import PASSWORD, Ids, staff_app, staff_downloads, staff_pages
from tests.factories import line_data, make_offer

pytestmark = pytest.mark.concurrency

# Short enough for every field (a phone number has 50 characters); as markup it would be an
# element with an id no page of ours has.
MARK = '<b id="xss">'


def _text(n: int) -> str:
    return f"{n}{MARK}'\""


def _offer(session: Session, *, issued: bool) -> str:
    settings = get_settings()
    customer = {
        "company": _text(1),
        "contact_name": _text(2),
        "phone": _text(3),
        "address_lines": _text(4),
        "city": _text(5),
        "country": _text(6),
        "vat_id": _text(7),
        "email": "maria@example.com",
    }
    line = line_data(description=_text(8), unit=_text(9)[:20])
    offer = make_offer(
        session,
        settings,
        issued=issued,
        customer=customer,
        customer_reference=_text(10),
        lines=[line],
        notes=_text(11),
        terms=_text(12),
    )
    return offer.id


def _world(engine: Engine) -> Ids:
    """One of everything, every text in it marked up."""
    settings = get_settings()
    with Session(engine, expire_on_commit=False) as session:
        draft, issued, order = (
            _offer(session, issued=False),
            _offer(session, issued=True),
            _offer(session, issued=True),
        )
        offers_service.accept_offer(
            session, order, signer_name=_text(13), po_number=_text(14), settings=settings
        )
        declined = _offer(session, issued=True)  # the customer's reason goes to the owner
        offers_service.decline_offer(session, declined, reason=_text(29), settings=settings)
        tracking_service.activate_offer(session, order, actor="tests", settings=settings)
        update = StageUpdateCreate(
            stage="shipped",
            public_note=_text(15),
            internal_note=_text(16),
            carrier=_text(17),
            tracking_number=_text(18),
            expected_delivery_date=date(2999, 1, 1),
        )
        tracking_service.add_stage_update(session, order, update, actor="tests", settings=settings)
        questions.ask_question(
            session,
            parse_tracking_code(issued),
            email="asker@example.com",
            message=_text(19),
            settings=settings,
        )
        customer = customers_service.create_customer(
            session,
            CustomerCreate(company=_text(20), contact_name=_text(21), notes=_text(22)),
            actor="tests",
        )
        template = terms.save_template(
            session, None, name=_text(23), kind="terms", body=_text(24), actor="tests"
        )
        campaign = campaigns.create_campaign(session, CampaignCreate(name=_text(25)), actor="tests")
        assert campaign.id is not None
        campaigns.create_creative(session, campaign.id, CreativeCreate(name=_text(26)), actor="t")
        placement = campaigns.create_placement(
            session,
            campaign.id,
            PlacementCreate(name=_text(27), fallback_url="https://shop.example.com/x"),
            actor="tests",
        )
        endpoint = webhooks.create_endpoint(
            session,
            WebhookEndpointCreate(url="https://hook.example.com/", event_types=["scan.created"]),
            actor="tests",
        )
        create_api_key(session, _text(28), actor="tests")
        admin = users.create_user(session, "admin@example.com", Role.ADMIN, PASSWORD, actor="tests")
        return Ids(
            draft=draft,
            issued=issued,
            order=order,
            customer=customer.id or 0,
            template=template.id or 0,
            campaign=campaign.id,
            placement=placement.id or 0,
            endpoint=endpoint.id or 0,
            user=admin.id or 0,
        )


def test_markup_in_any_field_is_shown_as_text_everywhere(
    app: FastAPI, web: TestClient, committed: Engine
) -> None:
    ids = _world(committed)
    sign_in(web, StaffLogin("admin@example.com", PASSWORD, Role.ADMIN))
    urls = staff_pages(app, ids, committed) + staff_downloads(staff_app(app), ids)
    html = {
        url: web.get(url).text
        for url in urls
        if "/export/" not in url and "/csv/" not in url and "/qr" not in url
    }
    for code in (ids.issued, ids.order, ids.order[:10]):
        html[f"/{code}"] = web.get(f"/{code}").text
    html[f"/{ids.order}/accepted"] = web.get(f"/{ids.order}/accepted").text
    with Session(committed) as session:
        for offer_id in (ids.draft, ids.issued, ids.order):
            offer = offers_service.get_offer(session, offer_id)
            html[f"PDF of {offer_id}"] = quotation_html(
                offer, settings=get_settings(), today=date.today()
            )
        for mail in session.exec(select(MailOutbox)):
            message = email.message_from_bytes(mail.message, policy=default)
            body = message.get_body(("html",))
            assert body is not None
            html[f"mail {mail.subject}"] = body.get_content()

    shown = [
        url
        for url, page in html.items()
        if "&lt;b id=&#34;xss&#34;&gt;" in page or "&lt;b id=&quot;xss&quot;&gt;" in page
    ]
    assert len(shown) > 20  # the texts are there, escaped
    assert [url for url, page in html.items() if MARK in page] == []


def test_no_html_template_takes_macros_or_parts_from_a_text_template() -> None:
    """Jinja marks what a macro of an unescaped template (.txt) returns as safe when an HTML
    template calls it: a staff alert's HTML showed a company name's markup as markup."""
    uses = re.compile(r"\{%-?\s*(?:import|from|include)\s+[\"']([^\"']+)[\"']")
    mixed = [
        f"{path.relative_to(TEMPLATES_DIR)} -> {used}"
        for path in TEMPLATES_DIR.rglob("*.html")
        for used in uses.findall(path.read_text())
        if not used.endswith(".html")
    ]

    assert mixed == []
