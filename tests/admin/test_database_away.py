"""The staff site while its database cannot be reached: every page answers 503 with
Retry-After and the staff site's own page, as the public pages do, never a 500."""

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import Engine, text
from sqlmodel import Session

from app.auth.staff import Role
from app.config import Settings
from app.db import PG_CONNECT_TIMEOUT_SECONDS, PG_SILENCE_SECONDS, make_engine
from app.offers.models import Offer
from tests.admin.conftest import StaffLogin, sign_in
from tests.factories import make_offer
from tests.tcpproxy import TcpProxy


@pytest.mark.parametrize(
    "path",
    [
        "/admin/",  # the dashboard, our page
        "/admin/offer/list",  # a sqladmin list
        "/admin/stage-update/list",
        "/admin/offers/new",  # the offer editor
        "/admin/analytics/",
    ],
)
def test_a_staff_page_answers_503_while_the_database_is_away(
    web: TestClient,
    make_staff: Callable[..., StaffLogin],
    request: pytest.FixtureRequest,
    path: str,
) -> None:
    sign_in(web, make_staff(Role.ADMIN))
    request.getfixturevalue("database_away")

    response = web.get(path, follow_redirects=False)

    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert "Temporarily unavailable" in response.text
    assert "try again in a minute" in response.text
    assert "<title>" in response.text and "OfferTrack staff" in response.text  # our page


def test_a_staff_form_sent_while_the_database_is_away_answers_503(
    web: TestClient, make_staff: Callable[..., StaffLogin], request: pytest.FixtureRequest
) -> None:
    token = sign_in(web, make_staff(Role.ADMIN))
    request.getfixturevalue("database_away")

    response = web.post("/admin/offers/new", data={"csrf_token": token, "customer_company": "Acme"})

    assert response.status_code == 503
    assert "Temporarily unavailable" in response.text


@contextmanager
def offer_row_locked(engine: Engine, offer_id: str) -> Iterator[None]:
    """Another transaction holds the offer's row for longer than any save should wait (a stuck
    batch job, a session left open in psql); on SQLite it holds the one writer's lock."""
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                query = "SELECT id FROM offer WHERE id = :id FOR UPDATE"
            else:
                query = "UPDATE offer SET customer_reference = customer_reference WHERE id = :id"
            connection.execute(text(query), {"id": offer_id})
            locked.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10)
        yield
    finally:
        release.set()
        holder.join(30)


def test_a_staff_save_of_an_offer_locked_elsewhere_answers_503_in_bounded_time(
    web: TestClient,
    make_staff: Callable[..., StaffLogin],
    db: Session,
    settings: Settings,
) -> None:
    """On PostgreSQL the save waited for the row as long as the other transaction held it:
    forever, for a session left open; past the proxy's timeout the person saw a gateway error
    while the save might still land later."""
    offer = make_offer(db, settings, company="Acme")
    token = sign_in(web, make_staff(Role.ADMIN))
    form = {"csrf_token": token, "customer-company": "Acme Hellas", "currency": "EUR"}
    form |= {"lines-0-description": "Pump", "lines-0-quantity": "1", "lines-0-unit_price": "10"}
    form["lines-0-vat_rate"] = "24"

    with offer_row_locked(db.get_bind(), offer.id):  # type: ignore[arg-type]
        started = time.monotonic()
        response = web.post(f"/admin/offers/{offer.id}/edit", data=form, follow_redirects=False)
        waited = time.monotonic() - started

    assert response.status_code == 503, response.text[:300]
    assert response.headers["Retry-After"]
    assert "Temporarily unavailable" in response.text
    assert waited < settings.write_wait_seconds * 3 + 2  # then the person gets an answer
    with Session(db.get_bind()) as session:
        assert session.get(Offer, offer.id).customer_company == "Acme"  # type: ignore[union-attr]


@pytest.fixture
def partitioned_database(committed: Engine) -> Iterator[TcpProxy]:
    """The app's connections go through a proxy that can partition the network: its
    connections stay open and nothing answers them, neither the server nor TCP itself."""
    if committed.dialect.name != "postgresql":
        pytest.skip("a partition needs a database server: the PostgreSQL run (SQLite is a file)")
    proxy = TcpProxy((committed.url.host or "127.0.0.1", committed.url.port or 5432))
    url = committed.url.set(host="127.0.0.1", port=proxy.port)
    through_proxy = make_engine(url.render_as_string(hide_password=False))
    original = committed.pool
    proxied = original.recreate()
    proxied._creator = through_proxy.pool._creator
    committed.pool = proxied
    try:
        yield proxy
    finally:
        committed.pool = original
        proxy.close()  # a request still waiting on it ends
        proxied.dispose()
        through_proxy.dispose()


def _answer_within(seconds: float, send: Callable[[], Response]) -> tuple[Response, float]:
    """``send()``'s answer and how long it took; fails the test if none comes in ``seconds``."""
    answers: list[tuple[Response, float]] = []

    def timed() -> None:
        started = time.monotonic()
        answer = send()
        answers.append((answer, time.monotonic() - started))

    sender = threading.Thread(target=timed, daemon=True)
    sender.start()
    sender.join(seconds)
    assert answers, f"no answer within {seconds} s"
    return answers[0]


def test_a_database_gone_silent_mid_connection_gets_the_503_page_within_seconds(
    web: TestClient,
    make_staff: Callable[..., StaffLogin],
    db: Session,
    settings: Settings,
    partitioned_database: TcpProxy,
) -> None:
    """A partition between the app and PostgreSQL leaves the pooled connections open and
    silent: a staff page waited for its answer until the kernel gave up on TCP, some fifteen
    minutes, holding a request thread and a pooled connection."""
    offer = make_offer(db, settings, company="Acme")
    token = sign_in(web, make_staff(Role.ADMIN))
    assert web.get("/admin/offer/list").status_code == 200  # pooled connections, at work
    partitioned_database.silence(drop_packets=True)

    bound = PG_SILENCE_SECONDS + PG_CONNECT_TIMEOUT_SECONDS + 3  # generous: not a benchmark
    form = {"csrf_token": token, "customer-company": "Acme Hellas", "currency": "EUR"}
    pages: list[Callable[[], Response]] = [
        lambda: web.get("/admin/offer/list"),
        lambda: web.post(f"/admin/offers/{offer.id}/edit", data=form, follow_redirects=False),
    ]
    for send in pages:
        response, waited = _answer_within(30, send)
        assert response.status_code == 503, response.text[:300]
        assert response.headers["Retry-After"]
        assert "Temporarily unavailable" in response.text
        print(f"\n503 from a partitioned database after {waited:.1f} s")
        assert waited < bound, f"503 after {waited:.1f} s"
