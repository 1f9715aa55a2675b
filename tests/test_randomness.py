"""Tokens without a system call each: never repeated, the sizes asked for."""

import pytest

from app import randomness


def test_tokens_do_not_repeat() -> None:
    tokens = {randomness.token_bytes(16) for _ in range(50_000)}

    assert len(tokens) == 50_000


def test_sizes_and_alphabets() -> None:
    assert len(randomness.token_bytes(32)) == 32
    assert len(randomness.token_hex(16)) == 32
    assert set(randomness.token_urlsafe(18)) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )
    with pytest.raises(ValueError, match="between 1 and 32"):
        randomness.token_bytes(33)


def test_bits_look_random() -> None:
    # A PRF's output: about half of all bits set, no byte value missing over many tokens.
    data = b"".join(randomness.token_bytes(32) for _ in range(2000))
    ones = sum(bin(byte).count("1") for byte in data)

    assert abs(ones / (len(data) * 8) - 0.5) < 0.01
    assert len(set(data)) == 256
