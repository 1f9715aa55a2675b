"""Text fields of the JSON API: the documented limits hold for the text as sent.

Surrounding whitespace is stripped, but only after the length (and pattern) checks: pydantic's
``strip_whitespace`` strips first, so a 201-character name with a leading space passed a
documented ``maxLength: 200``. A required field that is only whitespace is refused.
"""

import re
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints


def stripped(value: str) -> str:
    return value.strip()


def stripped_required(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty or only spaces")
    return value


_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def email_or_empty(value: str) -> str:
    value = value.strip()
    if value and not _EMAIL.fullmatch(value):
        raise ValueError("must be an e-mail address such as name@example.com")
    return value


Text50 = Annotated[str, StringConstraints(max_length=50), AfterValidator(stripped)]
Text100 = Annotated[str, StringConstraints(max_length=100), AfterValidator(stripped)]
Text200 = Annotated[str, StringConstraints(max_length=200), AfterValidator(stripped)]
Text500 = Annotated[str, StringConstraints(max_length=500), AfterValidator(stripped)]
Text5000 = Annotated[str, StringConstraints(max_length=5000), AfterValidator(stripped)]
Unit = Annotated[str, StringConstraints(max_length=20), AfterValidator(stripped)]
RequiredText100 = Annotated[
    str, StringConstraints(min_length=1, max_length=100), AfterValidator(stripped_required)
]
RequiredText200 = Annotated[
    str, StringConstraints(min_length=1, max_length=200), AfterValidator(stripped_required)
]
RequiredText500 = Annotated[
    str, StringConstraints(min_length=1, max_length=500), AfterValidator(stripped_required)
]
Email = Annotated[str, StringConstraints(max_length=320), AfterValidator(email_or_empty)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{3}$"), AfterValidator(str.upper)]


# The id of a row of ours: an INTEGER column, whose range on PostgreSQL ends at 2**31 - 1. A
# larger number can name no row, and sent to the database it would be an error, not a miss.
MAX_ROW_ID = 2**31 - 1
RowId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]


def row_ids(values: list[str]) -> list[int]:
    """The values of a form's list of ids (ticked rows) that can name a row; another (a
    mangled form, 10**20) names none, and sent to the database it was an error (a 500)."""
    # (A value longer than the largest id is none: int() refuses thousands of digits.)
    longest = len(str(MAX_ROW_ID))
    numbers = [int(value) for value in values if value.isdecimal() and len(value) <= longest]
    return [number for number in numbers if 1 <= number <= MAX_ROW_ID]
