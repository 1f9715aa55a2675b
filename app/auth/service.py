"""API keys: issued once, stored as a hash, checked on every API request."""

import hashlib
import secrets
from datetime import timedelta

from sqlmodel import Session, select

from app.auth.models import ApiKey
from app.db import utcnow
from app.errors import Unauthorized

TOKEN_PREFIX = "ot_"
# Writing last_used_at on every call would turn each read into a write; a minute is enough detail.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class InvalidApiKey(Unauthorized):
    def __init__(self) -> None:
        super().__init__("A valid API key is required: send 'Authorization: Bearer <key>'.")


def hash_token(token: str) -> str:
    # The token carries 256 random bits, so a fast hash is enough: nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_key(session: Session, name: str) -> tuple[ApiKey, str]:
    """Create a key and return it with its token, which is shown this once and never stored."""
    name = name.strip()
    if not name or len(name) > 100:
        raise ValueError("An API key needs a name of 1 to 100 characters.")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(name=name, prefix=token[:10], token_hash=hash_token(token))
    session.add(key)
    session.commit()
    return key, token


def authenticate(session: Session, token: str | None) -> ApiKey:
    """The active key behind ``token``, or InvalidApiKey."""
    if not token:
        raise InvalidApiKey()
    key = session.exec(select(ApiKey).where(ApiKey.token_hash == hash_token(token))).first()
    if key is None or key.revoked_at is not None:
        raise InvalidApiKey()
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        key.last_used_at = now
        session.add(key)
        session.commit()
    return key
