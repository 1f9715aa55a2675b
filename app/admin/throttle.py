"""Failed sign-ins throttled, counted in the database so every worker process shares one count
and a restart forgives nobody.

Two rules, neither of which lets a stranger lock the owner out:

- an account *from one address* gets FREE_TRIES failures, then waits before each further try,
  1 s, 2 s, 4 s ... up to MAX_DELAY: guessing one password from one place gets slow fast, while
  the owner, whose own address has no failures, signs in at once;
- one address gets MAX_PER_ADDRESS failures in WINDOW whatever the accounts (password spraying).
"""

import hashlib
import hmac
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, text
from sqlmodel import Session, col, select

from app.auth.staff import LoginFailure
from app.db import utcnow
from app.errors import AppError

WINDOW = timedelta(minutes=15)
FREE_TRIES = 3
MAX_DELAY = timedelta(minutes=15)
MAX_PER_ADDRESS = 20
# The first key of the advisory locks that let attempts from one address take turns.
ADVISORY_LOCK_SPACE = 0x0FF3_7140


class TooManyLogins(AppError):
    status_code = 429
    title = "Too many failed sign-ins"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Too many failed sign-ins from this address. Please wait {_wait_text(retry_after)} "
            "and try again, or ask an admin to reset your password."
        )
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


def _wait_text(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


@dataclass(frozen=True)
class Attempt:
    email: str
    address_hash: str


def attempt(email: str, address: str, *, key: str, second_factor: bool = False) -> Attempt:
    """A sign-in attempt's key. The second step's (a TOTP or recovery code) is counted apart
    from the password's: a right password forgives the password's count, and would otherwise
    wipe the wrong codes of someone who has the password but not the phone before each guess."""
    keyed = f"second factor {address}" if second_factor else address
    digest = hmac.new(key.encode(), keyed.encode(), hashlib.sha256).hexdigest()
    return Attempt(email=email.strip().lower(), address_hash=digest)


def check(session: Session, who: Attempt) -> None:
    """Raise TooManyLogins while this account from this address must wait, or while the
    address has used up its attempts."""
    since = utcnow() - WINDOW
    count, last = session.exec(
        select(func.count(), func.max(LoginFailure.failed_at)).where(
            LoginFailure.email == who.email,
            LoginFailure.address_hash == who.address_hash,
            col(LoginFailure.failed_at) > since,
        )
    ).one()
    if count >= FREE_TRIES and last is not None:
        _wait_until(last + delay_after(count))
    count, oldest = session.exec(
        select(func.count(), func.min(LoginFailure.failed_at)).where(
            LoginFailure.address_hash == who.address_hash, col(LoginFailure.failed_at) > since
        )
    ).one()
    if count >= MAX_PER_ADDRESS and oldest is not None:
        _wait_until(oldest + WINDOW)


def count_attempt(session: Session, who: Attempt) -> None:
    """Refuse while ``who`` must wait; else count this attempt as a failure, committed, before
    its password or code is checked (``forgive`` it when it was right). Attempts sent side by
    side then each find the ones before them counted, and the check, slow on purpose for a
    password, runs outside any transaction (on SQLite: without the one writer's lock).

    Attempts from one address look at the count and add themselves in turn: looked at side by
    side, a burst sent at one moment all found it empty. The turn is short (two counts and an
    insert, never the password's check)."""
    _take_turns(session, who)
    try:
        check(session, who)
    except TooManyLogins:
        session.rollback()
        raise
    record_failure(session, who)


def _take_turns(session: Session, who: Attempt) -> None:
    # SQLite: a write transaction begins IMMEDIATE (app.db), holding the one writer's lock
    # already. PostgreSQL: a lock of the transaction's, keyed by the address (both rules count
    # by it), in a namespace of its own (the two-key form; app.tracking.retention uses one).
    if session.get_bind().dialect.name == "postgresql":
        address_key = int(who.address_hash[:8], 16) - 2**31
        session.execute(
            text("SELECT pg_advisory_xact_lock(CAST(:space AS integer), CAST(:key AS integer))"),
            {"space": ADVISORY_LOCK_SPACE, "key": address_key},
        )
    else:
        session.connection()


def delay_after(failures: int) -> timedelta:
    """The wait after ``failures`` failures of one account from one address."""
    if failures < FREE_TRIES:
        return timedelta(0)
    return min(timedelta(seconds=2 ** min(failures - FREE_TRIES, 20)), MAX_DELAY)


def _wait_until(moment: datetime) -> None:
    wait = (moment - utcnow()).total_seconds()
    if wait > 0:
        raise TooManyLogins(max(1, math.ceil(wait)))


def record_failure(session: Session, who: Attempt) -> None:
    """Count a failure (committed, whatever happens next) and drop those past the window."""
    session.add(LoginFailure(email=who.email, address_hash=who.address_hash))
    session.execute(delete(LoginFailure).where(col(LoginFailure.failed_at) < utcnow() - WINDOW))
    session.commit()


def forgive_account(session: Session, email: str) -> None:
    """A successful sign-in (or a new password) clears the account's count, from every
    address; an address's count for other accounts stays."""
    session.execute(delete(LoginFailure).where(col(LoginFailure.email) == email))


def forgive(session: Session, who: Attempt) -> None:
    """A successful sign-in clears the count of this account from this address only: the
    owner signing in elsewhere does not reset a guesser's delays."""
    session.execute(
        delete(LoginFailure).where(
            col(LoginFailure.email) == who.email,
            col(LoginFailure.address_hash) == who.address_hash,
        )
    )
