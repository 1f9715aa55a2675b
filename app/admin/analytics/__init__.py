"""The analytics pages of the staff site (/admin/analytics), by family: the dashboard,
campaigns with their creatives, a placement with its rules form, webhook endpoints. Figures
come from app.analytics.attribution and CSV downloads from app.analytics.exports, so the page,
the API and the CSV always agree. Every change is a POST (the staff site's CSRF middleware
checked it).
"""

from app.admin.analytics import campaigns, dashboard, placements, webhooks
from app.admin.layout import MenuLink, StaffPages
from app.auth.staff import Role

ANALYTICS_PAGES = StaffPages(
    router=(dashboard.router, campaigns.router, placements.router, webhooks.router),
    menu=[
        MenuLink("Campaign dashboard", "analytics:dashboard", Role.VIEWER),
        MenuLink("Campaigns", "analytics:campaigns", Role.VIEWER, icon="fa-solid fa-bullhorn"),
        MenuLink("Webhooks", "analytics:webhooks", Role.ADMIN, icon="fa-solid fa-paper-plane"),
    ],
)
