"""The staff site under /admin: sign-in, roles, sqladmin views and custom staff pages.

How another module adds a staff-only page (see README, "Staff admin"):

    from fastapi import APIRouter, Depends, Request
    from app.admin.access import StaffDep, require_role
    from app.auth.staff import Role
    from app.admin.layout import MenuLink, StaffPages, render_staff_page

    router = APIRouter(prefix="/analytics", dependencies=[Depends(require_role(Role.VIEWER))])

    @router.get("/", name="analytics:dashboard")
    async def dashboard(request: Request, staff: StaffDep) -> Response:
        return await render_staff_page(request, "analytics/dashboard.html", {...})

    ANALYTICS_PAGES = StaffPages(
        router=router,
        menu=[MenuLink("Campaigns", "analytics:dashboard", Role.VIEWER)],
    )

and app.main passes it on: ``mount_staff_site(app, settings, pages=[ANALYTICS_PAGES])``.
"""
