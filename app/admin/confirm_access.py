"""The "Confirm access" page of sudo mode (app/admin/sudo.py): the password, or for a user with
two-factor sign-in a current code instead, before a sensitive action; then back to the page
asked for, or the form sent meanwhile offered again with what was typed.

The staff site is English, but this page stands between a person and their work, so it
speaks the language their browser asks for (en, de or el).
"""

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqladmin.flash import Flash
from starlette.datastructures import URL
from starlette.responses import Response

from app import i18n
from app.admin import sudo, throttle, twofactor
from app.admin.access import StaffDep, safe_next
from app.admin.layout import render_staff_page
from app.admin.users import InvalidCredentials, Staff
from app.admin.views import in_session
from app.config import Settings, SettingsDep
from app.errors import AppError
from app.templating import is_htmx
from app.web import client_key

router = APIRouter(include_in_schema=False)
CONFIRM_PATH = "/confirm-access"


def staff_language(request: Request) -> str:
    """The language the staff user's browser prefers among ours; English otherwise."""
    accepted = i18n.accepted_languages(request.headers.get("accept-language", ""))
    return accepted[0] if accepted else i18n.DEFAULT_LANGUAGE


def _texts(lang: str) -> dict[str, str]:
    return {
        "title": i18n.translate(lang, "Confirm access"),
        "lead": i18n.translate(
            lang,
            "This action needs your password again: a page left open is not enough. "
            "You are not asked again for %(minutes)s minutes.",
        )
        % {"minutes": sudo.minutes()},
        "password": i18n.translate(lang, "Password"),
        "code": i18n.translate(lang, "Or a code from your authenticator app"),
        "code_hint": i18n.translate(
            lang, "Instead of the password: the 6-digit code your app shows now."
        ),
        "confirm": i18n.translate(lang, "Confirm"),
        "cancel": i18n.translate(lang, "Cancel"),
        "held_title": i18n.translate(lang, "Access confirmed"),
        "held": i18n.translate(
            lang, "Your form has not been sent yet. Send it now as you filled it in?"
        ),
        "send": i18n.translate(lang, "Send it now"),
    }


def ask(request: Request, exc: sudo.ConfirmAccess) -> Response:
    """The answer to a sensitive request without a recent confirmation: to the confirm page,
    then back to the page asked for (a GET) or to the form, which was held (a POST)."""
    root = request.scope.get("root_path", "")
    if is_htmx(request):
        return Response(status_code=401)
    if request.method in ("GET", "HEAD"):
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    else:
        back = _own_referer(request)
        if not exc.held:
            lang = staff_language(request)
            Flash.warning(
                request,
                i18n.translate(lang, "Nothing was sent: confirm access, then send it again."),
            )
    target = URL(root + CONFIRM_PATH)
    if safe_next(back):
        target = target.include_query_params(next=back)
    return RedirectResponse(str(target), 303)


def _own_referer(request: Request) -> str:
    referer = URL(request.headers.get("referer", ""))
    return referer.path if referer.netloc == request.url.netloc else ""


async def _page(
    request: Request,
    staff: Staff,
    next_path: str,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    lang = staff_language(request)
    texts = _texts(lang)
    context: dict[str, Any] = {
        "title": texts["title"],
        "t": texts,
        "lang": lang,
        "next": next_path,
        "with_code": await in_session(lambda s: sudo.has_second_factor(s, staff.id)),
        "errors": errors or {},
    }
    return await render_staff_page(request, "admin/confirm_access.html", context, status)


@router.get(CONFIRM_PATH, name="staff:confirm_access")
async def confirm_access_page(request: Request, staff: StaffDep, next: str = "") -> Response:
    return await _page(request, staff, safe_next(next))


@router.post(CONFIRM_PATH, name="staff:confirm_access_submit")
async def confirm_access(
    request: Request,
    staff: StaffDep,
    settings: SettingsDep,
    password: Annotated[str, Form(max_length=1024)] = "",
    code: Annotated[str, Form(max_length=64)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    next_path, lang = safe_next(next), staff_language(request)
    field = "code" if code.strip() else "password"
    if not (code.strip() or password):
        errors = {"password": i18n.translate(lang, "Enter your password.")}
        return await _page(request, staff, next_path, errors, 422)
    try:
        await _confirm(request, settings, staff, field, code.strip() or password)
    except AppError as exc:
        response = await _page(request, staff, next_path, {field: _refusal(lang, exc)}, 422)
        if isinstance(exc, throttle.TooManyLogins):
            response.status_code = 429
            response.headers.update(exc.headers())
        return response
    return await _after_confirming(request, lang, next_path)


async def _confirm(
    request: Request, settings: Settings, staff: Staff, field: str, secret: str
) -> None:
    session_id = int(request.state.staff_session_id)
    key = settings.resolved_secret_key()
    address = client_key(request, settings)
    if field == "code":
        who = throttle.attempt(staff.email, address, key=key, second_factor=True)
        await in_session(lambda s: sudo.confirm_with_code(s, staff, session_id, secret, who))
    else:
        who = throttle.attempt(staff.email, address, key=key)
        await in_session(lambda s: sudo.confirm_with_password(s, staff, session_id, secret, who))


def _refusal(lang: str, exc: AppError) -> str:
    """The refusal beside its field, in the page's language."""
    if isinstance(exc, throttle.TooManyLogins):
        message = i18n.translate(lang, "Too many failed attempts. Please wait %(seconds)s s.")
        return message % {"seconds": exc.retry_after}
    if isinstance(exc, twofactor.WrongCode):
        return i18n.translate(
            lang,
            "That code is not right. Enter the 6-digit code your app shows now, or one of "
            "your recovery codes.",
        )
    if isinstance(exc, InvalidCredentials):
        return i18n.translate(lang, "That password is not right.")
    return exc.detail


async def _after_confirming(request: Request, lang: str, next_path: str) -> Response:
    held = sudo.take_held_form(request)
    Flash.success(request, i18n.translate(lang, "Access confirmed."))
    if held is None:
        return RedirectResponse(next_path or str(request.url_for("admin:index")), 303)
    texts = _texts(lang)
    context = {"title": texts["held_title"], "t": texts, "lang": lang, "held": held}
    cancel = next_path or str(request.url_for("admin:index"))
    return await render_staff_page(
        request, "admin/confirm_access_held.html", context | {"cancel": cancel}
    )
