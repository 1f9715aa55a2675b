"""How codes and amounts are written for people: one rule each, for pages, PDFs and mails.

Core (no domain imports): the shared Jinja environment formats money and tracking IDs with
these, and the offers package computes with them.
"""

from decimal import Decimal

TRACKING_ID_LENGTH = 10
# ISO 4217 currencies without a minor unit; every other supported currency has two decimals.
ZERO_DECIMAL_CURRENCIES = frozenset({"JPY", "KRW", "ISK", "CLP", "VND", "PYG", "UGX", "XAF", "XOF"})


def minor_unit(currency: str) -> Decimal:
    """The smallest amount of ``currency`` an invoice shows: 0.01, or 1 for JPY and the like."""
    return Decimal(1) if currency in ZERO_DECIMAL_CURRENCIES else Decimal("0.01")


def hyphenate_tracking_id(tracking_id: str) -> str:
    """``01H0WARY2W`` → ``01H0W-ARY2W``: two groups of five are easier to read aloud and type."""
    return f"{tracking_id[:5]}-{tracking_id[5:TRACKING_ID_LENGTH]}"
