"""The offer's buttons on the staff site (activate, issue, revise): where each one leads and
what it says, done or refused."""

import html
import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.auth.staff import Role
from app.config import get_settings
from app.offers.ids import hyphenate_tracking_id
from app.offers.models import Offer, OfferStatus
from tests.factories import make_offer

pytestmark = pytest.mark.concurrency


FLASH = re.compile(r'<div class="alert alert-(\w+)">(.*?)</div>', re.DOTALL)


def _press(web: TestClient, token: str, offer_id: str, action: str) -> tuple[str, list[str]]:
    """Press the button; where it leads, and the messages shown there ("level: text")."""
    response = web.post(
        f"/admin/offers/{offer_id}/{action}", data={"csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 303
    location = response.headers["location"]
    page = web.get(location).text
    shown = [f"{level}: {_text(body)}" for level, body in FLASH.findall(page)]
    return location.removeprefix(str(web.base_url).rstrip("/")), shown


def _text(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", fragment)).split())


def _status(db: Session, offer_id: str) -> OfferStatus:
    db.expire_all()
    offer = db.get(Offer, offer_id)
    assert offer is not None
    return offer.status


def test_activating_leads_to_the_order_and_names_its_tracking_id(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    offer = make_offer(db, get_settings(), issued=True)

    where, said = _press(web, as_role(Role.SALES), offer.id, "activate")

    assert where == f"/admin/order/details/{offer.id}"
    tracking_id = hyphenate_tracking_id(offer.tracking_id)
    assert said == [f"success: Order {tracking_id} is active: its tracking ID opens it."]
    assert _status(db, offer.id) == OfferStatus.ORDERED


def test_issuing_stays_on_the_offer_and_says_it_is_final(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    draft = make_offer(db, get_settings())

    where, said = _press(web, as_role(Role.SALES), draft.id, "issue")

    assert where == f"/admin/offer/details/{draft.id}"
    assert said == ["success: The offer is issued: its PDF and QR code are final."]
    assert _status(db, draft.id) == OfferStatus.ISSUED


def test_revising_leads_to_the_new_draft(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    offer = make_offer(db, get_settings(), issued=True)

    where, said = _press(web, as_role(Role.SALES), offer.id, "revise")

    revision = db.exec(select(Offer).where(col(Offer.supersedes_id) == offer.id)).one()
    assert where == f"/admin/offer/details/{revision.id}"
    assert said == [
        f"success: Revision {revision.id} created as a draft; the old offer is superseded."
    ]
    assert _status(db, offer.id) == OfferStatus.SUPERSEDED


@pytest.mark.parametrize(
    ("issued", "action", "title"),
    [
        (False, "activate", "Not activated"),
        (True, "issue", "Not issued"),
        (False, "revise", "Not revised"),
    ],
)
def test_a_refused_action_says_why_on_the_unchanged_offer(
    web: TestClient,
    as_role: Callable[[Role], str],
    db: Session,
    issued: bool,
    action: str,
    title: str,
) -> None:
    offer = make_offer(db, get_settings(), issued=issued)
    before = offer.status

    where, said = _press(web, as_role(Role.SALES), offer.id, action)

    assert where == f"/admin/offer/details/{offer.id}"
    assert len(said) == 1
    assert said[0].startswith(f"danger: {title}: Cannot {action} offer {offer.id}: it is {before};")
    assert _status(db, offer.id) == before


def test_the_tracking_id_in_a_flash_message_is_kept_on_one_line(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    """On a phone "Order 01H0W-" ended one line and "ARY2W is active" began the next."""
    offer = make_offer(db, get_settings(), issued=True)
    token = as_role(Role.SALES)

    web.post(
        f"/admin/offers/{offer.id}/activate", data={"csrf_token": token}, follow_redirects=False
    )
    page = web.get(f"/admin/order/details/{offer.id}").text

    code = hyphenate_tracking_id(offer.tracking_id)
    assert f'Order <span class="tracking-id">{code}</span> is active' in page


def test_markup_in_a_flash_message_stays_text_beside_a_kept_tracking_id(
    web: TestClient, as_role: Callable[[Role], str]
) -> None:
    """A customer's company name is flashed as typed: its markup must stay text, a code-like
    part of it included."""
    token = as_role(Role.SALES)
    company = 'Tom & <b onmouseover="x()">Co</b> ABCDE-FGHJK'

    saved = web.post(
        "/admin/customers/new",
        data={"csrf_token": token, "company": company, "email": "t@tom.example", "language": "en"},
        follow_redirects=False,
    )
    page = web.get(saved.headers["location"]).text

    shown = [(level, body.strip()) for level, body in FLASH.findall(page)]
    assert shown == [
        (
            "success",
            "Customer Tom &amp; &lt;b onmouseover=&#34;x()&#34;&gt;Co&lt;/b&gt; "
            '<span class="tracking-id">ABCDE-FGHJK</span> saved.',
        )
    ]
    assert "<b " not in page
