"""Public pages: the code entry form, the tracking page, accept and decline, the PDF."""

import asyncio
import logging
import time
from functools import lru_cache, partial
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Header, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from app import i18n
from app.config import Settings, SettingsDep, get_settings
from app.db import (
    DB_UNREACHABLE,
    SessionDep,
    SessionFactory,
    get_session_factory,
    new_session,
)
from app.observability import LabelledRoute
from app.offers import contact as offers_contact
from app.offers import service as offers_service
from app.offers.contact import Contact
from app.offers.dependencies import RendererDep, pdf_response
from app.offers.documents import offer_pdf_async
from app.offers.models import OfferStatus
from app.requestguard import is_head
from app.templating import html_response, is_htmx, render, render_html, requested_language
from app.tracking import service
from app.tracking.codes import (
    CANONICAL,
    FORMAT_HELP,
    TrackingCode,
    code_in_entry,
    parse_tracking_code,
)
from app.tracking.dependencies import LimiterDep, counting_misses, get_scan_log, visit_of
from app.tracking.models import CodeForm
from app.tracking.pagecache import CSRF_PLACEHOLDER, CachedPage, CacheKey, PageCache
from app.tracking.ratelimit import MissLimiter
from app.tracking.scanlog import ScanLog
from app.tracking.scans import FORM_MARKER, Visit, referrer_host
from app.tracking.schemas import AcceptForm, DeclineForm
from app.web import CsrfChecked, csrf_token, overridable, set_csrf_cookie

router = APIRouter(tags=["tracking pages"], include_in_schema=False)
log = logging.getLogger(__name__)
# After the database failed a page, pages that are not cached get their 503 at once for this
# long instead of each waiting for a connection attempt to time out.
DATABASE_RETRY_SECONDS = 1.0


def _is_internal_navigation(visit: Visit, settings: Settings) -> bool:
    """A reload after accepting, or a click between our own pages, is not a new scan."""
    if visit.marker or not visit.referrer:
        return False
    own_host = _host_of(settings.public_base_url)
    return bool(own_host) and referrer_host(visit.referrer) == own_host


@lru_cache(maxsize=8)
def _host_of(url: str) -> str | None:
    return urlsplit(url).hostname


def _has_forms(page: service.TrackingPage) -> bool:
    # An order's page, by either code, has "Get updates by e-mail"; an offer's (full ULID)
    # has "Ask a question", and while it is issued the accept and decline forms.
    return page.timeline is not None or page.code.form == CodeForm.FULL


def _contact(session: Session, page: service.TrackingPage, settings: Settings) -> Contact:
    # The tracking ID is guessable: its page names the company, never a person.
    if page.code.form != CodeForm.FULL:
        return offers_contact.company_contact(settings)
    return offers_contact.offer_contact(session, page.offer, settings)


def _page_language(request: Request, page: service.TrackingPage) -> str:
    accepted = i18n.accepted_languages(request.headers.get("accept-language", ""))
    requested = requested_language(request)
    return i18n.choose_language(page.offer.language, requested=requested, accepted=accepted)


def _lang_query(requested: str | None) -> str:
    # The switcher's choice travels with the page's links and forms, so that an answer comes
    # back in the language chosen; without a choice they leave the language to the visitor.
    return f"?lang={requested}" if requested else ""


def _render_page(request: Request, page: service.TrackingPage, *, csrf: str, **extra: Any) -> str:
    # Only a full-ULID page of an issued offer has forms, so only it needs a CSRF token.
    context = {"page": page, "csrf_token": csrf, "errors": {}, "form": {}, **extra}
    block = "timeline" if is_htmx(request) else None
    return render_html(request, "tracking/page.html", context, block=block)


def _load_page(
    request: Request,
    sessions: SessionFactory,
    code: TrackingCode,
    settings: Settings,
    key: CacheKey,
    page_cache: PageCache,
) -> CachedPage:
    """Read and render the page, with a stand-in for the CSRF token, to keep it a moment."""
    epoch = page_cache.epoch()
    with sessions() as session:
        page = service.tracking_page(session, code, settings=settings)
        has_forms = _has_forms(page)
        language = i18n.choose_language(page.offer.language, requested=key[3], accepted=key[4])
        contact = _contact(session, page, settings)
        csrf = CSRF_PLACEHOLDER if has_forms else ""
        html = _render_page(
            request, page, csrf=csrf, lang=language, contact=contact, lang_query=_lang_query(key[3])
        )
    offer = page.offer
    campaign = {
        "campaign_id": offer.campaign_id,
        "placement_id": offer.placement_id,
        "creative_id": offer.creative_id,
    }
    cached = CachedPage(offer.id, code.form, html, has_forms, page_cache.expiry(), campaign)
    page_cache.put(key, cached, epoch)
    return cached


async def _page(
    request: Request, sessions: SessionFactory, code: TrackingCode, settings: Settings, htmx: bool
) -> CachedPage:
    page_cache: PageCache = request.app.state.page_cache
    key = _cache_key(request, code, htmx)
    cached = page_cache.get(key)
    if cached is not None:
        return cached  # needs no database, so it is served while the database is away too
    if time.monotonic() < page_cache.unavailable_until:
        raise service.StatusUnavailable(code)  # answer at once; no wait for a timeout
    try:
        # A database that drops packets, or a full pool, would hold the visitor for the
        # connect or pool timeout (seconds): past the deadline they get the 503 while the load
        # goes on in its thread (shielded in get_or_load) and fills the cache if it succeeds.
        async with asyncio.timeout(settings.page_deadline_seconds):
            return await page_cache.get_or_load(
                key, partial(_load_page, request, sessions, code, settings, key, page_cache)
            )
    except (TimeoutError, *DB_UNREACHABLE) as exc:
        log.warning("tracking page without its database: %r", exc)
        page_cache.unavailable_until = time.monotonic() + DATABASE_RETRY_SECONDS
        raise service.StatusUnavailable(code) from exc


def _cache_key(request: Request, code: TrackingCode, htmx: bool) -> CacheKey:
    """What the page depends on besides its data: the base of its absolute links, the
    switcher's ``?lang=``, and our languages in the visitor's ``Accept-Language`` order."""
    scope = request.scope
    # One pass over the raw headers: cheaper than two lookups in Starlette's Headers, and the
    # busiest path computes this on every view (7 us instead of 15 in-process).
    host = accept = b""
    for name, value in scope["headers"]:
        if name == b"host":
            host = value
        elif name == b"accept-language":
            accept = value
    where = host.decode("latin-1") if host else "{}:{}".format(*scope.get("server") or ("", ""))
    base = f"{scope['scheme']}://{where}{scope.get('root_path', '')}"
    return (code.value, htmx, base, requested_language(request), _accepted_languages(accept))


def _accepted_languages(header: bytes) -> tuple[str, ...]:
    if len(header) > i18n.CACHED_HEADER_LENGTH:  # not kept (see there)
        return i18n.accepted_languages(header.decode("latin-1"))
    return _cached_accepted_languages(header)


@lru_cache(maxsize=256)
def _cached_accepted_languages(header: bytes) -> tuple[str, ...]:
    return i18n.accepted_languages(header.decode("latin-1"))


# Live data for one customer: never cached by proxies, and never handed on to the carrier's
# site in a Referer header (the full ULID is the key to the offer).
_PAGE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _page_response(
    request: Request, html: str | bytes, settings: Settings, *, status_code: int = 200
) -> Response:
    response = html_response(html, status_code=status_code, headers=_PAGE_HEADERS)
    set_csrf_cookie(request, response, settings)
    return response


@router.get("/", name="tracking:home")
def home(request: Request) -> Response:
    return render(request, "tracking/home.html", {"format_help": FORMAT_HELP})


@router.get("/lookup", name="tracking:lookup")
def lookup(
    request: Request,
    settings: SettingsDep,
    limiter: LimiterDep,
    code: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """The entry form's target: normalize the typed code and go to its page."""
    with counting_misses(request, limiter, settings):
        parsed = parse_tracking_code(code_in_entry(code))
    url = request.url_for("tracking:page", code=parsed.value)
    url = url.include_query_params(src=FORM_MARKER, **_lang_param(request))
    return RedirectResponse(str(url), status_code=303)


async def tracking_page(request: Request) -> Response:
    """GET /{code}: the page behind every printed QR code, and the busiest path we serve.

    A plain Starlette route (see ``page_routes``): FastAPI's dependency solving and its
    router's matching cost more per view than everything this does with a cached page. Its
    collaborators are still looked up through ``app.dependency_overrides``, as for any route.
    Served from the event loop: a cached page needs no thread and no database read, and the
    view waits for its scan's commit without holding a thread either.
    """
    settings = get_settings()
    limiter: MissLimiter = request.app.state.miss_limiter
    sessions: SessionFactory = overridable(request, get_session_factory, new_session)
    htmx = is_htmx(request)
    with counting_misses(request, limiter, settings):
        parsed = parse_tracking_code(str(request.path_params["code"]))
        page = await _page(request, sessions, parsed, settings, htmx)
    visit = visit_of(request, settings)
    if not htmx and not is_head(request) and not _is_internal_navigation(visit, settings):
        scan_log: ScanLog = overridable(request, get_scan_log, request.app.state.scan_log)
        await service.log_scan(sessions, page, visit, scan_log=scan_log)
    csrf = csrf_token(request, settings) if page.has_forms else ""
    return _page_response(request, page.body_for(csrf), settings)


def page_routes() -> list[BaseRoute]:
    """The tracking page's route, for the app's route list after the single-segment pages."""
    return [LabelledRoute("/{code}", tracking_page, methods=["GET"], name="tracking:page")]


class _CanonicalCodeRoute(LabelledRoute):
    """/{code} for a code spelled as the QR code and our links spell it (upper case, no
    separators), which no other single-segment path of ours is: safe to match before all of
    them. Every other spelling reaches the page through ``page_routes``, after them."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is Match.NONE or not CANONICAL.fullmatch(child_scope["path_params"]["code"]):
            return Match.NONE, {}
        return match, child_scope


def canonical_page_route() -> BaseRoute:
    """The tracking page for canonical codes, to put first in the app's route list: the
    busiest path is then matched without trying every route before it."""
    return _CanonicalCodeRoute("/{code}", tracking_page, methods=["GET"], name="tracking:page")


def _full_code(code: str) -> TrackingCode:
    parsed = parse_tracking_code(code)
    if parsed.form != CodeForm.FULL:
        raise service.CodeNotFound()
    return parsed


def _customer_offer(
    request: Request, code: str, session: SessionDep, settings: Settings, limiter: MissLimiter
) -> TrackingCode:
    """The full ULID of an offer the customer may open. Unknown and draft codes get the page's
    404 and count as misses, so these routes are no cheaper way to guess codes."""
    with counting_misses(request, limiter, settings):
        parsed = _full_code(code)
        service.find_by_code(session, parsed)
    return parsed


def _invalid_form(
    request: Request,
    session: SessionDep,
    settings: Settings,
    parsed: TrackingCode,
    error: ValidationError,
    form: dict[str, str],
    action: str,
) -> Response:
    # An offer answered meanwhile shows no form to put the error beside: say that instead.
    if service.tracking_page(session, parsed, settings=settings).status != OfferStatus.ISSUED:
        return _refused_answer(request, session, settings, parsed, form, action)
    # The template words each field's error in the page's language.
    errors = {str(e["loc"][0]): True for e in error.errors()}
    return _form_again(request, session, settings, parsed, form, action, errors=errors)


def _refused_answer(
    request: Request,
    session: SessionDep,
    settings: Settings,
    parsed: TrackingCode,
    form: dict[str, str],
    action: str,
) -> Response:
    """An answer the offer no longer takes (declining after accepting, another PO number, an
    offer expired meanwhile): its page as it stands, saying so in the page's language."""
    return _form_again(
        request, session, settings, parsed, form, action, refused=action, status_code=409
    )


def _form_again(
    request: Request,
    session: SessionDep,
    settings: Settings,
    parsed: TrackingCode,
    form: dict[str, str],
    action: str,
    *,
    errors: dict[str, bool] | None = None,
    refused: str = "",
    status_code: int = 422,
) -> Response:
    page = service.tracking_page(session, parsed, settings=settings)
    csrf = csrf_token(request, settings)
    html = _render_page(
        request,
        page,
        csrf=csrf,
        errors=errors or {},
        form=form,
        open_form=action,
        refused=refused,
        lang=_page_language(request, page),
        contact=_contact(session, page, settings),
        lang_query=_lang_query(requested_language(request)),
    )
    return _page_response(request, html, settings, status_code=status_code)


@router.post("/{code}/accept", name="tracking:accept")
def accept(
    request: Request,
    code: str,
    session: SessionDep,
    settings: SettingsDep,
    limiter: LimiterDep,
    _csrf: CsrfChecked,
    signer_name: Annotated[str, Form()] = "",
    po_number: Annotated[str, Form()] = "",
    accept_terms: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    parsed = _customer_offer(request, code, session, settings, limiter)
    form = {"signer_name": signer_name, "po_number": po_number, "accept_terms": accept_terms}
    try:
        data = AcceptForm.model_validate(form)
    except ValidationError as error:
        return _invalid_form(request, session, settings, parsed, error, form, "accept")
    try:
        offers_service.accept_offer(
            session,
            parsed.value,
            signer_name=data.signer_name,
            po_number=data.po_number,
            settings=settings,
        )
    except offers_service.InvalidTransition:
        return _refused_answer(request, session, settings, parsed, form, "accept")
    # A repeat (a double tap) lands here too: the same confirmation as the first time.
    confirmation = request.url_for("tracking:accepted", code=parsed.value)
    return RedirectResponse(str(confirmation.include_query_params(**_lang_param(request))), 303)


def _lang_param(request: Request) -> dict[str, str]:
    requested = requested_language(request)
    return {"lang": requested} if requested else {}


@router.get("/{code}/accepted", name="tracking:accepted")
def accepted(
    request: Request, code: str, session: SessionDep, settings: SettingsDep, limiter: LimiterDep
) -> Response:
    """After accepting: what was accepted and what happens next. Only shows; changes nothing."""
    return _after_answer(request, code, session, settings, limiter, "accepted")


@router.get("/{code}/declined", name="tracking:declined")
def declined(
    request: Request, code: str, session: SessionDep, settings: SettingsDep, limiter: LimiterDep
) -> Response:
    """After declining: that the answer arrived, and its reason. Only shows; changes nothing."""
    return _after_answer(request, code, session, settings, limiter, "declined")


def _after_answer(
    request: Request,
    code: str,
    session: SessionDep,
    settings: Settings,
    limiter: MissLimiter,
    answer: Literal["accepted", "declined"],
) -> Response:
    """The page after an answer; the offer's own page while the offer has no such answer."""
    parsed = _customer_offer(request, code, session, settings, limiter)
    page = service.tracking_page(session, parsed, settings=settings)
    answered_at = page.offer.accepted_at if answer == "accepted" else page.offer.declined_at
    if answered_at is None:
        return _back_to_page(request, parsed)
    return _answer_page(request, session, settings, page, f"tracking/{answer}.html")


def _answer_page(
    request: Request,
    session: SessionDep,
    settings: Settings,
    page: service.TrackingPage,
    template: str,
) -> Response:
    context = {
        "page": page,
        "lang": _page_language(request, page),
        "contact": _contact(session, page, settings),
        "lang_query": _lang_query(requested_language(request)),
    }
    return html_response(render_html(request, template, context), headers=_PAGE_HEADERS)


@router.get("/brand.css", name="tracking:brand_css")
async def brand_css(settings: SettingsDep) -> Response:
    """The seller's accent colour for the public pages (their CSP allows no inline style)."""
    css = f":root {{ --brand: {settings.accent_color}; }}\n"
    return Response(css, media_type="text/css", headers={"Cache-Control": "public, max-age=300"})


@router.post("/{code}/decline", name="tracking:decline")
def decline(
    request: Request,
    code: str,
    session: SessionDep,
    settings: SettingsDep,
    limiter: LimiterDep,
    _csrf: CsrfChecked,
    reason: Annotated[str, Form()] = "",
) -> Response:
    parsed = _customer_offer(request, code, session, settings, limiter)
    form = {"reason": reason}
    try:
        data = DeclineForm.model_validate(form)
    except ValidationError as error:
        return _invalid_form(request, session, settings, parsed, error, form, "decline")
    try:
        offers_service.decline_offer(session, parsed.value, reason=data.reason, settings=settings)
    except offers_service.InvalidTransition:
        return _refused_answer(request, session, settings, parsed, form, "decline")
    # A repeat (a double tap) lands here too: the same confirmation as the first time.
    confirmation = request.url_for("tracking:declined", code=parsed.value)
    return RedirectResponse(str(confirmation.include_query_params(**_lang_param(request))), 303)


def _back_to_page(request: Request, parsed: TrackingCode) -> Response:
    url = request.url_for("tracking:page", code=parsed.value)
    return RedirectResponse(str(url.include_query_params(**_lang_param(request))), 303)


@router.get("/{code}/pdf", name="tracking:pdf")
async def download_pdf(
    request: Request,
    code: str,
    session: SessionDep,
    settings: SettingsDep,
    renderer: RendererDep,
    limiter: LimiterDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    parsed = await run_in_threadpool(_customer_offer, request, code, session, settings, limiter)
    # Async: a customer waiting for a renderer holds no thread (see app.offers.documents).
    document = await offer_pdf_async(session, parsed.value, renderer=renderer, settings=settings)
    return pdf_response(document, if_none_match)
