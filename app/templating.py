"""The Jinja2 environment shared by pages, htmx fragments, PDFs and mails.

Translation: templates mark text with ``{{ _("...") }}`` or ``{% trans %}`` (Jinja's i18n
extension, new-style gettext) and are rendered with ``lang`` in their context, one of
``app.i18n.LANGUAGES``: ``template.render(lang=offer.language, ...)`` for a PDF or a mail.
Pages rendered through ``render``/``render_html`` without a ``lang`` get the visitor's (the
``lang`` query parameter, else ``Accept-Language``). The filters ``money``, ``price``,
``decimal``, ``percent``, ``fixed`` and ``date`` format for the same ``lang`` (the staff site
writes numbers with the signed-in user's decimal mark instead: app.admin.site).
"""

import re
import unicodedata
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import jinja_partials
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, pass_context
from jinja2.runtime import Context
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from app import i18n
from app.config import TEMPLATES_DIR, get_settings
from app.formats import HYPHENATED_TRACKING_ID, hyphenate_tracking_id

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
jinja_partials.register_starlette_extensions(templates)


def language_of(context: Context) -> str:
    language = context.get("lang")
    return language if isinstance(language, str) else i18n.DEFAULT_LANGUAGE


@pass_context
def _gettext(context: Context, message: str) -> str:
    return i18n.translate(language_of(context), message)


@pass_context
def _ngettext(context: Context, singular: str, plural: str, count: int) -> str:
    return i18n.translate_plural(language_of(context), singular, plural, count)


def format_date(value: date | datetime, language: str = i18n.DEFAULT_LANGUAGE) -> str:
    """A date, or a time in the configured zone, as ``language`` writes it."""
    if isinstance(value, datetime):
        return i18n.format_datetime(value, language, get_settings().zone)
    return i18n.format_date(value, language)


Language = Callable[[Context], str]


def number_filters(language: Language) -> dict[str, Callable[..., str]]:
    """The filters that write numbers, each as ``language`` says for the render it is in."""

    @pass_context
    def money(context: Context, amount: Decimal, currency: str) -> str:
        return i18n.format_money(amount, currency, language(context))

    @pass_context
    def price(context: Context, amount: Decimal, currency: str) -> str:
        return i18n.format_price(amount, currency, language(context))

    @pass_context
    def decimal(context: Context, value: Decimal) -> str:
        return i18n.format_number(value, language(context))

    @pass_context
    def percent(context: Context, value: Decimal) -> str:
        return i18n.format_percent(value, language(context))

    @pass_context
    def fixed(context: Context, value: Decimal | float, places: int) -> str:
        return i18n.format_fixed(value, places, language(context))

    return {"money": money, "price": price, "decimal": decimal, "percent": percent, "fixed": fixed}


@pass_context
def _date(context: Context, value: date | datetime) -> str:
    return format_date(value, language_of(context))


def css_string(value: str) -> Markup:
    """``value`` as a quoted CSS string, safe inside a ``<style>`` (which is not HTML-escaped):
    every character that could end the string, the declaration or the element is escaped."""
    escaped = "".join(
        ch if ch.isalnum() or ch in " .,-_·:/@&()'" or ord(ch) > 127 else f"\\{ord(ch):x} "
        for ch in value
    )
    return Markup(f'"{escaped}"')


def text_direction(value: str) -> str:
    """``rtl`` for text whose first strong character is right-to-left (Arabic, Hebrew)."""
    for ch in value:
        kind = unicodedata.bidirectional(ch)
        if kind in ("R", "AL"):
            return "rtl"
        if kind == "L":
            return "ltr"
    return "auto"


def tracking_id_unbroken(text: str, tracking_id: str | None = None) -> Markup:
    """``text``, escaped, with the offer's hyphenated tracking ID in it kept on one line: a
    phone broke a sentence's ``01H0W-`` from its ``ARY2W``, which reads as two codes. Without
    ``tracking_id`` (a flash message, a string by then), every hyphenated tracking ID in it."""
    escaped = escape(text)
    if tracking_id is None:
        # Matched in the escaped text: a code holds no character escaping changes, and an
        # entity (&lt;, &#34;) holds no code, so what is wrapped is text, never markup.
        return Markup(HYPHENATED_TRACKING_ID.sub(_kept_whole, str(escaped)))
    code = hyphenate_tracking_id(tracking_id)
    return escaped.replace(str(escape(code)), _kept(code))


def _kept_whole(match: re.Match[str]) -> str:
    return str(_kept(match.group()))


def _kept(code: str) -> Markup:
    return Markup('<span class="tracking-id">%s</span>') % code


def install_filters(env: Environment, numbers_in: Language = language_of) -> None:
    """The shared filters; numbers (``price``: unit prices, every stored digit) are written
    as ``numbers_in`` says, by default in the render's ``lang``."""
    env.filters.update(number_filters(numbers_in))
    env.filters["date"] = _date
    env.filters["hyphenated"] = hyphenate_tracking_id
    env.filters["tracking_id_unbroken"] = tracking_id_unbroken
    env.filters["css_string"] = css_string
    env.filters["direction"] = text_direction


def install_translations(env: Environment) -> None:
    """Jinja's i18n extension, translating into each render's ``lang`` (mails too: their own
    environment calls this and renders with ``lang=offer.language``)."""
    if "jinja2.ext.InternationalizationExtension" not in env.extensions:
        env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]


install_filters(templates.env)
install_translations(templates.env)
templates.env.globals["get_settings"] = get_settings
templates.env.globals["zip"] = zip
templates.env.globals["LANGUAGE_NAMES"] = i18n.LANGUAGE_NAMES
templates.env.globals["default_language"] = i18n.DEFAULT_LANGUAGE
templates.env.globals["example_code"] = "01H0W-ARY2W"


SWITCHER_KEEPS = frozenset({"code"})


def language_link(request: Request, language: str) -> str:
    """This page in ``language``: same path, what was typed in the entry form (``code``)
    kept, ``lang`` set. Relative, as the switcher's links need no host. Nothing else of the
    query: a tracking page is cached and served to the next visitors, who must not carry the
    first one's parameters (``src`` would count their switch as a new visit, any other could
    tell them where the first came from)."""
    if request.method not in ("GET", "HEAD"):
        # An answer to a form: its address takes no GET, the page the form was on does.
        code = request.path_params.get("code")
        root = request.scope.get("root_path", "")
        return f"{root}/{code}?lang={language}" if code else f"{root}/?lang={language}"
    params = [(k, v) for k, v in request.query_params.multi_items() if k in SWITCHER_KEEPS]
    return f"{request.url.path}?{urlencode([*params, ('lang', language)])}"


templates.env.globals["language_link"] = language_link


def requested_language(request: Request) -> str | None:
    """The switcher's ``?lang=``, when it names one of our languages."""
    if not request.scope["query_string"]:
        return None  # most views have no query string; parsing one costs more than the rest
    language = request.query_params.get("lang", "")
    return language if i18n.is_supported(language) else None


def request_language(request: Request) -> str:
    """The visitor's language where no offer says otherwise: switcher, header, default."""
    requested = requested_language(request)
    if requested:
        return requested
    accepted = i18n.accepted_languages(request.headers.get("accept-language", ""))
    return accepted[0] if accepted else i18n.DEFAULT_LANGUAGE


def render_html(
    request: Request, template: str, context: dict[str, Any], *, block: str | None = None
) -> str:
    """The page as text, or only ``block`` of it."""
    tmpl = templates.env.get_template(template)
    full_context = {"request": request, **context}
    if "lang" not in full_context:
        full_context["lang"] = request_language(request)
    if block is None:
        return tmpl.render(full_context)
    return "".join(tmpl.blocks[block](tmpl.new_context(full_context)))


def is_htmx(request: Request) -> bool:
    # The raw header list, not request.headers: Starlette's Headers decodes every header on a
    # lookup, which on the tracking page cost more than the page cache's own lookup.
    return (b"hx-request", b"true") in request.scope["headers"]


def html_response(
    html: str | bytes, *, status_code: int = 200, headers: dict[str, str] | None = None
) -> HTMLResponse:
    return HTMLResponse(
        html,
        status_code=status_code,
        headers={"Vary": "HX-Request, Accept-Language", **(headers or {})},
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
