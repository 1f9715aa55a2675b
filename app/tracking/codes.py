"""One parser for every code a person types, reads aloud or scans: page, search box and API.

Accepted: the 26-character ULID or the 10-character tracking ID, in any case, with hyphens,
spaces, dots and dashes of any kind anywhere, full-width forms and invisible format characters
(zero-width space, soft hyphen), and Crockford's aliases (I and L read as 1, O as 0).
Anything else is an InvalidCode that explains the format.
"""

import re
import unicodedata
from dataclasses import dataclass

from app.errors import AppError
from app.tracking.models import CodeForm

CROCKFORD = frozenset("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
ALIASES = str.maketrans({"I": "1", "L": "1", "O": "0"})
FULL_LENGTH = 26
SHORT_LENGTH = 10
# A ULID's first character carries only 3 bits of its 48-bit timestamp.
MAX_FIRST_CHARACTER = "7"
MAX_INPUT_LENGTH = 100

FORMAT_HELP = (
    "A tracking code is either the 10-character tracking ID printed under the QR code "
    "(for example 01H0W-ARY2W) or the 26-character offer ID. It uses the digits 0-9 and the "
    "letters A-Z except U; case, spaces and dashes do not matter."
)


class InvalidCode(AppError):
    status_code = 400
    title = "That is not a tracking code"
    web_template = "tracking/lookup_error.html"

    def __init__(
        self, reason: str, *, length: int | None = None, characters: str = "", empty: bool = False
    ) -> None:
        super().__init__(f"{reason} {FORMAT_HELP}")
        self.reason = reason
        # What the error page says in the visitor's language: how many characters the code
        # had, or which ones never occur in one (``reason`` is the API's English), or that
        # there was none (the entry form sent without its required check, by curl say).
        self.length = length
        self.characters = characters
        self.empty = empty


@dataclass(frozen=True)
class TrackingCode:
    value: str
    form: CodeForm


def _is_separator(char: str) -> bool:
    return char.isspace() or char in ".\u2212" or unicodedata.category(char) == "Pd"


def _is_ignorable(char: str) -> bool:
    return _is_separator(char) or unicodedata.category(char) == "Cf"


# A code already in canonical form, as the QR code and every link we print carry it.
CANONICAL = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{9}(?:[0-9A-HJKMNP-TV-Z]{16})?")


def code_in_entry(typed: str) -> str:
    """What the entry form's field holds, less a link around the code: a buyer pastes the
    whole address of the page, copied from the PDF or a mail (``https://track.example.com/
    01H0W...?src=pdf``, a phone's copy often without its scheme), or of a page under it
    (``/01H0W.../pdf``, ``.../accepted``). A code has no slash: the last segment that is one."""
    if "/" not in typed:
        return typed
    path = typed.split("#", 1)[0].split("?", 1)[0]
    segments = [segment for segment in path.split("/") if segment.strip()]
    for segment in reversed(segments):
        try:
            parse_tracking_code(segment)
        except InvalidCode:
            continue
        return segment
    return segments[-1] if segments else typed


def parse_tracking_code(raw: str) -> TrackingCode:
    """Normalize ``raw`` to a canonical ULID or tracking ID, or raise InvalidCode."""
    if CANONICAL.fullmatch(raw):  # the common case, without the character-by-character walk
        return TrackingCode(raw, CodeForm.FULL if len(raw) == FULL_LENGTH else CodeForm.SHORT)
    if len(raw) > MAX_INPUT_LENGTH:
        raise InvalidCode("That code is far too long.")
    # Full-width letters and digits (an East Asian keyboard), and the zero-width spaces and
    # soft hyphens that copying from a PDF or a mail leaves in: NFKC folds the former into
    # ASCII, and format characters (Unicode category Cf) are invisible, so they go.
    normalized = unicodedata.normalize("NFKC", raw)
    cleaned = "".join(char for char in normalized if not _is_ignorable(char))
    value = cleaned.upper().translate(ALIASES)
    bad = sorted({char for char in value if char not in CROCKFORD})
    if bad:
        shown = ", ".join(repr(char) for char in bad)
        raise InvalidCode(
            f"The code contains characters that never occur in one: {shown}.",
            characters=" ".join(bad),
        )
    if not value:
        raise InvalidCode("No code was given.", empty=True)
    if len(value) not in (FULL_LENGTH, SHORT_LENGTH):
        raise InvalidCode(
            f"The code has {len(value)} characters instead of 10 or 26.", length=len(value)
        )
    if value[0] > MAX_FIRST_CHARACTER:
        raise InvalidCode("The code cannot start with that character.")
    form = CodeForm.FULL if len(value) == FULL_LENGTH else CodeForm.SHORT
    return TrackingCode(value=value, form=form)
