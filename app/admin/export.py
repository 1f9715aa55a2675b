"""sqladmin's CSV export: the rows of the list as its page shows them (all pages), written
through app.csvsafe like every other CSV we produce (times local, the zone in their header).

Streamed, so that memory stays flat whatever the table's size: sqladmin's own export reads
every row into a list before it writes the first (an audit log or a scan table of millions of
rows would grow the process until it is killed). Here the database's cursor hands the rows
over a chunk at a time (SQLAlchemy's ``yield_per``: a server-side cursor on PostgreSQL,
SQLite's cursor stepping through the result), each chunk is written out and let go before the
next is read, and the session is closed however the response ends, the client gone included.

Each download holds a pooled connection and a transaction until it ends, so at most
``max_concurrent_exports`` stream at once in a process (ExportSlots); one more is refused at
once. An error after the response has started propagates to the server, which closes the
connection without ending the chunked body: the client sees a failed download, not a short
file (tests/admin/test_export.py checks this against uvicorn).
"""

from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

import anyio
from sqladmin import ModelView
from sqladmin._types import _UNSET
from sqladmin.helpers import secure_filename
from sqlalchemy import ScalarResult, Select, inspect
from sqlalchemy.orm import selectinload
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from app import csvsafe
from app.config import get_settings
from app.db import READ_ONLY, new_session
from app.errors import ServiceUnavailable
from app.formats import DecimalMark
from app.requestguard import is_head

# Rows read from the database, and held in memory, at a time.
CHUNK_ROWS = 1000
MEDIA_TYPE = "text/csv; charset=utf-8"


class ExportsBusy(ServiceUnavailable):
    title = "Too many exports at once"
    retry_after_seconds = 30

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"{limit} exports are downloading already, the most this server runs at once. "
            "Please try again in a minute."
        )


class ExportSlots:
    """The exports that may stream at once in one process. Taken and given back on the event
    loop only, so a plain count needs no lock."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._taken = 0

    def take(self) -> None:
        """Take a slot, or raise ExportsBusy when none is free: waiting would hold the request."""
        if self._taken >= self.limit:
            raise ExportsBusy(self.limit)
        self._taken += 1

    def give_back(self) -> None:
        self._taken -= 1


async def listed(view: ModelView, request: Request) -> Select[Any]:
    """The list page's statement for the same query string, without its page: list_query, the
    lookup filters, the sort and the search, in the order sqladmin's ``ModelView.list`` applies
    them. A copy: sqladmin 0.32 builds that statement inline in ``list`` and exports
    ``list_query`` alone; tests/admin/test_sqladmin_overrides.py notices when an upgrade
    changes either. StaffModelView's ``list`` pages through it too, so the export and the
    page cannot disagree."""
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


class _Chunks:
    """The rows of one statement, ``size`` at a time, from a read-only transaction of a session
    of their own. Its methods block: call them in a worker thread, one at a time."""

    def __init__(self, stmt: Select[Any], size: int) -> None:
        self._stmt = stmt.execution_options(yield_per=size)
        self._session = new_session()
        self._result: ScalarResult[Any] | None = None
        self._partitions: Iterator[Sequence[Any]] = iter(())
        self._first: Sequence[Any] = ()

    def open(self) -> None:
        """Run the statement and read its first chunk."""
        # Read-only: on SQLite an export that lasts as long as a slow download must not hold
        # the writers' lock (WAL readers take none).
        self._session.connection(execution_options={READ_ONLY: True})
        self._result = self._session.scalars(self._stmt)
        self._partitions = self._result.partitions()
        self._first = self._read()

    def next(self) -> Sequence[Any]:
        """The next chunk of rows, detached from the session; empty after the last."""
        chunk, self._first = self._first, ()
        return chunk or self._read()

    def _read(self) -> Sequence[Any]:
        chunk = next(self._partitions, ())
        # Detached, the rows go as soon as they are written (the identity map holds the rest
        # weakly), and a value they lack is loaded by sqladmin in a thread of its own, never
        # by this session on the event loop. expunge_all would end the load under way.
        for row in chunk:
            self._session.expunge(row)
        return chunk

    def close(self) -> None:
        """Close the cursor, roll back and give the connection back to the pool."""
        try:
            if self._result is not None:
                self._result.close()
        finally:
            self._session.close()


class _CsvStream(StreamingResponse):
    """A CSV download that owns the session its rows come from and its export slot, and gives
    both back when the response ends, however it ends: sent, failed, or cancelled because the
    client went away (a fetch under way finishes first: a worker thread is not interrupted)."""

    def __init__(
        self, lines: AsyncIterator[str], rows: _Chunks, slots: ExportSlots, filename: str
    ) -> None:
        super().__init__(lines, media_type=MEDIA_TYPE, headers=_disposition(filename))
        self._rows = rows
        self._slots = slots

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await _close(self._rows, self._slots)


def _disposition(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f"attachment;filename={filename}"}


async def _close(rows: _Chunks, slots: ExportSlots) -> None:
    try:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(rows.close)
    finally:
        slots.give_back()


class _Line:
    """A file-like object whose write returns the line, so rows stream as they are made."""

    def write(self, text: str) -> str:
        return text


async def csv_response(
    view: ModelView, request: Request, slots: ExportSlots, mark: DecimalMark
) -> StreamingResponse:
    """Every row the list shows for the same query string (the Export link carries it,
    templates/admin/sqladmin/list.html), in its order, as sqladmin exports them (past
    ``export_max_rows``, 0 for no limit, the first rows only), each cell neutralised, read
    and sent a chunk at a time; a HEAD gets the same headers without a row read."""
    stmt = (await listed(view, request)).limit(view.export_max_rows or None)
    filename = secure_filename(view.get_export_name(export_type="csv"))
    if is_head(request):
        # Streamed like a GET's, so without a Content-Length the GET would not send either.
        return StreamingResponse((), media_type=MEDIA_TYPE, headers=_disposition(filename))
    slots.take()
    rows = _Chunks(stmt, CHUNK_ROWS)
    try:
        # Before the response starts: a statement the database refuses is still an error
        # page, not a CSV cut short after a 200.
        await anyio.to_thread.run_sync(rows.open)
    except BaseException:
        await _close(rows, slots)
        raise
    return _CsvStream(_lines(view, rows, mark), rows, slots, filename)


async def _lines(view: ModelView, rows: _Chunks, mark: DecimalMark) -> AsyncIterator[str]:
    writer = csvsafe.SafeWriter(_Line(), get_settings().zone, mark)
    names: list[str] = view._export_prop_names
    yield writer.writeheader(names, time_columns(view.model))
    while text := await _next_chunk(view, rows, writer, names):
        yield text


async def _next_chunk(
    view: ModelView, rows: _Chunks, writer: csvsafe.SafeWriter, names: list[str]
) -> str:
    """The next chunk of rows as CSV lines; the rows go when it returns."""
    chunk = await anyio.to_thread.run_sync(rows.next)
    return "".join([writer.writerow(await _cells(view, row, names)) for row in chunk])


def time_columns(model: Any) -> set[str]:
    """The names of a model's columns that hold times."""
    return {column.key for column in inspect(model).column_attrs if _holds_time(column)}


def _holds_time(attribute: Any) -> bool:
    return any(csvsafe.is_time(column.type) for column in attribute.columns)


async def _cells(view: ModelView, row: Any, names: list[str]) -> list[Any]:
    return [_cell(await view.get_prop_value(row, name)) for name in names]


def _cell(value: Any) -> Any:
    # A time goes to the writer as it is, to be written local, and an amount to be written
    # with the user's decimal mark; a missing value is an empty cell (sqladmin writes "None",
    # text a spreadsheet sorts among the times); the rest as sqladmin writes it.
    if value is None or isinstance(value, datetime | Decimal | float):
        return value
    return str(value)
