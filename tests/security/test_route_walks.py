"""Walks over every route the app serves, derived from the app itself, so that a route added
tomorrow without its guard fails here: staff routes want a session and a role, API routes a
valid key, and no GET or HEAD anywhere changes what is stored."""

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqladmin.authorization import custom_action
from sqlalchemy import Engine, select, update
from sqlmodel import Session
from starlette.routing import BaseRoute, Route

from app.admin.sessions import StaffSession
from app.analytics.models import Conversion, Placement
from app.auth.dependencies import require_api_key
from app.auth.service import create_api_key, revoke_api_key
from app.auth.staff import Role
from app.config import get_settings
from app.db import utcnow
from app.models import metadata
from app.notifications import subscriptions
from app.notifications.models import OrderSubscription
from app.offers.models import Offer
from app.web import CSRF_COOKIE
from tests.admin.conftest import StaffLogin, csrf_from, sign_in
from tests.admin.staffroutes import (
    PASSWORD,
    Ids,
    demo_data,
    path_values,
    staff_app,
    staff_downloads,
    staff_pages,
)
from tests.routes import served_routes
from tests.test_csrf import OWN_PROOF

pytestmark = pytest.mark.concurrency

# The staff routes open to a visitor without a session: signing in (both steps) and out.
SIGN_IN = {
    "staff:login",
    "staff:login_submit",
    "staff:login_2fa",
    "staff:login_2fa_submit",
    "staff:logout",
}
# The lowest role each staff route is for. A viewer reads; the only changes a viewer makes
# are to their own account (sessions, password, two-factor sign-in, decimal mark) and
# their own alert preferences.
_VIEWER = """analytics:campaign analytics:campaigns analytics:csv analytics:dashboard
analytics:panels analytics:placement analytics:placement_qr customer_pages:edit customer_pages:list
customer_pages:new editor:edit editor:new notifications:alerts notifications:alerts_save
questions:list staff:2fa_confirm staff:2fa_disable staff:2fa_start staff:account
staff:confirm_access staff:confirm_access_submit
staff:end_other_sessions staff:end_session staff:logout_page staff:offer_pdf
staff:decimal_mark staff:change_password"""
_SALES = """analytics:campaign_create analytics:campaign_update analytics:creative_create
analytics:placement_create analytics:placement_update customer_pages:create
customer_pages:delete customer_pages:save editor:confirm_activate editor:confirm_issue
editor:confirm_revise editor:create editor:duplicate editor:save editor:totals questions:delete
sending:form sending:send staff:activate staff:bulk_stage_update staff:issue staff:revise
staff:stage_update staff:stage_update_form"""
_ADMIN = """analytics:webhook analytics:webhook_create analytics:webhook_enabled
analytics:webhook_rotate analytics:webhook_test analytics:webhooks notifications:written_mail
notifications:written_mails privacy_pages:confirm_erase privacy_pages:download
privacy_pages:erase privacy_pages:form privacy_pages:lookup staff:settings terms_pages:create
terms_pages:delete terms_pages:edit terms_pages:list terms_pages:new terms_pages:save
user_pages:confirm_reset_2fa user_pages:confirm_sign_out user_pages:handover
user_pages:handover_submit user_pages:reset_2fa user_pages:sign_out"""
# Sudo mode (app/admin/sudo.py): the staff routes that need the password given recently, read
# from their ``require_role(..., confirmed=True)``: what grants access, moves ownership, reveals
# or creates a secret, or sends data out of the company.
SENSITIVE = set(
    """analytics:webhook_create analytics:webhook_enabled analytics:webhook_rotate staff:settings
staff:2fa_start user_pages:confirm_reset_2fa user_pages:confirm_sign_out user_pages:handover
user_pages:handover_submit user_pages:reset_2fa user_pages:sign_out privacy_pages:form
privacy_pages:lookup privacy_pages:download privacy_pages:confirm_erase
privacy_pages:erase""".split()
)
# Every other change an admin alone may make, judged ordinary work, and why. A new admin-only
# change fails test_every_admin_change_is_sensitive_or_named_ordinary until it is in one of the
# two.
ORDINARY = {
    "analytics:webhook_test": "a made-up event, to an endpoint already set up and enabled",
    "terms_pages:create": "the text of offer terms: office work, no access or data out",
    "terms_pages:save": "the text of offer terms",
    "terms_pages:delete": "the text of offer terms",
}
# sqladmin's changes (create, edit, delete, each action's slug) of admin-only views, the same
# way: the view's ``confirm_before``, or here.
ORDINARY_SQLADMIN = {
    "order-stage": {"create": "the stage list of the order timeline", "edit": "the stage list"},
}
ROLES: dict[str, Role | None] = {
    name: role
    for role, names in ((Role.VIEWER, _VIEWER), (Role.SALES, _SALES), (Role.ADMIN, _ADMIN))
    for name in names.split()
}
# What any request may create as it goes, which is nobody's state: the day's random key that
# visitors are hashed with, and a rendered PDF kept for the next download.
KEPT_AS_NEEDED = frozenset({"visitor_key", "offer_pdf"})
# And a GET (never a HEAD) of a tracking page or a campaign code: the view being counted.
VIEWS = KEPT_AS_NEEDED | {"scan_event"}
# Bookkeeping that a request may touch: when a key or a staff session was last used.
TOUCHED = {"api_key": {"last_used_at"}, "staff_session": {"last_seen_at"}}


@dataclass(frozen=True)
class World:
    ids: Ids
    tracking_id: str
    slug: str
    subscription: int
    conversion: int
    api_token: str


@pytest.fixture
def world(committed: Engine) -> World:
    """The demo data (offers, an order, a customer, a campaign with dynamic codes, scans,
    conversions, a webhook, a question, staff of each role), a confirmed subscription to the
    order and an API key."""
    ids = demo_data(committed)
    with Session(committed, expire_on_commit=False) as session:
        order = session.get(Offer, ids.order)
        placement = session.get(Placement, ids.placement)
        assert order is not None and placement is not None
        subscription = OrderSubscription(offer_id=ids.order, email="s@example.com")
        subscription.confirmed_at = utcnow()
        session.add(subscription)
        session.commit()
        _, token = create_api_key(session, "walks", actor="tests")
        conversion = session.scalars(select(Conversion)).first()
    assert subscription.id is not None and conversion is not None and conversion.id is not None
    return World(ids, order.tracking_id, placement.slug, subscription.id, conversion.id, token)


def fingerprint(engine: Engine, skip: frozenset[str] = frozenset()) -> dict[str, str]:
    """A digest of every table's rows (but the tables in ``skip`` and the TOUCHED columns)."""
    digests = {}
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            if table.name in skip:
                continue
            columns = [c for c in table.columns if c.name not in TOUCHED.get(table.name, ())]
            rows = sorted(repr(tuple(row)) for row in connection.execute(select(*columns)))
            digests[table.name] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
    return digests


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def declared_role(route: APIRoute) -> Role | None:
    """The highest role the route's dependencies require (app.admin.access.require_role)."""
    names = {getattr(call, "__name__", "") for call in _calls(route.dependant)}
    roles = [Role(name.removeprefix("require_")) for name in names if name.startswith("require_")]
    return max(roles, key=lambda role: sum(role.includes(other) for other in Role), default=None)


def _staff_routes(app: FastAPI) -> list[APIRoute]:
    routes = served_routes(staff_app(app).router.routes)
    return [route for _, route in routes if isinstance(route, APIRoute)]


def _path_values(world: World) -> dict[str, object]:
    ids = world.ids
    return {
        **path_values(ids),
        "table": "funnel",
        "name": "20260101.eml",
        "code": world.tracking_id,
        "customer": ids.customer,
        "conversion_id": world.conversion,
        "fmt": "svg",
        "kind": "scans",
        "slug": world.slug,
    }


def _calls_of(route: APIRoute, world: World) -> Iterator[tuple[str, str]]:
    """Each method of the route (HEAD is GET's), with a path to it."""
    values = _path_values(world)
    path = route.url_path_for(route.name, **{n: values[n] for n in route.param_convertors})
    for method in sorted((route.methods or set()) - {"HEAD"}):
        yield method, str(path)


def test_every_staff_route_requires_the_role_of_the_table(app: FastAPI) -> None:
    """Read from the routes themselves: a new staff route fails here until it is in ROLES,
    and one that lost its StaffDep, SalesDep or AdminDep (or got a weaker one) fails too."""
    declared = {route.name: declared_role(route) for route in _staff_routes(app)}

    assert declared == dict.fromkeys(SIGN_IN) | ROLES


def _send(web: TestClient, method: str, path: str, token: str) -> int:
    data = {"csrf_token": token} if method != "GET" else None
    return web.request(method, path, data=data, follow_redirects=False).status_code


def test_signed_out_every_staff_route_leads_to_sign_in_and_changes_nothing(
    app: FastAPI, web: TestClient, world: World, committed: Engine
) -> None:
    token = csrf_from(web.get("/admin/login").text)  # a real form token, without a session
    before = fingerprint(committed)
    answers = {}
    for route in _staff_routes(app):
        if route.name in SIGN_IN:
            continue
        for method, path in _calls_of(route, world):
            response = web.request(
                method, "/admin" + path, data={"csrf_token": token}, follow_redirects=False
            )
            answers[f"{method} {path}"] = (response.status_code, response.headers.get("location"))

    not_sent_to_sign_in = {
        call: answer
        for call, answer in answers.items()
        if answer[0] not in (302, 303) or not (answer[1] or "").startswith("/admin/login")
    }
    assert not_sent_to_sign_in == {}
    assert len(answers) > 60
    assert fingerprint(committed) == before


@pytest.mark.parametrize("role", [Role.VIEWER, Role.SALES], ids=str)
def test_every_staff_route_above_a_role_refuses_it_and_changes_nothing(
    app: FastAPI, web: TestClient, world: World, committed: Engine, role: Role
) -> None:
    token = sign_in(web, StaffLogin(f"{role}@example.com", PASSWORD, role))
    before = fingerprint(committed)
    above = [
        r for r in _staff_routes(app) if (needed := declared_role(r)) and not role.includes(needed)
    ]
    answers = {
        f"{method} {path}": _send(web, method, "/admin" + path, token)
        for route in above
        for method, path in _calls_of(route, world)
    }

    assert {call: status for call, status in answers.items() if status != 403} == {}
    assert len(answers) > (25 if role == Role.VIEWER else 8)
    assert fingerprint(committed) == before
    assert web.get("/admin/account").status_code == 200  # still signed in throughout


def asks_confirmation(route: APIRoute) -> bool:
    return any(getattr(call, "asks_confirmation", False) for call in _calls(route.dependant))


def _sqladmin_changes(view: Any) -> set[str]:
    names = {"create"} if view.can_create else set()
    names |= {"edit"} if view.can_edit else set()
    names |= {"delete"} if view.can_delete else set()
    return names | set(view._custom_actions_in_list) | set(view._custom_actions_in_detail)


def _admin_only(view: Any, change: str) -> bool:
    key = change if change in ("create", "edit", "delete") else custom_action(change)
    return bool(view.permissions.get(key) == Role.ADMIN)


def test_every_admin_change_is_sensitive_or_named_ordinary(app: FastAPI) -> None:
    """A new staff POST (or sqladmin change) for admins alone fails here until it asks for a
    recent confirmation or is named ordinary work, with a reason."""
    routes = _staff_routes(app)
    admin_posts = {
        r.name for r in routes if "POST" in (r.methods or ()) and declared_role(r) == Role.ADMIN
    }
    unjudged = {
        f"{view.identity}:{change}"
        for view in staff_app(app).state.admin.views
        for change in _sqladmin_changes(view)
        if _admin_only(view, change)
        and change not in view.confirm_before
        and change not in ORDINARY_SQLADMIN.get(view.identity, {})
    }

    assert {r.name for r in routes if asks_confirmation(r)} == SENSITIVE
    assert admin_posts - SENSITIVE - set(ORDINARY) == set()
    assert set(ORDINARY) <= admin_posts and not SENSITIVE & set(ORDINARY)
    assert unjudged == set()


def _sensitive_sqladmin_calls(app: FastAPI, world: World) -> list[tuple[str, str]]:
    calls = []
    for view in staff_app(app).state.admin.views:
        pk = world.ids.user if view.identity == "staff-user" else 1
        paths = {
            "create": f"/{view.identity}/create",
            "edit": f"/{view.identity}/edit/{pk}",
        }
        for change in view.confirm_before:
            path = paths.get(change, f"/{view.identity}/action/{change}?pks=1")
            methods = ["GET", "POST"] if change in paths else ["POST"]
            calls += [(method, path) for method in methods]
    return calls


def test_without_a_recent_confirmation_every_sensitive_route_asks_first_and_changes_nothing(
    app: FastAPI, web: TestClient, world: World, committed: Engine
) -> None:
    token = sign_in(web, StaffLogin("admin@example.com", PASSWORD, Role.ADMIN))
    with committed.begin() as connection:
        long_ago = utcnow() - timedelta(minutes=get_settings().sudo_minutes + 1)
        connection.execute(update(StaffSession).values(confirmed_at=long_ago))
    before = fingerprint(committed)
    calls = [
        call for r in _staff_routes(app) if r.name in SENSITIVE for call in _calls_of(r, world)
    ] + _sensitive_sqladmin_calls(app, world)

    answers = {
        f"{method} {path}": web.request(
            method, "/admin" + path, data={"csrf_token": token}, follow_redirects=False
        )
        for method, path in calls
    }

    not_asked = {
        call: (answer.status_code, answer.headers.get("location"))
        for call, answer in answers.items()
        if answer.status_code != 303
        or not answer.headers["location"].startswith("/admin/confirm-access")
    }
    assert not_asked == {}
    assert len(answers) >= len(SENSITIVE) + 6
    assert fingerprint(committed) == before


def _api_routes(app: FastAPI) -> list[APIRoute]:
    routes = served_routes(app.router.routes)
    return [r for p, r in routes if p.startswith("/api/") and isinstance(r, APIRoute)]


def test_every_api_route_requires_a_key(app: FastAPI) -> None:
    def keyed(route: APIRoute) -> bool:
        return require_api_key in set(_calls(route.dependant))

    assert [route.name for route in _api_routes(app) if not keyed(route)] == []


def test_every_api_route_refuses_a_missing_wrong_or_revoked_key_and_changes_nothing(
    app: FastAPI, web: TestClient, world: World, committed: Engine
) -> None:
    with Session(committed) as session:
        revoked, revoked_token = create_api_key(session, "gone", actor="tests")
        revoke_api_key(session, revoked.id or 0, actor="tests")
    wrong = world.api_token[:-4] + "AAAA"
    before = fingerprint(committed)
    answers = {}
    for route in _api_routes(app):
        for method, path in _calls_of(route, world):
            for name, header in [
                ("none", {}),
                ("wrong", {"Authorization": f"Bearer {wrong}"}),
                ("revoked", {"Authorization": f"Bearer {revoked_token}"}),
                ("not bearer", {"Authorization": f"Basic {world.api_token}"}),
            ]:
                response = web.request(method, path, headers=header, json={})
                answers[f"{method} {path} ({name})"] = response.status_code

    assert {call: status for call, status in answers.items() if status != 401} == {}
    assert fingerprint(committed) == before


# Columns that hold a secret or what stands for one: no page, download or API read shows them.
SECRET_COLUMNS = {
    "api_key": ("token_hash",),
    "staff_user": ("password_hash",),
    "staff_session": ("token_hash",),
    "staff_totp": ("secret", "recovery_hashes"),
    "webhook_endpoint": ("secret",),
    "visitor_key": ("secret",),
}


def _secrets(engine: Engine) -> list[tuple[str, bytes]]:
    found = []
    with engine.connect() as connection:
        for name, columns in SECRET_COLUMNS.items():
            table = metadata.tables[name]
            for column in columns:
                for (value,) in connection.execute(select(table.c[column])):
                    values = value if isinstance(value, list) else [value]
                    found += [(f"{name}.{column}", str(v).encode()) for v in values if v]
    assert {name for name, _ in found} >= {"staff_totp.secret", "webhook_endpoint.secret"}
    return found


def _public_gets(app: FastAPI, world: World) -> list[str]:
    """A URL of every GET route outside the staff site and the API, each code route by the
    offer's full ULID, the order's full ULID and its tracking ID."""
    settings = get_settings()
    ids = world.ids
    # An offer has no feed, and a tracking ID opens no offer.
    order_codes, offer_codes = (ids.order, world.tracking_id), (ids.issued, ids.order)
    codes_of: dict[str, tuple[str, ...]] = {
        "notifications:feed": order_codes,
        "notifications:delivery_calendar": order_codes,
        "tracking:pdf": offer_codes,
        "tracking:accepted": offer_codes,
        "tracking:declined": offer_codes,
    }
    tokens = {
        "notifications:confirm_form": subscriptions.confirm_token(world.subscription, settings),
        "notifications:unsubscribe_form": subscriptions.unsubscribe_token(
            world.subscription, settings
        ),
    }
    urls = []
    for path, route in served_routes(app.router.routes):
        if not _is_get(route) or path.startswith(("/api/", "/admin/")):
            continue
        name, params = getattr(route, "name", ""), set(getattr(route, "param_convertors", ()))
        if params == {"code"}:
            codes = codes_of.get(name, (ids.issued, ids.order, world.tracking_id))
            urls += [path.format(code=code) for code in codes]
        elif params == {"token"}:
            urls.append(path.format(token=tokens[name]))
        elif params == {"slug"}:
            urls.append(path.format(slug=world.slug))
        else:
            assert not params, f"{name}: a new public GET route; give its parameters here"
            urls.append(path + QUERIES.get(name, "").format(code=world.tracking_id))
    return urls


def _is_get(route: BaseRoute) -> bool:
    return isinstance(route, Route | APIRoute) and "GET" in (route.methods or ())


QUERIES = {"tracking:lookup": "?code={code}"}
API_QUERIES = {
    "placements:artwork": "?size_mm=40",
    "analytics:breakdown": "?by=channel",
    "analytics:attribution": "?by=campaign",
}


def _api_gets(app: FastAPI, world: World) -> list[str]:
    return [
        path + API_QUERIES.get(route.name, "")
        for route in _api_routes(app)
        if "GET" in (route.methods or ())
        for _, path in _calls_of(route, world)
    ]


def test_no_get_or_head_anywhere_changes_what_is_stored(
    app: FastAPI, web: TestClient, world: World, committed: Engine
) -> None:
    """Mail scanners open every link with GET and HEAD: every page, download, feed and API
    read of the whole app, as an admin and with an API key. A HEAD stores nothing (but what
    is kept as needed); a GET also what a view is (a scan)."""
    sign_in(web, StaffLogin("admin@example.com", PASSWORD, Role.ADMIN))
    staff = staff_pages(app, world.ids, committed) + staff_downloads(staff_app(app), world.ids)
    key = {"Authorization": f"Bearer {world.api_token}"}
    calls: list[tuple[str, dict[str, str]]] = [(url, {}) for url in staff]
    calls += [(url, {}) for url in _public_gets(app, world)]
    calls += [(url, key) for url in _api_gets(app, world)]

    before = fingerprint(committed, skip=KEPT_AS_NEEDED)
    failed = {}
    for url, headers in calls:
        head = web.head(url, headers=headers, follow_redirects=False)
        if head.status_code >= 400 and not url.endswith(".eml"):
            failed[f"HEAD {url}"] = head.status_code
    assert fingerprint(committed, skip=KEPT_AS_NEEDED) == before
    before = fingerprint(committed, skip=VIEWS)
    secrets = _secrets(committed)
    shown = {}
    for url, headers in calls:
        get = web.get(url, headers=headers, follow_redirects=False)
        if get.status_code >= 400 and not url.endswith(".eml"):
            failed[f"GET {url}"] = get.status_code
        if found := [name for name, value in secrets if value in get.content]:
            shown[url] = found
    assert fingerprint(committed, skip=VIEWS) == before
    assert shown == {}  # nothing read shows a secret, however privileged the reader

    assert failed == {}  # every call reached its page: the walk changed nothing by answering
    assert len(calls) > 100


@pytest.mark.usefixtures("web")  # the app running, its scan writer started
def test_no_table_keeps_a_visitors_address_or_user_agent(
    app: FastAPI, world: World, committed: Engine
) -> None:
    """A visitor's every step (views, a campaign code, the forms, a failed and a successful
    staff sign-in) leaves no raw address or user agent in any row, only what stands for them."""
    address, agent = "198.51.100.77", "Mozilla/5.0 (X11; Linux x86_64) ProbeAgent/9.9.1"
    visitor = TestClient(app, base_url="https://track.example.com", client=(address, 40000))
    visitor.headers["User-Agent"] = agent
    ids = world.ids
    for path in (f"/{ids.issued}", f"/{world.tracking_id}", f"/c/{world.slug}", "/admin/login"):
        visitor.get(path, follow_redirects=False)
    token = csrf_from(visitor.get(f"/{ids.issued}").text)
    forms = {
        f"/{ids.issued}/question": {"email": "q@example.com", "message": "When?"},
        f"/{world.tracking_id}/subscribe": {"email": "s2@example.com"},
        f"/{ids.issued}/accept": {"signer_name": "Maria P.", "accept_terms": "yes"},
    }
    for path, form in forms.items():
        assert visitor.post(path, data={**form, "csrf_token": token}).status_code < 400, path
    login = csrf_from(visitor.get("/admin/login").text)
    for password in ("wrong password", PASSWORD):
        data = {"email": "sales@example.com", "password": password, "csrf_token": login}
        visitor.post("/admin/login", data=data)

    with committed.connect() as connection:
        rows = {
            table.name: "\n".join(repr(tuple(row)) for row in connection.execute(select(table)))
            for table in metadata.sorted_tables
        }
    assert "198.51.100.77" not in str(rows) and "ProbeAgent" not in str(rows)
    assert "on Linux" in rows["staff_session"]  # the signed-in session, told apart by its family
    assert rows["customer_question"] and rows["order_subscription"]


def test_every_public_change_without_its_token_is_refused_and_changes_nothing(
    app: FastAPI, web: TestClient, world: World, committed: Engine
) -> None:
    """Each state-changing route of the public site, sent a complete form from another site
    (no token; a token without its cookie; a cookie with another token): 403, nothing stored.
    The one-click unsubscribe is the exception (RFC 8058: its signed link is the proof)."""
    token = csrf_from(web.get(f"/{world.ids.issued}").text)
    cookie = {"Cookie": f"{CSRF_COOKIE}={web.cookies[CSRF_COOKIE]}"}
    web.cookies.clear()
    form = {"email": "x@example.com", "message": "Hi", "signer_name": "Mallory", "reason": "no"}
    routes = [
        route
        for path, route in served_routes(app.router.routes)
        if isinstance(route, APIRoute)
        and not path.startswith(("/api/", "/admin/"))
        and (route.methods or set()) - {"GET", "HEAD"}
        and route.name not in OWN_PROOF
    ]
    values = _path_values(world) | {
        "code": world.ids.issued,
        "token": subscriptions.confirm_token(world.subscription, get_settings()),
    }
    before = fingerprint(committed)
    answers = {}
    for route in routes:
        path = route.url_path_for(route.name, **{n: values[n] for n in route.param_convertors})
        for name, data, headers in [
            ("no token", form, cookie),
            ("token, no cookie", {**form, "csrf_token": token}, {}),
            ("another token", {**form, "csrf_token": token[:-4] + "AAAA"}, cookie),
        ]:
            answers[f"{path} ({name})"] = web.post(
                str(path), data=data, headers=headers
            ).status_code

    assert {call: status for call, status in answers.items() if status != 403} == {}
    assert len(routes) >= 5
    assert fingerprint(committed) == before
    sent = {**form, "csrf_token": token, "accept_terms": "yes"}  # and with both, it is taken
    taken = web.post(
        f"/{world.ids.issued}/accept", data=sent, headers=cookie, follow_redirects=False
    )
    assert taken.status_code == 303
