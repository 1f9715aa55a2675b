"""Password hashing with Argon2id, at the cost the settings name (RFC 9106's low-memory
profile by default). The hasher is made from the settings, never swapped at run time: tests
choose cheap parameters through the same settings as any installation."""

from dataclasses import dataclass
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from app.config import get_settings

MIN_LENGTH = 10
MAX_LENGTH = 1024


@dataclass(frozen=True)
class Hashing:
    hasher: PasswordHasher
    # Verified when an e-mail is unknown, so a wrong address takes as long as a wrong password
    # and response times do not tell which addresses have accounts.
    dummy_hash: str


@lru_cache(maxsize=4)
def hashing(time_cost: int, memory_kib: int) -> Hashing:
    hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)
    return Hashing(hasher, hasher.hash("not a password of anyone"))


def _current() -> Hashing:
    settings = get_settings()
    return hashing(settings.password_hash_time_cost, settings.password_hash_memory_kib)


def password_problem(password: str) -> str | None:
    """Why ``password`` cannot be used, or None."""
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"Use at most {MAX_LENGTH} characters."
    if not password.strip():
        return "A password cannot consist of spaces only."
    return None


def hash_password(password: str) -> str:
    return _current().hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    current = _current()
    try:
        verified = current.hasher.verify(password_hash or current.dummy_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return verified and bool(password_hash)


def needs_rehash(password_hash: str) -> bool:
    return _current().hasher.check_needs_rehash(password_hash)
