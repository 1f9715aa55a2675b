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
from app.formats import hyphenate_tracking_id, minor_unit

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


def render_html(
    request: Request, template: str, context: dict[str, Any], *, block: str | None = None
) -> str:
    """The page as text, or only ``block`` of it."""
    tmpl = templates.env.get_template(template)
    full_context = {"request": request, **context}
    if block is None:
        return tmpl.render(full_context)
    return "".join(tmpl.blocks[block](tmpl.new_context(full_context)))


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def html_response(
    html: str, *, status_code: int = 200, headers: dict[str, str] | None = None
) -> HTMLResponse:
    return HTMLResponse(
        html, status_code=status_code, headers={"Vary": "HX-Request", **(headers or {})}
    )


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    block: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """A page, or only ``block`` of it when htmx asks (``HX-Request: true``)."""
    fragment = block if block and is_htmx(request) else None
    return html_response(
        render_html(request, template, context, block=fragment), status_code=status_code
    )
