"""The public forms' budgets: subscribing and asking are limited per client and per order.

Each visitor here is a client of its own address (Starlette's test client can be told its
peer), so the per-order budget is seen apart from the per-client one.
"""

import re
from collections.abc import Callable
from html import unescape as html_unescape

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from app.config import Settings
from app.notifications.models import CustomerQuestion, OrderSubscription
from app.notifications.router import FormLimits, TooManyRequests
from app.offers.ids import hyphenate_tracking_id
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


def test_a_customer_who_mistypes_keeps_the_budget_for_the_form_sent_right(
    app: FastAPI, visitor: Visitor, committed: Engine, settings: Settings
) -> None:
    # Every refused form counted against the five a client may send: a customer who mistyped
    # the address twice (and a question or two) met "Too many attempts" on the good one.
    app.state.notification_limits = FormLimits(per_client=2, refused_per_client=10, per_order=100)
    order = _order(committed, settings)
    browser = visitor("198.51.100.60")

    mistakes = [_post(browser, order.id, "subscribe", email="maria@example") for _ in range(2)]
    mistakes.append(_post(browser, order.id, "question", email="maria@example.com", message=""))
    sent = [
        _post(browser, order.id, "subscribe", email="maria@example.com"),
        _post(browser, order.id, "question", email="maria@example.com", message="In May?"),
        _post(browser, order.id, "question", email="maria@example.com", message="In June?"),
    ]

    assert mistakes == [422, 422, 422]
    assert sent == [200, 200, 429]  # the budget still counts what is sent and kept
    assert _count(committed, OrderSubscription) == 1
    assert _count(committed, CustomerQuestion) == 1


def test_refused_forms_have_a_cap_of_their_own(
    app: FastAPI, visitor: Visitor, committed: Engine, settings: Settings
) -> None:
    # Not charging mistakes must not make a flood of bad forms free.
    app.state.notification_limits = FormLimits(per_client=2, refused_per_client=3, per_order=100)
    order = _order(committed, settings)
    flooder = visitor("198.51.100.61")

    answers = [_post(flooder, order.id, "subscribe", email="x@") for _ in range(4)]
    good_after = _post(flooder, order.id, "subscribe", email="x@example.com")

    assert answers == [422, 422, 422, 429]
    assert good_after == 429  # over either budget, the client waits
    assert _post(visitor("198.51.100.62"), order.id, "subscribe", email="y@example.com") == 200


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


def _form_page(browser: TestClient, code: str, **headers: str) -> tuple[str, str]:
    """The page's CSRF token and the language the page says it is in (the forms send it)."""
    html = browser.get(f"/{code}", headers=headers).text
    token, page_lang = CSRF.search(html), re.search(r'name="page_lang" value="(\w+)"', html)
    assert token and page_lang
    return token.group(1), page_lang.group(1)


def _field_value(html: str, name: str) -> str:
    found = re.search(rf'<input[^>]*name="{name}"[^>]*value="([^"]*)"', html)
    assert found, f"no {name} field"
    return found.group(1)


def _textarea(html: str, name: str) -> str:
    found = re.search(rf'<textarea[^>]*name="{name}"[^>]*>([^<]*)</textarea>', html)
    assert found, f"no {name} text area"
    return found.group(1)


def test_a_question_over_the_limit_comes_back_as_typed_with_when_to_send_it(
    app: FastAPI, visitor: Visitor, committed: Engine, settings: Settings
) -> None:
    # A Greek buyer who typed a long question and hit the limit lost it to a bare error page.
    app.state.notification_limits = FormLimits(per_client=1, per_order=100)
    with Session(committed, expire_on_commit=False) as session:
        offer = make_offer(session, settings, issued=True, language="el")
    browser = visitor("198.51.100.61")
    token, page_lang = _form_page(browser, offer.id, **{"Accept-Language": "el-GR"})
    first = {"email": "maria@example.com", "message": "Παράδοση τον Μάιο;"}
    browser.post(f"/{offer.id}/question", data={**first, "csrf_token": token})
    typed = {"email": "maria@example.com", "message": "Και η εγκατάσταση <μέσα>; & ΦΠΑ;"}

    limited = browser.post(
        f"/{offer.id}/question", data={**typed, "csrf_token": token, "page_lang": page_lang}
    )

    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    html = limited.text
    assert '<html lang="el">' in html
    assert html_unescape(_textarea(html, "message")) == typed["message"]
    assert _field_value(html, "email") == typed["email"]
    notice = re.search(r'<p class="form-limited" role="alert"[^>]*>([^<]*)</p>', html)
    assert notice, "no message beside the form"
    # In minutes: a clock time would be the shop's, an hour off for a customer in Athens.
    assert "Περιμένετε 10 λεπτά και στείλτε ξανά" in notice.group(1)
    assert not re.search(r"\d\d:\d\d", notice.group(1))
    assert "Too many" not in html and "Please wait" not in html
    assert html.index("form-limited") < html.index('name="message"')  # read before the form
    assert _count(committed, CustomerQuestion) == 1  # the first one only


def test_a_subscription_over_the_limit_keeps_the_address_in_the_pages_language(
    app: FastAPI, visitor: Visitor, committed: Engine, settings: Settings
) -> None:
    """The order's own budget: the page speaks the offer's German as the order page did,
    although the browser prefers English, and says how long to wait."""
    app.state.notification_limits = FormLimits(per_client=100, per_order=1)
    order = _order(committed, settings)
    with Session(committed) as session:
        row = session.get(Offer, order.id)
        assert row
        row.language = "de"
        session.add(row)
        session.commit()
    reads_both = {"Accept-Language": "en-US,en;q=0.9,de;q=0.5"}
    first = visitor("198.51.100.62")
    token, _ = _form_page(first, order.tracking_id, **reads_both)
    first.post(
        f"/{order.tracking_id}/subscribe", data={"email": "a@example.com", "csrf_token": token}
    )
    browser = visitor("198.51.100.63")
    token, page_lang = _form_page(browser, order.tracking_id, **reads_both)
    assert page_lang == "de"

    limited = browser.post(
        f"/{order.tracking_id}/subscribe",
        data={"email": "jonas.mueller@example.com", "csrf_token": token, "page_lang": page_lang},
        headers=reads_both,
    )

    assert limited.status_code == 429
    assert '<html lang="de">' in limited.text
    assert _field_value(limited.text, "email") == "jonas.mueller@example.com"
    assert "Bitte warten Sie 10 Minuten und senden" in limited.text
    assert "Benachrichtigungen erhalten</button>" in limited.text  # the form, to send again
    assert _count(committed, OrderSubscription) == 1


def test_a_client_over_its_budget_learns_nothing_about_the_code(
    app: FastAPI, visitor: Visitor, committed: Engine, settings: Settings
) -> None:
    """Over the per-client budget nothing is looked up: a known and an unknown order's code
    get the same page, so the form is no way around the tracking page's miss limit."""
    app.state.notification_limits = FormLimits(per_client=1, per_order=100)
    order = _order(committed, settings)
    browser = visitor("198.51.100.64")
    token, _ = _form_page(browser, order.tracking_id)
    browser.post(
        f"/{order.tracking_id}/subscribe", data={"email": "a@example.com", "csrf_token": token}
    )
    codes = (order.tracking_id, "01ZZZZZZZZ")

    pages = [
        browser.post(f"/{code}/subscribe", data={"email": "b@example.com", "csrf_token": token})
        for code in codes
    ]

    assert [page.status_code for page in pages] == [429, 429]
    known, other = (_without(page.text, code) for page, code in zip(pages, codes, strict=True))
    assert known == other


def _without(html: str, code: str) -> str:
    """The page as any code would show it: the code and the CSRF token left out."""
    for spelling in (code, hyphenate_tracking_id(code)):
        html = html.replace(spelling, "CODE")
    return CSRF.sub("", html)
