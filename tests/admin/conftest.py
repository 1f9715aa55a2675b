"""Staff-site fixtures: real commits (sqladmin opens its own sessions), cheap password hashes,
and signed-in clients per role."""

import base64
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, update
from sqlmodel import Session, col, select

from app.admin import users
from app.admin.access import SESSION_COOKIE
from app.auth.staff import Role
from app.tracking.models import OrderStage, StageUpdate
from app.tracking.ratelimit import MissLimiter
from app.tracking.scans import visitor_keys

PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class StaffLogin:
    email: str
    password: str
    role: Role


@pytest.fixture
def db(committed: Engine) -> Iterator[Session]:
    with Session(committed, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def make_staff(db: Session) -> Callable[..., StaffLogin]:
    def make(role: Role, email: str | None = None) -> StaffLogin:
        address = email or f"{role}@example.com"
        users.create_user(db, address, role, PASSWORD, actor="tests")
        return StaffLogin(address, PASSWORD, role)

    return make


@pytest.fixture
def web(app: FastAPI, _running_client: TestClient, committed: Engine) -> TestClient:
    """A browser on the staff site: no session override, everything really committed. Its
    public forms' budget starts afresh too (tests before it may have spent it)."""
    from app.notifications.router import FormLimits

    app.dependency_overrides.clear()
    app.state.miss_limiter = MissLimiter(20)
    app.state.notification_limits = FormLimits()
    visitor_keys.forget()
    _running_client.headers.clear()
    _running_client.cookies.clear()
    return _running_client


@pytest.fixture
def second_browser(app: FastAPI, web: TestClient) -> TestClient:
    """Another person's browser on the staff site beside ``web``, with cookies of its own."""
    return TestClient(app, base_url=str(web.base_url))


def session_cookie_text(web: TestClient) -> str:
    """What anyone holding the staff session cookie can read (it is signed, not encrypted)."""
    payload = (web.cookies.get(SESSION_COOKIE) or "").split(".")[0]
    return base64.b64decode(payload + "=" * (-len(payload) % 4)).decode()


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def sign_in(web: httpx.Client, who: StaffLogin) -> str:
    """Sign in through the form, like a person; returns the session's CSRF token."""
    page = web.get("/admin/login")
    response = web.post(
        "/admin/login",
        data={"email": who.email, "password": who.password, "csrf_token": csrf_from(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf_from(web.get("/admin/").text)


@pytest.fixture
def as_role(web: TestClient, make_staff: Callable[..., StaffLogin]) -> Callable[[Role], str]:
    def login(role: Role) -> str:
        return sign_in(web, make_staff(role))

    return login


@pytest.fixture
def restored_stage_list(db: Session) -> Iterator[None]:
    """The stage list is seeded by a migration and outlives each test; put it back."""
    original = [stage.model_dump() for stage in db.exec(select(OrderStage)).all()]
    db.rollback()
    yield
    db.rollback()
    keys = [stage["key"] for stage in original]
    db.execute(delete(StageUpdate).where(col(StageUpdate.stage_key).not_in(keys)))
    db.execute(delete(OrderStage).where(col(OrderStage.key).not_in(keys)))
    # positions and labels are unique: move everything aside before putting it back
    db.execute(
        update(OrderStage).values(
            position=OrderStage.position + 10_000, label=OrderStage.label + " (old)"
        )
    )
    for stage in original:
        db.execute(
            update(OrderStage)
            .where(col(OrderStage.key) == stage["key"])
            .values(label=stage["label"], position=stage["position"])
        )
    db.commit()
