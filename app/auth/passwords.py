"""Password hashing with Argon2id, at the cost the settings name (RFC 9106's low-memory
profile by default). The hasher is made from the settings, never swapped at run time: tests
choose cheap parameters through the same settings as any installation."""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from zxcvbn import zxcvbn

from app.config import get_settings

MIN_LENGTH = 10
MAX_LENGTH = 1024
# How hard to guess, by zxcvbn (Dropbox's estimator, maintained): it knows common and leaked
# passwords, names, words, keyboard walks, dates and l33t spellings, which a rule of our own
# would not. 3 is "safely unguessable": it stands an offline attack on a slow hash (Argon2).
MIN_SCORE = 3
# zxcvbn refuses longer input (its matching grows fast with length); a password this long
# that is weak in its first 72 characters is weak.
_ESTIMATED_LENGTH = 72


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


def password_problem(password: str, known: Iterable[str] = ()) -> str | None:
    """Why ``password`` cannot be used, or None. ``known``: what an attacker would try first
    (the user's e-mail address, our company's name)."""
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"Use at most {MAX_LENGTH} characters."
    if not password.strip():
        return "A password cannot consist of spaces only."
    return _guessable(password, known)


def _guessable(password: str, known: Iterable[str]) -> str | None:
    words = [*known, get_settings().company_name, "offertrack"]
    hints = [part for word in words for part in re.split(r"[@.\s_-]+", word.lower()) if part]
    estimate = zxcvbn(password[:_ESTIMATED_LENGTH], user_inputs=[*words, *hints])
    if estimate["score"] >= MIN_SCORE:
        return None
    feedback = estimate["feedback"]
    advice = " ".join(filter(None, [feedback["warning"], *feedback["suggestions"]]))
    return f"This password is easy to guess. {advice or 'Add a few more words.'}"


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
