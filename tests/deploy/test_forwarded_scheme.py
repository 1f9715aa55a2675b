"""The scheme behind a TLS proxy: believed from trusted proxies only."""

from typing import Any

import pytest

from app.config import get_settings
from app.web import ForwardedSchemeMiddleware
from tests.aio import run_async


def scheme_seen(peer: str, forwarded_proto: bytes | None) -> str:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["scheme"])

    settings = get_settings().model_copy(update={"trusted_proxies": ["127.0.0.1", "10.0.0.0/8"]})
    headers = [(b"x-forwarded-proto", forwarded_proto)] if forwarded_proto else []
    scope = {"type": "http", "scheme": "http", "client": (peer, 5000), "headers": headers}
    run_async(lambda: ForwardedSchemeMiddleware(app, settings)(scope, None, None))
    return seen[0]


@pytest.mark.parametrize(
    ("peer", "proto", "scheme"),
    [
        ("127.0.0.1", b"https", "https"),
        ("10.1.2.3", b"https", "https"),
        ("10.1.2.3", b"http, https", "https"),  # the nearest proxy's word counts
        ("127.0.0.1", None, "http"),
        ("127.0.0.1", b"gopher", "http"),
        ("203.0.113.9", b"https", "http"),  # anyone else cannot claim it
    ],
)
def test_the_scheme_comes_from_a_trusted_proxy_only(
    peer: str, proto: bytes | None, scheme: str
) -> None:
    assert scheme_seen(peer, proto) == scheme
