"""What a spreadsheet user needs of the times in any CSV we write: none in Python's
``str(datetime)`` (``2026-12-07 12:56:17.624829+00:00``, which Calc and Excel read as text, in
UTC), each written local as ``YYYY-MM-DD HH:MM:SS`` under a header that names the zone."""

import csv
import io
import re
from datetime import datetime
from zoneinfo import ZoneInfo

from app.csvsafe import BOM

SPREADSHEET_TIME = "%Y-%m-%d %H:%M:%S"
# A time with an offset or fractions, in any spelling: not something a spreadsheet reads.
_UNREADABLE = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2})?(?:\.\d+|[+-]\d{2}:?\d{2}|Z)")
_LOCAL = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")


def local(moment: datetime, zone: ZoneInfo) -> datetime:
    """A stored UTC time as the export must read: local in ``zone``, naive, to the second."""
    return moment.astimezone(zone).replace(tzinfo=None, microsecond=0)


def spreadsheet_rows(text: str, zone: ZoneInfo) -> list[dict[str, str]]:
    """The rows of a CSV export, each checked: every time cell is local to the second, and
    its column's header, and only a time column's, names ``zone``."""
    # A staff download begins with the UTF-8 mark for Excel (tests/test_decimal_mark.py).
    header, *body = list(csv.reader(io.StringIO(text.removeprefix(BOM))))
    suffix = f" ({zone.key})"
    for row in body:
        for name, cell in zip(header, row, strict=True):
            assert not _UNREADABLE.search(cell), f"{name}: {cell!r} is no spreadsheet time"
            is_time = bool(_LOCAL.fullmatch(cell))
            assert not is_time or name.endswith(suffix), f"{name}: a time, the zone unnamed"
            if name.endswith(suffix) and cell:
                datetime.strptime(cell, SPREADSHEET_TIME)  # strict: nothing before or after
    return [dict(zip(header, row, strict=True)) for row in body]


def parsed(cell: str) -> datetime:
    return datetime.strptime(cell, SPREADSHEET_TIME)
