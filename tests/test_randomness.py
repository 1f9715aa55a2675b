"""Tokens without a system call each: never repeated, the sizes asked for."""

import os

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


def test_a_forked_child_draws_tokens_of_its_own() -> None:
    # Same key and counter in parent and child would hand both the same CSRF tokens and nonces.
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send its next token, and leave without running pytest's exit
        os.write(write, randomness.token_bytes(16))
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 16)
    os.close(read)

    assert len(child) == 16
    assert child != randomness.token_bytes(16)
