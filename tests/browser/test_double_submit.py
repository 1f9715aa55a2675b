"""A double tap on a phone sends a form once: a staff stage update reaches the customer (and
their subscribers' inboxes) one time; the customer's answers, questions and subscriptions, and
the staff sign-in steps, are sent once (static/submit-once.js)."""

import contextlib
import time

import pyotp
import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, Page, Request, Route, expect
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from app.admin import twofactor, users
from app.auth.staff import Role
from app.config import get_settings
from app.offers.models import Offer
from app.tracking import service as tracking_service
from app.tracking.models import StageUpdate
from tests.factories import make_offer

pytestmark = [pytest.mark.browser, pytest.mark.concurrency]
PASSWORD = "correct horse battery"


def test_a_double_tap_on_add_stage_update_adds_one_update(
    committed: Engine, live_server: str, phone: Page
) -> None:
    settings = get_settings()
    with Session(committed, expire_on_commit=False) as session:
        offer = make_offer(session, settings, issued=True, company="Acme Hellas SA")
        tracking_service.activate_offer(session, offer.id, actor="tests", settings=settings)
        users.create_user(session, "sales@example.com", Role.SALES, PASSWORD, actor="tests")
    phone.goto(f"{live_server}/admin/")
    phone.get_by_label("E-mail").fill("sales@example.com")
    phone.get_by_label("Password").fill(PASSWORD)
    phone.get_by_role("button", name="Sign in").click()
    expect(phone.get_by_role("heading", name="Orders per stage")).to_be_visible()
    phone.goto(f"{live_server}/admin/orders/{offer.id}/stage-update")
    phone.get_by_label("Stage", exact=True).select_option(label="In production")
    phone.get_by_label("Public note").fill("Machining started on line 3")
    button = phone.get_by_role("button", name="Add stage update")
    posted = _tap_twice_on_a_slow_network(phone, button)

    expect(phone.get_by_text("Stage update “In production” added")).to_be_visible()
    assert len(posted) == 1
    with Session(committed) as session:
        added = session.exec(
            select(func.count()).where(
                StageUpdate.offer_id == offer.id, StageUpdate.stage_key != "confirmed"
            )
        ).one()
    assert added == 1


def _tap_twice_on_a_slow_network(
    page: Page, button: Locator, *, to_server: bool = True
) -> list[Request]:
    """Two taps on ``button``, the second while the answer to the first is still on its way
    (held back here, as on a slow network), then the answers let through: the form posts
    that left the page. ``to_server=False`` answers them here instead: the live server's
    budget of public forms a minute is shared by every browser test."""
    held: list[Route] = []

    def hold(route: Route) -> None:
        if route.request.method == "POST":
            held.append(route)
        else:
            route.continue_()

    page.route("**/*", hold)
    button.scroll_into_view_if_needed()
    box = button.bounding_box()
    assert box, "the button is not on the screen"
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.touchscreen.tap(x, y)
    page.wait_for_timeout(300)
    page.touchscreen.tap(x, y)
    page.wait_for_timeout(300)
    with page.expect_navigation():
        for route in held:
            with contextlib.suppress(PlaywrightError):  # a post the browser gave up on
                if to_server:
                    route.continue_()
                else:
                    route.fulfill(status=200, content_type="text/html", body="<p>Sent</p>")
    page.unroute("**/*")
    return [route.request for route in held]


def _fill_accept(page: Page) -> str:
    page.get_by_label("Your name").fill("Maria Papadopoulou")
    page.get_by_label("Purchase order number").fill("PO-77")
    page.get_by_label("I accept this offer and its conditions").check()
    return "Accept offer"


def _fill_decline(page: Page) -> str:
    page.get_by_text("Decline this offer").click()
    page.get_by_label("Why are you declining?").fill("Too expensive for us")
    return "Decline offer"


def _fill_question(page: Page) -> str:
    page.locator("#question-email").fill("maria@example.com")
    page.get_by_label("Your question").fill("Can you deliver in May?")
    return "Send question"


def _fill_subscribe(page: Page) -> str:
    page.locator("#subscribe-email").fill("maria@example.com")
    return "Get updates"


CUSTOMER_FORMS = {
    "accept": _fill_accept,
    "decline": _fill_decline,
    "question": _fill_question,
    "subscribe": _fill_subscribe,
}


@pytest.mark.parametrize("form", list(CUSTOMER_FORMS))
def test_a_double_tap_sends_each_customer_form_once(
    committed: Engine, live_server: str, phone: Page, form: str
) -> None:
    settings = get_settings()
    with Session(committed, expire_on_commit=False) as session:
        offer = make_offer(session, settings, issued=True, company="Acme Hellas SA")
        if form == "subscribe":  # only an order's page has "Get updates by e-mail"
            tracking_service.activate_offer(session, offer.id, actor="tests", settings=settings)
    phone.goto(f"{live_server}/{offer.id}?lang=en")
    button = phone.get_by_role("button", name=CUSTOMER_FORMS[form](phone))

    answered = form in ("accept", "decline")  # the others count against the shared budget
    posted = _tap_twice_on_a_slow_network(phone, button, to_server=answered)

    assert [r.url.split("?")[0].rsplit("/", 1)[1] for r in posted] == [form]
    if answered:
        with Session(committed) as session:
            stored = session.get(Offer, offer.id)
            assert stored is not None and stored.status == form.rstrip("e") + "ed"


def test_a_double_tap_on_sign_in_and_on_its_code_sends_each_once(
    committed: Engine, live_server: str, phone: Page
) -> None:
    # A code sent twice is spent by the first copy: the second would answer "wrong code" to
    # a person who had just signed in.
    with Session(committed, expire_on_commit=False) as session:
        user = users.create_user(session, "totp@example.com", Role.SALES, PASSWORD, actor="tests")
        staff = users.load_active(session, user.id or 0)
        assert staff is not None
        secret = twofactor.begin_enrolment(session, staff)
        twofactor.confirm_enrolment(session, staff, pyotp.TOTP(secret).now())
    phone.goto(f"{live_server}/admin/login")
    phone.get_by_label("E-mail").fill("totp@example.com")
    phone.get_by_label("Password").fill(PASSWORD)
    posted = _tap_twice_on_a_slow_network(phone, phone.get_by_role("button", name="Sign in"))
    phone.wait_for_url("**/admin/login/2fa")
    phone.get_by_label("Code").fill(_next_code(secret))
    posted += _tap_twice_on_a_slow_network(phone, phone.get_by_role("button", name="Sign in"))

    expect(phone.get_by_role("heading", name="Orders per stage")).to_be_visible()
    assert [r.url.rsplit("/admin/", 1)[1] for r in posted] == ["login", "login/2fa"]


def _next_code(secret: str) -> str:
    """A code not yet spent: enrolment took the current one."""
    totp = pyotp.TOTP(secret)
    return totp.at(time.time() + totp.interval)
