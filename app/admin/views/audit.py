"""The audit log in the staff site: read only, for admins."""

import re
from typing import Any, ClassVar

from fastapi import Request
from markupsafe import Markup, escape
from sqlalchemy import ColumnElement

from app.admin import listfilters
from app.admin.views.base import ADMIN_READ, StaffModelView, _when
from app.audit import AuditLogEntry

# Where an address ("staff:ana@example.com") or an offer's 26-character id may break: unbroken,
# one such cell made the table wider than its region at 1280 px.
BREAKS = re.compile(r"([:@.])")
ULID_HALF = 13


def _breakable(model: Any, attribute: str) -> Markup:
    text = str(getattr(model, attribute) or "")
    if attribute == "offer_id":
        return escape(text[:ULID_HALF]) + Markup("<wbr>") + escape(text[ULID_HALF:])
    return Markup(BREAKS.sub(r"\1<wbr>", str(escape(text))))


class AuditLogAdmin(StaffModelView, model=AuditLogEntry):
    name = "Audit log entry"
    name_plural = "Audit log"
    icon = "fa-solid fa-clock-rotate-left"
    permissions = ADMIN_READ
    column_list: ClassVar[Any] = [
        AuditLogEntry.occurred_at,
        AuditLogEntry.actor,
        AuditLogEntry.action,
        AuditLogEntry.summary,
        AuditLogEntry.offer_id,
    ]
    column_formatters: ClassVar[Any] = {
        AuditLogEntry.occurred_at: _when,
        AuditLogEntry.actor: _breakable,
        AuditLogEntry.offer_id: _breakable,
    }
    column_default_sort: ClassVar[Any] = [(AuditLogEntry.occurred_at, True)]
    column_searchable_list: ClassVar[Any] = [
        AuditLogEntry.actor,
        AuditLogEntry.action,
        AuditLogEntry.summary,
        AuditLogEntry.offer_id,
    ]
    column_labels: ClassVar[Any] = {
        AuditLogEntry.occurred_at: "When",
        AuditLogEntry.actor: "Who",
        AuditLogEntry.action: "Action",
        AuditLogEntry.summary: "What happened",
        AuditLogEntry.offer_id: "Offer",
    }

    filter_fields = listfilters.AUDIT_FIELDS

    def filter_conditions(self, request: Request) -> list[ColumnElement[bool]]:
        return listfilters.audit_conditions(request)
