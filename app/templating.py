"""The Jinja2 environment shared by pages, htmx fragments and PDFs."""

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import jinja_partials
from fastapi.templating import Jinja2Templates
from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import HTMLResponse

from app.config import TEMPLATES_DIR, get_settings
from app.offers.ids import hyphenate_tracking_id
from app.offers.pricing import minor_unit

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
jinja_partials.register_starlette_extensions(templates)


def format_money(amount: Decimal, currency: str) -> str:
    """``1234.5`` → ``1,234.50 EUR``: grouping makes long amounts readable on paper."""
    places = -minor_unit(currency).as_tuple().exponent  # type: ignore[operator]
    return f"{amount:,.{places}f} {currency}"


def format_decimal(value: Decimal) -> str:
    """Quantities and rates without trailing zeros: ``2.000`` → ``2``, ``24.00`` → ``24``."""
    return f"{value.normalize():f}"


def format_date(value: date | datetime) -> str:
    if isinstance(value, datetime):
        return value.astimezone(get_settings().zone).strftime("%d %b %Y, %H:%M")
    return value.strftime("%d %b %Y")


def install_filters(env: Environment) -> None:
    env.filters["money"] = format_money
    env.filters["decimal"] = format_decimal
    env.filters["date"] = format_date
    env.filters["hyphenated"] = hyphenate_tracking_id


install_filters(templates.env)
templates.env.globals["get_settings"] = get_settings
templates.env.globals["zip"] = zip


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    block: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """A page, or only ``block`` of it when htmx asks (``HX-Request: true``)."""
    is_htmx = request.headers.get("HX-Request") == "true"
    if block and is_htmx:
        tmpl = templates.env.get_template(template)
        ctx = tmpl.new_context({"request": request, **context})
        html = "".join(tmpl.blocks[block](ctx))
        response = HTMLResponse(html, status_code=status_code)
    else:
        response = templates.TemplateResponse(request, template, context, status_code=status_code)
    response.headers["Vary"] = "HX-Request"
    return response
