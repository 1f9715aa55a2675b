"""What an admin does for another staff user beyond their role and password: hand a departed
user's offers to a colleague, end all their sessions (a lost or stolen phone), reset their
second factor. Each is audited on the user and commits."""

from dataclasses import dataclass
from datetime import date, timedelta

from sqlmodel import Session, col, select

from app import audit
from app.admin import sessions as staff_sessions
from app.admin import twofactor, users
from app.auth.staff import Role, StaffUser
from app.db import read_only
from app.errors import Conflict, Unprocessable
from app.fields import MAX_ROW_ID
from app.notifications import alerts
from app.offers import service as offers_service
from app.tracking import pagecache

# Statuses a person still works on: the customer may answer, or the order is running.
OPEN_STATUSES = ("draft", "issued", "accepted")


@dataclass(frozen=True)
class UserCare:
    """What the staff user's page shows an admin about the account beyond its columns."""

    user: StaffUser
    offers: dict[str, int]
    live_sessions: int
    two_factor: bool

    @property
    def offers_total(self) -> int:
        return sum(self.offers.values())

    @property
    def open_offers(self) -> int:
        return sum(n for status, n in self.offers.items() if status in OPEN_STATUSES)


def user_care(session: Session, user_id: int, today: date, idle: timedelta) -> UserCare:
    with read_only(session):
        user = users.get_user(session, user_id)
        return UserCare(
            user=user,
            offers=offers_service.owned_by_status(session, user_id, today),
            live_sessions=len(staff_sessions.live_sessions(session, user_id, idle)),
            two_factor=twofactor.is_enabled(session, user_id),
        )


def successors(session: Session, user_id: int) -> list[StaffUser]:
    """Who may take over offers: active users who may write offers, not the user themselves."""
    with read_only(session):
        query = (
            select(StaffUser)
            .where(
                col(StaffUser.is_active),
                col(StaffUser.role).in_([Role.SALES, Role.ADMIN]),
                col(StaffUser.id) != user_id,
            )
            .order_by(col(StaffUser.email))
        )
        return list(session.exec(query).all())


@dataclass(frozen=True)
class HandedOver:
    source: str
    target: str
    count: int


def hand_over_offers(session: Session, user_id: int, to_id: int, *, actor: str) -> HandedOver:
    """Every offer the user owns goes to ``to_id``, with the alerts still waiting for their
    digest. Audited on each offer and once on the user. Commits."""
    # An id no row can have (a crafted form) is nobody, not an overflow in the driver.
    possible = 1 <= to_id <= MAX_ROW_ID and to_id != user_id
    locked = _lock_users(session, {user_id, to_id} if possible else {user_id})
    if user_id not in locked:
        raise users.StaffUserNotFound(user_id)
    source, target = locked[user_id], locked.get(to_id)
    if target is None or not target.is_active or not Role(target.role).includes(Role.SALES):
        raise Unprocessable(
            "Choose an active sales person or admin to take the offers over.", loc=("to_user",)
        )
    # The alerts first, while the offers (locked) are still the leaver's: chosen by who owns
    # them, one statement however many there are.
    offers_service.lock_owned(session, user_id)
    alerts.redirect_waiting(session, offers_service.owned_by(user_id), source.email, target.email)
    offer_ids = offers_service.hand_over_owned(session, user_id, to_id, actor=actor)
    if not offer_ids:
        raise Conflict(f"{source.email} owns no offers: there is nothing to hand over.")
    # Their tracking pages name the new owner as the contact. The offers changed by one
    # UPDATE, which the page cache's watch on the ORM's flushes does not see.
    pagecache.drop_on_commit(session, offer_ids)
    audit.record(
        session,
        actor=actor,
        action="staff_user.handover",
        entity_type="staff_user",
        entity_id=user_id,
        summary=f"Handed {len(offer_ids)} offers of {source.email} over to {target.email}",
        changes={"to": target.email, "offers": len(offer_ids)},
    )
    result = HandedOver(source.email, target.email, len(offer_ids))
    session.commit()
    return result


def _lock_users(session: Session, ids: set[int]) -> dict[int, StaffUser]:
    """The users' rows read afresh and locked until the commit: a colleague disabled or a
    leaver re-enabled by another admin meanwhile is seen as they are. In id order, so two
    handovers between the same two people wait for each other instead of deadlocking; FOR NO
    KEY UPDATE, which an offer being given to either of them meanwhile (its foreign key's
    share lock) does not wait for."""
    rows = session.exec(
        select(StaffUser)
        .where(col(StaffUser.id).in_(sorted(ids)))
        .order_by(col(StaffUser.id))
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    ).all()
    return {user.id: user for user in rows if user.id is not None}


def _other_user(session: Session, user_id: int, by: int, own_page: str) -> StaffUser:
    if user_id == by:
        raise Conflict(f"For your own account, use Your account: {own_page}.")
    return users.get_user(session, user_id)


def end_sessions(session: Session, user_id: int, *, actor: str, by: int) -> tuple[str, int]:
    """Sign the user out on every device at once; returns their e-mail and how many ended."""
    user = _other_user(session, user_id, by, "“Sign out everywhere else”")
    ended = staff_sessions.end_others(session, user_id, keep=None)
    audit.record(
        session,
        actor=actor,
        action="staff_user.sessions_end",
        entity_type="staff_user",
        entity_id=user_id,
        summary=f"Signed {user.email} out everywhere ({ended} sessions)",
        changes={"sessions": ended},
    )
    session.commit()
    return user.email, ended


def reset_second_factor(session: Session, user_id: int, *, actor: str, by: int) -> str:
    """A lost phone: the user's sessions end and their second factor goes; they set it up
    again at their next sign-in (admins must, where it is required). Returns their e-mail."""
    user = _other_user(session, user_id, by, "switch two-factor sign-in off there")
    # Read under the user's row lock: two admins resetting at one moment take turns, and the
    # second finds it gone (one reset, one audit entry) instead of both "succeeding".
    _lock_users(session, {user_id})
    if not twofactor.is_enabled(session, user_id):
        raise Conflict(
            f"{user.email} has no two-factor sign-in to reset: it was reset already "
            "(perhaps by another admin just now), or never set up."
        )
    staff_sessions.end_others(session, user_id, keep=None)
    twofactor.reset(session, user_id, user.email, actor=actor)  # commits both
    return user.email
