"""Password hashing takes its cost from the settings; nothing swaps it at run time."""

from app.auth import passwords
from app.config import get_settings


def test_hashes_use_the_cost_the_settings_name() -> None:
    settings = get_settings()
    stored = passwords.hash_password("a long password")

    assert f"m={settings.password_hash_memory_kib},t={settings.password_hash_time_cost}," in stored
    assert passwords.verify_password(stored, "a long password")
    assert not passwords.verify_password(stored, "another long password")
    assert not passwords.verify_password(None, "a long password")  # unknown user


def test_a_higher_cost_in_the_settings_rehashes_at_the_next_sign_in() -> None:
    settings = get_settings()
    stored = passwords.hash_password("a long password")
    stronger = passwords.hashing(settings.password_hash_time_cost + 1, 2048)

    assert not passwords.needs_rehash(stored)
    assert stronger.hasher.check_needs_rehash(stored)
    assert stronger.hasher.verify(stored, "a long password")  # old hashes still verify
