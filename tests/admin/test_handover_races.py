"""A leaver's offers handed over while someone else acts on them at the same moment: on
PostgreSQL the handover waits for the other transaction's row lock, then works on what it
committed. (SQLite has one writer at a time: there one begins after the other ends.)"""

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pyotp
import pytest
from sqlalchemy import Engine, event
from sqlmodel import Session, col, select

from app.admin import twofactor, user_actions, users
from app.audit import AuditLogEntry
from app.auth.staff import Role
from app.config import Settings
from app.errors import Conflict, Unprocessable
from app.offers import service
from app.offers.models import Offer
from app.offers.schemas import OfferUpdate
from tests.factories import make_offer
from tests.offers.test_concurrent_saves import (
    WAIT_SECONDS,
    _wait_until_a_transaction_waits_for_a_lock,
)

pytestmark = pytest.mark.concurrency
PASSWORD = "a long password 2027"


def _people(engine: Engine) -> tuple[int, int, int]:
    """The leaver, the colleague taking over, and someone else: ids."""
    with Session(engine, expire_on_commit=False) as session:
        made = [
            users.create_user(session, f"{name}@example.com", Role.SALES, PASSWORD, actor="tests")
            for name in ("leaving", "taking", "other")
        ]
    ids = [user.id for user in made]
    assert None not in ids
    return ids[0] or 0, ids[1] or 0, ids[2] or 0


def _owned_drafts(engine: Engine, settings: Settings, owner_id: int, count: int) -> list[str]:
    with Session(engine, expire_on_commit=False) as session:
        offers = [make_offer(session, settings) for _ in range(count)]
        for offer in offers:
            offer.owner_id = owner_id
            session.add(offer)
        session.commit()
        return [offer.id for offer in offers]


def _at_once(
    engine: Engine, first: Callable[[Session], object], then: Callable[[], object]
) -> object:
    """``first`` in a transaction that, its changes made, keeps its locks until ``then`` (run
    meanwhile) waits for one; returns what ``then`` returned."""
    holding = threading.Event()

    def hold(_: Session) -> None:
        holding.set()
        _wait_until_a_transaction_waits_for_a_lock(engine)

    def run_first() -> None:
        with Session(engine) as session:
            event.listen(session, "before_commit", hold, once=True)
            first(session)

    with ThreadPoolExecutor(2) as pool:
        one = pool.submit(run_first)
        assert holding.wait(WAIT_SECONDS)
        two = pool.submit(then)
        one.result(WAIT_SECONDS)
        return two.result(WAIT_SECONDS)


def _skip_on_sqlite(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: the two cannot overlap")


def test_a_handover_to_a_colleague_disabled_at_the_same_moment_is_refused(
    committed: Engine, settings: Settings
) -> None:
    _skip_on_sqlite(committed)
    leaving, taking, _ = _people(committed)
    _owned_drafts(committed, settings, leaving, 2)

    def disable_taking(session: Session) -> object:
        # update_user commits; the first transaction is this one, holding the row until then.
        return users.update_user(session, taking, role=Role.SALES, is_active=False, actor="b")

    def hand_over() -> object:
        with Session(committed) as session:
            try:
                return user_actions.hand_over_offers(session, leaving, taking, actor="a")
            except Unprocessable as exc:
                return exc

    outcome = _at_once(committed, disable_taking, hand_over)

    assert isinstance(outcome, Unprocessable)
    with Session(committed) as session:
        owners = set(session.exec(select(Offer.owner_id)).all())
    assert owners == {leaving}  # nothing went to someone who can no longer sign in


def test_an_offer_given_to_someone_else_at_the_same_moment_stays_theirs(
    committed: Engine, settings: Settings
) -> None:
    _skip_on_sqlite(committed)
    leaving, taking, other = _people(committed)
    first, second = _owned_drafts(committed, settings, leaving, 2)

    def give_to_other(session: Session) -> object:
        return service.update_offer(
            session,
            first,
            OfferUpdate(notes="Other takes this one"),
            actor="b",
            settings=settings,
            owner=service.Owner(other),
        )

    def hand_over() -> object:
        with Session(committed) as session:
            return user_actions.hand_over_offers(session, leaving, taking, actor="a")

    done = _at_once(committed, give_to_other, hand_over)

    assert isinstance(done, user_actions.HandedOver) and done.count == 1
    with Session(committed) as session:
        assert session.get(Offer, first).owner_id == other  # type: ignore[union-attr]
        assert session.get(Offer, second).owner_id == taking  # type: ignore[union-attr]
        history = session.exec(
            select(AuditLogEntry.summary)
            .where(AuditLogEntry.offer_id == first, AuditLogEntry.action == "offer.assign")
            .order_by(col(AuditLogEntry.id))
        ).all()
    assert history == ["Owner changed from leaving@example.com to other@example.com"]


def _enrolled(engine: Engine, user_id: int) -> None:
    with Session(engine, expire_on_commit=False) as session:
        staff = users.load_active(session, user_id)
        assert staff is not None
        secret = twofactor.begin_enrolment(session, staff)
        twofactor.confirm_enrolment(session, staff, pyotp.TOTP(secret).now())


def test_two_admins_resetting_one_users_two_factor_at_once_reset_it_once(
    committed: Engine,
) -> None:
    """The second admin waits for the first's reset, then is told it was reset already: one
    reset, one audit entry (both used to succeed and log it twice)."""
    _skip_on_sqlite(committed)
    user_id, first_admin, second_admin = _people(committed)
    _enrolled(committed, user_id)

    def reset(session: Session, by: int) -> str:
        return user_actions.reset_second_factor(session, user_id, actor=f"staff:{by}", by=by)

    def second() -> object:
        with Session(committed) as session:
            try:
                return reset(session, second_admin)
            except Conflict as exc:
                return exc

    outcome = _at_once(committed, lambda s: reset(s, first_admin), second)

    assert isinstance(outcome, Conflict)
    assert "reset already" in outcome.detail
    with Session(committed) as session:
        entries = session.exec(
            select(AuditLogEntry).where(
                AuditLogEntry.action == "staff_user.2fa_reset",
                AuditLogEntry.entity_id == str(user_id),
            )
        ).all()
        assert [entry.actor for entry in entries] == [f"staff:{first_admin}"]
        assert not twofactor.is_enabled(session, user_id)
