"""Customers subscribe to their order: double opt-in, updates, one-click unsubscribe."""

import re
from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import Connection, Engine, select, text
from sqlmodel import Session

from app.auth.service import create_api_key
from app.config import Settings
from app.db import utcnow
from app.notifications import subscriptions
from app.notifications.models import MailOutbox, OrderSubscription
from app.offers import service as offers_service
from app.offers.models import Offer
from app.templating import format_date
from app.tracking import service as tracking_service
from app.tracking.codes import parse_tracking_code
from app.tracking.schemas import StageUpdateCreate
from tests.conftest import TEST_DATABASE_URL
from tests.factories import make_offer
from tests.notifications.conftest import Inbox, body_text, run_worker
from tests.plans import (
    assert_reads_at_most_with_and_without_statistics,
    bulk_insert,
    captured,
    statistics_held,
)

pytestmark = pytest.mark.concurrency
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _order(engine: Engine, settings: Settings) -> Offer:
    with Session(engine, expire_on_commit=False) as session:
        offer = make_offer(session, settings, issued=True, company="Acme Hellas SA")
        return tracking_service.activate_offer(session, offer.id, actor="tests", settings=settings)


def _subscribed(engine: Engine, order: Offer, *emails: str) -> None:
    """Confirmed subscriptions to ``order``, as a customer leaves them after the confirm link."""
    with Session(engine) as session:
        for email in emails:
            session.add(OrderSubscription(offer_id=order.id, email=email, confirmed_at=utcnow()))
        session.commit()


def _token(engine: Engine) -> str:
    with Session(engine) as session:
        return create_api_key(session, "tests", actor="tests")[1]


def _subscribe(web: TestClient, code: str, email: str) -> Response:
    page = web.get(f"/{code}")
    match = CSRF.search(page.text)
    assert match, "the order page has no subscribe form"
    return web.post(f"/{code}/subscribe", data={"email": email, "csrf_token": match.group(1)})


def _link(mail: EmailMessage, pattern: str) -> str:
    text = body_text(mail)
    match = re.search(pattern, text)
    assert match, text
    return urlsplit(match.group(0)).path


def _subscriptions(engine: Engine) -> list[OrderSubscription]:
    with Session(engine) as session:
        return list(session.scalars(select(OrderSubscription)))


def test_subscribe_confirm_update_and_unsubscribe(
    web: TestClient, committed: Engine, settings: Settings, mail_settings: Settings, inbox: Inbox
) -> None:
    order = _order(committed, settings)
    api = {"Authorization": f"Bearer {_token(committed)}"}

    response = _subscribe(web, order.tracking_id, "maria@example.com")
    assert response.status_code == 200 and "Check your inbox" in response.text
    run_worker(committed, mail_settings)
    [confirmation] = inbox.to("maria@example.com")
    assert "Confirm" in confirmation["Subject"] and order.tracking_id[:5] in confirmation["Subject"]
    assert confirmation["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    confirm_path = _link(confirmation, r"https://track\.example\.com/updates/confirm/\S+")

    opened = web.get(confirm_path)  # a mail scanner opening the link
    assert opened.status_code == 200 and "Confirm</button>" in opened.text
    assert [s.confirmed_at for s in _subscriptions(committed)] == [None]
    confirmed = web.post(confirm_path, data={"csrf_token": CSRF.search(opened.text).group(1)})  # type: ignore[union-attr]
    assert confirmed.status_code == 200 and "You will get e-mail updates" in confirmed.text
    assert _subscriptions(committed)[0].confirmed_at is not None

    update = {"stage": "In production", "public_note": "Machining started on line 3"}
    started = web.post(f"/api/v1/orders/{order.tracking_id}/updates", json=update, headers=api)
    assert started.status_code == 201, started.text
    run_worker(committed, mail_settings)

    [_, news] = inbox.to("maria@example.com")
    assert "Machining started on line 3" in news.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Machining started on line 3" in news.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "In production" in news["Subject"]
    shown_id = f"{order.tracking_id[:5]}-{order.tracking_id[5:]}"
    assert f"Order {shown_id}" in news.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    unsubscribe = news["List-Unsubscribe"]
    assert re.fullmatch(r"<https://track\.example\.com/updates/unsubscribe/[^>\s]+>", unsubscribe)
    assert news["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    unsubscribe_path = urlsplit(unsubscribe.strip("<>")).path
    shown = web.get(unsubscribe_path)
    assert shown.status_code == 200 and "Unsubscribe</button>" in shown.text
    assert len(_subscriptions(committed)) == 1  # opening the link changed nothing
    web.cookies.clear()  # the one-click POST comes from the mail provider: no cookie, no token
    gone = web.post(unsubscribe_path, data={"List-Unsubscribe": "One-Click"})
    assert gone.status_code == 200 and "unsubscribed" in gone.text
    assert _subscriptions(committed) == []

    shipped = {"stage": "Shipped", "public_note": "On its way"}
    web.post(f"/api/v1/orders/{order.tracking_id}/updates", json=shipped, headers=api)
    run_worker(committed, mail_settings)
    assert len(inbox.to("maria@example.com")) == 2


def test_only_updates_with_news_for_the_customer_are_mailed(
    web: TestClient, committed: Engine, settings: Settings, mail_settings: Settings, inbox: Inbox
) -> None:
    order = _order(committed, settings)
    with Session(committed) as session:
        session.add(OrderSubscription(offer_id=order.id, email="a@example.com"))
        session.add(
            OrderSubscription(
                offer_id=order.id, email="b@example.com", confirmed_at=order.ordered_at
            )
        )
        session.commit()
    api = {"Authorization": f"Bearer {_token(committed)}"}
    later = str(offers_service.today(settings) + timedelta(days=9))
    for update in (
        {"stage": "Quality check"},  # the order moves on: what the subscribe form promises
        {"stage": "Quality check", "happened_at": _earlier(order)},  # nothing new to say
        {"stage": "Quality check", "expected_delivery_date": later},
        {"stage": "Delivered"},
    ):
        sent = web.post(f"/api/v1/orders/{order.id}/updates", json=update, headers=api)
        assert sent.status_code == 201, sent.text
    run_worker(committed, mail_settings)

    assert inbox.to("a@example.com") == []  # never confirmed
    subjects = [m["Subject"] for m in inbox.to("b@example.com")]
    assert len(subjects) == 3
    assert subjects[0].endswith(": Quality check")
    assert "new expected delivery" in subjects[1] and "delivered" in subjects[2]


def _earlier(order: Offer) -> str:
    """A moment after the order was placed, before anything else happened to it."""
    assert order.ordered_at is not None
    return (order.ordered_at + timedelta(seconds=1)).isoformat()


def test_an_update_dated_in_the_past_does_not_announce_a_date_a_later_one_replaced(
    web: TestClient, committed: Engine, settings: Settings, mail_settings: Settings, inbox: Inbox
) -> None:
    order = _order(committed, settings)
    _subscribed(committed, order, "b@example.com")
    api = {"Authorization": f"Bearer {_token(committed)}"}
    today = offers_service.today(settings)
    current, replaced = today + timedelta(days=9), today + timedelta(days=3)
    now = {"stage": "Quality check", "expected_delivery_date": str(current)}
    web.post(f"/api/v1/orders/{order.id}/updates", json=now, headers=api)
    # Entered afterwards, but it happened yesterday: the date it named was replaced since.
    backdated = {
        "stage": "Quality check",
        "expected_delivery_date": str(replaced),
        "public_note": "Parts arrived",
        "happened_at": (utcnow() - timedelta(days=1)).isoformat(),
    }
    web.post(f"/api/v1/orders/{order.id}/updates", json=backdated, headers=api)
    run_worker(committed, mail_settings)

    first, second = inbox.to("b@example.com")
    assert "new expected delivery" in first["Subject"]
    assert "new expected delivery" not in second["Subject"]
    body = body_text(second)
    assert "Parts arrived" in body
    # The date the tracking page shows, in the mail as well.
    assert f"Expected delivery: {format_date(current)}" in body
    assert format_date(replaced) not in body


def test_an_order_is_announced_as_delivered_once(
    committed: Engine, settings: Settings, mail_settings: Settings, inbox: Inbox
) -> None:
    # Staff select every order in the list and send "Delivered" again, one delivered already
    # among them: its customer is not told a second time; a note would still be mailed.
    delivered, shipped = _order(committed, settings), _order(committed, settings)
    _subscribed(committed, delivered, "early@example.com")
    _subscribed(committed, shipped, "late@example.com")
    final = StageUpdateCreate(stage="Delivered")
    with Session(committed) as session:
        tracking_service.add_stage_update(
            session, delivered.id, final, actor="tests", settings=settings
        )
        # Another staff member: from the same one within a minute it would be a repeated
        # submission (app.tracking.repeats), not a second "Delivered".
        tracking_service.add_stage_updates(
            session, [delivered.id, shipped.id], final, actor="colleague", settings=settings
        )
        noted = StageUpdateCreate(stage="Delivered", public_note="Invoice attached below")
        tracking_service.add_stage_update(
            session, delivered.id, noted, actor="tests", settings=settings
        )
    run_worker(committed, mail_settings)

    early = [m["Subject"] for m in inbox.to("early@example.com")]
    assert len(early) == 2 and "delivered" in early[0] and "delivered" not in early[1]
    assert "Invoice attached below" in body_text(inbox.to("early@example.com")[1])
    assert ["delivered" in m["Subject"] for m in inbox.to("late@example.com")] == [True]


def test_the_confirmation_mail_speaks_the_language_the_customer_subscribed_in(
    web: TestClient, committed: Engine, settings: Settings, mail_settings: Settings, inbox: Inbox
) -> None:
    order = _order(committed, settings)  # an English order, read in German
    page = web.get(f"/{order.tracking_id}?lang=de")
    match = CSRF.search(page.text)
    assert match, "the order page has no subscribe form"

    sent = web.post(
        f"/{order.tracking_id}/subscribe?lang=de",
        data={"email": "einkauf@example.com", "csrf_token": match.group(1)},
    )
    run_worker(committed, mail_settings)

    assert sent.status_code == 200
    (mail,) = inbox.to("einkauf@example.com")
    assert mail["Subject"].startswith("Bitte bestätigen Sie die Benachrichtigungen")


def test_the_page_never_tells_whether_an_address_is_subscribed(
    web: TestClient, committed: Engine, settings: Settings, mail_settings: Settings, inbox: Inbox
) -> None:
    order = _order(committed, settings)
    _subscribed(committed, order, "known@example.com")

    known = _subscribe(web, order.id, "known@example.com")
    new = _subscribe(web, order.id, "new@example.com")
    run_worker(committed, mail_settings)

    assert known.status_code == new.status_code == 200
    # Alike but for the address each typed, which the page shows back to them.
    assert known.text.replace("known@", "someone@") == new.text.replace("new@", "someone@")
    assert inbox.to("known@example.com") == [] and len(inbox.to("new@example.com")) == 1


def test_an_invalid_address_gets_a_form_error_and_keeps_what_was_typed(
    web: TestClient, committed: Engine, settings: Settings
) -> None:
    order = _order(committed, settings)

    response = _subscribe(web, order.tracking_id, "maria@example")

    assert response.status_code == 422
    html = response.text
    assert 'id="email-error"' in html and "valid e-mail address" in html
    assert 'value="maria@example"' in html and 'aria-invalid="true"' in html
    assert _subscriptions(committed) == []
    with Session(committed) as session:
        assert session.execute(select(MailOutbox)).first() is None


def test_subscribing_is_rate_limited_per_client_and_needs_csrf(
    web: TestClient, committed: Engine, settings: Settings
) -> None:
    order = _order(committed, settings)
    forged = web.post(f"/{order.tracking_id}/subscribe", data={"email": "x@example.com"})
    assert forged.status_code == 403

    answers: list[int] = []
    for n in range(6):
        answers.append(_subscribe(web, order.tracking_id, f"p{n}@example.com").status_code)

    assert answers == [200] * 5 + [429]
    assert len(_subscriptions(committed)) == 5


def test_a_forged_or_expired_confirmation_link_confirms_nothing(
    web: TestClient, committed: Engine
) -> None:
    for path in ("/updates/confirm/garbage", "/updates/unsubscribe/garbage"):
        assert web.get(path).status_code == 404


def test_a_broken_unsubscribe_link_is_not_called_a_confirmation_link(
    web: TestClient, committed: Engine
) -> None:
    """Someone who wants the mails to stop was told to ask for e-mail updates again."""
    for answer in (
        web.get("/updates/unsubscribe/garbage"),
        web.post("/updates/unsubscribe/garbage"),
    ):
        assert answer.status_code == 404
        assert "confirmation link" not in answer.text
        assert "ask for e-mail updates again" not in answer.text
        assert "stop the e-mail updates" in answer.text


def test_a_link_of_a_subscription_that_is_gone_never_acts_on_a_later_one(
    committed: Engine, settings: Settings
) -> None:
    """Links name a subscription by its row id. Had a later subscription taken the id again
    (SQLite reuses the highest rowid once its row is deleted), someone could subscribe,
    unsubscribe, and with their own confirmation link confirm an address they typed in next,
    which never asked for the mails; or a former subscriber's old link end someone else's."""
    order = _order(committed, settings)
    code = parse_tracking_code(order.tracking_id)
    with Session(committed) as session:
        subscriptions.subscribe(session, code, "first@example.com", settings=settings)
        [first] = _subscriptions(committed)
        assert first.id is not None
        confirm = subscriptions.confirm_token(first.id, settings)
        unsubscribe = subscriptions.unsubscribe_token(first.id, settings)
        subscriptions.unsubscribe(session, unsubscribe, settings=settings)
        subscriptions.subscribe(session, code, "victim@example.com", settings=settings)

        with pytest.raises(subscriptions.LinkInvalid):
            subscriptions.confirm(session, confirm, settings=settings)
        subscriptions.unsubscribe(session, unsubscribe, settings=settings)

    [later] = _subscriptions(committed)
    assert later.email == "victim@example.com" and later.confirmed_at is None


def test_the_request_adds_one_fan_out_row_and_the_worker_the_mails_once(
    web: TestClient, committed: Engine, settings: Settings, mail_settings: Settings, inbox: Inbox
) -> None:
    from sqlalchemy import func, update

    from app.notifications import subscriptions
    from app.notifications.models import UpdateFanout

    order = _order(committed, settings)
    with Session(committed) as session:
        for n in range(120):  # more than one chunk
            session.add(
                OrderSubscription(
                    offer_id=order.id, email=f"b{n}@example.com", confirmed_at=order.ordered_at
                )
            )
        session.commit()
    api = {"Authorization": f"Bearer {_token(committed)}"}
    update_body = {"stage": "In production", "public_note": "Started"}

    web.post(f"/api/v1/orders/{order.id}/updates", json=update_body, headers=api)
    with Session(committed) as session:
        assert session.execute(select(func.count()).select_from(MailOutbox)).scalar() == 0
        assert session.execute(select(func.count()).select_from(UpdateFanout)).scalar() == 1
    assert subscriptions.fan_out(committed, mail_settings) == 1
    with Session(committed) as session:  # a worker that died before marking it done
        session.execute(update(UpdateFanout).values(done_at=None, locked_until=None))
        session.commit()
    assert subscriptions.fan_out(committed, mail_settings) == 1
    run_worker(committed, mail_settings)

    assert len(inbox.messages) == 120
    assert len({m["To"] for m in inbox.messages}) == 120


def test_a_mail_server_that_never_answers_slows_no_request_down(
    web: TestClient, committed: Engine, settings: Settings
) -> None:
    """The worker waits out its SMTP timeout in its own thread, holding no transaction: the
    page, the subscribe form and a stage update through the API answer as usual meanwhile."""
    import socket
    import time

    from app.metrics import MAIL_OUTBOX_DEPTH
    from app.notifications.worker import MailWorker

    order = _order(committed, settings)
    api = {"Authorization": f"Bearer {_token(committed)}"}
    _subscribed(committed, order, "b@example.com")
    silent = socket.socket()  # accepts connections (the kernel does) and never says a word
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    stuck = settings.model_copy(
        update={
            "smtp_url": f"smtp://127.0.0.1:{silent.getsockname()[1]}",
            "mail_timeout_seconds": 4,
        }
    )
    update = {"stage": "In production", "public_note": "Started"}
    web.post(f"/api/v1/orders/{order.id}/updates", json=update, headers=api)
    worker = MailWorker(committed, stuck, poll_seconds=0.05)
    worker.start()
    try:
        _wait_for(lambda: _leased(committed))  # the worker is waiting for the server's greeting
        timings: list[float] = []
        requests: tuple[Callable[[], Response], ...] = (
            lambda: web.get(f"/{order.tracking_id}"),
            lambda: _subscribe(web, order.tracking_id, "c@example.com"),
            lambda: web.post(
                f"/api/v1/orders/{order.id}/updates",
                json={"stage": "Shipped", "public_note": "On its way"},
                headers=api,
            ),
        )
        for request in requests:
            started = time.monotonic()
            assert request().status_code in (200, 201)
            timings.append(time.monotonic() - started)
        still_waiting = _leased(committed)
    finally:
        worker.stop(timeout=15)
        silent.close()

    assert still_waiting, "the worker was not held by the server during the requests"
    assert max(timings) < 1.0, timings
    with Session(committed) as session:
        waiting = session.scalars(select(MailOutbox)).all()
    assert waiting and all(m.sent_at is None and m.failed_at is None for m in waiting)
    assert MAIL_OUTBOX_DEPTH._value.get() == len(waiting)


def _leased(engine: Engine) -> bool:
    with Session(engine) as session:
        rows = session.scalars(select(MailOutbox)).all()
    return any(m.locked_until is not None and m.attempts == 0 for m in rows)


def _wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    import time

    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_subscription_keeps_only_the_address_the_order_its_state_times_and_language(
    committed: Engine, settings: Settings
) -> None:
    from sqlalchemy import inspect

    from app.notifications import subscriptions

    columns = {column["name"] for column in inspect(committed).get_columns("order_subscription")}
    assert columns == {"id", "offer_id", "email", "created_at", "confirmed_at", "language"}

    order = _order(committed, settings)
    long_ago = utcnow() - timedelta(days=subscriptions.CONFIRM_DAYS, minutes=1)
    with Session(committed) as session:
        for email, confirmed in (("never@example.com", None), ("kept@example.com", long_ago)):
            session.add(
                OrderSubscription(
                    offer_id=order.id, email=email, created_at=long_ago, confirmed_at=confirmed
                )
            )
        session.add(OrderSubscription(offer_id=order.id, email="recent@example.com"))
        session.commit()

    assert subscriptions.purge_unconfirmed(committed) == 1  # nobody confirmed it in time
    assert sorted(s.email for s in _subscriptions(committed)) == [
        "kept@example.com",
        "recent@example.com",
    ]


@pytest.mark.parametrize(
    ("base_url", "behind_tls_proxy", "link", "one_click"),
    [
        ("https://track.example.com", False, "https://track.example.com/", True),
        # A proxy in front terminates TLS: the mail must not send a one-click POST to http.
        ("http://track.example.com", True, "https://track.example.com/", True),
        # Development over plain http: a link to the page with the button, but RFC 8058's
        # one-click header only ever names an https URL.
        ("http://127.0.0.1:8000", False, "http://127.0.0.1:8000/", False),
    ],
)
def test_one_click_unsubscribe_is_offered_only_with_an_https_url(
    settings: Settings, base_url: str, behind_tls_proxy: bool, link: str, one_click: bool
) -> None:
    from app.notifications.subscriptions import unsubscribe_headers

    configured = settings.model_copy(
        update={"public_base_url": base_url, "behind_tls_proxy": behind_tls_proxy}
    )

    headers = unsubscribe_headers(7, configured)

    assert headers["List-Unsubscribe"].startswith(f"<{link}updates/unsubscribe/")
    assert ("List-Unsubscribe-Post" in headers) is one_click
    if one_click:
        assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_unsubscribing_also_stops_the_mails_still_waiting_in_the_outbox(
    web: TestClient, committed: Engine, settings: Settings, mail_settings: Settings, inbox: Inbox
) -> None:
    """The mail server was away when the update went out: the mail waits. A click on an
    earlier mail's unsubscribe link must stop it too, not only the updates after it."""
    from app.notifications import subscriptions
    from app.notifications.worker import MailWorker
    from tests.notifications.conftest import free_port

    order = _order(committed, settings)
    _subscribed(committed, order, "leaving@example.com", "staying@example.com")
    [leaving] = [s for s in _subscriptions(committed) if s.email == "leaving@example.com"]
    assert leaving.id is not None
    down = mail_settings.model_copy(update={"smtp_url": f"smtp://127.0.0.1:{free_port()}"})
    api = {"Authorization": f"Bearer {_token(committed)}"}
    update_body = {"stage": "In production", "public_note": "Started"}
    web.post(f"/api/v1/orders/{order.id}/updates", json=update_body, headers=api)
    MailWorker(committed, down).run_once()  # fanned out, not sent
    with Session(committed) as session:
        assert len(session.execute(select(MailOutbox)).all()) == 2

    path = urlsplit(subscriptions.unsubscribe_url(leaving.id, settings)).path
    assert web.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    run_worker(committed, mail_settings)  # the server is back

    assert inbox.to("leaving@example.com") == []
    assert len(inbox.to("staying@example.com")) == 1


def _done_fanouts(connection: Connection, offer_id: str, count: int) -> None:
    """``count`` stage updates of the order whose subscribers were mailed long ago."""
    long_ago = utcnow() - timedelta(days=400)
    bulk_insert(
        connection,
        "stage_update",
        count,
        {
            "offer_id": ":offer",
            "stage_key": "'confirmed'",
            "happened_at": ":at",
            "public_note": "'Done'",
            "internal_note": "''",
            "carrier": "''",
            "tracking_number": "''",
            "tracking_link": "''",
            "created_by": "'tests'",
            "created_at": ":at",
        },
        offer=offer_id,
        at=long_ago,
    )
    connection.execute(
        text(
            "INSERT INTO update_fanout (offer_id, stage_update_id, reason, created_at, done_at)"
            " SELECT offer_id, id, 'note', created_at, created_at FROM stage_update"
            " WHERE offer_id = :offer"
        ),
        {"offer": offer_id},
    )


@pytest.mark.skipif(not TEST_DATABASE_URL.startswith("postgresql"), reason="PostgreSQL's planner")
def test_the_fan_out_claim_reads_the_pending_update_not_every_one_done(
    committed: Engine, settings: Settings
) -> None:
    """The mail worker claims a pending fan-out every second in every process; fan-outs done
    are never deleted. Without statistics for the table (a new or restored database)
    PostgreSQL walked the primary key through every one of them."""
    from app.notifications import subscriptions

    order = _order(committed, settings)
    with statistics_held(committed, "update_fanout"):
        with committed.begin() as connection:
            _done_fanouts(connection, order.id, 20_000)
        with Session(committed) as session:
            update = StageUpdateCreate(stage="In production", public_note="Started today.")
            tracking_service.add_stage_update(
                session, order.id, update, actor="tests", settings=settings
            )

        with captured(committed) as statements:
            assert subscriptions.fan_out(committed, settings) == 1

        assert_reads_at_most_with_and_without_statistics(
            committed, statements, "update_fanout", 1_000
        )  # 20,000 before


def test_the_purge_of_unconfirmed_subscriptions_reads_those_not_every_confirmed_one(
    committed: Engine, settings: Settings
) -> None:
    """Every hour in every process; confirmed subscriptions stay as long as their order, and
    the purge read every one of them."""
    from app.notifications import subscriptions

    order = _order(committed, settings)
    long_ago = utcnow() - timedelta(days=subscriptions.CONFIRM_DAYS, minutes=1)
    with statistics_held(committed, "order_subscription"):
        with committed.begin() as connection:
            bulk_insert(
                connection,
                "order_subscription",
                20_000,
                {
                    "offer_id": ":offer",
                    "email": "'kept' || n || '@example.com'",
                    "created_at": ":at",
                    "confirmed_at": ":at",
                },
                offer=order.id,
                at=long_ago,
            )
            never = {"offer_id": ":offer", "email": "'never@example.com'", "created_at": ":at"}
            bulk_insert(connection, "order_subscription", 1, never, offer=order.id, at=long_ago)

        with captured(committed) as statements:
            assert subscriptions.purge_unconfirmed(committed) == 1

        assert_reads_at_most_with_and_without_statistics(
            committed, statements, "order_subscription", 1_000
        )  # 20,001 before
