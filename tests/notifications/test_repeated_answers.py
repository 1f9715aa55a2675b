"""A customer's double tap on "Accept" or "Decline" (or the form sent again on a slow network)
shows the same confirmation as the first tap and tells the owner once; a different answer to an
offer already answered is refused on the offer's page, in words, never as a bare error page."""

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from app.audit import AuditLogEntry
from app.auth.staff import Role, StaffUser
from app.config import Settings
from app.offers import service as offers_service
from app.offers.models import Offer, OfferStatus
from tests.factories import make_offer
from tests.notifications.conftest import Inbox, run_worker

pytestmark = pytest.mark.concurrency
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
OWNER = "ana@acme.example"
ACCEPT = {"signer_name": "Maria Papadopoulou", "po_number": "PO-77", "accept_terms": "yes"}
ALREADY_ACCEPTED = "This offer has already been accepted (see below). Your answer was not saved"


def _offer(engine: Engine, settings: Settings) -> Offer:
    with Session(engine, expire_on_commit=False) as session:
        owner = StaffUser(email=OWNER, role=Role.SALES, password_hash="-")
        session.add(owner)
        session.flush()
        offer = make_offer(session, settings, issued=True, company="Acme Hellas")
        offer.owner_id = owner.id
        session.add(offer)
        session.commit()
        return offer


def _answer(web: TestClient, offer: Offer, action: str, form: dict[str, str]) -> Response:
    """The form as the page served it: both taps carry the token of the same page."""
    token = CSRF.search(web.get(f"/{offer.id}").text)
    assert token, "the offer page has no form"
    return _send(web, offer, action, form, token.group(1))


def _send(web: TestClient, offer: Offer, action: str, form: dict[str, str], token: str) -> Response:
    return web.post(f"/{offer.id}/{action}?lang=en", data={**form, "csrf_token": token})


def _history(engine: Engine, offer: Offer, action: str) -> int:
    with Session(engine) as session:
        query = select(func.count()).where(
            AuditLogEntry.offer_id == offer.id, AuditLogEntry.action == f"offer.{action}"
        )
        return session.exec(query).one()


def _alerts(inbox: Inbox, words: str) -> int:
    return sum(words in m["Subject"] for m in inbox.to(OWNER))


def test_a_double_tap_on_accept_shows_the_confirmation_twice_and_tells_the_owner_once(
    web: TestClient, committed: Engine, settings: Settings, mail_settings: Settings, inbox: Inbox
) -> None:
    offer = _offer(committed, settings)
    token = CSRF.search(web.get(f"/{offer.id}").text)
    assert token

    first, second = (_send(web, offer, "accept", ACCEPT, token.group(1)) for _ in range(2))
    run_worker(committed, mail_settings)

    assert [first.status_code, second.status_code] == [200, 200]
    assert first.url == second.url and str(second.url).startswith(
        f"{web.base_url}/{offer.id}/accepted"
    )
    assert "That did not work" not in second.text and "PO-77" in second.text
    assert _history(committed, offer, "accept") == 1
    assert _alerts(inbox, "accepted offer") == 1


def test_a_double_tap_on_decline_is_declined_and_told_once(
    web: TestClient, committed: Engine, settings: Settings, mail_settings: Settings, inbox: Inbox
) -> None:
    offer = _offer(committed, settings)
    reason = {"reason": "Too expensive for us"}

    first = _answer(web, offer, "decline", reason)
    second = _answer(web, offer, "decline", reason)
    run_worker(committed, mail_settings)

    assert [first.status_code, second.status_code] == [200, 200]
    assert first.url == second.url and str(second.url).startswith(
        f"{web.base_url}/{offer.id}/declined"
    )
    assert "you declined offer" in second.text and "Too expensive for us" in second.text
    assert "Your answer was not saved" not in second.text
    assert _history(committed, offer, "decline") == 1
    assert _alerts(inbox, "declined offer") == 1


@pytest.mark.parametrize(
    ("action", "form"),
    [
        ("accept", {**ACCEPT, "po_number": "PO-78"}),  # another PO number
        ("accept", {**ACCEPT, "signer_name": "Nikos Georgiou"}),  # a colleague, too late
        ("decline", {"reason": "We changed our minds"}),
    ],
)
def test_another_answer_after_accepting_is_refused_on_the_offer_page(
    web: TestClient, committed: Engine, settings: Settings, action: str, form: dict[str, str]
) -> None:
    offer = _offer(committed, settings)
    _answer(web, offer, "accept", ACCEPT)

    refused = _answer(web, offer, action, form)

    assert refused.status_code == 409
    assert ALREADY_ACCEPTED in refused.text
    assert "That did not work" not in refused.text
    assert "Maria Papadopoulou" in refused.text and "PO PO-77" in refused.text  # as it stands
    with Session(committed) as session:
        stored = session.get(Offer, offer.id)
        assert stored is not None
        assert (stored.status, stored.accepted_po_number) == (OfferStatus.ACCEPTED, "PO-77")
    assert _history(committed, offer, "accept") == 1
    assert _history(committed, offer, "decline") == 0


def test_accepting_after_declining_is_refused_in_the_pages_language(
    web: TestClient, committed: Engine, settings: Settings
) -> None:
    offer = _offer(committed, settings)
    _answer(web, offer, "decline", {"reason": "Too expensive for us"})

    token = CSRF.search(web.get(f"/{offer.id}").text)
    assert token
    refused = web.post(f"/{offer.id}/accept?lang=de", data={**ACCEPT, "csrf_token": token.group(1)})

    assert refused.status_code == 409
    assert "Dieses Angebot wurde bereits abgelehnt." in refused.text
    assert _history(committed, offer, "accept") == 0


def test_a_mistyped_answer_to_an_offer_answered_meanwhile_says_it_was_answered(
    web: TestClient, committed: Engine, settings: Settings
) -> None:
    """The page shows no form to put the field's error beside any more: it said nothing at
    all (a 422 without a message), where "already declined" is what the customer needs."""
    offer = _offer(committed, settings)
    _answer(web, offer, "decline", {"reason": "Too expensive for us"})

    refused = _answer(web, offer, "decline", {"reason": "x" * 6000})
    unsigned = _answer(web, offer, "accept", {"signer_name": "", "po_number": "PO-1"})

    for answer in (refused, unsigned):
        assert answer.status_code == 409
        assert "This offer has already been declined." in answer.text
    assert _history(committed, offer, "decline") == 1


def test_the_same_answer_after_the_window_is_no_repeat(
    web: TestClient, committed: Engine, settings: Settings
) -> None:
    offer = _offer(committed, settings)
    _answer(web, offer, "accept", ACCEPT)
    with Session(committed) as session:  # the first tap two minutes ago
        stored = session.get(Offer, offer.id)
        assert stored is not None and stored.accepted_at is not None
        stored.accepted_at -= timedelta(minutes=2)
        session.add(stored)
        session.commit()

    again = _answer(web, offer, "accept", ACCEPT)

    assert again.status_code == 409 and ALREADY_ACCEPTED in again.text


def test_two_copies_of_one_acceptance_at_the_same_moment_are_recorded_once(
    committed: Engine, settings: Settings
) -> None:
    # Without JavaScript a double tap sends both copies at once: the second waits for the
    # first's lock (SQLite: its one writer), then finds its own answer there.
    offer = _offer(committed, settings)
    both_ready = threading.Barrier(2)

    def accept() -> OfferStatus:
        with Session(committed) as session:
            both_ready.wait(5)
            accepted = offers_service.accept_offer(
                session, offer.id, signer_name="Maria", po_number="PO-77", settings=settings
            )
            return accepted.status

    with ThreadPoolExecutor(2) as pool:
        answers = [pool.submit(accept) for _ in range(2)]
        statuses = [answer.result(timeout=30) for answer in answers]

    assert statuses == [OfferStatus.ACCEPTED, OfferStatus.ACCEPTED]
    assert _history(committed, offer, "accept") == 1
