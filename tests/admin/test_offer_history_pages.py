"""An offer's or order's staff page shows its newest 50 history entries, says how many older
ones there are and pages to them: an order updated for years loaded its whole history."""

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from app.auth.staff import Role
from app.config import get_settings
from app.db import utcnow
from app.tracking import service as tracking_service
from tests.admin.conftest import StaffLogin, sign_in
from tests.factories import make_offer
from tests.plans import bulk_insert


def _with_notes(db: Session, count: int, *, order: bool = False) -> str:
    """An offer (an order) whose history holds its creation, newest, and ``count`` older notes
    ``Note 1`` (oldest) to ``Note <count>``."""
    offer = make_offer(db, get_settings(), issued=order)
    if order:
        tracking_service.activate_offer(db, offer.id, actor="tests", settings=get_settings())
    entry = {
        "occurred_at": ":at",
        "actor": "'staff:ana@example.com'",
        "action": "'offer.update'",
        "entity_type": "'offer'",
        "entity_id": ":offer",
        "offer_id": ":offer",
        "summary": "'Note ' || n",
    }
    engine = db.get_bind()
    assert isinstance(engine, Engine)
    with engine.begin() as connection:
        at = utcnow() - timedelta(days=1)
        bulk_insert(connection, "audit_log", count, entry, offer=offer.id, at=at)
    return offer.id


def _notes(page: str) -> list[int]:
    history = page[page.index('id="history"') : page.index("</table>", page.index('id="history"'))]
    return [int(n) for n in re.findall(r"Note (\d+)</td>", history)]


def test_an_offers_page_shows_the_newest_fifty_entries_and_pages_to_the_older(
    web: TestClient, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    offer_id = _with_notes(db, 120)
    sign_in(web, make_staff(Role.VIEWER))
    url = f"/admin/offer/details/{offer_id}"

    first = web.get(url).text
    assert "Created draft offer" in first
    assert _notes(first) == list(range(120, 71, -1))  # 49 notes and the creation: 50
    assert "71 older entries not shown." in first and "Newer entries" not in first
    older = re.search(r'href="([^"]*history_page=2[^"]*)"', first)
    assert older and ">Older entries</a>" in first

    second = web.get(older.group(1).replace("&amp;", "&")).text
    assert _notes(second) == list(range(71, 21, -1))
    assert "21 older entries not shown." in second and "Created draft offer" not in second

    last = web.get(url, params={"history_page": "3"}).text
    assert _notes(last) == list(range(21, 0, -1))
    assert "older entr" not in last and "Newer entries" in last


@pytest.mark.parametrize("typed", ["999999", "0", "two", "-1"])
def test_a_page_past_the_last_or_no_page_at_all_shows_a_page_that_is_there(
    web: TestClient, make_staff: Callable[..., StaffLogin], db: Session, typed: str
) -> None:
    offer_id = _with_notes(db, 60)
    sign_in(web, make_staff(Role.VIEWER))

    page = web.get(f"/admin/offer/details/{offer_id}", params={"history_page": typed})

    assert page.status_code == 200
    expected = list(range(11, 0, -1)) if typed == "999999" else list(range(60, 11, -1))
    assert _notes(page.text) == expected


def test_an_orders_page_pages_its_history_too(
    web: TestClient, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    order_id = _with_notes(db, 70, order=True)
    sign_in(web, make_staff(Role.SALES))

    page = web.get(f"/admin/order/details/{order_id}").text

    assert len(_notes(page)) == 50 - 3  # created, issued and activated are the newest three
    assert "23 older entries not shown." in page
