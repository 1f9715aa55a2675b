"""The tracking page while its database cannot be reached: a clear 503, fast, never a trace."""

import time
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.auth import service as auth_service
from app.config import Settings
from app.db import get_session, get_session_factory, make_engine
from app.tracking import router as tracking_router
from tests.factories import make_offer
from tests.tracking.test_pages import make_order

# Nothing listens on port 9: connecting fails the way it does while PostgreSQL is down.
UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:9/offertrack"


@pytest.fixture
def database_down(app: FastAPI, client: TestClient) -> Iterator[None]:
    engine = make_engine(UNREACHABLE)
    app.dependency_overrides[get_session_factory] = lambda: lambda: Session(engine)
    tracking_router._database_down_until[0] = 0.0
    yield
    tracking_router._database_down_until[0] = 0.0
    engine.dispose()


def test_a_valid_code_gets_a_clear_503_at_once(
    client: TestClient, session: Session, settings: Settings, database_down: None
) -> None:
    order = make_order(session, settings)
    started = time.monotonic()

    response = client.get(f"/{order.tracking_id.lower()}")

    assert time.monotonic() - started < 1.0
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert "Status temporarily unavailable" in response.text
    assert f"{order.tracking_id[:5]}-{order.tracking_id[5:]}" in response.text  # the code used
    assert "Traceback" not in response.text


def test_the_api_says_so_in_json(
    api: TestClient, app: FastAPI, session: Session, settings: Settings
) -> None:
    engine = make_engine(UNREACHABLE)

    def unreachable() -> Iterator[Session]:
        with Session(engine) as broken:
            yield broken

    app.dependency_overrides[get_session] = unreachable
    auth_service.verified_keys.forget()  # the key check must ask the database too
    try:
        response = api.get("/api/v1/offers")
    finally:
        engine.dispose()

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "10"
    assert "unavailable" in response.json()["detail"]


def test_a_page_seen_a_moment_ago_is_still_served(
    app: FastAPI, client: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True)
    assert client.get(f"/{offer.id}").status_code == 200

    engine = make_engine(UNREACHABLE)
    app.dependency_overrides[get_session_factory] = lambda: lambda: Session(engine)
    try:
        response = client.get(f"/{offer.id}")
    finally:
        engine.dispose()

    assert response.status_code == 200
    assert offer.customer_company in response.text
