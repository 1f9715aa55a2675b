"""sqladmin views of the staff site. Every view names, per action, the lowest role allowed
(``permissions``); RoleAuthorization refuses anything not listed. Nothing is ever deleted
through sqladmin, and every change goes through the domain services (and so into the audit
log) rather than sqladmin's generic model writes."""

from app.admin.views.audit import AuditLogAdmin
from app.admin.views.base import StaffModelView, in_session, staff_of
from app.admin.views.orders import OfferAdmin, OrderAdmin, OrderStageAdmin, StageUpdateAdmin
from app.admin.views.users import ApiKeyAdmin, StaffUserAdmin

__all__ = ["ALL_VIEWS", "StaffModelView", "in_session", "staff_of"]

ALL_VIEWS: list[type[StaffModelView]] = [
    OfferAdmin,
    OrderAdmin,
    StageUpdateAdmin,
    OrderStageAdmin,
    StaffUserAdmin,
    ApiKeyAdmin,
    AuditLogAdmin,
]
