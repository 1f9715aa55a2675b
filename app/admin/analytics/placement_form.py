"""A placement's routing rules as a form: one row per rule (its conditions and its weighted
destinations), read back into the API's own schema (``PlacementUpdate``), so the staff site
and ``PATCH /api/v1/placements/{id}`` accept exactly the same rules.

Field names follow the schema's error locations joined by ``-`` (``rules-2-os``,
``rules-2-destinations-1-url``), so an error lands beside the field that caused it. Rows left
entirely blank are dropped before validation, which is how "Add rule" and "Add variant" leave a
row to fill in without making an empty row an error.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData

from app.analytics.schemas import PlacementUpdate

Errors = dict[str, str]
OS_CHOICES = (("ios", "iOS"), ("android", "Android"), ("desktop", "Desktop"), ("other", "Other"))
WEEKDAYS = (
    ("1", "Mon"),
    ("2", "Tue"),
    ("3", "Wed"),
    ("4", "Thu"),
    ("5", "Fri"),
    ("6", "Sat"),
    ("7", "Sun"),
)
TEXT_FIELDS = ("name", "languages", "date_from", "date_to", "time_from", "time_to")
TARGET_FIELDS = ("url", "creative_id", "weight")
MAX_ROWS = 100  # the schema allows 100 rules; a form past that is not worth reading
_RULE_KEY = re.compile(r"rules-(\d{1,3})-(\w+)")
_TARGET_KEY = re.compile(r"rules-(\d{1,3})-destinations-(\d{1,2})-(\w+)")


@dataclass
class RuleRow:
    """One rule as typed: text kept as it is, so a refused save shows it again."""

    text: dict[str, str] = field(default_factory=lambda: dict.fromkeys(TEXT_FIELDS, ""))
    os: list[str] = field(default_factory=list)
    weekdays: list[str] = field(default_factory=list)
    destinations: list[dict[str, str]] = field(default_factory=lambda: [blank_target()])

    def is_blank(self) -> bool:
        typed = any(v.strip() for v in self.text.values()) or self.os or self.weekdays
        return not typed and all(_target_blank(t) for t in self.destinations)


def blank_target() -> dict[str, str]:
    return {"url": "", "creative_id": "", "weight": "1"}


def _target_blank(target: Mapping[str, str]) -> bool:
    return not target["url"].strip() and not target["creative_id"].strip()


def read_rules(form: FormData) -> list[RuleRow]:
    """The rule rows posted, in the order of their indices."""
    rows: dict[int, RuleRow] = {}
    targets: dict[tuple[int, int], dict[str, str]] = {}
    for key, value in form.multi_items():
        if match := _TARGET_KEY.fullmatch(key):
            i, j, name = int(match[1]), int(match[2]), match[3]
            if name in TARGET_FIELDS:
                targets.setdefault((i, j), {**blank_target(), "weight": ""})[name] = str(value)
                rows.setdefault(i, RuleRow(destinations=[]))
        elif match := _RULE_KEY.fullmatch(key):
            row = rows.setdefault(int(match[1]), RuleRow(destinations=[]))
            _read_rule_field(row, match[2], value)
    for (i, _), target in sorted(targets.items()):
        rows[i].destinations.append(target)
    return [rows[i] for i in sorted(rows)][:MAX_ROWS]


def _read_rule_field(row: RuleRow, name: str, value: Any) -> None:
    if name == "os" and value in dict(OS_CHOICES):
        row.os.append(str(value))
    elif name == "weekdays" and value in dict(WEEKDAYS):
        row.weekdays.append(str(value))
    elif name in TEXT_FIELDS:
        row.text[name] = str(value)


def rows_of(rules: Sequence[Mapping[str, Any]]) -> list[RuleRow]:
    """The form's rows for rules as stored (the JSON the API reads and writes)."""
    rows = []
    for rule in rules:
        when = rule.get("when", {})
        text = {
            "name": rule.get("name", ""),
            "languages": ", ".join(when.get("languages", [])),
            "date_from": when.get("date_from", ""),
            "date_to": when.get("date_to", ""),
            "time_from": _clock(when.get("time_from", "")),
            "time_to": _clock(when.get("time_to", "")),
        }
        targets = [
            {
                "url": d.get("url", ""),
                "creative_id": str(d.get("creative_id") or ""),
                "weight": str(d.get("weight", 1)),
            }
            for d in rule.get("destinations", [])
        ]
        weekdays = [str(n) for n in when.get("weekdays", [])]
        rows.append(RuleRow(text, list(when.get("os", [])), weekdays, targets))
    return rows


def _clock(stored: str) -> str:
    """A stored time as a time field shows it: ``22:00:00`` is ``22:00``; seconds, when the
    API was given some, stay."""
    return stored.removesuffix(":00") if len(stored) == 8 else stored


def edit_rows(rows: list[RuleRow], op: str) -> None:
    """Apply a row button: add-rule, add-variant-I, remove-rule-I, remove-variant-I-J,
    up-rule-I, down-rule-I; anything else (a row gone already) leaves the rows as they are."""
    if op == "add-rule":
        if len(rows) < MAX_ROWS:
            rows.append(RuleRow())
        return
    verb, _, rest = op.partition("-")
    what, _, numbers = rest.partition("-")
    parts = numbers.split("-")
    if not all(p.isdigit() for p in parts) or not 0 <= int(parts[0]) < len(rows):
        return
    index = [int(p) for p in parts]
    if what == "variant":
        _edit_variants(rows[index[0]].destinations, verb, index[1:])
    elif what == "rule":
        _move_or_remove(rows, verb, index[0])


def _edit_variants(targets: list[dict[str, str]], verb: str, index: list[int]) -> None:
    if verb == "add" and len(targets) < 20:
        targets.append(blank_target())
    elif verb == "remove" and index and 0 <= index[0] < len(targets):
        del targets[index[0]]


def _move_or_remove(rows: list[RuleRow], verb: str, i: int) -> None:
    if verb == "remove":
        del rows[i]
    elif verb == "up" and i > 0:
        rows[i - 1], rows[i] = rows[i], rows[i - 1]
    elif verb == "down" and i + 1 < len(rows):
        rows[i + 1], rows[i] = rows[i], rows[i + 1]


def compact(rows: Sequence[RuleRow]) -> list[RuleRow]:
    """The rows with something typed in them, each without its blank destinations."""
    kept = []
    for row in rows:
        if row.is_blank():
            continue
        targets = [t for t in row.destinations if not _target_blank(t)]
        kept.append(RuleRow(dict(row.text), list(row.os), list(row.weekdays), targets))
    return kept


def rules_data(rows: Sequence[RuleRow]) -> list[dict[str, Any]]:
    """The rows as the API's JSON rules: what the schema validates, nothing left out."""
    return [_rule_data(row) for row in rows]


def _rule_data(row: RuleRow) -> dict[str, Any]:
    text = {k: v.strip() for k, v in row.text.items()}
    when: dict[str, Any] = {}
    if row.os:
        when["os"] = row.os
    if text["languages"]:
        when["languages"] = [tag for tag in re.split(r"[\s,;]+", text["languages"]) if tag]
    if row.weekdays:
        when["weekdays"] = row.weekdays
    for name in ("date_from", "date_to", "time_from", "time_to"):
        if text[name]:
            when[name] = text[name]
    return {
        "name": text["name"],
        "when": when,
        "destinations": [_target_data(t) for t in row.destinations],
    }


def _target_data(target: Mapping[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {"url": target["url"].strip()}
    if target["creative_id"].strip():
        data["creative_id"] = target["creative_id"].strip()
    if target["weight"].strip():
        data["weight"] = target["weight"].strip()
    return data


def validate_placement(
    values: Mapping[str, str], rows: Sequence[RuleRow]
) -> tuple[PlacementUpdate | None, Errors]:
    """The placement's fields and rules through the API's schema; errors by form field."""
    data: dict[str, Any] = {
        "name": values["name"],
        "fallback_url": values["fallback_url"],
        "fallback_creative_id": values["fallback_creative_id"] or None,
        "split_mode": values["split_mode"],
        "rules": rules_data(rows),
    }
    try:
        return PlacementUpdate.model_validate(data), {}
    except ValidationError as error:
        errors: Errors = {}
        for detail in error.errors():
            name = field_name(detail["loc"])
            message = str(detail["msg"]).removeprefix("Value error, ")
            errors[name] = f"{errors[name]}; {message}" if name in errors else message
        return None, errors


def field_name(loc: Sequence[str | int]) -> str:
    """The form field an error location names: ``("rules", 0, "when", "os", 1)`` is
    ``rules-0-os``; a condition's own check (a range) is ``rules-0-when``."""
    path = [p for p in loc if p != "body"]
    if not path:
        return "form"
    if path[0] != "rules" or len(path) < 2:
        return str(path[0])
    head = f"rules-{path[1]}"
    rest = path[2:]
    if rest[:1] == ["when"] and len(rest) > 1:
        return f"{head}-{rest[1]}"
    if rest[:1] == ["destinations"] and len(rest) > 2:
        return f"{head}-destinations-{rest[1]}-{rest[2]}"
    return f"{head}-{rest[0]}" if rest else head
