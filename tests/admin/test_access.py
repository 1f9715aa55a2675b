"""Every staff list, detail, form, action and export, for each role: allowed or refused on the
server, whatever the menu shows."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqladmin import Admin, ModelView
from sqlmodel import Session, select
from starlette.routing import Mount, Route

from app.admin import users
from app.audit import AuditLogEntry
from app.auth.service import create_api_key
from app.auth.staff import Role, StaffUser
from app.config import get_settings
from app.offers.models import Offer, OfferStatus
from app.tracking import service as tracking_service
from app.tracking.models import StageUpdate
from tests.admin.conftest import PASSWORD
from tests.factories import make_offer

pytestmark = pytest.mark.concurrency


@dataclass(frozen=True)
class World:
    offer: str
    order: str
    key: int
    stage_update: int
    audit_entry: int
    other_user: int


@pytest.fixture
def world(db: Session) -> World:
    settings = get_settings()
    offer = make_offer(db, settings, issued=True, company="Acme Hellas SA")
    order = make_offer(db, settings, issued=True, company="Nordwind GmbH")
    tracking_service.activate_offer(db, order.id, actor="tests", settings=settings)
    key, _ = create_api_key(db, "erp", actor="tests")
    other = users.create_user(db, "other@example.com", Role.SALES, PASSWORD, actor="tests")
    update = db.exec(select(StageUpdate).where(StageUpdate.offer_id == order.id)).one()
    entry = db.exec(select(AuditLogEntry)).first()
    assert key.id and update.id and entry and entry.id and other.id
    db.rollback()  # end the reads: on SQLite they hold the one writer's lock
    return World(offer.id, order.id, key.id, update.id, entry.id, other.id)


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    role: Role | None  # the lowest role allowed; None: refused for every role, admin too
    allowed_status: int = 200
    data: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


STAGE = (("stage", "in_production"), ("public_note", "Machining started"))
# The staff site's own routes (app/admin/routes.py); sqladmin's follow from SQLADMIN below.
STAFF_ROUTES = [
    Endpoint("GET", "/admin/", Role.VIEWER),
    Endpoint("GET", "/admin/offers/{offer}/pdf", Role.VIEWER),
    Endpoint("GET", "/admin/orders/{order}/stage-update", Role.SALES),
    Endpoint("POST", "/admin/offers/{offer}/activate", Role.SALES, 303),
    Endpoint("POST", "/admin/offers/{offer}/revise", Role.SALES, 303),
    Endpoint("POST", "/admin/offers/{offer}/issue", Role.SALES, 303),
    Endpoint("POST", "/admin/orders/{order}/stage-update", Role.SALES, 303, STAGE),
    Endpoint(
        "POST", "/admin/orders/bulk-stage-update", Role.SALES, 303, (("pks", "{order}"), *STAGE)
    ),
    Endpoint("GET", "/admin/settings", Role.ADMIN),
]

# For every sqladmin view: the lowest role allowed on each of sqladmin's routes (None: no
# role, admin included). test_the_matrix_names_every_route_of_every_view keeps this table
# complete: a new view, route or action that is not named here fails it.
READS_ONLY: dict[str, Role | None] = {
    "create": None,
    "edit": None,
    "delete": None,
    "import": None,
    "ajax_lookup": None,
}
SQLADMIN: dict[str, dict[str, Role | None]] = {
    "offer": {"list": Role.VIEWER, "details": Role.VIEWER, "export": Role.VIEWER, **READS_ONLY},
    "order": {
        "list": Role.VIEWER,
        "details": Role.VIEWER,
        "export": Role.VIEWER,
        **READS_ONLY,
        "action-order-bulk-stage-update": Role.SALES,
    },
    # Append-only history: read, never edited or deleted.
    "stage-update": {
        "list": Role.VIEWER,
        "details": Role.VIEWER,
        "export": Role.VIEWER,
        **READS_ONLY,
    },
    "audit-log-entry": {
        "list": Role.ADMIN,
        "details": Role.ADMIN,
        "export": Role.ADMIN,
        **READS_ONLY,
    },
    # Stages are renamed and reordered, never deleted: orders' histories refer to them.
    "order-stage": {
        "list": Role.ADMIN,
        "details": Role.ADMIN,
        "export": Role.ADMIN,
        **READS_ONLY,
        "create": Role.ADMIN,
        "edit": Role.ADMIN,
        "ajax_lookup": Role.ADMIN,
    },
    "staff-user": {
        "list": Role.ADMIN,
        "details": Role.ADMIN,
        "export": Role.ADMIN,
        **READS_ONLY,
        "create": Role.ADMIN,
        "edit": Role.ADMIN,
        "ajax_lookup": Role.ADMIN,
    },
    "api-key": {
        "list": Role.ADMIN,
        "details": Role.ADMIN,
        "export": Role.ADMIN,
        **READS_ONLY,
        "create": Role.ADMIN,
        "ajax_lookup": Role.ADMIN,
        "action-api-key-revoke": Role.ADMIN,
    },
}
PKS = {
    "offer": "{offer}",
    "order": "{order}",
    "stage-update": "{stage_update}",
    "audit-log-entry": "{audit_entry}",
    "order-stage": "shipped",
    "staff-user": "{other_user}",
    "api-key": "{key}",
}
CREATE_FORMS: dict[str, tuple[int, tuple[tuple[str, str], ...]]] = {
    "order-stage": (302, (("key", "on_hold"), ("label", "On hold"))),
    "staff-user": (
        302,
        (("email", "new@example.com"), ("role", "sales"), ("password", "a long enough one")),
    ),
    "api-key": (302, (("name", "crm"),)),  # to the list, which shows the token once
}
EDIT_FORMS: dict[str, tuple[tuple[str, str], ...]] = {
    "order-stage": (("label", "Shipped out"), ("position", "5")),
    "staff-user": (("role", "viewer"), ("is_active", "y"), ("new_password", "")),
}


def _sqladmin_endpoints(identity: str, route: str, role: Role | None) -> list[Endpoint]:
    base, pk = f"/admin/{identity}", PKS[identity]
    if route == "list":
        return [Endpoint("GET", f"{base}/list", role)]
    if route == "details":
        return [Endpoint("GET", f"{base}/details/{pk}", role)]
    if route == "export":
        return [Endpoint("GET", f"{base}/export/csv", role)]
    if route == "create":
        status, data = CREATE_FORMS.get(identity, (302, ()))
        return [
            Endpoint("GET", f"{base}/create", role),
            Endpoint("POST", f"{base}/create", role, status, data),
        ]
    if route == "edit":
        data = EDIT_FORMS.get(identity, ())
        return [
            Endpoint("GET", f"{base}/edit/{pk}", role),
            Endpoint("POST", f"{base}/edit/{pk}", role, 302, data),
        ]
    if route == "delete":
        return [Endpoint("DELETE", f"{base}/delete?pks={pk}", role)]
    if route == "import":
        return [Endpoint("POST", f"{base}/import", role)]
    if route == "ajax_lookup":
        # No view has an ajax field: past the access check the lookup is a 400.
        return [Endpoint("GET", f"{base}/ajax/lookup?name=role&term=a", role, 400)]
    slug = route.removeprefix(f"action-{identity}-")
    if slug in ("bulk-stage-update", "revoke"):
        # Both answer with a page first: the stage form, and the question before revoking.
        return [Endpoint("POST", f"{base}/action/{slug}", role, 200, (("pks", pk),))]
    return [Endpoint("POST", f"{base}/action/{slug}", role, 303, (("pks", pk),))]


ENDPOINTS = STAFF_ROUTES + [
    endpoint
    for identity, routes in SQLADMIN.items()
    for route, role in routes.items()
    for endpoint in _sqladmin_endpoints(identity, route, role)
]
# sqladmin routes that belong to no view: the dashboard (in STAFF_ROUTES), static files, and
# sign-in and sign-out (shadowed by the staff site's own).
NOT_PER_VIEW = {"statics", "index", "login", "logout"}


def _staff_admin(app: FastAPI) -> Admin:
    for route in app.routes:
        if isinstance(route, Mount) and route.path == "/admin":
            admin: Admin = route.app.state.admin  # type: ignore[attr-defined]
            return admin
    raise AssertionError("no staff site mounted at /admin")


def test_the_matrix_names_every_route_of_every_view(app: FastAPI) -> None:
    admin = _staff_admin(app)
    # sqladmin's router holds its pages (Routes) and the statics Mount, which is named too.
    routes = cast(list[Route], admin.admin.router.routes)
    generic = {
        route.name
        for route in routes
        if "{identity}" in getattr(route, "path", "") and route.name not in NOT_PER_VIEW
    }
    actions = {route.name for route in routes if route.name.startswith("action-")}
    unknown = {route.name for route in routes if route.name not in generic | actions | NOT_PER_VIEW}
    mounted = {
        view.identity: generic | {a for a in actions if a.startswith(f"action-{view.identity}-")}
        for view in admin.views
        if isinstance(view, ModelView)
    }

    assert unknown == set()
    assert {identity: set(routes) for identity, routes in SQLADMIN.items()} == mounted


def _call(web: TestClient, endpoint: Endpoint, world: World, token: str) -> int:
    ids = {name: str(value) for name, value in vars(world).items()}
    path = endpoint.path.format(**ids)
    if endpoint.method == "GET":
        return web.get(path, follow_redirects=False).status_code
    if endpoint.method == "DELETE":  # sqladmin's delete, sent as its list page's script does
        headers = {"X-CSRF-Token": token}
        return web.delete(path, headers=headers, follow_redirects=False).status_code
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
    restored_stage_list: None,  # the admin's stage forms really change it
) -> None:
    token = as_role(role)

    status = _call(web, endpoint, world, token)

    if endpoint.role is not None and role.includes(endpoint.role):
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


def test_no_column_is_served_as_a_file(
    web: TestClient, as_role: Callable[[Role], str], world: World, db: Session
) -> None:
    token = as_role(Role.SALES)
    # sqladmin would read a column's text as a path under the working directory
    note = "pyproject.toml"
    web.post(
        f"/admin/orders/{world.order}/stage-update",
        data={"stage": "in_production", "public_note": note, "csrf_token": token},
    )
    update = db.exec(select(StageUpdate).where(StageUpdate.public_note == note)).one()
    db.rollback()  # end the read before the requests (SQLite has one writer)

    for kind in ("download", "preview"):
        response = web.get(f"/admin/stage-update/{update.id}/public_note/{kind}/")

        assert response.status_code == 404
        assert "[project]" not in response.text


@pytest.mark.parametrize(
    ("identity", "field"), [("stage-update", "public_note"), ("audit-log-entry", "summary")]
)
def test_the_history_cannot_be_edited_or_deleted_even_by_an_admin(
    web: TestClient,
    as_role: Callable[[Role], str],
    world: World,
    db: Session,
    identity: str,
    field: str,
) -> None:
    model = StageUpdate if identity == "stage-update" else AuditLogEntry
    pk = world.stage_update if identity == "stage-update" else world.audit_entry
    token = as_role(Role.ADMIN)  # signing in is itself an audit log entry
    before = db.get(model, pk).model_dump()  # type: ignore[union-attr]
    count = len(db.exec(select(model)).all())
    db.rollback()

    details = web.get(f"/admin/{identity}/details/{pk}")
    edit_page = web.get(f"/admin/{identity}/edit/{pk}")
    edit = web.post(f"/admin/{identity}/edit/{pk}", data={field: "rewritten", "csrf_token": token})
    delete = web.delete(f"/admin/{identity}/delete?pks={pk}", headers={"X-CSRF-Token": token})

    assert details.status_code == 200
    assert f"/admin/{identity}/edit/" not in details.text
    assert f"/admin/{identity}/delete" not in details.text
    assert [edit_page.status_code, edit.status_code, delete.status_code] == [403, 403, 403]
    db.expire_all()
    assert db.get(model, pk).model_dump() == before  # type: ignore[union-attr]
    assert len(db.exec(select(model)).all()) == count
