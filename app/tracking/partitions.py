"""PostgreSQL keeps ``scan_event`` in one partition per UTC month; SQLite in one table.

The migration (alembic 9a27…) makes ``scan_event`` a table partitioned BY RANGE on
``occurred_at``: its primary key is (id, occurred_at), as PostgreSQL requires of a partitioned
table, and ids still come from the one sequence ``scan_event_id_seq``, so they keep increasing
across months (the scan feed's high-water mark relies on that). Rows are routed to their month
by PostgreSQL itself: the scan writer's one INSERT per batch is unchanged, with no trigger.

A month's partition is ``scan_event_pYYYY_MM``; ``scan_event_default`` takes any row whose
month has none (a clock far off, a spool replayed after months), so an insert never fails for
want of a partition. ``add_coming_months`` (the server's hourly housekeeping, ``offertrack
purge``, and the migration for its first months) keeps the current month and MONTHS_AHEAD
more in place; retention (app.tracking.retention) drops whole expired months.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, text

from app.db import utcnow
from app.tracking.models import ScanEvent

TABLE = "scan_event"
DEFAULT_PARTITION = "scan_event_default"
MONTHS_AHEAD = 2
# DDL on a partition briefly locks what the scan writer inserts into: wait no longer than this
# for the lock (the writer itself gives up on a lock after a second, and spools its batch).
LOCK_TIMEOUT_MS = 500
_NAME = re.compile(r"scan_event_p(\d{4})_(\d{2})")
_COLUMNS = ", ".join(column.name for column in ScanEvent.__table__.c)  # type: ignore[attr-defined]


@dataclass(frozen=True, order=True)
class Month:
    """A UTC calendar month: its partition holds occurred_at in [start, end)."""

    year: int
    month: int

    @classmethod
    def of(cls, moment: datetime) -> "Month":
        utc = moment.astimezone(UTC)
        return cls(utc.year, utc.month)

    @classmethod
    def named(cls, name: str) -> "Month | None":
        """The month whose partition is called ``name``; None for any other table."""
        found = _NAME.fullmatch(name)
        return cls(int(found[1]), int(found[2])) if found else None

    @property
    def name(self) -> str:
        return f"scan_event_p{self.year:04d}_{self.month:02d}"

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return self.next().start

    def next(self) -> "Month":
        return Month(self.year + 1, 1) if self.month == 12 else Month(self.year, self.month + 1)


def is_partition(table_name: str) -> bool:
    """Whether a table is one of scan_event's partitions (Alembic compares the parent only)."""
    return table_name == DEFAULT_PARTITION or Month.named(table_name) is not None


def is_partitioned(connection: Connection) -> bool:
    """True on PostgreSQL once the migration has partitioned scan_event."""
    if connection.dialect.name != "postgresql":
        return False
    kind = connection.execute(
        text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:table)"), {"table": TABLE}
    ).scalar()
    return kind == "p"


def month_partitions(connection: Connection) -> list[Month]:
    """The months that have a partition, oldest first."""
    names: Sequence[str] = (
        connection.execute(
            text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = to_regclass(:table)"
            ),
            {"table": TABLE},
        )
        .scalars()
        .all()
    )
    return sorted(month for month in map(Month.named, names) if month is not None)


def add_coming_months(
    connection: Connection, *, now: datetime | None = None, ahead: int = MONTHS_AHEAD
) -> list[Month]:
    """Make the partitions of this month and ``ahead`` more that are missing; returns those
    made. Nothing on SQLite, where it executes no statement. The caller commits."""
    if not is_partitioned(connection):
        return []
    have = set(month_partitions(connection))
    month, made = Month.of(now or utcnow()), []
    for _ in range(ahead + 1):
        if month not in have and add_month(connection, month):
            made.append(month)
        month = month.next()
    return made


def add_month(connection: Connection, month: Month) -> bool:
    """Attach a partition for ``month``, moving into it the rows the default partition holds
    for that month (PostgreSQL refuses a partition whose rows the default already has).

    Made apart and then attached: ATTACH takes a lighter lock on scan_event than CREATE TABLE
    … PARTITION OF, so inserts into other months go on meanwhile; the default partition is
    locked against inserts until commit, so no row for the month can slip in before it.
    False when another server made it first (every server keeps the months ahead): that one
    held the lock until its commit, so the partition is seen once the lock is ours.
    """
    _limit_lock_wait(connection)
    connection.execute(text(f"LOCK TABLE {DEFAULT_PARTITION} IN EXCLUSIVE MODE"))
    if month in month_partitions(connection):
        return False
    connection.execute(
        text(f"CREATE TABLE {month.name} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    )
    connection.execute(
        text(
            f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION}"
            " WHERE occurred_at >= :start AND occurred_at < :end"
            f" RETURNING {_COLUMNS}) INSERT INTO {month.name} ({_COLUMNS})"
            f" SELECT {_COLUMNS} FROM moved"
        ),
        {"start": month.start, "end": month.end},
    )
    connection.execute(text(f"ALTER TABLE {TABLE} ATTACH PARTITION {month.name} {_bounds(month)}"))
    return True


def freeze_month(connection: Connection, month: Month) -> None:
    """Let no row into ``month`` until the transaction ends, so that what retention counts is
    all the partition holds when it is dropped. A late row for the month (a spool replayed)
    waits; its insert holds scan_event meanwhile, so the drop times out, the transaction rolls
    back, the row lands, and a later run counts it with the rest."""
    _limit_lock_wait(connection)
    connection.execute(text(f"LOCK TABLE {month.name} IN SHARE MODE"))


def drop_month(connection: Connection, month: Month) -> None:
    """Drop a month's partition and its rows at once (no row deletes, nothing to vacuum).
    Raises OperationalError when scan_event stays locked past LOCK_TIMEOUT_MS."""
    _limit_lock_wait(connection)
    connection.execute(text(f"ALTER TABLE {TABLE} DETACH PARTITION {month.name}"))
    connection.execute(text(f"DROP TABLE {month.name}"))


def _limit_lock_wait(connection: Connection) -> None:
    connection.execute(text(f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}"))


def _bounds(month: Month) -> str:
    # Literal UTC instants: a bound written in the session's time zone would shift the month.
    return f"FOR VALUES FROM ('{month.start.isoformat()}') TO ('{month.end.isoformat()}')"
