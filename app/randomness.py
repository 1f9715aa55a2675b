"""Unpredictable tokens (CSP nonces, CSRF tokens, request ids) without a system call each.

``os.urandom`` releases the GIL, and under load the event loop then waits for a busy thread
(the scan writer) to hand it back, up to the interpreter's switch interval, on every page. So
tokens come from HMAC-SHA256 over a counter, under a 256-bit key that the OS's CSPRNG provides
once per process: a pseudorandom function, so without the key no output can be predicted from
others or told from random. The process id is part of the message, so processes forked with the
same key still never repeat each other's tokens.
"""

import base64
import hashlib
import hmac
import itertools
import os

_KEY = os.urandom(32)
_counter = itertools.count()


def token_bytes(size: int = 16) -> bytes:
    if not 0 < size <= 32:
        raise ValueError("between 1 and 32 bytes")
    message = os.getpid().to_bytes(8, "big") + next(_counter).to_bytes(16, "big")
    # An HMAC object, not hmac.digest(): the one-shot form lets go of the GIL every time, as
    # urandom does (a tracking page view took 40% longer with it).
    return hmac.new(_KEY, message, hashlib.sha256).digest()[:size]


def token_urlsafe(size: int = 16) -> str:
    return base64.urlsafe_b64encode(token_bytes(size)).rstrip(b"=").decode()


def token_hex(size: int = 16) -> str:
    return token_bytes(size).hex()
