"""A procurement officer on a phone (390 x 844) in German: asks a question, takes it back,
and asks so often that the form's limit is reached, without losing what they typed.

A server of its own: reaching the limit spends this client's budget of the public forms, which
the shared live server's other tests need."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from app.config import get_settings
from app.notifications import subscriptions
from app.notifications.models import CustomerQuestion, OrderSubscription
from app.tracking import service as tracking_service
from tests.browser.staffpages import problems
from tests.conftest import _free_port, serving
from tests.factories import make_offer

pytestmark = [pytest.mark.browser, pytest.mark.concurrency]
PHONE_390 = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def own_server(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "OFFERTRACK_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "OFFERTRACK_SCAN_FEED": "false",
    }
    log = Path(tmp_path_factory.mktemp("procurement")) / "server.log"
    with serving(env, port, log) as base_url:
        yield base_url


@pytest.fixture
def german_phone(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(
        viewport=PHONE_390,  # type: ignore[arg-type]
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="de-DE",
        bypass_csp=True,  # for axe only: see staffpages
    )
    yield context.new_page()
    context.close()


def _questions(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.execute(select(func.count()).select_from(CustomerQuestion)).scalar_one())


def _ask(page: Page, message: str) -> None:
    form = page.get_by_role("region", name="Eine Frage stellen")
    form.get_by_label("Ihre E-Mail-Adresse").fill("einkauf@mueller.example")
    form.get_by_label("Ihre Frage").fill(message)
    form.get_by_role("button", name="Frage senden").click()


def test_a_question_taken_back_then_the_limit_keeps_what_was_typed(
    committed: Engine, own_server: str, german_phone: Page
) -> None:
    with Session(committed, expire_on_commit=False) as session:
        offer = make_offer(session, get_settings(), issued=True, language="de")
    page, found = german_phone, []

    page.goto(f"{own_server}/{offer.id}")
    _ask(page, "Ist die Montage im Preis enthalten?")
    expect(page.get_by_role("heading", name="Ihre Frage ist unterwegs")).to_be_visible()
    found += problems(page)
    page.get_by_role("button", name="Meine Nachricht löschen").click()
    expect(page.get_by_role("heading", name="Ihre Nachricht ist gelöscht")).to_be_visible()
    found += problems(page)
    assert _questions(committed) == 0

    for n in range(4):  # the rest of this client's five attempts in ten minutes
        page.goto(f"{own_server}/{offer.id}")
        _ask(page, f"Frage {n}")
        expect(page.get_by_role("heading", name="Ihre Frage ist unterwegs")).to_be_visible()
    typed = "Lieferzeit für 40 Stück?\nBitte mit Staffelpreisen ab 100 Stück."
    page.goto(f"{own_server}/{offer.id}")
    _ask(page, typed)

    notice = page.get_by_role("alert")
    expect(notice).to_contain_text("Zu viele Versuche")
    expect(notice).to_contain_text("Bitte warten Sie 10 Minuten")
    expect(notice).to_be_in_viewport()  # on the phone's first screen, above the form
    expect(page.get_by_label("Ihre Frage")).to_have_value(typed)
    expect(page.get_by_label("Ihre E-Mail-Adresse")).to_have_value("einkauf@mueller.example")
    expect(page.locator("html")).to_have_attribute("lang", "de")
    found += problems(page)
    assert _questions(committed) == 4
    assert not found, "\n".join(found)


def test_the_tracking_id_in_a_sentence_is_never_split_across_lines(
    committed: Engine, own_server: str, german_phone: Page
) -> None:
    # "... zu Auftrag 01M98-ZA" / "RS9 zu erhalten" on the confirmation page at 390 px.
    settings = get_settings()
    with Session(committed, expire_on_commit=False) as session:
        offer = make_offer(session, settings, issued=True, language="de")
        tracking_service.activate_offer(session, offer.id, actor="tests", settings=settings)
        pending = OrderSubscription(offer_id=offer.id, email="einkauf@mueller.example")
        session.add(pending)
        session.commit()
        assert pending.id is not None
        token = subscriptions.confirm_token(pending.id, settings)

    german_phone.goto(f"{own_server}/updates/confirm/{token}")
    expect(german_phone.get_by_role("button", name="Bestätigen")).to_be_visible()
    codes = german_phone.locator("main span.mono")

    assert codes.count() >= 1
    lines = codes.evaluate_all("spans => spans.map(s => s.getClientRects().length)")
    assert lines == [1] * codes.count()
    assert problems(german_phone) == []
