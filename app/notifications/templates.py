"""Mails from templates: each mail is ``templates/notifications/mail/NAME.txt`` and ``.html``.

The text template's ``subject`` block is the subject line; the rest of each template is the
body. Both extend a layout on the seller's letterhead (logo, accent colour, name and address,
from the same settings as the public pages and the PDF) that names the offer's tracking ID, so
every mail says who sends it and which offer it is about.
"""

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from app import i18n
from app.config import TEMPLATES_DIR, Settings
from app.offers.ids import hyphenate_tracking_id
from app.templating import install_filters, install_translations


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str


@lru_cache(maxsize=1)
def mail_environment() -> Environment:
    # Its own environment: the text part must not be HTML-escaped (autoescape only for .html),
    # and a missing variable in a mail is a bug to see at once, not an empty line.
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=select_autoescape(["html"], default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    install_filters(env)
    install_translations(env)
    return env


# The Content-ID of the logo inside the mail (app.notifications.mail attaches the file where
# the HTML refers to it): mail clients show an inline part without fetching anything remote.
LOGO_CID = "company-logo@offertrack"


def brand(settings: Settings) -> dict[str, Any]:
    """The letterhead every mail's layout shows, from the settings the public pages use."""
    return {
        "company_name": settings.company_name,
        "company_email": settings.company_email,
        "company_address_lines": [
            line.strip() for line in settings.company_address.split("\n") if line.strip()
        ],
        "accent_color": settings.accent_color,
        "logo_cid": LOGO_CID if settings.logo_file is not None else "",
        "powered_by": settings.powered_by,
        "public_base_url": settings.public_base_url,
    }


def render_mail(
    name: str, context: dict[str, Any], *, settings: Settings, lang: str = i18n.DEFAULT_LANGUAGE
) -> RenderedMail:
    """Subject, text and HTML of the mail ``name`` in ``lang`` (a customer's mail: the offer's
    language; staff mails stay English); ``tracking_id`` names the offer (a digest, about
    several offers, names each in its body instead)."""
    env = mail_environment()
    full = {
        **brand(settings),
        "lang": lang if i18n.is_supported(lang) else i18n.DEFAULT_LANGUAGE,
        "about_order": False,  # the footer names the offer, or the order it became
        **context,
    }
    tracking_id = full.get("tracking_id") or ""
    full["tracking_id_display"] = hyphenate_tracking_id(tracking_id) if tracking_id else ""
    text_template = env.get_template(f"notifications/mail/{name}.txt")
    subject = "".join(text_template.blocks["subject"](text_template.new_context(full)))
    subject = " ".join(subject.split())
    # The HTML shows the subject as the text template wrote it: as plain text, which the HTML
    # template escapes. (Its own copy of the text's macros would not be: Jinja marks what a
    # macro of the unescaped .txt returns as safe HTML.)
    html = env.get_template(f"notifications/mail/{name}.html").render(full, mail_subject=subject)
    return RenderedMail(subject=subject, text=text_template.render(full), html=html)
