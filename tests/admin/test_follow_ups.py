"""A sales rep's follow-ups on the staff dashboard: what happened to their offers lately,
which expire soon without an answer, which no person has opened days after they were sent."""

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from app.admin import followups, users
from app.audit import AuditLogEntry
from app.auth.staff import Role, StaffUser
from app.config import Settings
from app.db import utcnow
from app.notifications.models import StaffAlert
from app.offers import service as offers_service
from app.offers.models import Offer
from tests.admin.conftest import StaffLogin, sign_in
from tests.factories import committed_scan, make_offer
from tests.plans import (
    analyze,
    assert_reads_at_most,
    assert_reads_at_most_with_and_without_statistics,
    bulk_insert,
    captured,
    statistics_held,
)


def _user_id(engine: Engine, who: StaffLogin) -> int:
    with Session(engine) as session:
        user = session.exec(select(StaffUser).where(col(StaffUser.email) == who.email)).one()
        assert user.id is not None
        return user.id


def _offer(
    engine: Engine,
    settings: Settings,
    owner_id: int,
    company: str,
    *,
    sent_days_ago: int = 0,
    **data: Any,
) -> Offer:
    with Session(engine, expire_on_commit=False) as session:
        offer = make_offer(session, settings, issued=True, company=company, **data)
        offer.owner_id = owner_id
        assert offer.issued_at is not None
        offer.issued_at -= timedelta(days=sent_days_ago)
        session.add(offer)
        session.commit()
        return offer


def _section(page: str, name: str) -> str:
    """The text of one list of the follow-ups card, tags left out."""
    match = re.search(rf'id="{name}".*?</section>', page, re.S)
    assert match, f"no {name} list on the dashboard"
    return re.sub(r"<[^>]+>", " ", match.group(0))


def test_a_sales_rep_sees_what_to_follow_up_on_their_own_offers_only(
    web: TestClient,
    make_staff: Callable[..., StaffLogin],
    committed: Engine,
    settings: Settings,
) -> None:
    ana, bob = make_staff(Role.SALES, "ana@example.com"), make_staff(Role.SALES, "bob@example.com")
    ana_id, bob_id = _user_id(committed, ana), _user_id(committed, bob)
    today = offers_service.today(settings)
    opened = _offer(committed, settings, ana_id, "Opened GmbH", sent_days_ago=5)
    _offer(committed, settings, ana_id, "Quiet SA", sent_days_ago=5)
    bots_only = _offer(committed, settings, ana_id, "Crawled Ltd", sent_days_ago=5)
    _offer(committed, settings, ana_id, "Fresh AG")  # sent today: too early to chase
    _offer(committed, settings, ana_id, "Soon Oy", valid_until=today + timedelta(days=2))
    _offer(committed, settings, ana_id, "Later Oy", valid_until=today + timedelta(days=30))
    answered = _offer(committed, settings, ana_id, "Signed Srl", sent_days_ago=5)
    bobs = _offer(committed, settings, bob_id, "Bob's Customer", sent_days_ago=5)
    committed_scan(committed, opened)
    committed_scan(committed, bots_only, is_bot=True)
    committed_scan(committed, bobs)
    with Session(committed) as session:
        offers_service.accept_offer(
            session, answered.id, signer_name="Eva", po_number="PO-1", settings=settings
        )

    sign_in(web, ana)
    page = web.get("/admin/").text

    activity = _section(page, "activity")
    assert "Opened GmbH" in activity and "scanned" in activity
    assert "Signed Srl" in activity and "accepted" in activity
    assert "Bob" not in activity and "Crawled" not in activity  # not hers; a bot
    expiring = _section(page, "expiring")
    assert "Soon Oy" in expiring
    assert "Later Oy" not in expiring and "Signed Srl" not in expiring
    unopened = _section(page, "unopened")
    assert "Quiet SA" in unopened and "Crawled Ltd" in unopened  # a crawler is no reader
    for not_listed in ("Opened GmbH", "Fresh AG", "Signed Srl", "Bob"):
        assert not_listed not in unopened
    assert f'/admin/offer/details/{opened.id}">' in page


def test_the_card_is_left_out_for_someone_without_offers(
    web: TestClient, as_role: Callable[[Role], str]
) -> None:
    as_role(Role.VIEWER)
    page = web.get("/admin/").text

    assert "Orders per stage" in page
    assert "Your follow-ups" not in page


def test_a_quiet_fortnight_says_so(
    web: TestClient,
    make_staff: Callable[..., StaffLogin],
    committed: Engine,
    settings: Settings,
) -> None:
    ana = make_staff(Role.SALES, "ana@example.com")
    offer = _offer(committed, settings, _user_id(committed, ana), "Old News AG")
    committed_scan(committed, offer)
    with Session(committed) as session:  # ... a fortnight and a day ago
        session.execute(update(StaffAlert).values(created_at=utcnow() - timedelta(days=15)))
        session.commit()

    sign_in(web, ana)
    page = web.get("/admin/").text

    assert "Nothing in the last 14 days" in _section(page, "activity")
    assert "Old News AG" not in _section(page, "activity")


def test_the_card_reads_the_last_fortnights_alerts_not_every_alert_of_the_users_offers(
    make_staff: Callable[..., StaffLogin], committed: Engine, settings: Settings
) -> None:
    """On every dashboard view. Alerts are kept as long as their offers (one per offer and
    day it was scanned): the card read every alert there ever was, some 300 ms on each view
    of a database with a million."""
    ana = _user_id(committed, make_staff(Role.SALES, "ana@example.com"))
    old = _offer(committed, settings, ana, "Old Customer", sent_days_ago=400)
    recent = _offer(committed, settings, ana, "New Customer")
    alert = {
        "dedupe_key": "'scanned:' || n",
        "offer_id": ":offer",
        "kind": "'scanned'",
        "recipient": "'ana@example.com'",
        "mode": "'immediately'",
        "summary": "'Opened'",
        "created_at": ":at",
    }
    with statistics_held(committed, "staff_alert"):
        with committed.begin() as connection:
            at = utcnow() - timedelta(days=400)
            bulk_insert(connection, "staff_alert", 20_000, alert, offer=old.id, at=at)
        committed_scan(committed, recent)

        with captured(committed) as statements, Session(committed) as session:
            shown = followups.follow_ups(session, ana, settings)

        assert [item.offer.company for item in shown.activity] == ["New Customer"]
        # With statistics, as autovacuum keeps them after a bulk of new rows. (Not "as the table
        # stands": in the suite, earlier tests leave statistics from when the table held a
        # handful of alerts, a state no production table is in, with which any plan reads all.)
        with committed.connect() as connection:
            analyze(connection, "staff_alert")
            assert_reads_at_most(connection, statements, "staff_alert", 1_000)
            connection.rollback()


def test_a_one_day_expiry_window_reads_as_one_day(
    web: TestClient,
    make_staff: Callable[..., StaffLogin],
    committed: Engine,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings, "alert_expiring_days", 1)
    ana = make_staff(Role.SALES, "ana@example.com")
    _offer(committed, settings, _user_id(committed, ana), "Soon Oy")

    sign_in(web, ana)
    page = web.get("/admin/").text

    assert "Expiring within 1 day, no answer yet" in page


def _send(web: TestClient, token: str, offer: Offer, *, days_ago: int, committed: Engine) -> None:
    """ "Send to customer" on the offer's page, then moved back in time as if done days ago."""
    sent = web.post(
        f"/admin/offers/{offer.id}/send",
        data={"csrf_token": token, "to": "maria@example.com", "subject": "Offer", "message": "Hi"},
        follow_redirects=False,
    )
    assert sent.status_code == 303, sent.text
    with Session(committed) as session:
        session.execute(
            update(AuditLogEntry)
            .where(
                col(AuditLogEntry.offer_id) == offer.id, col(AuditLogEntry.action) == "offer.send"
            )
            .where(col(AuditLogEntry.occurred_at) >= utcnow() - timedelta(minutes=5))
            .values(occurred_at=utcnow() - timedelta(days=days_ago))
        )
        session.commit()


def _entry(section: str, company: str) -> str:
    """One entry of a list's text, from its company to the next entry."""
    match = re.search(rf"{re.escape(company)}(.*?)(?:·\s*valid until[^\n]*)", section, re.S)
    assert match, f"{company} not listed"
    return " ".join(match.group(0).split())


def test_unopened_counts_from_the_latest_sending_through_the_app_else_from_issue(
    web: TestClient,
    make_staff: Callable[..., StaffLogin],
    committed: Engine,
    settings: Settings,
) -> None:
    ana = make_staff(Role.SALES, "ana@example.com")
    ana_id = _user_id(committed, ana)
    _offer(committed, settings, ana_id, "Paper AG", sent_days_ago=6)
    mailed = _offer(committed, settings, ana_id, "Mailed SA", sent_days_ago=10)
    resent = _offer(committed, settings, ana_id, "Resent Oy", sent_days_ago=10)
    token = sign_in(web, ana)
    _send(web, token, mailed, days_ago=4, committed=committed)
    _send(web, token, resent, days_ago=8, committed=committed)
    _send(web, token, resent, days_ago=1, committed=committed)  # sent again yesterday

    unopened = _section(web.get("/admin/").text, "unopened")

    assert "Issued 6 days ago" in _entry(unopened, "Paper AG")  # never mailed from here
    assert "Sent 4 days ago" in _entry(unopened, "Mailed SA")  # not "issued 10 days ago"
    assert "Resent Oy" not in unopened  # yesterday's mail: too early to chase
    assert unopened.index("Paper AG") < unopened.index("Mailed SA")  # longest waiting first


def test_the_unopened_list_reads_the_users_offers_history_not_the_whole_log(
    make_staff: Callable[..., StaffLogin], committed: Engine, settings: Settings
) -> None:
    """On every dashboard view. The history only grows (every change to every offer): the
    latest sending of each offer must come from that offer's own entries."""
    ana = _user_id(committed, make_staff(Role.SALES, "ana@example.com"))
    waiting = _offer(committed, settings, ana, "Waiting AG", sent_days_ago=9)
    _offer(committed, settings, ana, "Paper AG", sent_days_ago=9)
    entry = {  # the history of 20,000 other offers: sendings and other changes
        "occurred_at": ":at",
        "actor": "'staff:bob@example.com'",
        "action": "CASE WHEN n % 4 = 0 THEN 'offer.send' ELSE 'offer.update' END",
        "entity_type": "'offer'",
        "entity_id": "'X' || n",
        "offer_id": "'X' || n",
        "summary": "'Sent to maria@example.com with the PDF attached'",
    }
    with statistics_held(committed, "audit_log"):
        with committed.begin() as connection:
            at = utcnow() - timedelta(days=5)
            bulk_insert(connection, "audit_log", 20_000, entry, at=at)
            sending = entry | {"action": "'offer.send'", "offer_id": ":offer"}
            bulk_insert(connection, "audit_log", 1, sending, offer=waiting.id, at=at)

        with captured(committed) as statements, Session(committed) as session:
            shown = followups.follow_ups(session, ana, settings)

        assert [(u.offer.company, u.sent, u.days_ago) for u in shown.unopened] == [
            ("Paper AG", False, 9),
            ("Waiting AG", True, 5),
        ]
        assert_reads_at_most_with_and_without_statistics(committed, statements, "audit_log", 1_000)


def test_an_admin_sees_whose_offers_wait_for_a_hand_over(
    web: TestClient,
    make_staff: Callable[..., StaffLogin],
    committed: Engine,
    settings: Settings,
) -> None:
    boss = make_staff(Role.ADMIN, "boss@example.com")
    gone, staying = (
        make_staff(Role.SALES, "gone@example.com"),
        make_staff(Role.SALES, "ana@example.com"),
    )
    quiet = make_staff(Role.SALES, "quiet@example.com")
    gone_id, quiet_id = _user_id(committed, gone), _user_id(committed, quiet)
    today = offers_service.today(settings)
    _offer(committed, settings, gone_id, "Open One")
    _offer(committed, settings, gone_id, "Open Two", sent_days_ago=5)
    _offer(committed, settings, gone_id, "Lapsed", sent_days_ago=40)
    _offer(committed, settings, quiet_id, "Lapsed Too", sent_days_ago=40)
    with Session(committed) as session:  # past their last day: nobody's to chase any more
        session.execute(
            update(Offer)
            .where(col(Offer.customer_company).in_(["Lapsed", "Lapsed Too"]))
            .values(valid_until=today - timedelta(days=1))
        )
        session.commit()
    _offer(committed, settings, _user_id(committed, staying), "Still Looked After")
    with Session(committed) as session:
        for leaver in (gone_id, quiet_id):
            users.update_user(session, leaver, role=Role.SALES, is_active=False, actor="tests")

    sign_in(web, boss)
    page = web.get("/admin/").text

    match = re.search(r'id="disabled-owners".*?</ul>', page, re.S)
    assert match, "no offers of disabled users on the dashboard"
    card = re.sub(r"<[^>]+>", " ", match.group(0))
    assert "Offers of disabled users" in page
    assert re.search(r"gone@example\.com\s*: 2 open offers", card)  # not the lapsed one
    assert "quiet@example.com" not in card and "ana@" not in card  # nothing open; active
    assert f'/admin/staff-user/details/{gone_id}">gone@example.com</a>' in page

    web.cookies.clear()
    sign_in(web, staying)
    assert "Offers of disabled users" not in web.get("/admin/").text  # an admin's to act on


def test_an_activity_keeps_its_tracking_id_whole_and_its_company_escaped(
    web: TestClient,
    make_staff: Callable[..., StaffLogin],
    committed: Engine,
    settings: Settings,
) -> None:
    ana = make_staff(Role.SALES, "ana@example.com")
    offer = _offer(committed, settings, _user_id(committed, ana), "Tom & <b>Jerry</b>")
    committed_scan(committed, offer)

    sign_in(web, ana)
    page = web.get("/admin/").text

    activity = re.search(r'id="activity".*?</ul>', page, re.S)
    assert activity
    code = offer.tracking_id[:5] + "-" + offer.tracking_id[5:]
    assert f'offer <span class="tracking-id">{code}</span> for Tom &amp; &lt;b&gt;' in activity[0]
