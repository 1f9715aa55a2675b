"""A secret shown once, on the staff page a form redirects to (Post/Redirect/Get).

Answering the POST with the secret let a reload send the form again: a second webhook
endpoint, another rotation, a second API key. The secret instead waits in the staff session
until the next staff page takes it out and shows it; a reload of that page finds nothing.

The session is Starlette's signed cookie, which anyone holding it can read: the secret goes in
sealed (Fernet, with a key of its own derived from the server's secret key) and is good for a
few minutes. Taking it out of the cookie is not enough on its own, since a copy of the cookie
sent with the redirect still holds it: showing it also records the sealed value as shown in
the database (``staff_reveal_shown``), in one insert that only the first of any number of
copies, in any process or node, can make. Every later copy shows nothing. The record outlives
the seal's few minutes, after which the seal alone refuses it.
"""

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

import anyio
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import String, delete
from sqlmodel import Field, Session, SQLModel, col
from starlette.requests import Request

from app.config import get_settings
from app.db import DB_UNREACHABLE, UTCDateTime, get_engine, insert_on_conflict, utcnow

SESSION_KEY = "reveal_once"
KEEP_SECONDS = 600
# Far beyond KEEP_SECONDS (and Fernet's allowance for clocks that differ between nodes): a
# seal whose record is gone has long been refused by its age.
KEEP_SHOWN = timedelta(days=1)
_CLAIM_FAILED = "reveal_claim_failed"


class RevealShown(SQLModel, table=True):
    """A sealed secret that a page has shown: no copy of the cookie shows it again."""

    __tablename__ = "staff_reveal_shown"

    # SHA-256 of the seal (never the secret): Fernet's random IV makes each one unique.
    seal_hash: str = Field(sa_type=String(64), primary_key=True)
    shown_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


@dataclass(frozen=True)
class Revealed:
    value: str
    title: str  # the alert's heading, also the text box's accessible name
    label: str  # what to do with it


def hold(request: Request, value: str, *, title: str, label: str) -> None:
    """Keep ``value`` for the next staff page to show once."""
    sealed = _fernet().encrypt(value.encode()).decode()
    request.session[SESSION_KEY] = {"sealed": sealed, "title": title, "label": label}


async def take(request: Request) -> Revealed | None:
    """The secret held for this page, removed from the session; None if none, expired, or
    already shown through another copy of this cookie."""
    held = request.session.get(SESSION_KEY)
    if held is None or getattr(request.state, _CLAIM_FAILED, False):
        return None
    revealed = _unseal(held)
    if revealed is not None and not await _claimed(request, held["sealed"]):
        revealed = None
    request.session.pop(SESSION_KEY, None)
    return revealed


async def _claimed(request: Request, sealed: str) -> bool:
    try:
        return await anyio.to_thread.run_sync(_claim, sealed)
    except DB_UNREACHABLE:
        # The page answers 503; its error page tries no second claim, and the cookie keeps
        # the secret for a reload once the database answers again.
        setattr(request.state, _CLAIM_FAILED, True)
        raise


def _unseal(held: object) -> Revealed | None:
    if not isinstance(held, dict):
        return None
    try:
        value = _fernet().decrypt(str(held["sealed"]).encode(), ttl=KEEP_SECONDS)
    except (InvalidToken, KeyError):
        return None
    return Revealed(value.decode(), str(held.get("title", "")), str(held.get("label", "")))


def _claim(sealed: str) -> bool:
    """Record the seal as shown; False when some copy of the cookie showed it already."""
    now = utcnow()
    row = {"seal_hash": hashlib.sha256(sealed.encode()).hexdigest(), "shown_at": now}
    with Session(get_engine()) as session:
        insert = insert_on_conflict(session.get_bind().dialect.name, RevealShown)
        statement = insert.values(row).on_conflict_do_nothing()
        first = session.execute(statement.returning(col(RevealShown.seal_hash))).first()
        old = col(RevealShown.shown_at) < now - KEEP_SHOWN
        session.execute(delete(RevealShown).where(old))
        session.commit()
    return first is not None


def seal(value: str, purpose: bytes) -> str:
    """``value`` sealed for the staff session's cookie (readable by anyone holding it) with a
    key of ``purpose``'s own: a form held across "Confirm access" (app/admin/sudo.py)."""
    return _fernet(purpose).encrypt(value.encode()).decode()


def unseal(sealed: object, purpose: bytes, ttl: int) -> str | None:
    """What ``seal`` sealed, while younger than ``ttl`` seconds; None otherwise."""
    try:
        return _fernet(purpose).decrypt(str(sealed).encode(), ttl=ttl).decode()
    except (InvalidToken, UnicodeDecodeError):
        return None


def _fernet(purpose: bytes = b"offertrack-staff-reveal") -> Fernet:
    secret = get_settings().resolved_secret_key().encode()
    key = hmac.new(secret, purpose, hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(key))
