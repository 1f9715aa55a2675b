"""A leaver who owns thousands of offers: the handover changes whose they are in one statement,
whatever their number, and never reads their lines (it loaded every offer with its lines and
wrote each back: a minute for 5,000 offers on PostgreSQL, bench/staff_pages.py)."""

from collections.abc import Callable

from sqlmodel import Session, col, select

from app.admin import user_actions, users
from app.audit import AuditLogEntry
from app.auth.staff import Role
from app.config import get_settings
from app.offers.models import Offer
from tests.admin.conftest import StaffLogin
from tests.factories import make_offer
from tests.plans import captured, naming


def _user_id(db: Session, email: str) -> int:
    user = users.find_by_email(db, email)
    assert user is not None and user.id is not None
    return user.id


def _give(db: Session, owner: int, count: int) -> list[str]:
    offers = [make_offer(db, get_settings()) for _ in range(count)]
    for offer in offers:
        offer.owner_id = owner
        db.add(offer)
    db.commit()
    return sorted(offer.id for offer in offers)


def _statements_of_handover(db: Session, source: int, target: int) -> list[str]:
    with Session(db.get_bind()) as session, captured(db.get_bind()) as statements:  # type: ignore[arg-type]
        user_actions.hand_over_offers(session, source, target, actor="staff:admin@example.com")
    return [sql for sql, _ in statements]


def test_a_handover_takes_as_many_statements_for_twelve_offers_as_for_two_and_reads_no_lines(
    make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    for email in ("few@example.com", "many@example.com", "taking@example.com"):
        make_staff(Role.SALES, email)
    few, many = _user_id(db, "few@example.com"), _user_id(db, "many@example.com")
    taking = _user_id(db, "taking@example.com")
    _give(db, few, 2)
    many_ids = _give(db, many, 12)

    for_few = _statements_of_handover(db, few, taking)
    for_many = _statements_of_handover(db, many, taking)

    assert len(for_many) == len(for_few), "\n".join(for_many)
    assert not naming([(sql, None) for sql in for_many], "offer_line")
    db.expire_all()
    owned = db.exec(select(Offer.id).where(col(Offer.owner_id) == taking)).all()
    assert set(many_ids) <= set(owned) and len(owned) == 14
    entries = db.exec(
        select(AuditLogEntry).where(
            AuditLogEntry.action == "offer.assign", col(AuditLogEntry.offer_id).in_(many_ids)
        )
    ).all()
    assert sorted(entry.offer_id or "" for entry in entries) == many_ids
    assert {entry.summary for entry in entries} == {
        "Owner changed from many@example.com to taking@example.com"
    }


def _alert_statements(db: Session, source: int, target: int) -> list[tuple[str, int]]:
    with Session(db.get_bind()) as session, captured(db.get_bind()) as statements:  # type: ignore[arg-type]
        user_actions.hand_over_offers(session, source, target, actor="staff:admin@example.com")
    return [(sql, len(params or ())) for sql, params in naming(statements, "staff_alert")]


def test_moving_a_leavers_waiting_alerts_binds_as_much_for_twelve_offers_as_for_two(
    make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    """It bound one variable per offer: a leaver with more offers than SQLite takes in one
    statement (32,766 on a default build) could not be handed over at all."""
    for email in ("few@example.com", "many@example.com", "taking@example.com"):
        make_staff(Role.SALES, email)
    few, many = _user_id(db, "few@example.com"), _user_id(db, "many@example.com")
    taking = _user_id(db, "taking@example.com")
    _give(db, few, 2)
    _give(db, many, 12)

    for_few = _alert_statements(db, few, taking)
    for_many = _alert_statements(db, many, taking)

    assert len(for_few) == 1 and for_many == for_few
    assert for_few[0][1] <= 5, for_few
