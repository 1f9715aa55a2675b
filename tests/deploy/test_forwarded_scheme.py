"""The scheme and the visitor's address behind a proxy: believed from trusted proxies only."""

from typing import Any

import pytest
from starlette.requests import Request

from app.config import get_settings
from app.web import ForwardedSchemeMiddleware, client_address
from tests.aio import run_async

TRUSTED = {"trusted_proxies": ["127.0.0.1", "10.0.0.0/8"]}


def scheme_seen(peer: str, *forwarded_proto: bytes) -> str:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["scheme"])

    settings = get_settings().model_copy(update=TRUSTED)
    headers = [(b"x-forwarded-proto", line) for line in forwarded_proto]
    scope = {"type": "http", "scheme": "http", "client": (peer, 5000), "headers": headers}
    run_async(lambda: ForwardedSchemeMiddleware(app, settings)(scope, None, None))
    return seen[0]


@pytest.mark.parametrize(
    ("peer", "proto", "scheme"),
    [
        ("127.0.0.1", b"https", "https"),
        ("10.1.2.3", b"https", "https"),
        ("10.1.2.3", b"http, https", "https"),  # the nearest proxy's word counts
        ("127.0.0.1", (), "http"),
        ("127.0.0.1", b"gopher", "http"),
        ("203.0.113.9", b"https", "http"),  # anyone else cannot claim it
    ],
)
def test_the_scheme_comes_from_a_trusted_proxy_only(
    peer: str, proto: bytes | tuple[bytes, ...], scheme: str
) -> None:
    lines = proto if isinstance(proto, tuple) else (proto,)
    assert scheme_seen(peer, *lines) == scheme


def test_a_proxy_that_adds_its_own_line_is_the_one_believed() -> None:
    """HAProxy's `option forwardfor` (and nginx's add_header habits) add a header line after
    the visitor's own instead of joining it: the visitor's line must not win."""
    assert scheme_seen("127.0.0.1", b"https", b"http") == "http"


def address_seen(peer: str, *forwarded_for: bytes) -> str:
    scope = {
        "type": "http",
        "client": (peer, 5000),
        "headers": [(b"x-forwarded-for", line) for line in forwarded_for],
    }
    return client_address(Request(scope), get_settings().model_copy(update=TRUSTED))


@pytest.mark.parametrize(
    ("peer", "lines", "address"),
    [
        ("127.0.0.1", [b"198.51.100.7"], "198.51.100.7"),
        ("127.0.0.1", [b"203.0.113.1, 198.51.100.7"], "198.51.100.7"),
        # HAProxy's own line comes after the one the visitor forged: the forged one is not
        # the visitor, whichever line holds it (else a fresh one per guess: no miss limit).
        ("10.0.0.2", [b"203.0.113.1", b"198.51.100.7"], "198.51.100.7"),
        ("10.0.0.2", [b"203.0.113.1", b"198.51.100.7, 10.0.0.9"], "198.51.100.7"),
        ("203.0.113.9", [b"198.51.100.7"], "203.0.113.9"),  # not from a proxy of ours
    ],
)
def test_the_visitor_is_the_nearest_address_no_proxy_of_ours_added(
    peer: str, lines: list[bytes], address: str
) -> None:
    assert address_seen(peer, *lines) == address
