"""Public pages of notifications: "Get updates by e-mail", its confirmation and unsubscribing.

Every change is a POST. Subscribing and confirming carry the public site's CSRF token (the
forms sit on our pages); the unsubscribe POST does not, because RFC 8058's one-click POST comes
from the recipient's mail provider, which has no cookie: its signed token is the authority.
"""

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from starlette.responses import HTMLResponse

from app import i18n
from app.config import Settings, SettingsDep
from app.db import SessionDep
from app.errors import AppError, Unprocessable
from app.notifications import feeds, questions, subscriptions
from app.notifications.mail import InvalidAddress
from app.offers.ids import TRACKING_ID_LENGTH, tracking_id_of
from app.templating import render_html, request_language, requested_language
from app.tracking.codes import parse_tracking_code
from app.tracking.dependencies import LimiterDep, counting_misses
from app.tracking.ratelimit import MissLimiter, TooManyMisses
from app.web import CsrfChecked, client_key, csrf_token, set_csrf_cookie

router = APIRouter(tags=["notifications"], include_in_schema=False)
_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


class TooManyRequests(AppError):
    status_code = 429
    title = "Too many requests"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            # Both public forms (updates and questions) share it: words for either.
            f"Too many attempts from your address. Please wait {retry_after} seconds and try again."
        )
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class FormLimits:
    """Attempts of the public forms (subscribe, question), per client and per order, counted
    where the tracking page's misses are: in Redis when OFFERTRACK_REDIS_URL is set, so every
    process and node shares one budget; in process memory otherwise.

    A form refused for a mistake in its fields (an address mistyped, an empty question) is not
    charged to the client's budget, or a customer who mistyped twice met the limit on the form
    sent right; it is counted against a higher cap of its own, so bad forms are not free."""

    def __init__(
        self,
        *,
        per_client: int = 5,
        refused_per_client: int = 20,
        per_order: int = 20,
        window_seconds: int = 600,
        storage_uri: str = "memory://",
        pepper: bytes | None = None,
    ) -> None:
        keyed = {} if pepper is None else {"pepper": pepper}

        def limiter(limit: int, namespace: str) -> MissLimiter:
            return MissLimiter(limit, window_seconds, storage_uri, namespace=namespace, **keyed)

        self.per_client = limiter(per_client, "offertrack-form-client")
        self.refused_per_client = limiter(refused_per_client, "offertrack-form-refused")
        self.per_order = limiter(per_order, "offertrack-form-order")

    def _check(self, limiter: MissLimiter, key: str) -> None:
        try:
            limiter.check(key)
        except TooManyMisses as exc:
            raise TooManyRequests(exc.retry_after) from exc

    def attempt(self, limiter: MissLimiter, key: str) -> None:
        """Count one attempt against ``key``; TooManyRequests once its budget is used up."""
        self._check(limiter, key)
        limiter.record_miss(key)

    def client_check(self, client: str) -> None:
        """TooManyRequests while the client is over either budget; charges nothing."""
        self._check(self.per_client, client)
        self._check(self.refused_per_client, client)

    def client_sent(self, client: str) -> None:
        """A form taken, or a code that opens nothing (a guess costs as much as a form)."""
        self.per_client.record_miss(client)

    def client_refused(self, client: str) -> None:
        """A form refused for a mistake in its fields: the higher cap, not the budget."""
        self.refused_per_client.record_miss(client)

    def order_attempt(self, offer_id: str, action: str = "subscribe") -> None:
        self.attempt(self.per_order, f"{action}:{offer_id}")


@contextmanager
def _charged_if_not_found(limits: FormLimits, client: str) -> Iterator[None]:
    """A code that opens nothing costs a form from the budget: guessing codes stays costly."""
    try:
        yield
    except AppError:
        limits.client_sent(client)
        raise


async def get_form_limits(request: Request) -> FormLimits:
    limits: FormLimits = request.app.state.notification_limits
    return limits


LimitsDep = Annotated[FormLimits, Depends(get_form_limits)]


def _language(request: Request, offer_language: str) -> str:
    """The language the visitor reads this offer's pages in (see ``_page``)."""
    accepted = i18n.accepted_languages(request.headers.get("accept-language", ""))
    return i18n.choose_language(
        offer_language, requested=requested_language(request), accepted=accepted
    )


def _page(
    request: Request,
    template: str,
    context: dict[str, Any],
    settings: Settings,
    *,
    status_code: int = 200,
    offer_language: str | None = None,
) -> Response:
    # A language chosen in the switcher (``?lang=``) travels with the page's forms; a page
    # about one offer speaks its language like the offer's own page, else the visitor's.
    requested = requested_language(request)
    extra: dict[str, Any] = {"lang_query": f"?lang={requested}" if requested else ""}
    if offer_language is not None:
        extra["lang"] = _language(request, offer_language)
    html = render_html(request, template, {**extra, **context})
    response = HTMLResponse(html, status_code=status_code, headers=_NO_STORE)
    set_csrf_cookie(request, response, settings)
    return response


@router.post("/{code}/subscribe", name="notifications:subscribe")
def subscribe(
    request: Request,
    code: str,
    session: SessionDep,
    settings: SettingsDep,
    limits: LimitsDep,
    _csrf: CsrfChecked,
    email: Annotated[str, Form()] = "",
    page_lang: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    client = client_key(request, settings)
    try:
        limits.client_check(client)
        with _charged_if_not_found(limits, client):
            parsed = parse_tracking_code(code)
            offer = subscriptions.subscribable_order(session, parsed)
        limits.order_attempt(offer.id)
    except TooManyRequests as exc:
        typed: dict[str, Any] = {"email": email}
        return _limited(
            request, code, exc, settings, "notifications/subscribe.html", typed, page_lang
        )
    context = {"code": parsed.value, "tracking_id": offer.tracking_id}
    try:
        # The confirmation mail speaks the page's language: the visitor reads it just now.
        language = _language(request, offer.language)
        subscriptions.subscribe(session, parsed, email, settings=settings, language=language)
    except InvalidAddress as exc:
        session.rollback()
        limits.client_refused(client)
        form = {"email": email, "errors": {"email": _reason(exc)}}
        csrf = csrf_token(request, settings)
        page = {**context, **form, "csrf_token": csrf}
        return _page(
            request,
            "notifications/subscribe.html",
            page,
            settings,
            status_code=422,
            offer_language=offer.language,
        )
    limits.client_sent(client)
    return _page(
        request,
        "notifications/subscribe_sent.html",
        {**context, "email": email.strip()},
        settings,
        offer_language=offer.language,
    )


def _limited(
    request: Request,
    code: str,
    exc: TooManyRequests,
    settings: Settings,
    template: str,
    context: dict[str, Any],
    page_lang: str,
) -> Response:
    """The form again, as typed, saying when it can be sent: still a 429, nothing stored.

    Nothing is looked up: a client over its budget learns nothing more about which codes
    exist. So the page's language is the one the form was sent from (``page_lang``)."""
    try:
        parsed = parse_tracking_code(code)
    except AppError:
        raise exc from None  # a malformed code: the plain 429 page, as before
    language = requested_language(request) or (
        page_lang if i18n.is_supported(page_lang) else request_language(request)
    )
    page = {
        **context,
        "code": parsed.value,
        "tracking_id": parsed.value[:TRACKING_ID_LENGTH],
        "csrf_token": csrf_token(request, settings),
        "limited": {"minutes": math.ceil(exc.retry_after / 60)},
        "lang": language,
    }
    response = _page(request, template, page, settings, status_code=exc.status_code)
    response.headers.update(exc.headers())
    return response


def _reason(exc: InvalidAddress) -> str:
    return f"Please enter a valid e-mail address ({exc.detail.rstrip('.')})."


@router.get("/updates/confirm/{token}", name="notifications:confirm_form")
def confirm_form(
    request: Request, token: str, session: SessionDep, settings: SettingsDep
) -> Response:
    """The link in the confirmation mail: a page with a button; opening it confirms nothing."""
    subscription = subscriptions.pending_subscription(session, token, settings=settings)
    context = _subscription_context(subscription.offer_id, token)
    context["csrf_token"] = csrf_token(request, settings)
    context["confirmed"] = subscription.confirmed_at is not None
    language = subscriptions.offer_language(session, subscription.offer_id)
    return _page(request, "notifications/confirm.html", context, settings, offer_language=language)


@router.post("/updates/confirm/{token}", name="notifications:confirm")
def confirm(
    request: Request, token: str, session: SessionDep, settings: SettingsDep, _csrf: CsrfChecked
) -> Response:
    subscription = subscriptions.confirm(session, token, settings=settings)
    context = _subscription_context(subscription.offer_id, token)
    language = subscriptions.offer_language(session, subscription.offer_id)
    return _page(
        request, "notifications/confirmed.html", context, settings, offer_language=language
    )


@router.get("/updates/unsubscribe/{token}", name="notifications:unsubscribe_form")
def unsubscribe_form(
    request: Request, token: str, session: SessionDep, settings: SettingsDep
) -> Response:
    """The List-Unsubscribe link opened in a browser: a button (or, once the address is gone,
    that it gets no more updates); opening it changes nothing."""
    # Named, so that someone following several orders knows which one they stop.
    tracking_id = subscriptions.unsubscribing_from(session, token, settings=settings)
    if tracking_id is None:
        # Opened again after unsubscribing: a button would promise what is already done.
        return _page(request, "notifications/unsubscribed.html", {}, settings)
    context = {"token": token, "tracking_id": tracking_id}
    return _page(request, "notifications/unsubscribe.html", context, settings)


@router.post("/updates/unsubscribe/{token}", name="notifications:unsubscribe")
def unsubscribe(
    request: Request, token: str, session: SessionDep, settings: SettingsDep
) -> Response:
    """One-click unsubscribe (RFC 8058) and the page's button alike: the address is deleted."""
    tracking_id = subscriptions.unsubscribing_from(session, token, settings=settings)
    subscriptions.unsubscribe(session, token, settings=settings)
    context = {"tracking_id": tracking_id}
    return _page(request, "notifications/unsubscribed.html", context, settings)


def _subscription_context(offer_id: str, token: str) -> dict[str, Any]:
    tracking_id = tracking_id_of(offer_id)
    return {"token": token, "tracking_id": tracking_id, "code": tracking_id}


@router.post("/{code}/question", name="notifications:question")
def ask_question(
    request: Request,
    code: str,
    session: SessionDep,
    settings: SettingsDep,
    limits: LimitsDep,
    _csrf: CsrfChecked,
    email: Annotated[str, Form()] = "",
    message: Annotated[str, Form()] = "",
    topic: Annotated[str, Form(max_length=20)] = "question",
    page_lang: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """The offer page's "Ask a question" (full ULID only); also "Ask for a new quotation"."""
    chosen = questions.Topic.NEW_QUOTATION if topic == "new_quotation" else questions.Topic.QUESTION
    client = client_key(request, settings)
    try:
        limits.client_check(client)
        with _charged_if_not_found(limits, client):
            parsed = parse_tracking_code(code)
            offer = questions.customer_offer(session, parsed)
        limits.order_attempt(offer.id, "question")
    except TooManyRequests as exc:
        typed = {"topic": chosen, "q_form": {"email": email, "message": message}}
        return _limited(
            request, code, exc, settings, "notifications/question.html", typed, page_lang
        )
    context = {"code": parsed.value, "tracking_id": offer.tracking_id, "topic": chosen}
    try:
        question_id = questions.ask_question(
            session, parsed, email=email, message=message, settings=settings, topic=chosen
        )
    except Unprocessable as exc:
        session.rollback()
        limits.client_refused(client)
        page = {
            **context,
            "q_form": {"email": email, "message": message},
            "q_errors": _question_errors(exc),
            "csrf_token": csrf_token(request, settings),
        }
        return _page(
            request,
            "notifications/question.html",
            page,
            settings,
            status_code=422,
            offer_language=offer.language,
        )
    limits.client_sent(client)
    sent = {
        **context,
        "email": email.strip(),
        "message": message.strip(),
        "csrf_token": csrf_token(request, settings),
        "delete_token": questions.deletion_token(question_id, settings),
    }
    return _page(
        request,
        "notifications/question_sent.html",
        sent,
        settings,
        offer_language=offer.language,
    )


def _question_errors(exc: Unprocessable) -> dict[str, str]:
    """Every field's error, for the form to show beside each (worded by the template)."""
    if isinstance(exc, questions.QuestionInvalid):
        return exc.problems
    return {str(exc.loc[-1]) if exc.loc else "message": exc.detail}


@router.post("/questions/delete/{token}", name="notifications:delete_question")
def delete_own_question(
    request: Request, token: str, session: SessionDep, settings: SettingsDep, _csrf: CsrfChecked
) -> Response:
    """ "Delete my message" on the page after asking: the asker's own deletion path."""
    offer_id = questions.delete_own_question(session, token, settings=settings)
    context = {"code": offer_id}
    language = subscriptions.offer_language(session, offer_id) if offer_id else None
    return _page(
        request,
        "notifications/question_deleted.html",
        context,
        settings,
        offer_language=language,
    )


@router.get("/{code}/feed.atom", name="notifications:feed")
def order_feed(
    request: Request, code: str, session: SessionDep, settings: SettingsDep, misses: LimiterDep
) -> Response:
    """The order's public updates for feed readers and procurement systems."""
    # A malformed or unknown code counts as a miss, as on the page itself.
    with counting_misses(request, misses, settings):
        parsed = parse_tracking_code(code)
        language = requested_language(request)
        body = feeds.order_feed(session, parsed, settings=settings, language=language)
    return Response(body, media_type="application/atom+xml", headers=_NO_STORE)


@router.get("/{code}/delivery.ics", name="notifications:delivery_calendar")
def delivery_calendar(
    request: Request, code: str, session: SessionDep, settings: SettingsDep, misses: LimiterDep
) -> Response:
    """The expected delivery date as a calendar event."""
    with counting_misses(request, misses, settings):
        parsed = parse_tracking_code(code)
        language = requested_language(request)
        body = feeds.delivery_calendar(session, parsed, settings=settings, language=language)
    headers = {
        **_NO_STORE,
        "Content-Disposition": f'attachment; filename="delivery-{parsed.value[:10]}.ics"',
    }
    return Response(body, media_type="text/calendar; charset=utf-8", headers=headers)
