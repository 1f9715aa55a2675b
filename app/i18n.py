"""The languages OfferTrack speaks to customers: one list, used by every check and switcher."""

from typing import Final

# ISO 639-1 codes with complete catalogs for the public pages, the PDF and the mails.
LANGUAGES: Final = ("en", "de", "el")
DEFAULT_LANGUAGE: Final = "en"


def is_supported(code: str) -> bool:
    return code in LANGUAGES
