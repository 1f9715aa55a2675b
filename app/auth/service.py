"""API keys: issued once, stored as a hash, checked on every API request."""

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from app import audit, invalidation
from app.auth.models import ApiKey
from app.db import read_only, utcnow
from app.errors import Conflict, NotFound, Unauthorized

TOKEN_PREFIX = "ot_"
# Writing last_used_at on every call would turn each read into a write; a minute is enough detail.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# A verified key is trusted this long without asking the database while this process hears
# the other processes' revocations (app.invalidation), and only for REVOCATION_SECONDS while it
# does not: a key revoked anywhere is refused everywhere within a second either way.
VERIFIED_TTL_SECONDS = 30.0
REVOCATION_SECONDS = 1.0
API_KEYS_TOPIC = "api_keys"


class InvalidApiKey(Unauthorized):
    def __init__(self) -> None:
        super().__init__("A valid API key is required: send 'Authorization: Bearer <key>'.")


def hash_token(token: str) -> str:
    # The token carries 256 random bits, so a fast hash is enough: nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()


class KeyNameTaken(Conflict):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"An active API key is called {name!r} already: give this one another name (the "
            "audit log and revoke-api-key tell keys apart by their name).",
            loc=("name",),
        )


def _active_named(name: str) -> SelectOfScalar[ApiKey]:
    # "CRM" and "crm" are one name to a person reading the log: compared as the database's
    # unique index on lower(name) compares them (migration l05e1207a001).
    return select(ApiKey).where(
        func.lower(ApiKey.name) == func.lower(name.strip()), col(ApiKey.revoked_at).is_(None)
    )


def name_in_use(session: Session, name: str) -> str | None:
    """The name of the active key that has this name, capitals aside: the log names a key by it."""
    key = session.exec(_active_named(name)).first()
    return None if key is None else key.name


def create_api_key(session: Session, name: str, *, actor: str) -> tuple[ApiKey, str]:
    """Create a key and return it with its token, which is shown this once and never stored."""
    name = name.strip()
    if not name or len(name) > 100:
        raise ValueError("An API key needs a name of 1 to 100 characters.")
    taken = name_in_use(session, name)
    if taken is not None:
        raise KeyNameTaken(taken)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(name=name, prefix=token[:10], token_hash=hash_token(token))
    session.add(key)
    try:
        session.flush()
    except IntegrityError as exc:  # created by someone else since name_in_use looked
        session.rollback()
        raise KeyNameTaken(name) from exc
    assert key.id is not None
    audit.record(
        session,
        actor=actor,
        action="api_key.create",
        entity_type="api_key",
        entity_id=key.id,
        summary=f"Created API key {name!r} ({key.prefix}…)",
    )
    session.commit()
    return key, token


@dataclass(frozen=True)
class Caller:
    """Who is calling the API: enough to authorize and to name in audit fields."""

    key_id: int
    name: str

    @property
    def actor(self) -> str:
        return f"api:{self.name}"


class _VerifiedKeys:
    """Recently verified keys, so a burst of calls does not query the key table each time.

    A key revoked in this process stops working at once (forget), in the others as soon as
    they hear of it, and within REVOCATION_SECONDS in a process that cannot hear (no channel,
    or reconnecting).
    """

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, Caller]] = {}
        self._lock = threading.Lock()
        # Counts forgets: a key read from the database before a revocation was heard must not
        # be remembered after it (it would be trusted for VERIFIED_TTL_SECONDS, revoked).
        self.generation = 0

    def get(self, token_hash: str) -> Caller | None:
        entry = self._entries.get(token_hash)
        ttl = VERIFIED_TTL_SECONDS if invalidation.is_live() else REVOCATION_SECONDS
        if entry is None or time.monotonic() - entry[0] > ttl:
            return None
        return entry[1]

    def put(self, token_hash: str, caller: Caller, read_in: int) -> None:
        """Remember a key verified by a read that began in generation ``read_in``."""
        with self._lock:
            if read_in != self.generation:
                return
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[token_hash] = (time.monotonic(), caller)

    def forget(self) -> None:
        with self._lock:
            self._entries.clear()
            self.generation += 1


verified_keys = _VerifiedKeys()
invalidation.subscribe(API_KEYS_TOPIC, lambda _payload: verified_keys.forget())


def authenticate(session: Session, token: str | None) -> Caller:
    """The caller behind an active key's ``token``, or InvalidApiKey."""
    if not token:
        raise InvalidApiKey()
    token_hash = hash_token(token)
    caller = verified_keys.get(token_hash)
    if caller is not None:
        return caller
    read_in = verified_keys.generation
    # A read of its own: on SQLite a plain transaction is a write that holds the one writer
    # lock until it ends, and a request whose key needs no last_used_at update would have
    # held it to its end (across a PDF render).
    with read_only(session):
        key = session.exec(select(ApiKey).where(ApiKey.token_hash == token_hash)).first()
        if key is None or key.revoked_at is not None or key.id is None:
            raise InvalidApiKey()
        caller = Caller(key_id=key.id, name=key.name)
        last_used_at = key.last_used_at
    now = utcnow()
    if last_used_at is None or now - last_used_at > LAST_USED_RESOLUTION:
        key.last_used_at = now
        session.add(key)
        session.commit()
    verified_keys.put(token_hash, caller, read_in)
    return caller


def find_active_key(session: Session, name: str) -> ApiKey:
    """The one active key called ``name``, capitals aside; NotFound when there is none."""
    keys = session.exec(_active_named(name)).all()
    if len(keys) != 1:
        raise NotFound(f"{len(keys) or 'No'} active API keys are called {name!r}.")
    return keys[0]


def revoke_api_key(session: Session, key_id: int, *, actor: str) -> None:
    """Revoke a key: refused at once here, and by every other process within a second."""
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"No API key with id {key_id}.")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.add(key)
        audit.record(
            session,
            actor=actor,
            action="api_key.revoke",
            entity_type="api_key",
            entity_id=key_id,
            summary=f"Revoked API key {key.name!r} ({key.prefix}…)",
        )
    session.commit()
    verified_keys.forget()
    invalidation.publish(API_KEYS_TOPIC)
