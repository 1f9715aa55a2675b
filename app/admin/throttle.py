"""Failed sign-ins throttled per account and per address, counted in the database so every
worker process shares one count and a restart forgives nobody."""

import hashlib
import hmac
import math
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from app.auth.staff import LoginFailure
from app.db import utcnow
from app.errors import AppError

WINDOW = timedelta(minutes=15)
MAX_PER_ACCOUNT = 5
MAX_PER_ADDRESS = 20


class TooManyLogins(AppError):
    status_code = 429
    title = "Too many failed sign-ins"

    def __init__(self, retry_after: int) -> None:
        minutes = max(1, math.ceil(retry_after / 60))
        super().__init__(
            f"Too many failed sign-ins for this account or from this address. Please wait "
            f"{minutes} minute{'s' if minutes > 1 else ''} and try again, or ask an admin to "
            "reset your password."
        )
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


@dataclass(frozen=True)
class Attempt:
    email: str
    address_hash: str


def attempt(email: str, address: str, *, key: str) -> Attempt:
    digest = hmac.new(key.encode(), address.encode(), hashlib.sha256).hexdigest()
    return Attempt(email=email.strip().lower(), address_hash=digest)


def check(session: Session, who: Attempt) -> None:
    """Raise TooManyLogins while the account or the address has used up its attempts."""
    since = utcnow() - WINDOW
    for column, value, limit in (
        (LoginFailure.email, who.email, MAX_PER_ACCOUNT),
        (LoginFailure.address_hash, who.address_hash, MAX_PER_ADDRESS),
    ):
        count, oldest = session.exec(
            select(func.count(), func.min(LoginFailure.failed_at)).where(
                column == value, col(LoginFailure.failed_at) > since
            )
        ).one()
        if count >= limit and oldest is not None:
            wait = (oldest + WINDOW - utcnow()).total_seconds()
            raise TooManyLogins(max(1, math.ceil(wait)))


def record_failure(session: Session, who: Attempt) -> None:
    """Count a failure (committed, whatever happens next) and drop those past the window."""
    session.add(LoginFailure(email=who.email, address_hash=who.address_hash))
    session.execute(delete(LoginFailure).where(col(LoginFailure.failed_at) < utcnow() - WINDOW))
    session.commit()


def forgive_account(session: Session, email: str) -> None:
    """A successful sign-in clears the account's count (not the address's)."""
    session.execute(delete(LoginFailure).where(col(LoginFailure.email) == email))
