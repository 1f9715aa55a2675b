"""create_app(): the ASGI application with its routers, static files and error handlers."""

import asyncio
import gc
import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from threading import Thread

from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
)
from fastapi.staticfiles import StaticFiles
from sqlmodel import Session
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from app import invalidation
from app.admin.account import ACCOUNT_PAGES
from app.admin.analytics import ANALYTICS_PAGES
from app.admin.customers import CUSTOMER_PAGES
from app.admin.editor import EDITOR_PAGES
from app.admin.notification_pages import notification_pages
from app.admin.privacy_pages import PRIVACY_PAGES
from app.admin.questions import QUESTION_PAGES
from app.admin.sending import SENDING_PAGES
from app.admin.site import mount_staff_site
from app.admin.terms_pages import TERMS_PAGES
from app.admin.user_pages import USER_PAGES
from app.analytics import rollup
from app.analytics.api import router as analytics_api_router
from app.analytics.codes import RoutingTable
from app.analytics.delivery import DeliveryWorker
from app.analytics.reports import router as analytics_reports_router
from app.analytics.router import routes as campaign_code_routes
from app.analytics.scanfeed import ScanFeed
from app.config import STATIC_DIR, Settings, check_configuration, get_settings
from app.customers.router import router as customers_router
from app.db import get_engine
from app.errors import AppError, Unauthorized, Unprocessable
from app.health import ReadinessCheck
from app.health import router as health_router
from app.metrics import worker_stopped
from app.notifications import feeds
from app.notifications.router import FormLimits
from app.notifications.router import router as notifications_router
from app.notifications.worker import MailWorker
from app.observability import HotPaths, RequestContextMiddleware, log_unexpected
from app.offers.pdf import PdfRenderer
from app.offers.router import router as offers_router
from app.requestguard import (
    RequestGuardMiddleware,
)
from app.restore import claim_database
from app.security import (
    BodyLimitMiddleware,
    SecurityHeadersMiddleware,
    body_too_large_detail,
    secure_response,
)
from app.subscribers import wire
from app.templating import render, templates
from app.tracking import partitions
from app.tracking.api import offer_router as order_activation_router
from app.tracking.api import router as orders_router
from app.tracking.pagecache import PageCache
from app.tracking.ratelimit import MissLimiter
from app.tracking.retention import purge_old_scans
from app.tracking.router import canonical_page_route, page_routes
from app.tracking.router import router as tracking_router
from app.tracking.scanlog import ScanWriter
from app.tracking.scans import classify_user_agent, purge_visitor_keys
from app.tracking.spool import ScanSpool
from app.web import ForwardedSchemeMiddleware, answer_database_outages

log = logging.getLogger(__name__)

# The routes served outside FastAPI's dependency injection (plain Starlette routes: solving
# dependencies costs more than the rest of these requests). Their endpoints take only the
# request; a Depends there would never run. See ARCHITECTURE.md, "Hot-path routes";
# tests/test_hot_paths.py keeps this list and the app in step.
HOT_PATH_ROUTES = frozenset({"tracking:page", "analytics:code"})


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    check_configuration(settings)  # production: a long secret key, https (or a TLS proxy)
    settings.resolved_secret_key()
    wire()  # who reacts to which domain event, before the first request publishes one

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        claim = claim_database(settings)  # `offertrack restore` refuses while we run
        renderer = PdfRenderer(settings)
        renderer.start_in_background()
        app.state.pdf_renderer = renderer
        warm_up = Thread(target=_warm_up, name="warm-up", daemon=True)
        warm_up.start()
        engine = get_engine()
        scan_log = ScanWriter(
            engine, spool=ScanSpool(settings.scan_spool_dir), hold_limit=settings.scan_hold_limit
        )
        app.state.scan_log = scan_log
        app.state.readiness = ReadinessCheck(settings, write_problem=scan_log.write_problem)
        # Rollups, scan.created events and ScansCommitted follow committed scans from here.
        scan_feed = ScanFeed(engine, settings.zone)
        if settings.scan_feed:
            scan_feed.start()
        housekeeping = asyncio.create_task(_hourly_housekeeping(settings))
        worker = DeliveryWorker(get_engine(), settings)
        mail_worker = MailWorker(get_engine(), settings)
        if settings.webhook_worker:
            worker.start()
            mail_worker.start()
        # Hear the other processes' changes: pages, API keys and routing rules they changed.
        listening = invalidation.start(settings.redis_url, settings.database_url)
        # Everything loaded so far (modules, mappers; _warm_up freezes what it loads) lives
        # as long as the process: left to the collector, each full collection walked all of it
        # and stalled every request for a moment (p99 of the tracking page 260 ms -> 65 ms).
        gc.freeze()
        try:
            yield
        finally:
            if listening:
                invalidation.stop()
            worker.stop()
            mail_worker.stop()
            housekeeping.cancel()
            scan_log.close()
            scan_feed.stop()
            renderer.shutdown()
            app.state.readiness.close()
            worker_stopped()
            if claim is not None:
                claim.release()

    app = FastAPI(
        title="OfferTrack",
        version="1.0",
        description="Quotations with a QR code that customers scan to track their order.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,  # ReDoc needs Google's fonts and an inline style; Swagger UI is enough
        telemetry=None
        if settings.opentelemetry
        else {"tracing": False, "metrics": False, "logs": False},
    )
    # The busiest paths, a tracking page as the QR code spells it and a campaign code: served
    # by HotPaths for a GET, and first in the route list for everything else (neither can
    # shadow a route: see canonical_page_route; no other path starts with /c/).
    hot_routes = [canonical_page_route(), *campaign_code_routes()]
    # Added last runs first: every response, a refused body's too, gets the request id and the
    # security headers.
    app.add_middleware(RequestGuardMiddleware)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_request_bytes)
    app.add_middleware(HotPaths, routes=hot_routes)
    app.add_middleware(SecurityHeadersMiddleware, settings=settings)
    app.add_middleware(RequestContextMiddleware, log_requests=settings.log_format == "json")
    if settings.trusted_proxies:
        app.add_middleware(ForwardedSchemeMiddleware, settings=settings)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(health_router)
    # One key for every process and node, so that a shared Redis counts a client once.
    pepper = hashlib.sha256(b"miss-limit:" + settings.resolved_secret_key().encode()).digest()
    app.state.miss_limiter = MissLimiter(
        settings.miss_limit_per_minute,
        storage_uri=settings.redis_url or "memory://",
        pepper=pepper,
    )
    app.state.notification_limits = FormLimits(
        storage_uri=settings.redis_url or "memory://", pepper=pepper
    )
    app.state.page_cache = PageCache(ttl_seconds=settings.page_cache_seconds)
    app.state.routing_table = RoutingTable(rules_file=settings.var_dir / "campaign_rules.json")
    # Routes are matched in order, and the public pages are the busiest paths: every other
    # single-segment path before the tracking pages (whose /{code} would shadow those); the
    # API and the staff site, deeper paths all, come last. Campaign redirects and canonical
    # codes are put first of all below.
    app.add_api_route("/favicon.ico", favicon, include_in_schema=False)
    app.add_api_route("/robots.txt", robots_txt, include_in_schema=False)
    app.add_api_route("/docs", swagger_ui, include_in_schema=False)
    app.add_api_route("/admin", to_staff_site, include_in_schema=False)
    app.include_router(tracking_router)
    app.include_router(notifications_router)
    app.router.routes.extend(page_routes())
    app.include_router(offers_router)
    app.include_router(customers_router)
    app.include_router(order_activation_router)
    app.include_router(orders_router)
    app.include_router(analytics_api_router)
    app.include_router(analytics_reports_router)
    # The staff site at /admin/ (sqladmin and staff pages, its own session cookie and CSRF
    # check).
    mount_staff_site(
        app,
        settings,
        pages=[
            EDITOR_PAGES,
            SENDING_PAGES,
            QUESTION_PAGES,
            CUSTOMER_PAGES,
            TERMS_PAGES,
            USER_PAGES,
            PRIVACY_PAGES,
            ANALYTICS_PAGES,
            ACCOUNT_PAGES,
            notification_pages(settings),
        ],
    )
    app.router.routes[:0] = hot_routes
    _register_error_handlers(app)
    return app


def _warm_up() -> None:
    """Load what the first views need, in a thread right after start: the server answers
    meanwhile (loading it first made every restart refuse requests for a while). A view that
    needs one of these sooner waits for it rather than loading it a second time: ua-parser
    builds its regexes under a lock, CrawlerDetect's behind the scan module's lock, Python
    imports under its import lock. A template may be compiled twice, at worst."""
    classify_user_agent("Mozilla/5.0")  # the user-agent regexes: 0.13 CPU-seconds
    # The tracking page's templates (its first view has a deadline).
    for name in ("tracking/page.html", "base.html", "_macros.html"):
        templates.env.get_template(name)
    feeds.preload()
    gc.freeze()  # what was loaded here lives as long as the process too (see lifespan)


async def _hourly_housekeeping(settings: Settings) -> None:
    """Delete visitor keys past 48 hours (also on days without scans), make the coming months'
    scan partitions (PostgreSQL), and roll scan events past the retention period up into
    daily counts."""
    while True:
        for task in (_purge_visitor_keys, _add_scan_partitions, _purge_old_scans):
            try:
                await asyncio.to_thread(task, settings)
            except Exception:  # the next hour tries again; the server must not stop for this
                log.exception("housekeeping failed: %s", task.__name__)
        await asyncio.sleep(3600)


def _purge_visitor_keys(settings: Settings) -> None:
    with Session(get_engine()) as session:
        purge_visitor_keys(session)
    with get_engine().begin() as connection:
        rollup.forget_old_sightings(connection)


def _add_scan_partitions(settings: Settings) -> None:
    # connect(), not begin(): on SQLite, where there is nothing to do, no write lock is taken.
    with get_engine().connect() as connection:
        made = partitions.add_coming_months(connection)
        connection.commit()
    if made:
        log.info("scan event partitions made: %s", ", ".join(month.name for month in made))


def _purge_old_scans(settings: Settings) -> None:
    with Session(get_engine(), expire_on_commit=False) as session:
        report = purge_old_scans(session, retention_days=settings.scan_retention_days)
    if report.events or report.months_dropped:
        log.info(
            "rolled up %d scan events of %d days (%d monthly partitions dropped)",
            report.events,
            report.days,
            report.months_dropped,
        )


async def favicon() -> Response:
    return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")


async def to_staff_site() -> Response:
    return RedirectResponse("/admin/", status_code=307)


async def robots_txt() -> Response:
    # Tracking pages belong to one customer each; search engines have no business there.
    return PlainTextResponse("User-agent: *\nAllow: /$\nDisallow: /\n")


async def swagger_ui(request: Request) -> Response:
    """FastAPI's Swagger UI page, with Swagger UI served from static/ (no CDN); its inline
    start-up script carries this response's CSP nonce."""
    page = get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="OfferTrack API",
        swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url="/static/swagger-ui/swagger-ui.css",
        swagger_favicon_url="/static/favicon.svg",
    )
    html = bytes(page.body).decode()
    nonce = request.state.csp_nonce
    return HTMLResponse(html.replace("<script>", f'<script nonce="{nonce}">'))


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _error_response(
    request: Request,
    status_code: int,
    title: str,
    detail: str,
    template: str = "error.html",
    error: AppError | None = None,
) -> Response:
    if _wants_json(request):
        return JSONResponse({"detail": detail}, status_code=status_code)
    # ``error``: a domain error's own page words it in the visitor's language from its fields.
    context = {"title": title, "detail": detail, "status_code": status_code, "error": error}
    return render(request, template, context, block="content", status_code=status_code)


def _allowed_methods(request: Request) -> list[str]:
    # Asking the router itself covers included routers, whose routes app.routes does not list.
    allowed = []
    for method in ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT"):
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


def _register_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def app_error(request: Request, exc: AppError) -> Response:
        if isinstance(exc, Unprocessable) and _wants_json(request):
            body = [{"type": "value_error", "loc": list(exc.loc), "msg": exc.detail}]
            return JSONResponse({"detail": body}, status_code=exc.status_code)
        response = _error_response(
            request, exc.status_code, exc.title, exc.detail, exc.web_template, exc
        )
        response.headers.update(exc.headers())
        if isinstance(exc, Unauthorized):
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        if _wants_json(request):
            return await request_validation_exception_handler(request, exc)
        fields = ", ".join(".".join(str(p) for p in err["loc"]) for err in exc.errors())
        return _error_response(request, 422, "Invalid input", f"Please check: {fields}.")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        titles = {404: "Not found", 405: "Method not allowed", 413: "Request too large"}
        detail = str(exc.detail)
        if exc.status_code == 413:
            detail = body_too_large_detail(get_settings().max_request_bytes)
        elif isinstance(exc.__cause__, RecursionError):
            detail = "The JSON body is nested too deeply to be read."
        response = _error_response(
            request, exc.status_code, titles.get(exc.status_code, "Error"), detail
        )
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        if exc.status_code == 405:
            # Starlette names only the first route with this path; clients need all of them.
            response.headers["Allow"] = ", ".join(_allowed_methods(request))
        return response

    answer_database_outages(app, app_error)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log_unexpected(request, exc)
        response = _error_response(
            request, 500, "Something went wrong", "An unexpected error occurred; it was logged."
        )
        # Starlette sends this one outside every middleware: add what they would have.
        secure_response(request, response, get_settings())
        response.headers["X-Request-ID"] = getattr(request.state, "request_id", "")
        return response
