"""create_app(): the ASGI application with its routers, static files and error handlers."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from sqlmodel import Session
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app.analytics import outbox, rollup
from app.analytics.api import router as analytics_api_router
from app.analytics.delivery import DeliveryWorker
from app.analytics.reports import router as analytics_reports_router
from app.analytics.router import routes as campaign_code_routes
from app.config import STATIC_DIR, Settings, get_settings
from app.db import get_engine
from app.errors import AppError, Unauthorized, Unprocessable
from app.offers.pdf import PdfRenderer
from app.offers.router import router as offers_router
from app.templating import render
from app.tracking.api import router as orders_router
from app.tracking.ratelimit import MissLimiter
from app.tracking.router import router as tracking_router
from app.tracking.scanlog import GroupCommitScanLog, on_scans_inserted
from app.tracking.scans import classify_user_agent, purge_visitor_keys

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    settings.resolved_secret_key()  # refuse to start in production without a real key

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        renderer = PdfRenderer(settings)
        renderer.start()
        app.state.pdf_renderer = renderer
        classify_user_agent("Mozilla/5.0")  # load the user-agent regexes before the first scan
        scan_log = GroupCommitScanLog(get_engine())
        app.state.scan_log = scan_log
        housekeeping = asyncio.create_task(_hourly_housekeeping())
        worker = DeliveryWorker(get_engine(), settings)
        if settings.webhook_worker:
            worker.start()
        try:
            yield
        finally:
            worker.stop()
            housekeeping.cancel()
            scan_log.close()
            renderer.shutdown()

    app = FastAPI(
        title="OfferTrack",
        version="1.0",
        description="Quotations with a QR code that customers scan to track their order.",
        lifespan=lifespan,
    )
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.state.miss_limiter = MissLimiter(settings.miss_limit_per_minute)
    # In the transaction of each batch of scans: the dashboard's rollup, scan.created events.
    on_scans_inserted(rollup.scans_inserted)
    on_scans_inserted(outbox.scans_inserted)
    # First: routes are matched in order, and campaign redirects are the busiest path.
    app.router.routes.extend(campaign_code_routes())
    app.include_router(offers_router)
    app.include_router(orders_router)
    app.include_router(analytics_api_router)
    app.include_router(analytics_reports_router)
    app.add_api_route("/favicon.ico", favicon, include_in_schema=False)
    app.add_api_route("/robots.txt", robots_txt, include_in_schema=False)
    # Last: its /{code} route would otherwise shadow every other single-segment path.
    app.include_router(tracking_router)
    _register_error_handlers(app)
    return app


async def _hourly_housekeeping() -> None:
    """Delete visitor keys past 48 hours, also on days without scans."""
    while True:
        try:
            await asyncio.to_thread(_purge_visitor_keys)
        except Exception:  # the next hour tries again; the server must not stop for this
            log.exception("housekeeping failed")
        await asyncio.sleep(3600)


def _purge_visitor_keys() -> None:
    with Session(get_engine()) as session:
        purge_visitor_keys(session)
    with get_engine().begin() as connection:
        rollup.forget_old_sightings(connection)


async def favicon() -> Response:
    return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")


async def robots_txt() -> Response:
    # Tracking pages belong to one customer each; search engines have no business there.
    return PlainTextResponse("User-agent: *\nAllow: /$\nDisallow: /\n")


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _error_response(
    request: Request, status_code: int, title: str, detail: str, template: str = "error.html"
) -> Response:
    if _wants_json(request):
        return JSONResponse({"detail": detail}, status_code=status_code)
    context = {"title": title, "detail": detail, "status_code": status_code}
    return render(request, template, context, block="content", status_code=status_code)


def _register_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def app_error(request: Request, exc: AppError) -> Response:
        if isinstance(exc, Unprocessable) and _wants_json(request):
            body = [{"type": "value_error", "loc": list(exc.loc), "msg": exc.detail}]
            return JSONResponse({"detail": body}, status_code=exc.status_code)
        response = _error_response(
            request, exc.status_code, exc.title, exc.detail, exc.web_template
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
        titles = {404: "Not found", 405: "Method not allowed"}
        response = _error_response(
            request, exc.status_code, titles.get(exc.status_code, "Error"), str(exc.detail)
        )
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error_response(
            request, 500, "Something went wrong", "An unexpected error occurred; it was logged."
        )
