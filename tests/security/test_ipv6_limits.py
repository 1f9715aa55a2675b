"""Issue 14.11: an IPv6 client is counted by its /64, which one subscriber holds whole."""

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.config import Settings, get_settings
from app.main import create_app
from app.tracking.ratelimit import MissLimiter
from app.web import rate_limit_key, verify_csrf


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("203.0.113.7", "203.0.113.7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("testclient", "testclient"),
    ],
)
def test_the_key_of_an_address(address: str, key: str) -> None:
    assert rate_limit_key(address) == key


def _lookup_from(app: FastAPI, address: str) -> int:
    # No lifespan of its own: the session's running client started the app already.
    client = TestClient(app, base_url="https://track.example.com", client=(address, 40000))
    return client.get("/lookup", params={"code": "ZZZZZZZZZZ"}).status_code


@pytest.mark.usefixtures("_running_client")
def test_failed_lookups_from_one_ipv6_64_share_one_budget(app: FastAPI) -> None:
    limit = get_settings().miss_limit_per_minute
    app.state.miss_limiter = MissLimiter(limit)
    # Every request from another address of the same /64, as a rotating client would send.
    statuses = [_lookup_from(app, f"2001:db8:7:7::{n + 1:x}") for n in range(limit + 1)]
    other_64 = _lookup_from(app, "2001:db8:7:8::1")

    assert statuses[:limit] == [400] * limit
    assert statuses[limit] == 429
    assert other_64 == 400


@pytest.mark.usefixtures("_running_client")
@pytest.mark.parametrize("path", ["/ZZZZZZZZZZ/feed.atom", "/ZZZZZZZZZZ/delivery.ics"])
def test_failed_feed_lookups_from_one_ipv6_64_share_the_miss_budget(
    app: FastAPI, path: str
) -> None:
    limit = get_settings().miss_limit_per_minute
    app.state.miss_limiter = MissLimiter(limit)

    def status_from(address: str) -> int:
        client = TestClient(app, base_url="https://track.example.com", client=(address, 40000))
        return client.get(path).status_code

    statuses = [status_from(f"2001:db8:7:9::{n + 1:x}") for n in range(limit + 1)]

    assert 429 not in statuses[:limit] and statuses[limit] == 429
    assert status_from("2001:db8:7:a::1") != 429


def test_public_form_attempts_from_one_ipv6_64_share_one_budget(settings: Settings) -> None:
    """Subscribe and question: 5 attempts per client in 10 minutes, a client being a /64."""
    app = create_app(settings)
    app.dependency_overrides[verify_csrf] = lambda: None  # not what this test is about
    form = {"email": "maria@example.com", "message": "Delivery in May?"}

    def status_from(address: str, action: str) -> int:
        client = TestClient(app, base_url="https://track.example.com", client=(address, 40000))
        return client.post(f"/01H0WARY2W/{action}", data=form).status_code

    answers = [
        status_from(f"2001:db8:5:5::{n + 1:x}", action)
        for n, action in enumerate(["subscribe", "question"] * 3)
    ]

    assert 429 not in answers[:5] and answers[5] == 429
    assert status_from("2001:db8:5:6::1", "subscribe") != 429
