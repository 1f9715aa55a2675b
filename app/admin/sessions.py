"""Staff sessions kept on the server: the cookie carries a random id, the row says whose it is
and whether it still counts. Sign-out, "sign out everywhere else" and a change of password,
role or active flag end sessions at once, in every process (each request reads its row).

Minimal data: when it started and was last used, and the browser and OS family (to tell one's
sessions apart); never the address or the full user agent. Rows go 30 days after they end.
"""

import hashlib
import secrets
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, ForeignKey, Integer, String, delete, update
from sqlalchemy.exc import OperationalError
from sqlmodel import Column, Field, Session, SQLModel, col, select

from app.auth.staff import StaffUser
from app.db import NO_WAIT, UTCDateTime, utcnow
from app.errors import Conflict
from app.tracking.scans import classify_user_agent

# However busy, a session ends this long after sign-in; idleness ends it sooner.
MAX_AGE = timedelta(hours=12)
# last_seen_at is written at most this often: a request does not need a write to count.
TOUCH_EVERY = timedelta(minutes=1)
KEEP_ENDED = timedelta(days=30)
# The session of the request being served, so that a change a user makes to their own account
# ends their *other* sessions and keeps this one.
current_session_id: ContextVar[int | None] = ContextVar("staff_session_id", default=None)


class StaffSession(SQLModel, table=True):
    __tablename__ = "staff_session"

    id: int | None = Field(default=None, primary_key=True)
    # SHA-256 of the cookie's random token: the table alone lets no one in.
    token_hash: str = Field(sa_type=String(64), unique=True)
    user_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("staff_user.id", ondelete="CASCADE"), index=True, nullable=False
        )
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # "Firefox on Linux": enough to recognise one's own devices, nothing more.
    client: str = Field(default="", sa_type=String(110))
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Signed in with a TOTP or recovery code (or the set-up's first code), not the password
    # alone: where admins must use two factors, an admin's session without one does not count.
    second_factor: bool = False
    # When the session last proved its user's password (or a current code): at sign-in, and on
    # the "Confirm access" page. Sensitive actions need it recent (app/admin/sudo.py).
    confirmed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


@dataclass(frozen=True)
class LiveSession:
    id: int
    user_id: int
    created_at: datetime
    last_seen_at: datetime
    client: str
    second_factor: bool
    confirmed_at: datetime | None = None


def _live(row: StaffSession) -> LiveSession:
    return LiveSession(
        row.id or 0,
        row.user_id,
        row.created_at,
        row.last_seen_at,
        row.client,
        row.second_factor,
        row.confirmed_at,
    )


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def client_label(user_agent: str) -> str:
    device = classify_user_agent(user_agent[:1000])
    browser, system = device.browser_family or "Unknown browser", device.os_family
    return f"{browser} on {system}"[:110] if system else browser[:110]


def start(session: Session, user_id: int, user_agent: str, *, second_factor: bool) -> str:
    """A new session for the user, who is now signed in (every factor given); returns the
    token for the cookie. Commits."""
    token = secrets.token_urlsafe(32)
    client = client_label(user_agent)
    session.add(
        StaffSession(
            token_hash=_hash(token),
            user_id=user_id,
            client=client,
            second_factor=second_factor,
            confirmed_at=utcnow(),  # the password was just given: a sign-in confirms
        )
    )
    signed_in = update(StaffUser).where(col(StaffUser.id) == user_id)
    session.execute(signed_in.values(last_login_at=utcnow()))
    session.execute(
        delete(StaffSession).where(col(StaffSession.last_seen_at) < utcnow() - KEEP_ENDED)
    )
    session.commit()
    return token


def find_live(session: Session, token: str, idle: timedelta) -> LiveSession | None:
    """The session behind a cookie's token while it counts: not ended, not idle for longer
    than ``idle``, not older than MAX_AGE."""
    row = session.exec(select(StaffSession).where(StaffSession.token_hash == _hash(token))).first()
    now = utcnow()
    if row is None or row.id is None or row.ended_at is not None:
        return None
    if now - row.created_at > MAX_AGE or now - row.last_seen_at > idle:
        return None
    return _live(row)


def touch(engine: Engine, live: LiveSession) -> None:
    """Note that the session was used (at most once a minute: a request needs no write).
    Best effort: while another writer holds SQLite's lock (perhaps this very request's), the
    next request notes it instead of this one waiting."""
    now = utcnow()
    if now - live.last_seen_at < TOUCH_EVERY:
        return
    query = update(StaffSession).where(col(StaffSession.id) == live.id).values(last_seen_at=now)
    try:
        with engine.connect().execution_options(**{NO_WAIT: True}) as connection:
            with connection.begin():
                connection.execute(query)
    except OperationalError:
        pass


def end(session: Session, token: str) -> None:
    """Sign-out: the session stops counting, wherever its cookie is. Commits."""
    session.execute(
        update(StaffSession)
        .where(col(StaffSession.token_hash) == _hash(token), col(StaffSession.ended_at).is_(None))
        .values(ended_at=utcnow())
    )
    session.commit()


def end_others(session: Session, user_id: int, keep: int | None) -> int:
    """End every session of the user but ``keep``; returns how many. The caller commits."""
    query = update(StaffSession).where(
        col(StaffSession.user_id) == user_id, col(StaffSession.ended_at).is_(None)
    )
    if keep is not None:
        query = query.where(col(StaffSession.id) != keep)
    return int(session.execute(query.values(ended_at=utcnow())).rowcount)  # type: ignore[attr-defined]


def end_for_account_change(session: Session, user_id: int) -> None:
    """A password, role or active flag changed: every session of the user ends, except the one
    making the change when it is the user's own. The caller commits."""
    keep = current_session_id.get()
    own = session.get(StaffSession, keep) if keep is not None else None
    end_others(session, user_id, keep if own is not None and own.user_id == user_id else None)


def renew(session: Session, session_id: int) -> str:
    """The same session under a new token (its start, device and second factor kept), the old
    token ending: after a change of password, a copy of the cookie taken before it is worth
    nothing, while this browser stays signed in. Returns the new token; the caller commits."""
    old = session.get(StaffSession, session_id)
    if old is None or old.ended_at is not None:
        # Signed out from another device meanwhile: the caller's change is not saved.
        raise Conflict("This session has just been signed out. Sign in again and retry.")
    token = secrets.token_urlsafe(32)
    session.add(
        StaffSession(
            token_hash=_hash(token),
            user_id=old.user_id,
            created_at=old.created_at,  # MAX_AGE still counts from the sign-in
            client=old.client,
            second_factor=old.second_factor,
            confirmed_at=old.confirmed_at,
        )
    )
    old.ended_at = utcnow()
    session.add(old)
    return token


def confirm(session: Session, session_id: int) -> None:
    """The session's user has just given their password or a current code again (the "Confirm
    access" page). The caller commits."""
    session.execute(
        update(StaffSession)
        .where(col(StaffSession.id) == session_id, col(StaffSession.ended_at).is_(None))
        .values(confirmed_at=utcnow())
    )


def end_one(session: Session, user_id: int, session_id: int) -> None:
    """End one of the user's own sessions (never someone else's). Commits."""
    session.execute(
        update(StaffSession)
        .where(
            col(StaffSession.id) == session_id,
            col(StaffSession.user_id) == user_id,
            col(StaffSession.ended_at).is_(None),
        )
        .values(ended_at=utcnow())
    )
    session.commit()


def live_sessions(session: Session, user_id: int, idle: timedelta) -> list[LiveSession]:
    """The user's sessions that still count, most recently used first."""
    now = utcnow()
    rows = session.exec(
        select(StaffSession)
        .where(
            StaffSession.user_id == user_id,
            col(StaffSession.ended_at).is_(None),
            col(StaffSession.created_at) > now - MAX_AGE,
            col(StaffSession.last_seen_at) > now - idle,
        )
        .order_by(col(StaffSession.last_seen_at).desc())
    ).all()
    return [_live(row) for row in rows]
