"""The audit log in the staff site: read only, for admins."""

from typing import Any, ClassVar

from fastapi import Request
from sqlalchemy import ColumnElement

from app.admin import listfilters
from app.admin.views.base import ADMIN_READ, StaffModelView, _when
from app.audit import AuditLogEntry


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
    column_formatters: ClassVar[Any] = {AuditLogEntry.occurred_at: _when}
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
