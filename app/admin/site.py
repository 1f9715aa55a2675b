"""The staff site: one FastAPI sub-application at /admin holding sqladmin and our own pages,
behind one session cookie and one CSRF check."""

import functools
import hashlib
import hmac
from collections.abc import Awaitable, Callable, Sequence
from types import MethodType
from typing import Any

import jinja_partials
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from jinja2 import ChoiceLoader, FileSystemLoader
from jinja2.runtime import Context
from sqladmin import Admin
from sqladmin._menu import ItemMenu
from sqladmin.authentication import login_required
from sqladmin.authorization import custom_action
from sqladmin.templating import Jinja2Templates
from starlette.datastructures import URL
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import Response

from app.admin import (
    access,
    confirm_access,
    export,
    followups,
    queries,
    reveal,
    routes,
    sudo,
    views,
)
from app.admin.access import SESSION_COOKIE, LoginRequired, csrf_token
from app.admin.csrf import CsrfMiddleware
from app.admin.layout import MenuLink, StaffPages, render_staff_page
from app.auth.staff import Role
from app.config import TEMPLATES_DIR, Settings, get_settings
from app.db import get_engine, read_only
from app.errors import AppError
from app.formats import DecimalMark
from app.observability import log_unexpected
from app.templating import install_filters
from app.web import answer_database_outages

STAFF_PREFIX = "/admin"


class _LinkMenu(ItemMenu):
    def __init__(self, link: MenuLink) -> None:
        super().__init__(name=link.name, icon=link.icon)
        self.link = link

    def is_accessible(self, request: Request) -> bool:
        staff = getattr(request.state, "staff", None)
        return staff is not None and bool(staff.can(self.link.role))

    def url(self, request: Request) -> str | URL:
        return request.url_for(self.link.route_name)

    def is_active(self, request: Request) -> bool:
        return request.url.path.rstrip("/") == URL(str(self.url(request))).path.rstrip("/")

    @property
    def type_(self) -> str:
        return "View"


class StaffAdmin(Admin):
    """sqladmin with the dashboard as its landing page and our templates and filters."""

    export_slots: export.ExportSlots

    def init_templating_engine(self) -> Jinja2Templates:
        templates = super().init_templating_engine()
        loader = templates.env.loader
        assert isinstance(loader, ChoiceLoader)
        # Overrides of sqladmin's templates live in templates/admin/sqladmin/; pages of any
        # module are found by their path under templates/ ("admin/...", "analytics/...").
        loader.loaders = [loader.loaders[0], FileSystemLoader(TEMPLATES_DIR), *loader.loaders[1:]]
        # Numbers as the signed-in user writes them (their decimal mark), not in the
        # language of a customer or a browser: the staff site is English with their mark.
        install_filters(templates.env, numbers_in=_staff_numbers)
        # htmx partials render through jinja-partials (render_partial), from a synchronous
        # overlay of this async environment: the same loader, filters and globals (the overlay
        # shares the globals, so render_partial lands in both), its own template cache, and no
        # thread and event loop per partial as jinja-partials needs for an async environment.
        jinja_partials.register_environment(
            templates.env.overlay(enable_async=False, cache_size=100), markup=True
        )
        templates.env.globals["csrf_token"] = csrf_token
        templates.env.globals["revealed"] = reveal.take
        templates.env.globals["staff"] = lambda request: getattr(request.state, "staff", None)
        templates.env.globals["Role"] = Role
        return templates

    @login_required
    async def index(self, request: Request) -> Response:
        staff = await access.current_staff(request)
        assert staff is not None  # @login_required
        settings = get_settings()

        def load(
            session: Any,
        ) -> tuple[queries.Dashboard, followups.FollowUps, list[followups.DisabledOwner]]:
            with read_only(session):
                return (
                    queries.dashboard(session, settings),
                    followups.follow_ups(session, staff.id, settings),
                    # Only admins may hand offers over: theirs to act on, nobody else's.
                    followups.disabled_owners(session, settings)
                    if staff.role == Role.ADMIN
                    else [],
                )

        dashboard, follow_ups, disabled_owners = await views.in_session(load)
        context = {
            "dashboard": dashboard,
            "follow_ups": follow_ups,
            "disabled_owners": disabled_owners,
            "title": "Dashboard",
        }
        return await self.templates.TemplateResponse(request, "admin/dashboard.html", context)

    @login_required
    async def create(self, request: Request) -> Response:
        await self._create(request)  # the role first: a sales user is refused, not asked
        await self._ask_unless_confirmed(request, "create")
        response: Response = await super().create(request)
        return response

    @login_required
    async def edit(self, request: Request) -> Response:
        await self._edit(request)
        await self._ask_unless_confirmed(request, "edit")
        response: Response = await super().edit(request)
        return response

    async def _ask_unless_confirmed(self, request: Request, name: str) -> None:
        view = self._find_model_view(request.path_params["identity"])
        if name in getattr(view, "confirm_before", ()):
            await sudo.ask_unless_confirmed(request)

    def _handle_action_decorated_func(
        self, func: MethodType, view: Any, view_instance: Any
    ) -> None:
        """A sensitive action (the view's ``confirm_before``) asks for the password first."""
        if getattr(func, "_slug", None) in getattr(view_instance, "confirm_before", ()):
            func = _asking_confirmation(func, view_instance)  # type: ignore[assignment]
        super()._handle_action_decorated_func(func, view, view_instance)

    @login_required
    async def export(self, request: Request) -> Response:
        # sqladmin's export reads every row of the list into memory before it writes one;
        # ours streams them (app/admin/export.py). The checks stay sqladmin's: the view's
        # export role (RoleAuthorization) and a type it offers, which for ours is CSV alone.
        await self._export(request)
        if request.path_params["export_type"] != "csv":
            raise HTTPException(status_code=404)
        view = self._find_model_view(request.path_params["identity"])
        staff = await access.current_staff(request)
        assert staff is not None  # @login_required
        return await export.csv_response(view, request, self.export_slots, staff.decimal_mark)


def _asking_confirmation(
    action: Callable[[Request], Awaitable[Response]], view: Any
) -> Callable[[Request], Awaitable[Response]]:
    permission = custom_action(getattr(action, "_slug", ""))

    @functools.wraps(action)  # keeps sqladmin's _action, _slug and label
    async def asking(request: Request) -> Response:
        # Signed out or without the role: the action's own checks answer (sign-in, 403).
        if await access.current_staff(request) and view.has_permission(request, permission):
            await sudo.ask_unless_confirmed(request)
        return await action(request)

    return asking


def _staff_numbers(context: Context) -> str:
    request = context.get("request")
    mark = access.decimal_mark(request) if isinstance(request, Request) else DecimalMark.POINT
    return mark.language


def _session_key(settings: Settings) -> str:
    # Its own key, derived from the secret, so no other signed value can pass as a session.
    secret = settings.resolved_secret_key().encode()
    return hmac.new(secret, b"offertrack-staff-session", hashlib.sha256).hexdigest()


def create_staff_app(settings: Settings, pages: Sequence[StaffPages] = ()) -> FastAPI:
    staff_app = FastAPI(
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        middleware=[
            Middleware(
                SessionMiddleware,
                secret_key=_session_key(settings),
                session_cookie=SESSION_COOKIE,
                max_age=settings.admin_idle_minutes * 60,  # re-signed on every response: idle
                path=STAFF_PREFIX,
                same_site="lax",
                https_only=settings.uses_tls,
            ),
            Middleware(CsrfMiddleware),
        ],
    )
    # Our routes first: they shadow sqladmin's /login and /logout, and sqladmin's mount at
    # the root of this app would otherwise take every path.
    staff_app.include_router(routes.router)
    staff_app.include_router(confirm_access.router)
    for page in pages:
        for router in page.routers:
            staff_app.include_router(router)
    authorization = access.RoleAuthorization()
    admin = StaffAdmin(
        staff_app,
        engine=get_engine(),
        base_url="/",
        title="OfferTrack staff",
        templates_dir=str(TEMPLATES_DIR / "admin"),
        favicon_url="/static/favicon.svg",
        authentication_backend=access.StaffAuthentication(),
        authorization_backend=authorization,
    )
    admin.export_slots = export.ExportSlots(settings.max_concurrent_exports)
    for base in views.ALL_VIEWS:
        # sqladmin keeps its admin and templates on the view class: a subclass per site keeps
        # two sites in one process (tests, embedding) from taking over each other's views.
        view: type[views.StaffModelView] = type(base.__name__, (base,), {})
        admin.add_view(view)
        authorization.register(view.identity, view.permissions)
    links = [MenuLink("Settings", "staff:settings", Role.ADMIN, icon="fa-solid fa-gear")]
    for link in [link for page in pages for link in page.menu] + links:
        admin._menu.add(_LinkMenu(link))
    _actions_only_by_post(admin)
    _without_file_routes(admin)
    _register_error_handlers(staff_app, admin)
    staff_app.state.admin = admin
    admin.admin.state.admin = admin  # errors inside sqladmin reach our handlers with its app
    return staff_app


def _actions_only_by_post(admin: Admin) -> None:
    """sqladmin registers custom actions as GET routes; opening a link must never change
    anything, so they answer POST only (the templates send forms with the CSRF token)."""
    for route in admin.admin.router.routes:
        if getattr(route, "name", "").startswith("action-"):
            route.methods = {"POST"}  # type: ignore[attr-defined]


def _without_file_routes(admin: Admin) -> None:
    """sqladmin serves any column's value as a file path (under the working directory when the
    column names no storage) to whoever may see the row's details: a stage update's public
    note "offertrack.db" would hand a sales user the whole database. No OfferTrack table
    stores files, so these routes go."""
    admin.admin.router.routes = [
        route
        for route in admin.admin.router.routes
        if getattr(route, "name", "") not in ("file_download", "file_preview")
    ]


def mount_staff_site(app: FastAPI, settings: Settings, pages: Sequence[StaffPages] = ()) -> None:
    """Mount the staff site at /admin; call it before any catch-all route is added."""
    staff_app = create_staff_app(settings, pages)
    staff_app.state.root = app

    async def to_dashboard() -> Response:
        return RedirectResponse(STAFF_PREFIX + "/", status_code=307)

    app.add_api_route(STAFF_PREFIX, to_dashboard, include_in_schema=False)
    app.mount(STAFF_PREFIX, staff_app)


def _register_error_handlers(staff_app: FastAPI, admin: Admin) -> None:
    async def page(request: Request, status_code: int, title: str, detail: str) -> Response:
        context = {"status_code": status_code, "title": title, "message": detail}
        return await render_staff_page(request, "admin/error.html", context, status_code)

    @staff_app.exception_handler(LoginRequired)
    async def login_required_(request: Request, exc: LoginRequired) -> Response:
        return access.sign_in_again(request)

    @staff_app.exception_handler(sudo.ConfirmAccess)
    async def confirm_first(request: Request, exc: sudo.ConfirmAccess) -> Response:
        return confirm_access.ask(request, exc)

    @staff_app.exception_handler(AppError)
    async def app_error(request: Request, exc: AppError) -> Response:
        response = await page(request, exc.status_code, exc.title, exc.detail)
        response.headers.update(exc.headers())
        return response

    # sqladmin's own app answers what its routes raise, but for HTTPException, with a bare 500
    # before ours could: our errors (the export's refusal, ExportsBusy), a database outage (a
    # 503, as on every page) and the unexpected need our pages and headers there as well.
    # (Starlette types a handler as taking any Exception.)
    admin.admin.add_exception_handler(AppError, app_error)  # type: ignore[arg-type]
    admin.admin.add_exception_handler(sudo.ConfirmAccess, confirm_first)  # type: ignore[arg-type]
    for target in (staff_app, admin.admin):
        answer_database_outages(target, app_error)

    @staff_app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        fields = ", ".join(".".join(str(p) for p in err["loc"]) for err in exc.errors())
        return await page(request, 422, "Invalid input", f"Please check: {fields}.")

    @staff_app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        titles = {403: "Not allowed", 404: "Not found", 405: "Method not allowed"}
        return await page(
            request, exc.status_code, titles.get(exc.status_code, "Error"), str(exc.detail)
        )

    @staff_app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log_unexpected(request, exc)
        return await page(
            request, 500, "Something went wrong", "An unexpected error occurred; it was logged."
        )

    admin.admin.add_exception_handler(Exception, unexpected)
