"""Another module's staff page: a plain FastAPI route behind require_role, with a menu entry."""

from collections.abc import Callable

import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.staticfiles import StaticFiles
from fastapi.testclient import TestClient
from starlette.responses import Response

from app.admin.access import StaffDep, require_role
from app.admin.layout import MenuLink, StaffPages, render_staff_page
from app.admin.site import mount_staff_site
from app.auth.staff import Role
from app.config import STATIC_DIR, get_settings
from tests.admin.conftest import StaffLogin, sign_in

pytestmark = pytest.mark.concurrency

router = APIRouter(prefix="/reports", dependencies=[Depends(require_role(Role.SALES))])


@router.get("/", name="reports:index")
async def reports(request: Request, staff: StaffDep) -> Response:
    return await render_staff_page(
        request,
        "admin/error.html",
        {"status_code": 200, "title": "Reports", "message": f"Hello {staff.email}"},
    )


@pytest.fixture
def site(committed: object) -> TestClient:
    app = FastAPI()
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")  # as app.main does
    mount_staff_site(
        app,
        get_settings(),
        pages=[StaffPages(router, [MenuLink("Reports", "reports:index", Role.SALES)])],
    )
    return TestClient(app, base_url="https://track.example.com")


def test_a_module_adds_a_staff_page_with_a_role_and_a_menu_entry(
    site: TestClient, make_staff: Callable[..., StaffLogin]
) -> None:
    assert site.get("/admin/reports/", follow_redirects=False).status_code == 303

    sign_in(site, make_staff(Role.SALES))
    page = site.get("/admin/reports/")
    assert page.status_code == 200 and "Hello sales@example.com" in page.text
    assert 'href="https://track.example.com/admin/reports/"' in site.get("/admin/").text

    site.cookies.clear()
    sign_in(site, make_staff(Role.VIEWER))
    assert site.get("/admin/reports/").status_code == 403
    assert "/admin/reports/" not in site.get("/admin/").text
