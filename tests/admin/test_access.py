"""Every staff list, detail, form, action and export, for each role: allowed or refused on the
server, whatever the menu shows."""

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.admin.models import Role, StaffUser
from app.auth.service import create_api_key
from app.config import get_settings
from app.offers.models import Offer, OfferStatus
from app.tracking import service as tracking_service
from tests.factories import make_offer

pytestmark = pytest.mark.concurrency


@dataclass(frozen=True)
class World:
    offer: str
    order: str
    key: int


@pytest.fixture
def world(db: Session) -> World:
    settings = get_settings()
    offer = make_offer(db, settings, issued=True, company="Acme Hellas SA")
    order = make_offer(db, settings, issued=True, company="Nordwind GmbH")
    tracking_service.activate_offer(db, order.id, actor="tests", settings=settings)
    key, _ = create_api_key(db, "erp", actor="tests")
    assert key.id is not None
    return World(offer.id, order.id, key.id)


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    role: Role  # the lowest role allowed
    allowed_status: int = 200
    data: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


STAGE = (("stage", "in_production"), ("public_note", "Machining started"))
ENDPOINTS = [
    Endpoint("GET", "/admin/", Role.VIEWER),
    Endpoint("GET", "/admin/offer/list", Role.VIEWER),
    Endpoint("GET", "/admin/offer/details/{offer}", Role.VIEWER),
    Endpoint("GET", "/admin/offer/export/csv", Role.VIEWER),
    Endpoint("GET", "/admin/offers/{offer}/pdf", Role.VIEWER),
    Endpoint("GET", "/admin/order/list", Role.VIEWER),
    Endpoint("GET", "/admin/order/details/{order}", Role.VIEWER),
    Endpoint("GET", "/admin/order/export/csv", Role.VIEWER),
    Endpoint("GET", "/admin/stage-update/list", Role.VIEWER),
    Endpoint("GET", "/admin/orders/{order}/stage-update", Role.SALES),
    Endpoint("POST", "/admin/offers/{offer}/activate", Role.SALES, 303),
    Endpoint("POST", "/admin/offers/{offer}/revise", Role.SALES, 303),
    Endpoint("POST", "/admin/offers/{offer}/issue", Role.SALES, 303),
    Endpoint("POST", "/admin/orders/{order}/stage-update", Role.SALES, 303, STAGE),
    Endpoint(
        "POST", "/admin/orders/bulk-stage-update", Role.SALES, 303, (("pks", "{order}"), *STAGE)
    ),
    Endpoint(
        "POST", "/admin/order/action/bulk-stage-update", Role.SALES, 200, (("pks", "{order}"),)
    ),
    Endpoint("GET", "/admin/order-stage/list", Role.ADMIN),
    Endpoint("GET", "/admin/order-stage/create", Role.ADMIN),
    Endpoint(
        "POST",
        "/admin/order-stage/create",
        Role.ADMIN,
        302,
        (("key", "on_hold"), ("label", "On hold")),
    ),
    Endpoint("GET", "/admin/order-stage/edit/shipped", Role.ADMIN),
    Endpoint("GET", "/admin/staff-user/list", Role.ADMIN),
    Endpoint("GET", "/admin/staff-user/export/csv", Role.ADMIN),
    Endpoint("GET", "/admin/staff-user/create", Role.ADMIN),
    Endpoint(
        "POST",
        "/admin/staff-user/create",
        Role.ADMIN,
        302,
        (("email", "new@example.com"), ("role", "sales"), ("password", "a long enough one")),
    ),
    Endpoint("GET", "/admin/api-key/list", Role.ADMIN),
    Endpoint("GET", "/admin/api-key/details/{key}", Role.ADMIN),
    Endpoint("GET", "/admin/api-key/create", Role.ADMIN),
    Endpoint("POST", "/admin/api-key/create", Role.ADMIN, 200, (("name", "crm"),)),
    Endpoint("POST", "/admin/api-key/action/revoke", Role.ADMIN, 303, (("pks", "{key}"),)),
    Endpoint("GET", "/admin/audit-log-entry/list", Role.ADMIN),
    Endpoint("GET", "/admin/audit-log-entry/export/csv", Role.ADMIN),
    Endpoint("GET", "/admin/settings", Role.ADMIN),
]


def _call(web: TestClient, endpoint: Endpoint, world: World, token: str) -> int:
    ids = {"offer": world.offer, "order": world.order, "key": world.key}
    path = endpoint.path.format(**ids)
    if endpoint.method == "GET":
        return web.get(path, follow_redirects=False).status_code
    data = {k: v.format(**ids) for k, v in endpoint.data} | {"csrf_token": token}
    return web.post(path, data=data, follow_redirects=False).status_code


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
@pytest.mark.parametrize("role", list(Role), ids=str)
def test_each_role_against_each_view_and_action(
    web: TestClient,
    as_role: Callable[[Role], str],
    world: World,
    endpoint: Endpoint,
    role: Role,
) -> None:
    token = as_role(role)

    status = _call(web, endpoint, world, token)

    if role.includes(endpoint.role):
        assert status == endpoint.allowed_status
    else:
        assert status == 403


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_signed_out_visitors_are_sent_to_sign_in(
    web: TestClient, world: World, endpoint: Endpoint
) -> None:
    token = _anonymous_token(web)

    status = _call(web, endpoint, world, token)

    assert status in (302, 303)


def _anonymous_token(web: TestClient) -> str:
    from tests.admin.conftest import csrf_from

    return csrf_from(web.get("/admin/login").text)


def test_a_viewers_refused_activation_changes_nothing(
    web: TestClient, as_role: Callable[[Role], str], world: World, db: Session
) -> None:
    token = as_role(Role.VIEWER)

    response = web.post(f"/admin/offers/{world.offer}/activate", data={"csrf_token": token})

    assert response.status_code == 403
    assert "needs the sales role" in response.text
    db.expire_all()
    assert db.get(Offer, world.offer).status == OfferStatus.ISSUED  # type: ignore[union-attr]


def test_the_menu_shows_only_what_the_role_may_open(
    web: TestClient, as_role: Callable[[Role], str], world: World
) -> None:
    as_role(Role.SALES)

    page = web.get("/admin/").text

    assert "/admin/offer/list" in page and "/admin/order/list" in page
    assert "/admin/staff-user/list" not in page
    assert "/admin/api-key/list" not in page
    assert "/admin/settings" not in page


def test_an_admin_cannot_demote_the_last_admin(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    token = as_role(Role.ADMIN)
    admin_id = db.exec(select(StaffUser.id)).one()
    db.rollback()  # end the read before the request writes (SQLite has one writer)

    response = web.post(
        f"/admin/staff-user/edit/{admin_id}",
        data={"role": "viewer", "is_active": "y", "new_password": "", "csrf_token": token},
    )

    assert response.status_code == 400
    assert "last active admin" in response.text
    db.expire_all()
    assert db.get(StaffUser, admin_id).role == Role.ADMIN  # type: ignore[union-attr]
