"""An admin's pages for another staff user (reached from the user's page): hand their offers
over to a colleague, sign them out everywhere, reset their two-factor sign-in. Each asks on a
page of its own first, which works without JavaScript; the services audit and commit. Each
moves ownership or access, so each asks for the password given recently (app/admin/sudo.py)."""

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from sqladmin.flash import Flash
from starlette.datastructures import URL
from starlette.responses import Response

from app.admin import user_actions
from app.admin.access import ConfirmedAdminDep
from app.admin.forms import Errors, act_and_redirect
from app.admin.layout import StaffPages, render_staff_page
from app.admin.views import in_session
from app.config import Settings, SettingsDep
from app.errors import AppError, Unprocessable
from app.fields import row_ids
from app.offers import service as offers_service
from app.openapi import PathId

router = APIRouter(prefix="/users", include_in_schema=False)


def _user_page(request: Request, user_id: int) -> URL:
    return request.url_for("admin:details", identity="staff-user", pk=str(user_id))


async def _care(settings: Settings, user_id: int) -> user_actions.UserCare:
    idle = timedelta(minutes=settings.admin_idle_minutes)
    today = offers_service.today(settings)
    return await in_session(lambda s: user_actions.user_care(s, user_id, today, idle))


async def _handover_page(
    request: Request,
    settings: Settings,
    user_id: int,
    errors: Errors | None = None,
    chosen: str = "",
    status: int = 200,
) -> Response:
    care = await _care(settings, user_id)
    context: dict[str, Any] = {
        "title": f"Hand over the offers of {care.user.email}",
        "care": care,
        "successors": await in_session(lambda s: user_actions.successors(s, user_id)),
        "chosen": chosen,
        "errors": errors or {},
    }
    return await render_staff_page(request, "admin/users/handover.html", context, status)


@router.get("/{user_id}/handover", name="user_pages:handover")
async def handover_page(
    request: Request, user_id: PathId, staff: ConfirmedAdminDep, settings: SettingsDep
) -> Response:
    return await _handover_page(request, settings, user_id)


@router.post("/{user_id}/handover", name="user_pages:handover_submit")
async def handover(
    request: Request, user_id: PathId, staff: ConfirmedAdminDep, settings: SettingsDep
) -> Response:
    chosen = str((await request.form()).get("to_user", "")).strip()
    if not chosen.isdecimal():
        errors = {"to_user": "Choose who takes the offers over."}
        return await _handover_page(request, settings, user_id, errors, chosen, 422)
    # A number no row can have (10**20) names nobody: refused as any user who cannot take them.
    to_id = next(iter(row_ids([chosen])), 0)
    try:
        done = await in_session(
            lambda s: user_actions.hand_over_offers(s, user_id, to_id, actor=staff.actor)
        )
    except Unprocessable as exc:
        errors = {"to_user": exc.detail}
        return await _handover_page(request, settings, user_id, errors, chosen, 422)
    except AppError as exc:
        errors = {"form": exc.detail}
        return await _handover_page(request, settings, user_id, errors, chosen, 409)
    message = f"{done.count} offers of {done.source} now belong to {done.target}"
    Flash.success(request, message + "; alerts and customers' questions go to them.")
    return RedirectResponse(_user_page(request, user_id), 303)


async def _confirm_page(request: Request, settings: Settings, user_id: int, what: str) -> Response:
    care = await _care(settings, user_id)
    context = {"title": _CONFIRM_TITLES[what].format(email=care.user.email), "care": care}
    return await render_staff_page(request, f"admin/users/confirm_{what}.html", context)


_CONFIRM_TITLES = {
    "sign_out": "Sign {email} out everywhere?",
    "reset_2fa": "Reset two-factor sign-in of {email}?",
}


@router.get("/{user_id}/sign-out", name="user_pages:confirm_sign_out")
async def confirm_sign_out(
    request: Request, user_id: PathId, staff: ConfirmedAdminDep, settings: SettingsDep
) -> Response:
    return await _confirm_page(request, settings, user_id, "sign_out")


@router.post("/{user_id}/sign-out", name="user_pages:sign_out")
async def sign_out(request: Request, user_id: PathId, staff: ConfirmedAdminDep) -> Response:
    def ended(result: tuple[str, int]) -> str:
        email, count = result
        sessions = f"{count} session{'s' if count != 1 else ''}"
        return f"{email} is signed out everywhere ({sessions} ended)."

    return await act_and_redirect(
        request,
        lambda s: user_actions.end_sessions(s, user_id, actor=staff.actor, by=staff.id),
        success=ended,
        to=lambda _: _user_page(request, user_id),
        refused="Nobody was signed out",
        back=_user_page(request, user_id),
    )


@router.get("/{user_id}/reset-2fa", name="user_pages:confirm_reset_2fa")
async def confirm_reset_2fa(
    request: Request, user_id: PathId, staff: ConfirmedAdminDep, settings: SettingsDep
) -> Response:
    return await _confirm_page(request, settings, user_id, "reset_2fa")


@router.post("/{user_id}/reset-2fa", name="user_pages:reset_2fa")
async def reset_2fa(request: Request, user_id: PathId, staff: ConfirmedAdminDep) -> Response:
    return await act_and_redirect(
        request,
        lambda s: user_actions.reset_second_factor(s, user_id, actor=staff.actor, by=staff.id),
        success=lambda email: (
            f"Two-factor sign-in of {email} is reset and they are signed out: they sign in "
            "with their password and set up their new phone on Your account."
        ),
        to=lambda _: _user_page(request, user_id),
        refused="Two-factor sign-in was not reset",
        back=_user_page(request, user_id),
    )


USER_PAGES = StaffPages(router=router)
