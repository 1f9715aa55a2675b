"""Every CSV the project writes goes through here, so no cell reaches a spreadsheet as a formula.

OWASP's rule for CSV injection: a cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return is prefixed with a single quote, which spreadsheets show but never evaluate.
Values we do not control land in exports (a scan's referrer host, conversion keys, campaign
names, a customer's company), so the rule applies to every text cell. A plain number
(``-12.50``) is left alone: it cannot be a formula, and a quote would spoil the column.

Exports are for people with spreadsheets (machines read the JSON API), so a time is written as
LibreOffice Calc and Excel read a date-time, ``YYYY-MM-DD HH:MM:SS``, in the configured zone
as the staff pages show it, and its column's header names the zone: ``occurred_at
(Europe/Berlin)``. A date stays ``YYYY-MM-DD``; a number is written as it is (``12.50``).

Excel reads a CSV by the computer's regional settings. Where the decimal mark is a comma
(Germany, France, most of Europe), it splits columns at semicolons only and reads ``12,50``
as a number: a comma-separated file opens as one column of text. So each staff user chooses
their decimal mark (``app.formats.DecimalMark``, on their account page): with a comma, the
columns are split at semicolons. Every file for a spreadsheet begins with a
UTF-8 byte-order mark: without it Excel decodes the file in the computer's legacy code page
(``Müller`` shows as ``MÃ¼ller``). LibreOffice, Google Sheets and Python's ``utf-8-sig`` skip
the mark.
"""

import csv
import re
from collections.abc import Collection, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.types import DateTime, TypeDecorator, TypeEngine

from app.formats import DecimalMark

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"


_PLAIN_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")


class _Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


def neutralise(value: Any) -> Any:
    """The cell as a spreadsheet may safely read it: formula-like text gets a leading quote."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        if not _PLAIN_NUMBER.fullmatch(value):
            return "'" + value
    return value


def local_time(value: datetime, zone: ZoneInfo) -> str:
    """An aware time as a spreadsheet reads a date-time: local in ``zone``, to the second."""
    if value.tzinfo is None:
        # Every time we store is aware UTC (app.db.UTCDateTime); a naive one would be
        # written in whatever zone the server runs in, silently wrong.
        raise ValueError(f"a time without a zone cannot be exported: {value!r}")
    # Cut, not rounded: 12:56:17.9 stays in its second, so the order of the rows is kept.
    # In autumn's repeated hour two times read alike (02:30 CEST and 02:30 CET): a
    # spreadsheet's date-time has no room for an offset, so the header naming the zone is
    # as exact as the format allows. Acceptable: exports are read by people, who know the
    # night the clocks go back, and the event exports keep such rows in their true order.
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def time_header(name: str, zone: ZoneInfo) -> str:
    """The header of a time column: its name and the zone its times are written in."""
    return f"{name} ({zone.key})"


def header(names: Iterable[str], times: Collection[str], zone: ZoneInfo) -> list[str]:
    """A header row whose time columns (``times``) name the zone."""
    return [time_header(name, zone) if name in times else name for name in names]


def is_time(type_: TypeEngine[Any]) -> bool:
    """Whether a column of this type holds times (``UTCDateTime``), not dates or other values."""
    # A TypeDecorator's own python_type is ``object``: the type it stores as tells.
    return isinstance(type_.impl_instance if isinstance(type_, TypeDecorator) else type_, DateTime)


def safe_row(
    row: Iterable[Any], zone: ZoneInfo, mark: DecimalMark = DecimalMark.POINT
) -> list[Any]:
    return [_cell(value, zone, mark) for value in row]


def _cell(value: Any, zone: ZoneInfo, mark: DecimalMark) -> Any:
    if isinstance(value, datetime):
        return local_time(value, zone)
    if isinstance(value, Decimal | float):  # a number by type: text that looks like one stays
        return number_text(value, mark)
    return neutralise(value)


def number_text(value: Decimal | float, mark: DecimalMark) -> str:
    """A number with the decimal ``mark``."""
    return mark.written(str(value))


class SafeWriter:
    """``csv.writer`` whose every row is neutralised first, its times written local in
    ``zone``; the only CSV writer we use. For a spreadsheet, laid out for its user's decimal
    ``mark``, after a byte-order mark; without one, for a program (the API's ``format=csv``):
    commas between columns, a decimal point, no byte-order mark."""

    def __init__(self, file: _Writable, zone: ZoneInfo, mark: DecimalMark | None = None) -> None:
        self._file = file
        self._bom = BOM if mark is not None else ""
        self._decimal = mark or DecimalMark.POINT
        delimiter = ";" if self._decimal is DecimalMark.COMMA else ","
        self._writer = csv.writer(file, delimiter=delimiter)
        self._zone = zone

    def writeheader(self, names: Iterable[str], times: Collection[str] = ()) -> Any:
        """The first line: the byte-order mark for a spreadsheet, then the header (its time
        columns naming the zone). Returns what the file's ``write`` returned for both, added
        up (the line itself for a file that returns it, so that a stream yields it whole)."""
        bom = self._file.write(self._bom)
        return bom + self.writerow(header(names, times, self._zone))

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow(safe_row(row, self._zone, self._decimal))

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)
