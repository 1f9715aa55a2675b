"""The languages OfferTrack speaks to customers: one list, used by every check and switcher.

Messages are gettext catalogs (``app/locale/<lang>/LC_MESSAGES/messages.po``, compiled to
``.mo`` by ``make i18n``); numbers, amounts and dates go through Babel's CLDR data, so German
and Greek get ``1.234,56 €`` and English ``€1,234.56``. The message ids are the English
texts, so a message a catalog lacks still reads as English, never as an id.
"""

from datetime import date, datetime, tzinfo
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Final

from babel import dates, numbers
from babel.support import NullTranslations, Translations
from pydantic import AfterValidator

# ISO 639-1 codes with complete catalogs for the public pages, the PDF and the mails.
LANGUAGES: Final = ("en", "de", "el")
DEFAULT_LANGUAGE: Final = "en"
# Each language's own name, for the switcher: a visitor looks for the one they read.
LANGUAGE_NAMES: Final = {"en": "English", "de": "Deutsch", "el": "Ελληνικά"}
LOCALE_DIR: Final = Path(__file__).resolve().parent / "locale"
DOMAIN: Final = "messages"
HUNDRED: Final = Decimal(100)


def N_(message: str) -> str:  # noqa: N802 (gettext's name for "extract, translate later")
    return message


# The stage labels the first migration creates: staff may rename them (then the page shows
# their wording), but as they come they are translated like every other text of the page.
DEFAULT_STAGE_LABELS: Final = (
    N_("Order confirmed"),
    N_("In production"),
    N_("Quality check"),
    N_("Ready for dispatch"),
    N_("Shipped"),
    N_("Delivered"),
)


def is_supported(code: str) -> bool:
    return code in LANGUAGES


def check_language(code: str) -> str:
    """For schemas: a 422 naming the field, and the codes that would do."""
    if not is_supported(code):
        raise ValueError(f"unknown language {code!r}: use one of {', '.join(LANGUAGES)}")
    return code


# A request body's language field ("language": "de"); customers' and offers' alike.
LanguageCode = Annotated[str, AfterValidator(check_language)]


@lru_cache(maxsize=len(LANGUAGES) + 1)
def translations(language: str) -> NullTranslations:
    """The compiled catalog of ``language``; English needs none (its ids are the texts)."""
    if language == DEFAULT_LANGUAGE or not is_supported(language):
        return NullTranslations()
    return Translations.load(str(LOCALE_DIR), [language], DOMAIN)


# Not named gettext/ngettext: `make i18n` extracts these calls by their second argument.
def translate(language: str, message: str) -> str:
    return str(translations(language).ugettext(message))


def translate_plural(language: str, singular: str, plural: str, count: int) -> str:
    return str(translations(language).ungettext(singular, plural, count))


# Headers longer than a browser sends are parsed each time, not kept: a cache holds the headers
# it is given, and the server takes a header of megabytes (uvicorn with httptools), so 256 of
# them could hold any amount of memory. The campaign redirect reads no more than this either.
CACHED_HEADER_LENGTH: Final = 500


def accepted_languages(header: str) -> tuple[str, ...]:
    """Our languages in the order an ``Accept-Language`` header prefers them.

    ``de-AT`` counts as ``de``; ``q=0`` refuses a language. Cached: browsers send a handful
    of distinct headers, and the tracking page parses one on every view.
    """
    if len(header) > CACHED_HEADER_LENGTH:
        return _accepted_languages.__wrapped__(header)
    return _accepted_languages(header)


@lru_cache(maxsize=256)
def _accepted_languages(header: str) -> tuple[str, ...]:
    weighted: dict[str, float] = {}
    for position, item in enumerate(header.split(",")):
        tag, _, params = item.strip().partition(";")
        language = tag.strip().split("-")[0].lower()
        if not is_supported(language) or language in weighted:
            continue
        quality = _quality(params)
        if quality > 0:
            weighted[language] = quality - position / 1000  # ties keep the header's order
    return tuple(sorted(weighted, key=weighted.__getitem__, reverse=True))


def _quality(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name == "q":
            try:
                return max(0.0, min(1.0, float(value)))
            except ValueError:
                return 0.0
    return 1.0


def choose_language(
    offer_language: str, *, requested: str | None, accepted: tuple[str, ...]
) -> str:
    """The switcher's choice; else the offer's language if the visitor reads it (or states
    nothing we speak); else the visitor's favourite of ours."""
    if requested and is_supported(requested):
        return requested
    if not accepted or offer_language in accepted:
        return offer_language if is_supported(offer_language) else DEFAULT_LANGUAGE
    return accepted[0]


def _locale(language: str) -> str:
    return language if is_supported(language) else DEFAULT_LANGUAGE


def is_currency(code: str) -> bool:
    """``code`` is an ISO 4217 currency that amounts can be written in (Babel's list)."""
    return bool(numbers.is_currency(code.upper()))


def format_money(amount: Decimal, currency: str, language: str) -> str:
    """``1.234,56 €`` (de, el), ``€1,234.56`` (en), at the currency's minor unit."""
    return str(numbers.format_currency(amount, currency, locale=_locale(language)))


def format_price(amount: Decimal, currency: str, language: str) -> str:
    """A unit price at the precision stored: ``€1,234.5678``, trimmed to ``€10.00``."""
    return str(
        numbers.format_currency(
            _trimmed(amount), currency, locale=_locale(language), decimal_quantization=False
        )
    )


def format_number(value: Decimal, language: str) -> str:
    """A quantity or rate with grouping and every stored digit: ``1.234,5`` (de)."""
    return str(
        numbers.format_decimal(
            _trimmed(value), locale=_locale(language), decimal_quantization=False
        )
    )


def format_fixed(value: Decimal | float, places: int, language: str) -> str:
    """``value`` with exactly ``places`` decimals and grouping: a rate's ``60.0`` (en)."""
    pattern = "#,##0" + ("." + "0" * places if places else "")
    return str(numbers.format_decimal(value, format=pattern, locale=_locale(language)))


def format_percent(value: Decimal, language: str) -> str:
    """``24`` → ``24%`` (en), ``24 %`` (de): the value is a percentage already."""
    return str(
        numbers.format_percent(
            _trimmed(value) / HUNDRED, locale=_locale(language), decimal_quantization=False
        )
    )


def format_date(value: date, language: str) -> str:
    return str(dates.format_date(value, "medium", locale=_locale(language)))


def format_datetime(value: datetime, language: str, zone: tzinfo) -> str:
    local = value.astimezone(zone)
    locale = _locale(language)
    # 24-hour time in every language: the customers are European businesses, and CLDR's
    # English "6:47 PM" carries a narrow no-break space that copy and paste mangle.
    return f"{dates.format_date(local, 'medium', locale=locale)}, {local:%H:%M}"


def _trimmed(value: Decimal) -> Decimal:
    # normalize() alone turns 100 into 1E+2, which formats fine but compares awkwardly.
    normal = value.normalize()
    return normal.quantize(Decimal(1)) if normal == normal.to_integral() else normal
