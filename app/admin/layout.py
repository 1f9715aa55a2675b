"""What a staff page needs from the staff site, without the site itself: its menu entry, the
pages a package adds, and the site's layout to render them in. The site (app.admin.site)
imports the routes that use this module; this module imports neither, so no cycle."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from sqladmin import Admin
from starlette.responses import HTMLResponse, Response

from app.auth.staff import Role


@dataclass(frozen=True)
class MenuLink:
    """A menu entry for a staff page served by a plain FastAPI route named ``route_name``."""

    name: str
    route_name: str
    role: Role
    icon: str = "fa-solid fa-chart-line"


@dataclass(frozen=True)
class StaffPages:
    """Pages another module adds to the staff site: its router, or one per page family (each
    route guarded with ``require_role``), and the menu entries that lead there."""

    router: APIRouter | Sequence[APIRouter]
    menu: Sequence[MenuLink] = field(default_factory=tuple)

    @property
    def routers(self) -> Sequence[APIRouter]:
        return (self.router,) if isinstance(self.router, APIRouter) else self.router


async def render_staff_page(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> Response:
    """A page in the staff site's layout (menu, flash messages, sign-out)."""
    admin: Admin = request.app.state.admin
    return await admin.templates.TemplateResponse(request, template, context, status_code)


def render_staff_partial(request: Request, template: str, **data: Any) -> HTMLResponse:
    """A fragment for htmx (a partial the full page renders with ``render_partial`` too)."""
    admin: Admin = request.app.state.admin
    render_partial: Callable[..., str] = admin.templates.env.globals["render_partial"]  # type: ignore[assignment]
    html = render_partial(template, request=request, **data)
    return HTMLResponse(html, headers={"Vary": "HX-Request"})
