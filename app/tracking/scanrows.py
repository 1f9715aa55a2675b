"""Inserting scan rows, and the hooks that run in the same transaction.

Every path that stores scan events (the group-commit writer, the spool replay, tests' session
writer) inserts through ``insert_scans``, so the hooks see every row exactly once, committed or
rolled back together with it: app.analytics keeps its daily totals and writes scan.created
webhook events this way.
"""

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Table, insert

from app.tracking.models import ScanEvent

ScanInsertHook = Callable[[Connection, Sequence[dict[str, Any]], Sequence[int]], None]
_insert_hooks: list[ScanInsertHook] = []


def on_scans_inserted(hook: ScanInsertHook) -> None:
    """Run ``hook`` in the transaction that inserts scan rows, with their ids. A hook that
    raises fails the rows like a failed insert."""
    if hook not in _insert_hooks:
        _insert_hooks.append(hook)


def insert_scans(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if not _insert_hooks:
        connection.execute(insert(ScanEvent), list(rows))
        return
    table: Table = ScanEvent.__table__  # type: ignore[attr-defined]
    statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    ids: Sequence[int] = connection.execute(statement, list(rows)).scalars().all()
    for hook in _insert_hooks:
        hook(connection, rows, ids)
