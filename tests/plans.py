"""How much of a table a query reads, for tests that a periodic or per-view query reads the
few rows it needs and not a table that grows without end.

``captured`` collects the statements a piece of code sends; ``rows_read`` runs one again in a
savepoint it rolls back and says how much it read of one table:

- PostgreSQL: the rows its plan's scans of the table (or of its partitions) read, kept or
  filtered out (``EXPLAIN (ANALYZE, FORMAT JSON)``).
- SQLite: it counts no rows; the virtual machine's instructions stand in for them. A row read
  costs at least 3 (an index entry: about 5, a table row: 3 to 4, measured on 3.40), so
  ``sqlite_rows`` divides by that and never counts fewer rows than were read.

The bulk rows come from one INSERT ... SELECT over a recursive counter, which both databases
run in well under a second for 20,000 rows.
"""

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, event, text

from app.db import UTCDateTime

Statement = tuple[str, Any]
SQLITE_STEPS_PER_ROW = 3
_PROGRESS_EVERY = 100  # instructions between two calls of the progress handler


@contextmanager
def captured(engine: Engine) -> Iterator[list[Statement]]:
    """The statements sent through ``engine`` (any of its connections) inside the block."""
    statements: list[Statement] = []

    def capture(_c: Any, _cur: Any, sql: str, params: Any, _ctx: Any, _many: bool) -> None:
        if not sql.startswith("EXPLAIN"):
            statements.append((sql, params))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", capture)


def naming(statements: list[Statement], table: str) -> list[Statement]:
    """The statements that name ``table`` (not merely a table whose name starts with it)."""
    word = re.compile(rf"\b{re.escape(table)}\b(?!_)")
    return [statement for statement in statements if word.search(statement[0])]


def rows_read(connection: Connection, statement: Statement, table: str) -> int:
    """How many rows of ``table`` the statement reads, run again and rolled back."""
    sql, params = statement
    with connection.begin_nested() as savepoint:
        if connection.dialect.name == "postgresql":
            explain = f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}"
            plan: dict[str, Any] = connection.exec_driver_sql(explain, params).scalar_one()[0][
                "Plan"
            ]
            read = _plan_rows(plan, table)
        else:
            read = sqlite_rows(connection, sql, params)
        savepoint.rollback()
    return read


def _plan_rows(plan: Mapping[str, Any], table: str) -> int:
    read = 0
    if re.fullmatch(
        rf"{re.escape(table)}(_p\d{{4}}_\d{{2}}|_default)?", plan.get("Relation Name", "")
    ):
        kept = plan["Actual Rows"] + plan.get("Rows Removed by Filter", 0)
        read += kept * plan["Actual Loops"] + plan.get("Rows Removed by Index Recheck", 0)
    return read + sum(_plan_rows(child, table) for child in plan.get("Plans", []))


def sqlite_rows(connection: Connection, sql: str, params: Any) -> int:
    """At least as many as the rows a statement reads on SQLite, from its instructions."""
    raw: Any = connection.connection.driver_connection
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += _PROGRESS_EVERY
        return 0

    raw.set_progress_handler(count, _PROGRESS_EVERY)
    try:
        result = connection.exec_driver_sql(sql, params)
        if result.returns_rows:
            result.fetchall()  # a query's rows are read as they are fetched
    finally:
        raw.set_progress_handler(None, _PROGRESS_EVERY)
    return steps // SQLITE_STEPS_PER_ROW


def bulk_insert(
    connection: Connection, table: str, count: int, values: Mapping[str, str], **params: Any
) -> None:
    """``count`` rows into ``table``: each column's SQL expression may use the counter ``n``
    (1 to count) and the bound ``params`` (datetimes bound as the app stores them)."""
    columns = ", ".join(values)
    counter = "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < :count)"
    sql = f"INSERT INTO {table} ({columns}) {counter} SELECT {', '.join(values.values())} FROM c"
    binds = [
        bindparam(name, value, type_=UTCDateTime)
        if isinstance(value, datetime)
        else bindparam(name, value)
        for name, value in params.items()
    ]
    connection.execute(text(sql).bindparams(*binds), {"count": count})


# An offer's columns that have no default, as bulk_insert's expressions: ``prefix`` and the
# bound ``valid_until`` and ``at`` are the caller's.
_OFFER = {
    "status": "'issued'",
    "customer_company": "'Acme Hellas'",
    "customer_contact_name": "''",
    "customer_email": "''",
    "customer_phone": "''",
    "customer_reference": "''",
    "currency": "'EUR'",
    "notes": "''",
    "terms": "''",
    "valid_until": ":valid_until",
    "created_at": ":at",
    "updated_at": ":at",
    "issued_at": ":at",
}


def bulk_offers(
    connection: Connection,
    count: int,
    prefix: str,
    *,
    at: datetime,
    valid_until: date,
    **columns: str,
) -> None:
    """``count`` offers issued at ``at``, ids ``prefix`` followed by 1 to count; ``columns``
    adds or replaces SQL expressions (``status="'ordered'"``, ``ordered_at=":at"``)."""
    values = {"id": f"'{prefix}' || n", "tracking_id": f"'{prefix}' || n", **_OFFER, **columns}
    bulk_insert(connection, "offer", count, values, at=at, valid_until=valid_until)


def analyze(connection: Connection, table: str) -> None:
    """PostgreSQL: statistics for ``table`` now, inside the caller's transaction."""
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"ANALYZE {table}"))


@contextmanager
def statistics_held(engine: Engine, table: str) -> Iterator[None]:
    """PostgreSQL: no autovacuum gathers statistics of ``table`` meanwhile (the test commits
    rows and means to read them without statistics, then with those ``analyze`` gathers)."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.begin() as connection:
        connection.execute(text(f"ALTER TABLE {table} SET (autovacuum_enabled = off)"))
    try:
        yield
    finally:
        with engine.begin() as connection:
            connection.execute(text(f"ALTER TABLE {table} RESET (autovacuum_enabled)"))


def assert_reads_at_most(
    connection: Connection, statements: list[Statement], table: str, limit: int
) -> None:
    """Every statement naming ``table`` reads at most ``limit`` of its rows."""
    relevant = naming(statements, table)
    assert relevant, f"no statement read {table}"
    for statement in relevant:
        read = rows_read(connection, statement, table)
        assert read <= limit, f"{read} rows of {table} read by {statement[0]}"


def assert_reads_at_most_with_and_without_statistics(
    engine: Engine, statements: list[Statement], table: str, limit: int
) -> None:
    """``assert_reads_at_most`` as the table stands (no statistics, ``statistics_held``), then
    again once ANALYZE has gathered them; rolled back."""
    with engine.connect() as connection:
        assert_reads_at_most(connection, statements, table, limit)
        analyze(connection, table)
        assert_reads_at_most(connection, statements, table, limit)
        connection.rollback()
