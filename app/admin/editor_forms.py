"""The offer editor's form as data: what the browser posts, read into the API's own schemas.

Field names follow the schemas' error locations joined by ``-`` (``customer-company``,
``lines-2-quantity``), so a validation error lands beside the field that caused it. Lines that
are entirely blank are dropped and the rest renumbered, which is how "Add line" leaves a row
to fill in without making an empty line an error.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from app import i18n
from app.admin.forms import plain_message
from app.formats import DecimalMark
from app.offers.pricing import Totals, compute_totals, line_net
from app.offers.schemas import MAX_AMOUNT, LineIn, OfferCreate, OfferUpdate
from app.versions import VERSION_FIELD

CUSTOMER_FIELDS = (
    "company",
    "contact_name",
    "email",
    "phone",
    "address_lines",
    "postcode",
    "city",
    "country",
    "vat_id",
)
# The version the editor was opened at (app.versions) rides along with the header, so that
# recalculating or adding a line keeps it: only a save compares it.
HEADER_FIELDS = (
    "customer_id",
    "customer_reference",
    "currency",
    "language",
    "valid_until",
    "notes",
    "terms",
    VERSION_FIELD,
)
LINE_FIELDS = ("description", "quantity", "unit", "unit_price", "discount_percent", "vat_rate")
_LINE_KEY = re.compile(r"lines-(\d{1,4})-(\w+)")
_CURRENCY = re.compile(r"[A-Za-z]{3}")
_WHOLE_LINE = re.compile(r"lines-\d+")
MAX_FORM_LINES = 500
NUMBER_FIELDS = ("quantity", "unit_price", "discount_percent", "vat_rate")
Errors = dict[str, str]
M = TypeVar("M", bound=BaseModel)


@dataclass
class OfferForm:
    """What is in the editor's fields: text as typed, so a failed save shows it again."""

    header: dict[str, str] = field(default_factory=dict)
    customer: dict[str, str] = field(default_factory=dict)
    lines: list[dict[str, str]] = field(default_factory=list)
    # The staff user's: how they type the lines' numbers, and how the fields show them.
    mark: DecimalMark = DecimalMark.POINT

    def value(self, name: str) -> str:
        return self.header.get(name, "")


def read_form(form: Mapping[str, Any], mark: DecimalMark, *, keep_blank: bool = False) -> OfferForm:
    """The posted fields, typed with ``mark``; ``keep_blank`` keeps empty lines so indices
    match the page's."""
    header = {name: str(form.get(name, "")) for name in HEADER_FIELDS}
    customer = {name: str(form.get(f"customer-{name}", "")) for name in CUSTOMER_FIELDS}
    rows: dict[int, dict[str, str]] = {}
    for key, value in form.items():
        match = _LINE_KEY.fullmatch(key)
        if match and match.group(2) in LINE_FIELDS:
            rows.setdefault(int(match.group(1)), {})[match.group(2)] = str(value)
    lines = [_full_line(rows[i]) for i in sorted(rows)]
    if not keep_blank:
        lines = [line for line in lines if any(v.strip() for v in line.values())]
    return OfferForm(header, customer, lines[:MAX_FORM_LINES], mark)


def _full_line(row: dict[str, str]) -> dict[str, str]:
    return {name: row.get(name, "") for name in LINE_FIELDS}


def blank_line() -> dict[str, str]:
    return _full_line({})


def edit_lines(form: OfferForm, op: str) -> bool:
    """Apply a line button (add, remove-N, up-N, down-N); False when ``op`` is none of them."""
    lines = form.lines
    if op == "add":
        lines.append(blank_line())
        return True
    verb, _, index_text = op.partition("-")
    if verb not in ("remove", "up", "down") or not index_text.isdecimal():
        return False
    i = int(index_text)
    if not 0 <= i < len(lines):
        return True
    if verb == "remove":
        del lines[i]
    elif verb == "up" and i > 0:
        lines[i - 1], lines[i] = lines[i], lines[i - 1]
    elif verb == "down" and i + 1 < len(lines):
        lines[i + 1], lines[i] = lines[i], lines[i + 1]
    return True


def field_to_show(op: str, count: int) -> str | None:
    """The field a line button leaves the cursor in: the page comes back at its top, and on a
    phone the line just added or moved is screens below it."""
    verb, _, index_text = op.partition("-")
    if op == "add":
        index = count - 1
    elif verb in ("up", "down", "remove") and index_text.isdecimal():
        index = int(index_text) + {"up": -1, "down": 1, "remove": 0}[verb]
    else:
        return None
    return f"lines-{min(max(index, 0), count - 1)}-description" if count else None


def _line_data(line: dict[str, str], mark: DecimalMark) -> dict[str, str]:
    # An empty optional field means its default, as when the API leaves it out. Numbers go to
    # the API's parsers as the API takes them, with a point.
    return {
        k: _number(v, mark) if k in NUMBER_FIELDS and v.strip() else v
        for k, v in line.items()
        if v.strip() or k in ("description", "quantity")
    }


def _number(typed: str, mark: DecimalMark) -> str:
    """A typed number read by the staff site's one rule (DecimalMark.parse). What it refuses
    goes on as "NaN", which the schema refuses as no number (``finite_number``: the mark's
    help beside the field); as typed, "1e3" or "1_000" would pass there but nowhere else."""
    try:
        return str(mark.parse(typed))
    except ValueError:
        return "NaN"


def _payload(form: OfferForm) -> dict[str, Any]:
    header = form.header
    data: dict[str, Any] = {
        "lines": [_line_data(line, form.mark) for line in form.lines],
        "customer_reference": header.get("customer_reference", ""),
        "notes": header.get("notes", ""),
        "terms": header.get("terms", ""),
    }
    if header.get("customer_id", "").strip():
        data["customer_id"] = header["customer_id"].strip()
    elif any(v.strip() for v in form.customer.values()):
        data["customer"] = {k: v for k, v in form.customer.items() if v.strip()}
    # No language chosen: the customer record's, else the default (as the API leaves it out).
    for name in ("currency", "language", "valid_until"):
        if header.get(name, "").strip():
            data[name] = header[name].strip()
    return data


def _customer_errors(form: OfferForm) -> Errors:
    picked = bool(form.header.get("customer_id", "").strip())
    typed = bool(form.customer.get("company", "").strip())
    if picked and typed:
        return {"customer_id": "Pick a customer record or type a new customer, not both."}
    if not picked and not typed:
        return {"customer-company": "Pick a customer record or type the company's name."}
    return {}


def to_create(form: OfferForm) -> tuple[OfferCreate | None, Errors]:
    return _validate(OfferCreate, form)


def to_update(form: OfferForm) -> tuple[OfferUpdate | None, Errors]:
    return _validate(OfferUpdate, form)


def _validate(schema: type[M], form: OfferForm) -> tuple[M | None, Errors]:
    errors = _customer_errors(form)
    if errors:
        return None, errors
    try:
        return schema.model_validate(_payload(form)), {}
    except ValidationError as error:
        return None, errors_by_field(error.errors(), form.mark)


def errors_by_field(details: Any, mark: DecimalMark = DecimalMark.POINT) -> Errors:
    """Pydantic's errors keyed by form field name; the first error of a field wins."""
    errors: Errors = {}
    for detail in details:
        loc = [str(part) for part in detail["loc"]]
        name = "-".join(loc) or "form"
        if name == "customer" or name.startswith("customer-") and name.count("-") > 1:
            name = "customer-company"
        if _WHOLE_LINE.fullmatch(name):
            # The line's own check (LineIn: quantity × unit price) has no field: the price's.
            errors.setdefault(f"{name}-unit_price", _line_amount_help(mark))
            continue
        errors.setdefault(name, _message(detail, mark))
    return errors


def _line_amount_help(mark: DecimalMark) -> str:
    # Grouped as the user's mark groups (1.000.000.000.000 with a comma), as every number on
    # the staff site: "1,000,000,000,000" reads as a little over one to a comma user.
    return f"Quantity × unit price must stay below {i18n.format_number(MAX_AMOUNT, mark.language)}."


def _message(detail: Any, mark: DecimalMark) -> str:
    if detail.get("type") in ("decimal_parsing", "finite_number"):
        # Pydantic's "Input should be a valid decimal" leaves someone who wrote "1.250,50",
        # as Germans and Greeks do, guessing.
        return mark.help
    if detail.get("loc") == ("currency",):
        return (
            "Write the three-letter code of the currency, e.g. EUR."  # not its regular expression
        )
    return plain_message(detail)


@dataclass(frozen=True)
class Preview:
    """Totals of the lines as typed: the valid ones priced by the API's own code."""

    totals: Totals
    line_nets: list[Decimal | None]
    invalid_lines: int


def preview(form: OfferForm, default_currency: str) -> Preview:
    currency = form.header.get("currency", "").strip().upper()
    if not _CURRENCY.fullmatch(currency):
        currency = default_currency
    valid: list[LineIn] = []
    nets: list[Decimal | None] = []
    for line in form.lines:
        try:
            parsed = LineIn.model_validate(_line_data(line, form.mark))
        except ValidationError:
            nets.append(None)
            continue
        valid.append(parsed)
        nets.append(line_net(parsed, currency))
    return Preview(compute_totals(valid, currency), nets, nets.count(None))
