"""Budgets kept in process memory (no Redis) forget a client once its window has passed: a
server that runs for weeks, or a guesser rotating addresses, must not leave a key per client."""

import time

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from limits.storage import MemoryStorage

from app.config import Settings, get_settings
from app.main import create_app
from app.tracking.ratelimit import MissLimiter
from app.web import verify_csrf

CLIENTS = 300


def _from(app: FastAPI, address: str) -> TestClient:
    return TestClient(app, base_url="https://track.example.com", client=(address, 40000))


def _clients_held(limiter: MissLimiter) -> int:
    assert isinstance(limiter.storage, MemoryStorage)  # no Redis configured
    return len(limiter.storage.events)


def _later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    moment = time.time() + seconds
    monkeypatch.setattr(time, "time", lambda: moment)  # the clock limits and MissLimiter read


@pytest.mark.usefixtures("_running_client")
def test_failed_lookups_from_many_addresses_leave_only_the_current_window(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    limiter = app.state.miss_limiter = MissLimiter(get_settings().miss_limit_per_minute)

    def miss_from(address: str) -> int:
        return _from(app, address).get("/lookup", params={"code": "ZZZZZZZZZZ"}).status_code

    # One miss from each of many /64s: a guesser rotating its prefix, or weeks of visitors.
    assert {miss_from(f"2001:db8:{n:x}::1") for n in range(CLIENTS)} == {400}
    assert _clients_held(limiter) == CLIENTS

    _later(monkeypatch, 61)  # their minute has passed
    assert miss_from("203.0.113.9") == 400

    assert _clients_held(limiter) == 1  # the one client of the current window


def test_public_form_attempts_from_many_addresses_leave_only_the_current_window(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(settings)
    app.dependency_overrides[verify_csrf] = lambda: None  # not what this test is about
    per_client: MissLimiter = app.state.notification_limits.per_client

    def subscribe(address: str) -> int:
        form = {"email": "maria@example.com"}
        return _from(app, address).post("/01H0WARY2W/subscribe", data=form).status_code

    assert {subscribe(f"198.51.{n // 250}.{n % 250}") for n in range(CLIENTS)} == {404}
    assert _clients_held(per_client) == CLIENTS

    _later(monkeypatch, 601)  # their ten minutes have passed
    subscribe("203.0.113.9")

    assert _clients_held(per_client) == 1
