"""How codes and amounts are written for people: one rule each, for pages, PDFs and mails.

Core (no domain imports): the shared Jinja environment formats money and tracking IDs with
these, and the offers package computes with them.
"""

import re
from decimal import Decimal
from enum import StrEnum

TRACKING_ID_LENGTH = 10
# ISO 4217 currencies without a minor unit; every other supported currency has two decimals.
ZERO_DECIMAL_CURRENCIES = frozenset({"JPY", "KRW", "ISK", "CLP", "VND", "PYG", "UGX", "XAF", "XOF"})


def minor_unit(currency: str) -> Decimal:
    """The smallest amount of ``currency`` an invoice shows: 0.01, or 1 for JPY and the like."""
    return Decimal(1) if currency in ZERO_DECIMAL_CURRENCIES else Decimal("0.01")


# A hyphenated tracking ID in running text: two groups of five of the ULID's alphabet
# (Crockford's base 32: no I, L, O or U), not inside a longer word.
HYPHENATED_TRACKING_ID = re.compile(
    r"(?<![0-9A-Za-z])[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}(?![0-9A-Za-z])"
)


def hyphenate_tracking_id(tracking_id: str) -> str:
    """``01H0WARY2W`` → ``01H0W-ARY2W``: two groups of five are easier to read aloud and type."""
    return f"{tracking_id[:5]}-{tracking_id[5:TRACKING_ID_LENGTH]}"


# A number as staff type it: digits, at most one decimal mark (theirs), a sign. The other
# mark is refused, not guessed at: for someone who writes 1.250,50, "1.250" is a thousand and
# more, which read with a point was 1.25. Thousands separators, exponents ("1e3"), Python's
# "1_000" and "NaN" are refused too.
_TYPED_NUMBER = {
    "point": re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"),
    "comma": re.compile(r"[+-]?(?:\d+(?:,\d*)?|,\d+)"),
}
# The longest number a field of the staff site takes (the lists' filters): a longer one is a
# link typed by hand, and PostgreSQL's numbers overflow past 16,383 decimals.
MAX_TYPED_NUMBER = 30


class DecimalMark(StrEnum):
    """A staff user's decimal mark: how they type numbers with decimals anywhere in the staff
    site (a phone set to German or Greek offers only a comma on its number pad), how the staff
    site shows them, and how their CSV downloads are laid out (with a comma, Excel splits
    columns at semicolons: app.csvsafe)."""

    POINT = "point"  # 1250.50
    COMMA = "comma"  # 1250,50

    @property
    def label(self) -> str:
        return _MARK_LABELS[self]

    def written(self, number: str) -> str:
        """``number`` (written with a point) as this mark writes it."""
        return number.replace(".", ",") if self is DecimalMark.COMMA else number

    @property
    def help(self) -> str:
        """What to type, said beside a field that held no number."""
        return _MARK_HELP[self]

    @property
    def language(self) -> str:
        """The language whose way of writing numbers the staff site shows this mark with:
        English's ``€1,250.50``, or German's ``1.250,50 €`` (as Greek and most of Europe
        group and mark them)."""
        return "de" if self is DecimalMark.COMMA else "en"

    def field_value(self, value: Decimal) -> str:
        """``value`` as a form's field takes it back: no grouping, no trailing zeros
        (``2.000`` -> ``2``), this mark."""
        return self.written(f"{value.normalize():f}")

    def parse(self, typed: str) -> Decimal:
        """The number typed into a field with this mark; ValueError (with ``help``) if none."""
        text = typed.strip()
        if len(text) > MAX_TYPED_NUMBER:
            raise ValueError(f"Write the number in at most {MAX_TYPED_NUMBER} characters.")
        if not _TYPED_NUMBER[self.value].fullmatch(text):
            raise ValueError(self.help)
        return Decimal(text.replace(",", "."))


_MARK_HELP = {
    DecimalMark.POINT: "Write the number with a point before the decimals and no thousands "
    "separators, e.g. 1250.50 (Your account sets a decimal comma instead).",
    DecimalMark.COMMA: "Write the number with a comma before the decimals and no thousands "
    "separators, e.g. 1250,50 (Your account sets a decimal point instead).",
}
_MARK_LABELS = {
    DecimalMark.POINT: "Decimal point: 1250.50 (CSV files with commas between columns, for "
    "LibreOffice, Google Sheets and Excel in English)",
    DecimalMark.COMMA: "Decimal comma: 1250,50 (CSV files with semicolons between columns, "
    "as Excel in German, French and most European languages reads them)",
}
