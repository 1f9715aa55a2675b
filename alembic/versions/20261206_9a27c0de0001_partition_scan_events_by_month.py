"""scan events partitioned by UTC month on PostgreSQL (SQLite keeps one table)

Revision ID: 9a27c0de0001
Revises: 3e1100000001
Create Date: 2026-12-06 20:45:00

PostgreSQL: the table is renamed aside, a table partitioned BY RANGE (occurred_at) takes its
name (primary key (id, occurred_at), the same columns, foreign key and indexes), with one
partition per month that has rows, this month and the next two, and a DEFAULT partition; every
row is copied with its id, the id sequence is handed to the new table (ids go on increasing
where they stopped), and the old table is dropped. The copy holds an EXCLUSIVE lock: scans are
spooled by the servers meanwhile and replayed after. Downgrade does the same the other way.

The partition names and bounds are written out here rather than imported from
app.tracking.partitions: a migration must do tomorrow what it did the day it was merged.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

from alembic import op
from sqlalchemy import text

revision: str = "9a27c0de0001"
down_revision: str | None = "3e1100000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    "id, offer_id, occurred_at, code_form, channel, device_class, os_family, browser_family,"
    " referrer_host, is_bot, visitor_hash, campaign_id, placement_id, creative_id"
)
COLUMN_DEFINITIONS = """
    id BIGINT NOT NULL DEFAULT nextval('scan_event_id_seq'::regclass),
    offer_id VARCHAR(26),
    occurred_at TIMESTAMP WITH TIME ZONE NOT NULL,
    code_form VARCHAR(8) NOT NULL,
    channel VARCHAR(8) NOT NULL,
    device_class VARCHAR(16) NOT NULL,
    os_family VARCHAR(50) NOT NULL,
    browser_family VARCHAR(50) NOT NULL,
    referrer_host VARCHAR(255) NOT NULL,
    is_bot BOOLEAN NOT NULL,
    visitor_hash VARCHAR(64),
    campaign_id INTEGER,
    placement_id INTEGER,
    creative_id INTEGER,
    CONSTRAINT fk_scan_event_offer_id_offer FOREIGN KEY (offer_id)
        REFERENCES offer (id) ON DELETE CASCADE
"""
INDEXES = {
    "ix_scan_event_occurred_at": "occurred_at",
    "ix_scan_event_offer_id_occurred_at": "offer_id, occurred_at",
    "ix_scan_event_placement_id_occurred_at": "placement_id, occurred_at",
}
MONTHS_AHEAD = 2


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _set_aside("scan_event_unpartitioned")
    op.execute(
        f"CREATE TABLE scan_event ({COLUMN_DEFINITIONS},"
        " CONSTRAINT pk_scan_event PRIMARY KEY (id, occurred_at))"
        " PARTITION BY RANGE (occurred_at)"
    )
    op.execute("CREATE TABLE scan_event_default PARTITION OF scan_event DEFAULT")
    for year, month in _months("scan_event_unpartitioned"):
        _create_month_partition(year, month)
    _move_rows("scan_event_unpartitioned")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _set_aside("scan_event_partitioned")
    op.execute(
        f"CREATE TABLE scan_event ({COLUMN_DEFINITIONS},"
        " CONSTRAINT pk_scan_event PRIMARY KEY (id))"
    )
    _move_rows("scan_event_partitioned")  # its partitions go with it


def _set_aside(name: str) -> None:
    """Rename today's table out of the way, with the names its successor will take."""
    op.execute("LOCK TABLE scan_event IN EXCLUSIVE MODE")  # reads go on; writes wait
    op.execute(f"ALTER TABLE scan_event RENAME TO {name}")
    op.execute(f"ALTER TABLE {name} RENAME CONSTRAINT pk_scan_event TO pk_{name}")
    for index in INDEXES:
        op.execute(f"DROP INDEX {index}")


def _move_rows(source: str) -> None:
    """Copy every row with its id, hand the id sequence over, drop the source, index."""
    op.execute(f"INSERT INTO scan_event ({COLUMNS}) SELECT {COLUMNS} FROM {source}")
    op.execute("ALTER SEQUENCE scan_event_id_seq OWNED BY scan_event.id")
    op.execute(f"DROP TABLE {source}")
    for index, columns in INDEXES.items():  # after the copy: one sort each, not a row at a time
        op.execute(f"CREATE INDEX {index} ON scan_event ({columns})")


def _months(source: str) -> list[tuple[int, int]]:
    """The UTC months the rows fall in, this month and the next MONTHS_AHEAD."""
    found = op.get_bind().execute(
        text(
            "SELECT DISTINCT CAST(extract(year FROM occurred_at AT TIME ZONE 'UTC') AS INTEGER),"
            " CAST(extract(month FROM occurred_at AT TIME ZONE 'UTC') AS INTEGER)"
            f" FROM {source}"
        )
    )
    months = {(int(year), int(month)) for year, month in found}
    now = datetime.now(UTC)
    year, month = now.year, now.month
    for _ in range(MONTHS_AHEAD + 1):
        months.add((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return sorted(months)


def _create_month_partition(year: int, month: int) -> None:
    end_year, end_month = (year + 1, 1) if month == 12 else (year, month + 1)
    # Bounds as UTC instants: in the session's time zone they would shift the month.
    op.execute(
        f"CREATE TABLE scan_event_p{year:04d}_{month:02d} PARTITION OF scan_event"
        f" FOR VALUES FROM ('{year:04d}-{month:02d}-01 00:00:00+00')"
        f" TO ('{end_year:04d}-{end_month:02d}-01 00:00:00+00')"
    )
