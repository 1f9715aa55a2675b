"""sqladmin's CSV export: the rows of the list as its page shows them (all pages), written
through app.csvsafe like every other CSV we produce."""

from collections.abc import AsyncIterator
from typing import Any, cast

from sqladmin import ModelView
from sqladmin._types import _UNSET
from sqladmin.helpers import secure_filename
from sqlalchemy import Select
from sqlalchemy.orm import selectinload
from starlette.requests import Request
from starlette.responses import StreamingResponse

from app import csvsafe


async def listed(view: ModelView, request: Request) -> Select[Any]:
    """The list page's statement for the same query string, without its page: list_query, the
    lookup filters, the sort and the search, in the order sqladmin's ``ModelView.list`` applies
    them. A copy: sqladmin 0.32 builds that statement inline in ``list`` and exports
    ``list_query`` alone; tests/admin/test_sqladmin_overrides.py notices when an upgrade
    changes either."""
    stmt = view.list_query(request)
    for relation in view._list_relations:
        stmt = stmt.options(selectinload(relation))
    for lookup in view.get_filters():
        stmt = await _filtered(stmt, lookup, view.model, request.query_params)
    stmt = view.sort_query(stmt, request)
    if search := request.query_params.get("search"):
        stmt = view.search_query(stmt=stmt, term=search)
    return stmt


async def _filtered(stmt: Select[Any], lookup: Any, model: Any, params: Any) -> Select[Any]:
    value = params.get(lookup.parameter_name)
    if not value and getattr(lookup, "default_value", _UNSET) is _UNSET:
        return stmt
    if not getattr(lookup, "has_operator", False):
        return cast(Select[Any], await lookup.get_filtered_query(stmt, value, model))
    operation = params.get(f"{lookup.parameter_name}_op")
    if not operation:
        return stmt
    return cast(Select[Any], await lookup.get_filtered_query(stmt, operation, value, model))


class _Line:
    """A file-like object whose write returns the line, so rows stream as they are made."""

    def write(self, text: str) -> str:
        return text


async def csv_export(view: ModelView, data: list[Any]) -> StreamingResponse:
    """The rows of a list page as sqladmin exports them, each cell neutralised."""
    writer = csvsafe.SafeWriter(_Line())
    names: list[str] = view._export_prop_names

    async def lines() -> AsyncIterator[str]:
        yield writer.writerow(names)
        for row in data:
            yield writer.writerow([str(await view.get_prop_value(row, name)) for name in names])

    filename = secure_filename(view.get_export_name(export_type="csv"))
    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f"attachment;filename={filename}"},
    )
