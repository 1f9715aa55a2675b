"""Filters of the staff lists: sqladmin's lookup filters (one value from a fixed list each,
``LookupFilter``), and fields typed into a form (a date range, an amount range, an owner, a
customer, an actor), applied together.

The typed fields read their query parameters directly, and a value that does not parse is
ignored, the list shown without it and the refusal beside its field, rather than answered
with an error page. Amounts are typed with the staff user's decimal mark
(app.formats.DecimalMark), as in the offer editor.
"""

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, false, func
from sqlmodel import col
from starlette.requests import Request

from app.audit import AuditLogEntry
from app.config import get_settings
from app.fields import MAX_ROW_ID
from app.formats import DecimalMark
from app.offers.models import Offer
from app.tracking.codes import InvalidCode, parse_tracking_code
from app.tracking.models import CodeForm

ALL = "__all"


class LookupFilter(ABC):
    """A filter as sqladmin's list page and lookup template take it: "All", then the values a
    subclass lists; picking one narrows the list by the subclass's condition."""

    has_operator = False
    template = "sqladmin/filters/lookup_filter.html"
    title: str
    parameter_name: str

    async def lookups(self, request: Request, model: Any, run_query: Any) -> list[tuple[str, str]]:
        return [(ALL, "All"), *await self.choices()]

    async def get_filtered_query(self, query: Select[Any], value: Any, model: Any) -> Any:
        if value in ("", ALL, None):
            return query
        return query.where(self.condition(str(value)))

    @abstractmethod
    async def choices(self) -> list[tuple[str, str]]:
        """The values to pick from, each with its label."""

    @abstractmethod
    def condition(self, value: str) -> ColumnElement[bool]:
        """The rows a picked value keeps."""


@dataclass(frozen=True)
class FilterField:
    name: str
    label: str
    kind: str = "text"  # text | date | number | select
    choices: tuple[tuple[str, str], ...] = ()


OFFER_FIELDS = (
    FilterField("owner", "Owner", "select"),
    FilterField("customer", "Customer"),
    FilterField("created_from", "Created from", "date"),
    FilterField("created_to", "Created until", "date"),
    FilterField("gross_min", "Total from", "number"),
    FilterField("gross_max", "Total up to", "number"),
)
AUDIT_FIELDS = (
    FilterField("actor", "Who"),
    FilterField("action", "Action"),
    FilterField("offer", "Offer or tracking ID"),
    FilterField("from", "From", "date"),
    FilterField("to", "Until", "date"),
)


def _row_id_is(column: Any, digits: str) -> ColumnElement[bool]:
    # A number no id can be (a mangled link) matches nothing; sent to SQLite it overflowed.
    number = int(digits)
    return column == number if number <= MAX_ROW_ID else false()


# The days a filter takes: a day inside either end of the calendar, so that its midnight in
# any zone, and the day after "until", are still times (9999-12-31 was a 500).
FIRST_DAY, LAST_DAY = date(1, 1, 2), date(9999, 12, 30)
DATE_HELP = "Enter a date as YYYY-MM-DD, e.g. 2026-12-07."


def _date(value: str | None) -> date | None:
    try:
        day = date.fromisoformat(value) if value else None
    except ValueError:
        return None
    return day if day is None or FIRST_DAY <= day <= LAST_DAY else None


def _amount(value: str | None, mark: DecimalMark) -> Decimal | None:
    try:
        return mark.parse(value) if value and value.strip() else None
    except ValueError:
        return None


def refusals(
    fields: tuple[FilterField, ...], params: Mapping[str, str], mark: DecimalMark
) -> dict[str, str]:
    """What to say beside each typed number or date that is none, by field name: the
    conditions leave those filters out."""
    errors: dict[str, str] = {}
    for field in fields:
        typed = params.get(field.name, "")
        if not typed.strip():
            continue
        if field.kind == "date" and _date(typed) is None:
            errors[field.name] = DATE_HELP
        elif field.kind == "number":
            try:
                mark.parse(typed)
            except ValueError as refused:
                errors[field.name] = str(refused)
    return errors


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=get_settings().zone)


def offer_conditions(
    request: Request, staff_id: int | None, mark: DecimalMark
) -> list[ColumnElement[bool]]:
    params = request.query_params
    conditions: list[ColumnElement[bool]] = []
    owner = params.get("owner", "")
    if owner == "mine":
        conditions.append(col(Offer.owner_id) == staff_id)
    elif owner.isdecimal():
        conditions.append(_row_id_is(col(Offer.owner_id), owner))
    customer = params.get("customer", "").strip().lower()
    if customer.isdecimal():
        conditions.append(_row_id_is(col(Offer.customer_id), customer))
    elif customer:
        conditions.append(func.lower(Offer.customer_company).like(f"%{customer}%"))
    if (start := _date(params.get("created_from"))) is not None:
        conditions.append(col(Offer.created_at) >= _start_of(start))
    if (end := _date(params.get("created_to"))) is not None:
        conditions.append(col(Offer.created_at) < _start_of(end + timedelta(days=1)))
    if (low := _amount(params.get("gross_min"), mark)) is not None:
        conditions.append(col(Offer.gross_amount) >= low)
    if (high := _amount(params.get("gross_max"), mark)) is not None:
        conditions.append(col(Offer.gross_amount) <= high)
    return conditions


def audit_conditions(request: Request) -> list[ColumnElement[bool]]:
    params = request.query_params
    conditions: list[ColumnElement[bool]] = []
    if actor := params.get("actor", "").strip().lower():
        conditions.append(func.lower(AuditLogEntry.actor).like(f"%{actor}%"))
    if action := params.get("action", "").strip().lower():
        conditions.append(func.lower(AuditLogEntry.action).like(f"%{action}%"))
    if offer := params.get("offer", "").strip():
        conditions.append(_audit_offer_is(offer))
    if (start := _date(params.get("from"))) is not None:
        conditions.append(col(AuditLogEntry.occurred_at) >= _start_of(start))
    if (end := _date(params.get("to"))) is not None:
        conditions.append(col(AuditLogEntry.occurred_at) < _start_of(end + timedelta(days=1)))
    return conditions


def _audit_offer_is(typed: str) -> ColumnElement[bool]:
    """Entries of the offer typed as its ID or as the tracking ID on its PDF, in any spelling
    (``01h0w-ary2w``): an offer's ID begins with its tracking ID."""
    try:
        code = parse_tracking_code(typed)
    except InvalidCode:
        return col(AuditLogEntry.offer_id) == typed.upper()
    if code.form == CodeForm.FULL:
        return col(AuditLogEntry.offer_id) == code.value
    return col(AuditLogEntry.offer_id).startswith(code.value, autoescape=True)


def apply(stmt: Select[Any], conditions: list[ColumnElement[bool]]) -> Select[Any]:
    return stmt.where(*conditions) if conditions else stmt
