"""The public forms' budgets: subscribing and asking are limited per client and per order.

Each visitor here is a client of its own address (Starlette's test client can be told its
peer), so the per-order budget is seen apart from the per-client one.
"""

import re
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from app.config import Settings
from app.notifications.models import CustomerQuestion, OrderSubscription
from app.notifications.router import FormLimits, TooManyRequests
from app.offers.models import Offer
from app.tracking import service as tracking_service
from tests.factories import make_offer

pytestmark = pytest.mark.concurrency
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
Visitor = Callable[[str], TestClient]


@pytest.fixture
def visitor(app: FastAPI, web: TestClient) -> Visitor:
    """A browser at ``address`` (the app as the ``web`` fixture left it)."""

    def at(address: str) -> TestClient:
        return TestClient(app, base_url="https://track.example.com", client=(address, 50000))

    return at


def _order(engine: Engine, settings: Settings) -> Offer:
    with Session(engine, expire_on_commit=False) as session:
        offer = make_offer(session, settings, issued=True)
        return tracking_service.activate_offer(session, offer.id, actor="tests", settings=settings)


def _post(browser: TestClient, code: str, action: str, **form: str) -> int:
    token = CSRF.search(browser.get(f"/{code}").text)
    assert token, "the page has no form"
    response = browser.post(f"/{code}/{action}", data={**form, "csrf_token": token.group(1)})
    if response.status_code == 429:
        assert int(response.headers["Retry-After"]) > 0
        assert "Please wait" in response.text
    return response.status_code


def _count(engine: Engine, table: type) -> int:
    with Session(engine) as session:
        return int(session.execute(select(func.count()).select_from(table)).scalar_one())


def test_subscribing_to_one_order_is_limited_whoever_asks(
    app: FastAPI, visitor: Visitor, committed: Engine, settings: Settings
) -> None:
    app.state.notification_limits = FormLimits(per_client=100, per_order=3)
    order, other = _order(committed, settings), _order(committed, settings)

    answers = [
        _post(visitor(f"198.51.100.{n}"), order.tracking_id, "subscribe", email=f"p{n}@example.com")
        for n in range(4)
    ]
    elsewhere = _post(visitor("198.51.100.9"), other.id, "subscribe", email="q@example.com")

    assert answers == [200, 200, 200, 429]
    assert elsewhere == 200  # another order has its own budget
    assert _count(committed, OrderSubscription) == 4


def test_an_ipv6_client_is_one_client_across_its_64(
    app: FastAPI, visitor: Visitor, committed: Engine, settings: Settings
) -> None:
    """One subscriber holds a whole /64: counting each address apart would be no limit."""
    app.state.notification_limits = FormLimits(per_client=5, per_order=100)
    order = _order(committed, settings)

    answers = [
        _post(visitor(f"2001:db8:7:9::{n + 1:x}"), order.id, "subscribe", email=f"p{n}@example.com")
        for n in range(6)
    ]
    neighbour = _post(visitor("2001:db8:7:a::1"), order.id, "subscribe", email="n@example.com")

    assert answers == [200] * 5 + [429]
    assert neighbour == 200


def test_asking_questions_is_limited_per_client_and_per_offer(
    app: FastAPI, visitor: Visitor, committed: Engine, settings: Settings
) -> None:
    app.state.notification_limits = FormLimits(per_client=2, per_order=3)
    with Session(committed, expire_on_commit=False) as session:
        offer = make_offer(session, settings, issued=True)

    # Each a different question: the same one again within a minute is a repeat, kept once.
    def question(n: int) -> dict[str, str]:
        return {"email": "maria@example.com", "message": f"Delivery in May? ({n})"}

    one_client = visitor("203.0.113.5")
    by_one = [_post(one_client, offer.id, "question", **question(n)) for n in range(3)]
    by_others = [
        _post(visitor(f"203.0.113.{n}"), offer.id, "question", **question(n)) for n in (6, 7)
    ]

    assert by_one == [200, 200, 429]
    assert by_others == [200, 429]  # the offer's third question, from anyone
    assert _count(committed, CustomerQuestion) == 3


def test_the_limit_is_told_in_the_pages_language_and_fits_the_form(
    app: FastAPI, visitor: Visitor, committed: Engine, settings: Settings
) -> None:
    # A German customer who hit the limit read "Too many requests for e-mail updates" in
    # English, and on asking a question, too.
    app.state.notification_limits = FormLimits(per_client=1, per_order=100)
    offer = _order(committed, settings)
    browser = visitor("198.51.100.40")
    browser.headers["Accept-Language"] = "de"
    token = CSRF.search(browser.get(f"/{offer.id}").text)
    assert token
    ask = {"email": "jonas@example.com", "csrf_token": token.group(1)}
    browser.post(f"/{offer.id}/question", data={**ask, "message": "Lieferung im Mai?"})

    limited = browser.post(f"/{offer.id}/question", data={**ask, "message": "Und im Juni?"})

    assert limited.status_code == 429
    assert '<html lang="de">' in limited.text
    assert "Zu viele Versuche" in limited.text and "Too many" not in limited.text
    assert "e-mail updates" not in TooManyRequests(60).detail
