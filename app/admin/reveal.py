"""A secret shown once, on the staff page a form redirects to (Post/Redirect/Get).

Answering the POST with the secret let a reload send the form again: a second webhook
endpoint, another rotation, a second API key. The secret instead waits in the staff session
until the next staff page takes it out and shows it; a reload of that page finds nothing.

The session is Starlette's signed cookie, which anyone holding it can read: the secret goes in
sealed (Fernet, with a key of its own derived from the server's secret key) and is good for a
few minutes, so a copy of an old cookie yields nothing either.
"""

import base64
import hashlib
import hmac
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken
from starlette.requests import Request

from app.config import get_settings

SESSION_KEY = "reveal_once"
KEEP_SECONDS = 600


@dataclass(frozen=True)
class Revealed:
    value: str
    title: str  # the alert's heading, also the text box's accessible name
    label: str  # what to do with it


def hold(request: Request, value: str, *, title: str, label: str) -> None:
    """Keep ``value`` for the next staff page to show once."""
    sealed = _fernet().encrypt(value.encode()).decode()
    request.session[SESSION_KEY] = {"sealed": sealed, "title": title, "label": label}


def take(request: Request) -> Revealed | None:
    """The secret held for this page, removed from the session; None if none or expired."""
    held = request.session.pop(SESSION_KEY, None)
    if not isinstance(held, dict):
        return None
    try:
        value = _fernet().decrypt(str(held["sealed"]).encode(), ttl=KEEP_SECONDS)
    except (InvalidToken, KeyError):
        return None
    return Revealed(value.decode(), str(held.get("title", "")), str(held.get("label", "")))


def _fernet() -> Fernet:
    secret = get_settings().resolved_secret_key().encode()
    key = hmac.new(secret, b"offertrack-staff-reveal", hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(key))
