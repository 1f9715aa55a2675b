"""Staff alerts: the owner hears of the first scan of the day, answers and expiry, once."""

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, event, select
from sqlmodel import Session, col

from app.analytics import scanfeed, webhooks
from app.analytics.models import WebhookOutbox
from app.analytics.schemas import WebhookEndpointCreate
from app.auth.staff import Role, StaffUser
from app.config import Settings
from app.db import utcnow
from app.notifications import alerts, offer_mail
from app.notifications.alerts import AlertKind, AlertMode
from app.offers import service as offers_service
from app.offers.ids import hyphenate_tracking_id
from app.offers.models import Offer
from app.tracking.scanrows import insert_scans
from tests.factories import committed_scan, make_offer
from tests.notifications.conftest import Inbox, body_text, run_worker
from tests.plans import (
    assert_reads_at_most_with_and_without_statistics,
    bulk_insert,
    bulk_offers,
    captured,
    statistics_held,
)
from tests.tracking.test_pages import DESKTOP, GOOGLEBOT, IPHONE
from tests.tracking.test_retention import scan

pytestmark = pytest.mark.concurrency
OWNER = "ana@acme.example"


def _owner(engine: Engine, email: str = OWNER) -> int:
    with Session(engine) as session:
        user = StaffUser(email=email, full_name="Ana K.", role=Role.SALES, password_hash="-")
        session.add(user)
        session.commit()
        assert user.id is not None
        return user.id


def _offer(engine: Engine, settings: Settings, owner_id: int | None, **data: Any) -> Offer:
    with Session(engine, expire_on_commit=False) as session:
        offer = make_offer(session, settings, issued=True, company="Acme Hellas", **data)
        offer.owner_id = owner_id
        session.add(offer)
        session.commit()
        return offer


@contextmanager
def _statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements ``engine`` runs meanwhile in this thread (not the live app's
    workers and scan feed, which share the engine)."""
    statements: list[str] = []
    here = threading.get_ident()

    def count(*args: Any) -> None:
        if threading.get_ident() == here:
            statements.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_the_first_qr_scan_mails_the_owner_once_a_day_and_bots_never(
    committed: Engine, settings: Settings, mail_settings: Settings, inbox: Inbox
) -> None:
    offer = _offer(committed, settings, _owner(committed))
    shown = hyphenate_tracking_id(offer.tracking_id)

    committed_scan(committed, offer, is_bot=True)
    run_worker(committed, mail_settings)
    assert inbox.messages == []

    committed_scan(committed, offer)
    committed_scan(committed, offer, channel="web", device_class="desktop")  # the same day
    run_worker(committed, mail_settings)
    [alert] = inbox.to(OWNER)
    assert alert["Subject"].strip() == (
        f"The printed offer {shown} for Acme Hellas was just scanned with a phone"
    )
    assert "Hello Ana K.," in body_text(alert)

    committed_scan(
        committed, offer, at=utcnow() + timedelta(days=1), channel="pdf", device_class="desktop"
    )
    run_worker(committed, mail_settings)
    assert [m["Subject"].strip() for m in inbox.to(OWNER)][1] == (
        f"The PDF of offer {shown} for Acme Hellas was just opened on a computer"
    )


def test_an_offer_without_an_owner_alerts_the_sales_address(
    committed: Engine, settings: Settings, mail_settings: Settings, inbox: Inbox
) -> None:
    offer = _offer(committed, settings, None)

    committed_scan(committed, offer)
    run_worker(committed, mail_settings)

    assert len(inbox.to(settings.company_email)) == 1


def test_the_sales_address_stands_in_for_a_missing_or_departed_owner(
    committed: Engine,
    settings: Settings,
    mail_settings: Settings,
    inbox: Inbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings, "sales_email", "sales@acme.example")
    departed = _owner(committed, "gone@acme.example")
    with Session(committed) as session:
        user = session.get(StaffUser, departed)
        assert user is not None
        user.is_active = False
        session.add(user)
        session.commit()
    unowned, orphaned = _offer(committed, settings, None), _offer(committed, settings, departed)

    committed_scan(committed, unowned)
    committed_scan(committed, orphaned)
    run_worker(committed, mail_settings)

    assert len(inbox.to("sales@acme.example")) == 2
    assert inbox.to("gone@acme.example") == inbox.to(settings.company_email) == []


def test_answers_reach_the_owner_with_signer_po_and_reason(
    committed: Engine, settings: Settings, mail_settings: Settings, inbox: Inbox
) -> None:
    owner = _owner(committed)
    accepted, declined = (_offer(committed, settings, owner) for _ in range(2))
    with Session(committed) as session:
        offers_service.accept_offer(
            session, accepted.id, signer_name="Maria P.", po_number="PO-77", settings=settings
        )
        offers_service.decline_offer(
            session, declined.id, reason="Too expensive for us", settings=settings
        )
    run_worker(committed, mail_settings)

    by_subject = {m["Subject"].strip(): body_text(m) for m in inbox.to(OWNER)}
    accepted_text = by_subject[
        f"Acme Hellas accepted offer {hyphenate_tracking_id(accepted.tracking_id)}"
    ]
    assert "Signed by: Maria P." in accepted_text and "PO number: PO-77" in accepted_text
    declined_text = by_subject[
        f"Acme Hellas declined offer {hyphenate_tracking_id(declined.tracking_id)}"
    ]
    assert "Too expensive for us" in declined_text


def test_offers_about_to_expire_and_expired_without_an_answer_alert_once(
    committed: Engine, settings: Settings, mail_settings: Settings, inbox: Inbox
) -> None:
    owner = _owner(committed)
    today = offers_service.today(settings)
    soon = _offer(committed, settings, owner, valid_until=today + timedelta(days=3))
    later = _offer(committed, settings, owner, valid_until=today + timedelta(days=4))
    lapsed = _offer(committed, settings, owner, valid_until=today + timedelta(days=1))

    assert alerts.check_validity(committed, settings, today=today) == 2
    assert alerts.check_validity(committed, settings, today=today) == 0
    # Two days on: the first expired, and the last now expires within 3 days.
    assert alerts.check_validity(committed, settings, today=today + timedelta(days=2)) == 2
    run_worker(committed, mail_settings)

    subjects = sorted(m["Subject"].strip() for m in inbox.to(OWNER))
    assert subjects == sorted(
        [
            f"Offer {hyphenate_tracking_id(soon.tracking_id)} for Acme Hellas expires in 3 days,"
            " without an answer yet",
            f"Offer {hyphenate_tracking_id(lapsed.tracking_id)} for Acme Hellas expires tomorrow,"
            " without an answer yet",
            f"Offer {hyphenate_tracking_id(lapsed.tracking_id)} for Acme Hellas expired without"
            " an answer",
            f"Offer {hyphenate_tracking_id(later.tracking_id)} for Acme Hellas expires in 2 days,"
            " without an answer yet",
        ]
    )


def test_a_digest_preference_collects_alerts_into_one_mail_the_next_day(
    committed: Engine, settings: Settings, mail_settings: Settings, inbox: Inbox
) -> None:
    owner = _owner(committed)
    with Session(committed) as session:
        modes = dict.fromkeys(AlertKind, AlertMode.DIGEST)
        alerts.set_preferences(session, owner, modes | {AlertKind.DECLINED: AlertMode.OFF})
    first, second = (_offer(committed, settings, owner) for _ in range(2))
    committed_scan(committed, first)
    committed_scan(committed, second)
    with Session(committed) as session:
        offers_service.decline_offer(session, first.id, reason="No", settings=settings)
    run_worker(committed, mail_settings)
    assert inbox.to(OWNER) == []  # nothing at once

    assert alerts.send_digests(committed, settings) == 0  # today's wait for tomorrow
    tomorrow = datetime.combine(
        offers_service.today(settings) + timedelta(days=1), time(8), tzinfo=settings.zone
    )
    assert alerts.send_digests(committed, settings, now=tomorrow) == 1
    assert alerts.send_digests(committed, settings, now=tomorrow) == 0
    run_worker(committed, mail_settings)

    [digest] = inbox.to(OWNER)
    text = body_text(digest)
    assert "2 alerts" in digest["Subject"].strip()
    assert hyphenate_tracking_id(first.tracking_id) in text
    assert hyphenate_tracking_id(second.tracking_id) in text
    assert "declined" not in text  # that kind is off


def test_alerts_become_webhook_events_without_contact_details(
    committed: Engine, settings: Settings
) -> None:
    with Session(committed) as session:
        webhooks.create_endpoint(
            session,
            WebhookEndpointCreate(
                url="https://hooks.example.com/in",
                event_types=["offer.scanned", "offer.declined"],
            ),
            actor="tests",
        )
    offer = _offer(committed, settings, _owner(committed))

    committed_scan(committed, offer)
    committed_scan(committed, offer, is_bot=True)
    with Session(committed) as session:
        offers_service.decline_offer(session, offer.id, reason="Later", settings=settings)

    with Session(committed) as session:
        rows = session.scalars(select(WebhookOutbox).order_by(col(WebhookOutbox.id))).all()
    assert [row.event_type for row in rows] == ["offer.scanned", "offer.declined"]
    assert '"channel":"qr"' in rows[0].body and '"device_class":"mobile"' in rows[0].body
    assert OWNER not in rows[0].body and "Acme Hellas" not in rows[0].body


def test_alert_webhook_payloads_are_as_the_readme_documents(
    committed: Engine, settings: Settings
) -> None:
    import json
    import re

    from app.notifications import questions
    from app.tracking.codes import parse_tracking_code
    from tests.analytics.test_webhooks import ALERT_TYPES, _backticked, _readme_webhooks

    documented = {
        event: set(_backticked(row))
        for event, row in re.findall(r"^\| `([a-z_.]+)` \| (.+) \|$", _readme_webhooks(), re.M)
        if event in ALERT_TYPES
    }
    with Session(committed) as session:
        webhooks.create_endpoint(
            session,
            WebhookEndpointCreate(
                url="https://hooks.example.com/in", event_types=list(ALERT_TYPES)
            ),
            actor="tests",
        )
    owner = _owner(committed)
    today = offers_service.today(settings)
    scanned = _offer(committed, settings, owner)
    committed_scan(committed, scanned)
    with Session(committed) as session:
        offers_service.decline_offer(session, scanned.id, reason="No", settings=settings)
        asked = _offer(committed, settings, owner)
        questions.ask_question(
            session,
            parse_tracking_code(asked.id),
            email="m@example.com",
            message="?",
            settings=settings,
        )
    _offer(committed, settings, owner, valid_until=today + timedelta(days=1))
    alerts.check_validity(committed, settings, today=today)
    alerts.check_validity(committed, settings, today=today + timedelta(days=2))

    with Session(committed) as session:
        bodies = [json.loads(row.body) for row in session.scalars(select(WebhookOutbox))]
    assert {body["type"] for body in bodies} == set(ALERT_TYPES)
    for body in bodies:
        assert set(body["data"]) == documented[body["type"]], body["type"]


def test_a_round_of_many_scans_of_one_offer_alerts_once_with_a_few_queries(
    committed: Engine, settings: Settings, mail_settings: Settings, inbox: Inbox
) -> None:
    """The scan feed's round holds SQLite's one writer: what the alerts do in it must not grow
    with the number of scans (a busy printed offer is scanned thousands of times a day)."""
    offer = _offer(committed, settings, _owner(committed))
    row = scan(offer.id, utcnow())
    scanfeed.catch_up(committed, settings.zone)  # whatever came before
    with committed.begin() as connection:
        insert_scans(connection, [row] * 1000)
    with _statements(committed) as statements:
        assert scanfeed.catch_up(committed, settings.zone) == 1000
    assert len(statements) < 30, statements
    run_worker(committed, mail_settings)
    assert len(inbox.to(OWNER)) == 1


# What WhatsApp, iMessage, Slack, Teams, Telegram, LinkedIn and Google send when a link to the
# offer is pasted into a chat: each fetches the page to draw its preview, nobody has looked.
LINK_PREVIEWERS = (
    "WhatsApp/2.23.20.0 A",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko)"
    " Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "Mozilla/5.0 (compatible; MSTeams-LinkPreview)",
    "TelegramBot (like TwitterBot)",
    "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
    GOOGLEBOT,
)


def test_the_first_qr_scan_through_the_page_alerts_once_and_link_previews_never(
    web: TestClient, committed: Engine, settings: Settings, mail_settings: Settings, inbox: Inbox
) -> None:
    """The whole path: the page records the scan, the scan feed derives it, the worker mails."""
    offer = _offer(committed, settings, _owner(committed))
    shown = hyphenate_tracking_id(offer.tracking_id)

    def derive_and_send() -> None:
        scanfeed.catch_up(committed, settings.zone)
        run_worker(committed, mail_settings)

    for previewer in LINK_PREVIEWERS:
        assert web.get(f"/{offer.id}", headers={"user-agent": previewer}).status_code == 200
    derive_and_send()
    assert inbox.messages == []

    # A phone without a referrer or the PDF's marker: the camera read the printed QR code.
    web.get(f"/{offer.id}", headers={"user-agent": IPHONE})
    web.get(f"/{offer.id}", headers={"user-agent": IPHONE})
    web.get(f"/{offer.tracking_id}?src=pdf", headers={"user-agent": DESKTOP})
    derive_and_send()
    for previewer in LINK_PREVIEWERS:
        web.get(f"/{offer.id}", headers={"user-agent": previewer})
    derive_and_send()

    [alert] = inbox.to(OWNER)
    assert alert["Subject"].strip() == (
        f"The printed offer {shown} for Acme Hellas was just scanned with a phone"
    )


def test_the_offer_mails_link_tapped_on_a_phone_is_an_opened_page_not_a_scan_of_the_paper(
    web: TestClient,
    app: Any,
    committed: Engine,
    settings: Settings,
    mail_settings: Settings,
    inbox: Inbox,
) -> None:
    """A mail app sends no referrer: the bare link from a phone looked like a camera scan,
    and sales called a customer about "the printed offer" they had never printed."""
    offer = _offer(committed, settings, _owner(committed, "bo@acme.example"))
    with Session(committed) as session:
        draft = offer_mail.draft_mail(offer, mail_settings)
        offer_mail.send_offer(
            session,
            offer.id,
            draft,
            renderer=app.state.pdf_renderer,
            actor="staff:bo@acme.example",
            settings=mail_settings,
        )
    run_worker(committed, mail_settings)
    [sent] = inbox.to(offer.customer_email)
    link = re.search(r"https?://\S+/" + offer.id + r"\S*", body_text(sent))
    assert link is not None

    page = web.get(
        urlsplit(link.group()).path + "?" + urlsplit(link.group()).query,
        headers={"user-agent": IPHONE},
    )
    assert page.status_code == 200
    scanfeed.catch_up(committed, settings.zone)
    run_worker(committed, mail_settings)

    [alert] = inbox.to("bo@acme.example")
    shown = hyphenate_tracking_id(offer.tracking_id)
    assert alert["Subject"].strip() == (
        f"The page of offer {shown} for Acme Hellas was just opened on a phone"
    )


def test_a_round_naming_many_offers_scanned_earlier_that_day_takes_a_few_queries(
    committed: Engine, settings: Settings, mail_settings: Settings, inbox: Inbox
) -> None:
    """A trade fair: forty printed offers scanned all day. Once each has alerted, a round of
    their scans looks up what is already known once, not once per offer."""
    owner = _owner(committed)
    offers = [_offer(committed, settings, owner) for _ in range(40)]
    for offer in offers:  # each offer's first scan of the day alerts its owner
        committed_scan(committed, offer)
    with committed.begin() as connection:
        insert_scans(connection, [scan(offer.id, utcnow()) for offer in offers])
    with _statements(committed) as statements:
        assert scanfeed.catch_up(committed, settings.zone) == 40
    assert len(statements) < 15, statements
    run_worker(committed, mail_settings)
    assert len(inbox.to(OWNER)) == 40


def _expired_offers(connection: Connection, count: int, valid_until: date) -> None:
    """``count`` issued offers that expired unanswered long ago: their status stays issued."""
    at = datetime.combine(valid_until, time(), tzinfo=UTC) - timedelta(days=30)
    bulk_offers(connection, count, "X", at=at, valid_until=valid_until)


def test_the_validity_job_reads_the_offers_near_their_end_not_every_one_that_expired(
    committed: Engine, settings: Settings
) -> None:
    """Every 10 minutes in every process: the issued offers that expire soon or just did.
    Offers that expired unanswered stay issued for ever, and the job read every one."""
    owner = _owner(committed)
    today = offers_service.today(settings)
    with statistics_held(committed, "offer"):
        with committed.begin() as connection:
            _expired_offers(connection, 20_000, today - timedelta(days=700))
        _offer(committed, settings, owner, valid_until=today + timedelta(days=2))

        with captured(committed) as statements:
            assert alerts.check_validity(committed, settings, today=today) == 1

        assert_reads_at_most_with_and_without_statistics(
            committed, statements, "offer", 1_000
        )  # 20,001 before


def test_the_digest_job_reads_the_waiting_digest_alerts_not_every_alert(
    committed: Engine, settings: Settings
) -> None:
    """Every 10 minutes in every process; an alert is kept for ever once sent (one per offer
    and day it was scanned), and the job read every one of them."""
    offer = _offer(committed, settings, _owner(committed))
    yesterday = utcnow() - timedelta(days=1)
    alert = {
        "offer_id": ":offer",
        "kind": "'scanned'",
        "recipient": f"'{OWNER}'",
        "summary": "'Scanned'",
        "created_at": ":at",
    }
    with statistics_held(committed, "staff_alert"):
        with committed.begin() as connection:
            sent = {"dedupe_key": "'sent:' || n", "mode": "'immediately'"}
            bulk_insert(
                connection, "staff_alert", 20_000, alert | sent, offer=offer.id, at=yesterday
            )
            waiting = {"dedupe_key": "'waiting:' || n", "mode": "'digest'"}
            bulk_insert(connection, "staff_alert", 3, alert | waiting, offer=offer.id, at=yesterday)

        with captured(committed) as statements:
            assert alerts.send_digests(committed, settings) == 1

        assert_reads_at_most_with_and_without_statistics(
            committed, statements, "staff_alert", 1_000
        )  # 20,003 before


def test_a_digest_waiting_for_someone_disabled_since_goes_to_the_sales_address(
    committed: Engine, settings: Settings, mail_settings: Settings, inbox: Inbox
) -> None:
    owner = _owner(committed)
    with Session(committed) as session:
        alerts.set_preferences(session, owner, dict.fromkeys(AlertKind, AlertMode.DIGEST))
    offer = _offer(committed, settings, owner)
    committed_scan(committed, offer)
    with Session(committed) as session:  # they leave before the digest goes out
        user = session.get(StaffUser, owner)
        assert user is not None
        user.is_active = False
        session.add(user)
        session.commit()
    tomorrow = datetime.combine(
        offers_service.today(settings) + timedelta(days=1), time(8), tzinfo=settings.zone
    )

    assert alerts.send_digests(committed, settings, now=tomorrow) == 1
    run_worker(committed, mail_settings)

    assert inbox.to(OWNER) == []
    sales = settings.sales_email or settings.company_email
    [digest] = inbox.to(sales)
    assert hyphenate_tracking_id(offer.tracking_id) in body_text(digest)
