"""The staff site's routes, derived rather than listed, on demo-like data: every page (our own
GET routes and sqladmin's list, details, create and edit pages of every registered view) and
every GET route that answers something else (NOT_PAGES). A new route that is neither derived
nor named fails the tests that use this (the browser test of every page, the no-store test)."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, get_args

import pyotp
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqladmin.helpers import get_object_identifier
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from starlette.routing import Mount

from app.admin import twofactor, users
from app.admin.analytics.dashboard import CsvTable
from app.analytics import campaigns, webhooks
from app.analytics.schemas import PlacementUpdate, WebhookEndpointCreate
from app.auth.service import create_api_key
from app.auth.staff import Role
from app.config import get_settings
from app.customers import service as customers_service
from app.customers.schemas import CustomerCreate
from app.demo import load_demo_data
from app.notifications import questions
from app.offers import terms
from app.offers.models import Offer, OfferStatus
from app.tracking.codes import parse_tracking_code
from tests.analytics.test_attribution import World

PASSWORD = "correct horse battery"

NOT_PAGES = {  # GET routes of the staff site that answer something else than a page
    "staff:login_2fa": "visited after the others, by a user with 2FA (it needs a password first)",
    "staff:offer_pdf": "a PDF preview",
    "analytics:panels": "the dashboard's htmx fragment; its page is analytics:dashboard",
    "analytics:csv": "a CSV download",
    "analytics:placement_qr": "a QR artwork download (SVG, PNG or PDF)",
    "notifications:written_mail": "a mail file, as plain text",
}
SQLADMIN_NOT_PAGES = {"export", "ajax_lookup", "delete", "import", "login", "logout", "index"}


@dataclass(frozen=True)
class Ids:
    draft: str
    issued: str
    order: str
    customer: int
    template: int
    campaign: int
    placement: int
    endpoint: int
    user: int  # a sales user with two-factor sign-in and a session


def path_values(ids: Ids) -> dict[str, object]:
    """A value for each path parameter of the staff site's actions, by its name."""
    return {
        "offer_id": ids.issued,
        "customer_id": ids.customer,
        "template_id": ids.template,
        "campaign_id": ids.campaign,
        "placement_id": ids.placement,
        "endpoint_id": ids.endpoint,
        "question_id": 1,
        "session_id": 1,
        "user_id": ids.user,
    }


def demo_data(engine: Engine) -> Ids:
    """The demo offers, a customer, a terms template, a campaign with scans and conversions,
    a webhook endpoint, an API key and staff of each role."""
    settings = get_settings()
    with Session(engine, expire_on_commit=False) as session:
        load_demo_data(session, settings=settings)
        world = World(session, settings)
        customer = customers_service.create_customer(
            session,
            CustomerCreate(company="Acme Hellas SA", contact_name="Maria Papadopoulou"),
            actor="tests",
        )
        template = terms.save_template(
            session, None, name="Standard terms", kind="terms", body="Net 30.", actor="tests"
        )
        endpoint = webhooks.create_endpoint(
            session,
            WebhookEndpointCreate(url="https://hook.example.com/", event_types=["scan.created"]),
            actor="tests",
        )
        create_api_key(session, "ERP", actor="tests")
        _with_rules(session, world)
        made = {
            role: users.create_user(session, f"{role}@example.com", role, PASSWORD, actor="tests")
            for role in Role
        }
        totp_user = _with_two_factor(session, TWO_FACTOR_USER)

        def offer(status: OfferStatus) -> str:
            query = select(Offer.id).where(Offer.status == status, col(Offer.ordered_at).is_(None))
            return session.exec(query.order_by(col(Offer.id))).first() or ""

        questions.ask_question(  # the questions page of the issued offer has one to show
            session,
            parse_tracking_code(offer(OfferStatus.ISSUED)),
            email="maria@example.com",
            message="Can you deliver in May?",
            settings=settings,
        )
        ordered = session.exec(select(Offer.id).where(col(Offer.ordered_at).is_not(None))).first()
        used = {offer(OfferStatus.DRAFT), offer(OfferStatus.ISSUED), ordered}
        # The admin's dashboard shows their follow-ups: the issued offer and its question.
        _owns(session, made[Role.ADMIN].id or 0, offer(OfferStatus.ISSUED))
        _owns_one(session, totp_user, used)
        return Ids(
            draft=offer(OfferStatus.DRAFT),
            issued=offer(OfferStatus.ISSUED),
            order=ordered or "",
            customer=customer.id or 0,
            template=template.id or 0,
            campaign=world.campaign,
            placement=world.p1 or 0,
            endpoint=endpoint.id or 0,
            user=totp_user,
        )


TWO_FACTOR_USER = "totp@example.com"


def _owns(session: Session, user_id: int, offer_id: str) -> None:
    owned = session.get(Offer, offer_id)
    assert owned is not None
    owned.owner_id = user_id
    session.add(owned)
    session.commit()


def _owns_one(session: Session, user_id: int, used: set[str | None]) -> None:
    """The user page's "Hand over offers" has an offer to hand over (one the walks use
    otherwise stays with its owner)."""
    spare = session.exec(select(Offer).where(col(Offer.id).not_in(used - {None}))).first()
    assert spare is not None
    spare.owner_id = user_id
    session.add(spare)
    session.commit()


def _with_two_factor(session: Session, email: str) -> int:
    """A sales user who signs in with a code: the second step's page is a page too."""
    user = users.create_user(session, email, Role.SALES, PASSWORD, actor="tests")
    staff = users.load_active(session, user.id or 0)
    assert staff is not None
    secret = twofactor.begin_enrolment(session, staff)
    twofactor.confirm_enrolment(session, staff, pyotp.TOTP(secret).now())
    return staff.id


def _with_rules(session: Session, world: World) -> None:
    """P1 routes phones at night to an A/B test of two creatives: the rules form has rows."""
    rule = {
        "name": "Night owls",
        "when": {"os": ["ios", "android"], "time_from": "22:00", "time_to": "06:00"},
        "destinations": [
            {"url": "https://shop.example.com/a", "creative_id": world.k1, "weight": 3},
            {"url": "https://shop.example.com/b", "creative_id": world.k2},
        ],
    }
    data = PlacementUpdate.model_validate({"rules": [rule]})
    campaigns.update_placement(session, world.p1 or 0, data, actor="tests")


def _route_args(ids: Ids) -> dict[str, dict[str, Any]]:
    """The path parameters of each staff page that has some."""
    return {
        "staff:stage_update_form": {"offer_id": ids.order},
        "editor:edit": {"offer_id": ids.draft},
        "editor:confirm_issue": {"offer_id": ids.draft},
        "editor:confirm_activate": {"offer_id": ids.issued},
        "editor:confirm_revise": {"offer_id": ids.issued},
        "sending:form": {"offer_id": ids.issued},
        "customer_pages:edit": {"customer_id": ids.customer},
        "terms_pages:edit": {"template_id": ids.template},
        "analytics:campaign": {"campaign_id": ids.campaign},
        "analytics:placement": {"placement_id": ids.placement},
        "analytics:webhook": {"endpoint_id": ids.endpoint},
        "questions:list": {"offer_id": ids.issued},
        "user_pages:handover": {"user_id": ids.user},
        "user_pages:confirm_sign_out": {"user_id": ids.user},
        "user_pages:confirm_reset_2fa": {"user_id": ids.user},
    }


def staff_app(app: FastAPI) -> FastAPI:
    for route in app.routes:
        if isinstance(route, Mount) and route.path == "/admin":
            assert isinstance(route.app, FastAPI)
            return route.app
    raise AssertionError("no staff site mounted at /admin")


def get_routes(staff: FastAPI) -> Iterator[APIRoute]:
    for included in staff.router.routes:
        router = getattr(included, "original_router", None)  # FastAPI's included routers
        for route in getattr(router, "routes", [included]):
            if isinstance(route, APIRoute) and "GET" in (route.methods or ()):
                yield route


def staff_pages(app: FastAPI, ids: Ids, engine: Engine) -> list[str]:
    """Every page of the staff site, as paths, signed-out pages first."""
    staff = staff_app(app)
    args = _route_args(ids)
    pages = ["/admin/login"]
    for route in get_routes(staff):
        if route.name in NOT_PAGES or route.name == "staff:login":
            continue
        needed = set(route.param_convertors)
        assert needed <= set(args.get(route.name, {})), (
            f"{route.name}: a new staff page? Give its parameters in _route_args, or name it "
            "in NOT_PAGES if it is not a page"
        )
        pages.append("/admin" + staff.url_path_for(route.name, **args.get(route.name, {})))
    return pages + _sqladmin_pages(staff, engine, ids)


def _sqladmin_pages(staff: FastAPI, engine: Engine, ids: Ids) -> list[str]:
    admin = staff.state.admin
    known = {"list", "details", "create", "edit", *SQLADMIN_NOT_PAGES}
    names = {getattr(r, "name", "") for r in admin.admin.routes if not isinstance(r, Mount)}
    unknown = {n for n in names if not n.startswith("action-")} - known
    assert not unknown, f"sqladmin pages this test does not visit: {unknown}"
    pages = ["/admin/"]
    with Session(engine) as session:
        for view in admin.views:
            # The orders view shows offers that became orders: any other offer is not one.
            pk = ids.order if view.identity == "order" else _first_pk(session, view.model)
            pages += [f"/admin/{view.identity}/list", f"/admin/{view.identity}/details/{pk}"]
            if view.can_create:
                pages.append(f"/admin/{view.identity}/create")
            if view.can_edit:
                pages.append(f"/admin/{view.identity}/edit/{pk}")
    return pages


def _first_pk(session: Session, model: Any) -> str:
    row = session.exec(select(model)).first()
    assert row is not None, f"no {model.__name__} in the demo data"
    return str(get_object_identifier(row))


def staff_downloads(staff: FastAPI, ids: Ids) -> list[str]:
    """A URL of every staff GET route that is not a page (NOT_PAGES), and sqladmin's exports
    of every view."""
    queries: dict[str, list[tuple[dict[str, Any], str]]] = {
        "staff:login_2fa": [({}, "")],  # signed in already: 303
        "staff:offer_pdf": [({"offer_id": ids.issued}, "")],
        "analytics:panels": [({}, "")],
        "analytics:csv": [
            ({"table": table}, "?by=channel" if table == "breakdown" else "")
            for table in get_args(CsvTable)
        ],
        "analytics:placement_qr": [
            ({"placement_id": ids.placement}, f"?fmt={fmt}") for fmt in ("svg", "png", "pdf")
        ],
        "notifications:written_mail": [({"name": "20260101.eml"}, "")],  # none written: 404
    }
    assert set(queries) == set(NOT_PAGES), "a new staff route that is not a page: add it here"
    urls = [
        "/admin" + staff.url_path_for(name, **params) + query
        for name, calls in queries.items()
        for params, query in calls
    ]
    for view in staff.state.admin.views:
        urls += [f"/admin/{view.identity}/export/{kind}" for kind in view.export_types]
    return urls
