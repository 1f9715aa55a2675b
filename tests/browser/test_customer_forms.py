"""The customer's forms on a phone, as a person meets them: the e-mail fields look and fit like
the other fields, and a refused answer to a long offer brings the person back to the field to
correct, not to the top of the page."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine
from sqlmodel import Session

from app.config import get_settings
from app.offers import service as offers_service
from app.tracking import service as tracking_service
from app.tracking.schemas import StageUpdateCreate
from tests.browser.conftest import PHONE_390
from tests.factories import line_data, make_offer

pytestmark = [pytest.mark.browser, pytest.mark.concurrency]
# Long enough that the decision forms sit several screens below the top.
MANY_LINES = [line_data(description=f"Spare part kit {n:02d}", quantity="1") for n in range(30)]


@pytest.fixture
def phone390(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(**PHONE_390)
    page = context.new_page()
    yield page
    context.close()


def _in_view(page: Page, selector: str) -> bool:
    return bool(
        page.evaluate(
            """s => { const r = document.querySelector(s).getBoundingClientRect();
                      return r.top >= 0 && r.bottom <= innerHeight; }""",
            selector,
        )
    )


def test_the_email_fields_are_as_wide_and_as_legible_as_the_others(
    committed: Engine, live_server: str, phone390: Page
) -> None:
    settings = get_settings()
    with Session(committed, expire_on_commit=False) as session:
        order = make_offer(session, settings, issued=True)
        tracking_service.activate_offer(session, order.id, actor="tests", settings=settings)

    # The order's page by its full ULID has both "Get updates by e-mail" and "Ask a question".
    phone390.goto(f"{live_server}/{order.id}")
    fields = phone390.locator("input[type=email]")
    expect(fields).to_have_count(2)
    question = phone390.locator("#question-message")
    for index in range(2):
        field = fields.nth(index)
        box, form = field.bounding_box(), field.locator("xpath=..").bounding_box()
        assert box and form
        # As wide as the form, like the question's text area below it (not a browser's
        # default 150 px box), and in the page's type: a field under 16 px makes a phone's
        # browser zoom in when it is tapped.
        assert box["width"] == pytest.approx(form["width"], abs=1)
        assert box["height"] >= 40
        font = field.evaluate("e => getComputedStyle(e).fontSize")
        assert font == question.evaluate("e => getComputedStyle(e).fontSize") == "16px"


def test_a_refused_answer_brings_the_customer_to_the_field_to_correct(
    committed: Engine, live_server: str, phone390: Page
) -> None:
    settings = get_settings()
    with Session(committed, expire_on_commit=False) as session:
        offer = make_offer(session, settings, issued=True, lines=MANY_LINES)

    phone390.goto(f"{live_server}/{offer.id}")
    phone390.get_by_label("Your name").fill("Maria Papadopoulou")
    phone390.get_by_role("button", name="Accept offer").click()  # the checkbox forgotten

    # The page comes back with the error beside the checkbox, which is focused and on screen.
    terms = phone390.get_by_role("checkbox", name="I accept this offer and its conditions")
    expect(terms).to_be_focused()
    assert _in_view(phone390, "#accept_terms")
    assert _in_view(phone390, "#accept_terms-error")
    expect(phone390.get_by_label("Your name")).to_have_value("Maria Papadopoulou")

    phone390.get_by_text("Decline this offer").click()
    phone390.get_by_role("button", name="Decline offer").click()  # no reason given
    expect(phone390.get_by_label("Why are you declining?")).to_be_focused()
    assert _in_view(phone390, "#reason-error")


def test_a_long_po_number_and_name_fit_a_phone(
    committed: Engine, live_server: str, phone390: Page
) -> None:
    # A PO number is often one unbroken string of up to 100 characters, a signer's name may be
    # a long double-barrelled one, and a stage update's note may hold a long link: a phone
    # zoomed the whole page out to fit them.
    settings = get_settings()
    with Session(committed, expire_on_commit=False) as session:
        offer = make_offer(session, settings, issued=True)
        offers_service.accept_offer(
            session,
            offer.id,
            signer_name="Maximiliane-Alexandrine Wolkenstein-Trostburg-Hohenzollern",
            po_number="PO-" + "1234567890" * 9,
            settings=settings,
        )
        tracking_service.activate_offer(session, offer.id, actor="tests", settings=settings)
        note = "Photos: https://files.example.com/" + "production-line-3-pump-housing" * 3
        update = StageUpdateCreate(stage="In production", public_note=note)
        tracking_service.add_stage_update(
            session, offer.id, update, actor="tests", settings=settings
        )

    for path in (f"/{offer.id}/accepted", f"/{offer.id}"):
        phone390.goto(f"{live_server}{path}")
        expect(phone390.get_by_text("PO-1234567890", exact=False).first).to_be_visible()
        width = phone390.evaluate("document.documentElement.scrollWidth")
        assert width == 390, f"{path} is {width} px wide on a 390 px phone"
