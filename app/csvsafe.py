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
"""

import csv
import re
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.types import DateTime, TypeDecorator, TypeEngine

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
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


def safe_row(row: Iterable[Any], zone: ZoneInfo) -> list[Any]:
    return [
        local_time(value, zone) if isinstance(value, datetime) else neutralise(value)
        for value in row
    ]


class SafeWriter:
    """``csv.writer`` whose every row is neutralised first, its times written local in
    ``zone``; the only CSV writer we use."""

    def __init__(self, file: _Writable, zone: ZoneInfo) -> None:
        self._writer = csv.writer(file)
        self._zone = zone

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow(safe_row(row, self._zone))

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)
