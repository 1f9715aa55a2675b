"""A staff user's own account: the second step of sign-in (a TOTP or recovery code, or the
set-up an admin must do first), their sessions (and ending the others), and two-factor
sign-in on or off. Every change is a POST through the staff site's CSRF check."""

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqladmin.flash import Flash
from sqlmodel import Session
from starlette.responses import Response

from app.admin import reveal, sessions, throttle, twofactor, users
from app.admin.access import (
    ConfirmedStaffDep,
    StaffDep,
    pending_second_factor,
    start_session,
    use_renewed_session,
)
from app.admin.layout import MenuLink, StaffPages, render_staff_page
from app.admin.users import Staff
from app.admin.views import in_session
from app.auth.passwords import MAX_LENGTH, MIN_LENGTH
from app.auth.staff import Role
from app.config import Settings, SettingsDep, get_settings
from app.errors import AppError, Unprocessable
from app.formats import DecimalMark
from app.openapi import PathId
from app.web import client_key

router = APIRouter()
CodeField = Annotated[str, Form(max_length=64)]


def _idle() -> timedelta:
    return timedelta(minutes=get_settings().admin_idle_minutes)


# --- the second step of sign-in ----------------------------------------------------------


async def _pending_user(request: Request) -> tuple[Staff, str] | None:
    pending = pending_second_factor(request)
    if pending is None:
        return None
    user_id, next_path = pending
    staff = await in_session(lambda s: users.load_active(s, user_id))
    return None if staff is None else (staff, next_path)


async def _second_step_page(
    request: Request, staff: Staff, *, error: str = "", status: int = 200
) -> Response:
    def context(session: Session) -> dict[str, Any]:
        enabled = twofactor.is_enabled(session, staff.id)
        secret = None if enabled else twofactor.pending_secret(session, staff.id)
        return {
            "enrol": secret is not None,
            "secret": secret,
            "qr": twofactor.provisioning_qr(secret, staff.email) if secret else "",
            "error": error,
        }

    values = await in_session(context)
    return await render_staff_page(request, "admin/login_2fa.html", values, status)


@router.get("/login/2fa", name="staff:login_2fa")
async def second_step(request: Request) -> Response:
    pending = await _pending_user(request)
    if pending is None:
        return RedirectResponse(request.url_for("staff:login"), 303)
    return await _second_step_page(request, pending[0])


def _second_factor_attempt(request: Request, settings: Settings, email: str) -> throttle.Attempt:
    """Codes are counted apart from passwords, the same at sign-in and when switching off."""
    key = settings.resolved_secret_key()
    return throttle.attempt(email, client_key(request, settings), key=key, second_factor=True)


@router.post("/login/2fa", name="staff:login_2fa_submit")
async def second_step_submit(
    request: Request, settings: SettingsDep, code: CodeField = ""
) -> Response:
    pending = await _pending_user(request)
    if pending is None:
        Flash.warning(request, "Please sign in again: the sign-in took too long.")
        return RedirectResponse(request.url_for("staff:login"), 303)
    staff, next_path = pending
    who = _second_factor_attempt(request, settings, staff.email)

    try:
        recovery_codes = await in_session(
            lambda s: twofactor.check_second_factor(s, staff, code, who)
        )
    except twofactor.WrongCode as exc:
        return await _second_step_page(request, staff, error=exc.detail, status=422)
    except AppError as exc:
        response = await _second_step_page(request, staff, error=exc.detail, status=exc.status_code)
        response.headers.update(exc.headers())
        return response
    await start_session(request, staff, second_factor=True)
    if recovery_codes:  # an admin's set-up at sign-in: held in the new session
        _hold_recovery_codes(request, recovery_codes)
    return RedirectResponse(next_path or str(request.url_for("admin:index")), 303)


def _hold_recovery_codes(request: Request, codes: list[str]) -> None:
    """The new recovery codes for the page the confirmation redirects to, shown once there: a
    reload of that page sends no form again (app/admin/reveal.py)."""
    reveal.hold(
        request,
        "\n".join(codes),
        title="Two-factor sign-in is on: your recovery codes",
        label="Keep these recovery codes somewhere safe (printed, or in a password manager). "
        "Each one signs you in once if your phone is lost. They are shown only now.",
    )


# --- the account page: sessions and two-factor sign-in --------------------------------------


async def _account_page(
    request: Request,
    staff: Staff,
    *,
    error: str = "",
    mark_error: str = "",
    password_errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    def load(session: Session) -> dict[str, Any]:
        return {
            "sessions": sessions.live_sessions(session, staff.id, _idle()),
            "twofactor_on": twofactor.is_enabled(session, staff.id),
            "pending_secret": twofactor.pending_secret(session, staff.id),
            "recovery_left": twofactor.remaining_recovery_codes(session, staff.id),
        }

    context = await in_session(load)
    required = twofactor.required(staff, get_settings())
    qr = ""
    if context["pending_secret"] and not context["twofactor_on"]:
        qr = twofactor.provisioning_qr(context["pending_secret"], staff.email)
    context |= {
        "title": "Your account",
        "current_id": getattr(request.state, "staff_session_id", None),
        "twofactor_required": required,
        "qr": qr,
        "error": error,
        "mark_error": mark_error,
        "password_errors": password_errors or {},
        "password_min_length": MIN_LENGTH,
        "decimal_marks": list(DecimalMark),
        "decimal_mark": staff.decimal_mark,
    }
    return await render_staff_page(request, "admin/account.html", context, status)


@router.get("/account", name="staff:account")
async def account(request: Request, staff: StaffDep) -> Response:
    return await _account_page(request, staff)


@router.post("/account/sessions/end-others", name="staff:end_other_sessions")
async def end_other_sessions(request: Request, staff: StaffDep) -> Response:
    keep = getattr(request.state, "staff_session_id", None)

    def end(session: Session) -> int:
        ended = sessions.end_others(session, staff.id, keep)
        session.commit()
        return ended

    ended = await in_session(end)
    Flash.success(request, f"Signed out {ended} other session{'s' if ended != 1 else ''}.")
    return RedirectResponse(request.url_for("staff:account"), 303)


@router.post("/account/sessions/{session_id}/end", name="staff:end_session")
async def end_one_session(request: Request, session_id: PathId, staff: StaffDep) -> Response:
    await in_session(lambda s: sessions.end_one(s, staff.id, session_id))
    Flash.success(request, "That session is signed out.")
    return RedirectResponse(request.url_for("staff:account"), 303)


PasswordField = Annotated[str, Form(max_length=MAX_LENGTH)]


@router.post("/account/password", name="staff:change_password")
async def change_password(
    request: Request,
    staff: StaffDep,
    settings: SettingsDep,
    current_password: PasswordField = "",
    new_password: PasswordField = "",
    new_password_again: PasswordField = "",
) -> Response:
    if new_password != new_password_again:
        mismatch = {"new_password_again": "The two new passwords differ: type it again."}
        return await _account_page(request, staff, password_errors=mismatch, status=422)
    key = settings.resolved_secret_key()
    who = throttle.attempt(staff.email, client_key(request, settings), key=key)
    try:
        session_id = request.state.staff_session_id
        token = await in_session(
            lambda s: users.change_own_password(
                s, staff, current_password, new_password, who, session_id=session_id
            )
        )
    except AppError as exc:
        field = exc.loc[-1] if isinstance(exc, Unprocessable) and exc.loc else "current_password"
        errors = {str(field): exc.detail}
        response = await _account_page(
            request, staff, password_errors=errors, status=exc.status_code
        )
        response.headers.update(exc.headers())
        return response
    use_renewed_session(request, token)
    Flash.success(request, "Your password is changed. Your other sessions are signed out.")
    return RedirectResponse(request.url_for("staff:account"), 303)


@router.post("/account/decimal-mark", name="staff:decimal_mark")
async def decimal_mark(
    request: Request, staff: StaffDep, decimal_mark: Annotated[str, Form(max_length=16)] = ""
) -> Response:
    try:
        await in_session(lambda s: users.set_decimal_mark(s, staff.id, decimal_mark))
    except AppError as exc:
        return await _account_page(request, staff, mark_error=exc.detail, status=exc.status_code)
    Flash.success(request, "Saved: the staff site and your CSV downloads use that mark.")
    return RedirectResponse(str(request.url_for("staff:account")) + "#numbers", 303)


# A new authenticator (or a new secret for a set-up begun before) asks for the password given
# recently: whoever finds the session open must not bind their own phone to the account.
@router.post("/account/2fa/start", name="staff:2fa_start")
async def start_2fa(request: Request, staff: ConfirmedStaffDep) -> Response:
    try:
        await in_session(lambda s: twofactor.begin_enrolment(s, staff))
    except AppError as exc:
        Flash.error(request, exc.detail)
    return RedirectResponse(str(request.url_for("staff:account")) + "#two-factor", 303)


@router.post("/account/2fa/confirm", name="staff:2fa_confirm")
async def confirm_2fa(request: Request, staff: StaffDep, code: CodeField = "") -> Response:
    try:
        codes = await in_session(lambda s: twofactor.confirm_enrolment(s, staff, code))
    except AppError as exc:
        return await _account_page(request, staff, error=exc.detail, status=exc.status_code)
    _hold_recovery_codes(request, codes)
    return RedirectResponse(request.url_for("staff:account"), 303)  # the codes are on top


@router.post("/account/2fa/disable", name="staff:2fa_disable")
async def disable_2fa(
    request: Request, staff: StaffDep, settings: SettingsDep, code: CodeField = ""
) -> Response:
    who = _second_factor_attempt(request, settings, staff.email)
    try:
        await in_session(lambda s: twofactor.disable(s, staff, code, settings, who))
    except AppError as exc:
        response = await _account_page(request, staff, error=exc.detail, status=exc.status_code)
        response.headers.update(exc.headers())
        return response
    Flash.success(request, "Two-factor sign-in is off.")
    return RedirectResponse(request.url_for("staff:account"), 303)


ACCOUNT_PAGES = StaffPages(
    router, [MenuLink("Your account", "staff:account", Role.VIEWER, icon="fa-solid fa-user-shield")]
)
