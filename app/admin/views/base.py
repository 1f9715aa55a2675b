"""What every sqladmin view of the staff site shares: a role per action (``permissions``;
RoleAuthorization refuses anything not listed), nothing deleted through sqladmin, and blocking
database work run in a worker thread (``in_session``)."""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import anyio
from fastapi import Request
from sqladmin import ModelView
from sqladmin.authorization import Action
from sqladmin.helpers import get_primary_keys, object_identifier_values
from sqladmin.pagination import Pagination
from sqlalchemy import BigInteger, ColumnElement, Select, func, select
from sqlmodel import Session
from starlette.exceptions import HTTPException

from app.admin import access, listfilters
from app.admin.export import listed
from app.admin.listfilters import FilterField
from app.admin.users import Staff
from app.auth.staff import Role
from app.db import get_engine
from app.errors import AppError
from app.fields import MAX_ROW_ID
from app.templating import format_date

T = TypeVar("T")
READ: dict[str, Role] = {
    Action.LIST: Role.VIEWER,
    Action.DETAILS: Role.VIEWER,
    Action.EXPORT: Role.VIEWER,
}
ADMIN_READ: dict[str, Role] = {
    Action.LIST: Role.ADMIN,
    Action.DETAILS: Role.ADMIN,
    Action.EXPORT: Role.ADMIN,
}
# A list page counts its rows for the pager at every view: past this many it says "10,000+"
# rather than count the audit log or years of orders to their end each time.
COUNT_CAP = 10_000
_NO_LIMIT = 2**62  # a page number beyond any table, kept within what a LIMIT may hold


class Refused(ValueError):
    """A save the staff member must correct (a form opened before another's save, a missing
    confirmation): sqladmin shows its message above the form, with what was typed kept."""


class _RefusalsAreNotErrors(logging.Filter):
    """sqladmin logs every exception a create, edit or delete raises, with its traceback; a
    refusal shown to the person (``Refused``, a domain error such as a clash) is no error of
    the server's, and a log full of them hides the real ones."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, Refused | AppError)


# Once per process, as the module is imported: the filter holds no state.
logging.getLogger("sqladmin.application").addFilter(_RefusalsAreNotErrors())


async def in_session(work: Callable[[Session], T]) -> T:
    """Run blocking database work in a worker thread, in a session of its own."""

    def run() -> T:
        with Session(get_engine(), expire_on_commit=False) as session:
            return work(session)

    return await anyio.to_thread.run_sync(run)


def staff_of(request: Request) -> Staff:
    staff: Staff | None = getattr(request.state, "staff", None)
    if staff is None:  # sqladmin checked the sign-in before any view code runs
        raise RuntimeError("no signed-in staff user on a staff view")
    return staff


@dataclass
class CappedPagination(Pagination):
    """sqladmin's pager over a count that stopped early: ``capped`` when more rows exist than
    ``count`` says (at least one more), so the pager offers the next page and no last one."""

    capped: bool = False

    @property
    def total(self) -> str:
        """The count as the pager shows it: "10,000+" when capped."""
        return f"{self.count - 1:,}+" if self.capped else str(self.count)


def _when(model: Any, attribute: str) -> str:
    value = getattr(model, attribute)
    return format_date(value) if value else ""


class StaffModelView(ModelView):
    permissions: ClassVar[dict[str, Role]] = {}
    can_create = False
    can_edit = False
    can_delete = False
    can_export = True
    export_types: ClassVar[list[str]] = ["csv"]
    page_size = 25
    page_size_options: ClassVar[Sequence[int]] = [25, 50, 100]
    search_auto_submit = False
    # Typed filters shown above the list (templates/admin/sqladmin/list.html), applied together
    # with sqladmin's lookup filters (``column_filters``).
    filter_fields: ClassVar[tuple[FilterField, ...]] = ()
    # Sensitive pages and actions of the view ("create", "edit", an action's slug), which need
    # the password given recently (app/admin/sudo.py; enforced by app.admin.site.StaffAdmin).
    confirm_before: ClassVar[frozenset[str]] = frozenset()

    def filter_conditions(self, request: Request) -> list[ColumnElement[bool]]:
        """What the typed filters in the request's query keep."""
        return []

    async def filter_choices(self, request: Request) -> dict[str, list[tuple[str, str]]]:
        """The options of the typed filters that are a select, by field name."""
        return {}

    def list_query(self, request: Request) -> Select[Any]:
        return listfilters.apply(super().list_query(request), self.filter_conditions(request))

    def sort_query(self, stmt: Select[Any], request: Request) -> Select[Any]:
        # Rows that tie on the sorted column (two offers of one day) keep one order from page to
        # page and in the export: without it a row could show on two pages and on none.
        return super().sort_query(stmt, request).order_by(*self.pk_columns)

    def _stmt_by_identifier(self, identifier: str) -> Any:
        # Every detail, edit and action page finds its row here. A number its column cannot
        # hold names no row; sent to the database it would be an error (a 500), not a miss. Nor
        # does a key that is no number for a number column (sqladmin's int() raised: a 500).
        columns = get_primary_keys(self.model)
        try:
            values = object_identifier_values(identifier, self.model)
        except ValueError:
            raise HTTPException(status_code=404) from None
        pairs = zip(columns, values, strict=True)
        if not all(_fits(column, value) for column, value in pairs):
            raise HTTPException(status_code=404)
        return super()._stmt_by_identifier(identifier)

    async def count_up_to(self, stmt: Select[Any], limit: int) -> int:
        """How many rows ``stmt`` gives, counting no further than ``limit``."""
        # Unsorted: the count needs no order, and a sort would read every row before the limit.
        counted = stmt.order_by(None).with_only_columns(*self.pk_columns).limit(limit)
        rows = await self._run_query(select(func.count()).select_from(counted.subquery()))
        return int(rows[0])

    def _page_asked(self, request: Request) -> tuple[int, int]:
        page = self.validate_page_number(request.query_params.get("page"), 1)
        size = self.validate_page_number(request.query_params.get("pageSize"), self.page_size)
        size = min(size, max(self.page_size_options))
        if size < 1:
            raise HTTPException(status_code=400, detail="Invalid page or pageSize parameter")
        return max(page, 1), size

    # Last in the class: below it, ``list`` in an annotation would name this method.
    async def list(self, request: Request) -> Any:
        """sqladmin's list page with a count that stops at COUNT_CAP rows, or at the row after
        the page asked for when that is further (its OFFSET reads that far anyway): sqladmin
        counted the whole table at every view. A copy of sqladmin 0.32's ``list`` otherwise
        (tests/admin/test_sqladmin_overrides.py notices when an upgrade changes it)."""
        # sqladmin passes the template no extras of ours: the request carries them.
        request.state.filter_fields = self.filter_fields
        mark = access.decimal_mark(request)
        request.state.filter_errors = listfilters.refusals(
            self.filter_fields, request.query_params, mark
        )
        request.state.filter_choices = await self.filter_choices(request)
        page, page_size = self._page_asked(request)
        stmt = await listed(self, request)
        limit = min(max(COUNT_CAP, page * page_size), _NO_LIMIT) + 1
        count = await self.count_up_to(stmt, limit)
        page = min(page, Pagination.max_page(count, page_size))
        rows = await self._run_query(stmt.limit(page_size).offset((page - 1) * page_size))
        return CappedPagination(rows, page, page_size, count, capped=count == limit)


def _fits(column: Any, value: Any) -> bool:
    if not isinstance(value, int):
        return True
    limit = 2**63 - 1 if isinstance(column.type, BigInteger) else MAX_ROW_ID
    return -limit - 1 <= value <= limit
