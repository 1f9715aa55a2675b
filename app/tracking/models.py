"""Order stages, the append-only stage history, and privacy-preserving scan events."""

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Text
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime, utcnow


class OrderStage(SQLModel, table=True):
    """One step of the configurable stage list; ``position`` orders the timeline."""

    __tablename__ = "order_stage"

    key: str = Field(sa_type=String(40), primary_key=True)
    label: str = Field(sa_type=String(100), unique=True)
    position: int = Field(unique=True)
    # The stage's version (app.versions): an admin's save from an older form is refused.
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class StageUpdate(SQLModel, table=True):
    """A stage change of an order. Rows are only ever added, never changed."""

    __tablename__ = "stage_update"
    __table_args__ = (Index("ix_stage_update_offer_id_happened_at", "offer_id", "happened_at"),)

    id: int | None = Field(default=None, primary_key=True)
    offer_id: str = Field(
        sa_column=Column(String(26), ForeignKey("offer.id", ondelete="CASCADE"), nullable=False)
    )
    stage_key: str = Field(
        sa_column=Column(String(40), ForeignKey("order_stage.key"), nullable=False)
    )
    # Indexed for the staff list of stage updates, newest first a page at a time (every view
    # sorted the whole table).
    happened_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    public_note: str = Field(default="", sa_type=Text)
    internal_note: str = Field(default="", sa_type=Text)
    expected_delivery_date: date | None = None
    carrier: str = Field(default="", sa_type=String(100))
    tracking_number: str = Field(default="", sa_type=String(100))
    tracking_link: str = Field(default="", sa_type=String(500))
    created_by: str = Field(default="", sa_type=String(200))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CodeForm(StrEnum):
    FULL = "full"
    SHORT = "short"
    CAMPAIGN = "campaign"  # a dynamic campaign code, /c/{slug}


class Channel(StrEnum):
    QR = "qr"
    PDF = "pdf"
    TYPED = "typed"
    WEB = "web"


class ScanEvent(SQLModel, table=True):
    """One view of a tracking page. No raw IP address or user agent is ever stored.

    On PostgreSQL the table is partitioned by UTC month (app.tracking.partitions) and its
    primary key is (id, occurred_at); ids still come from one sequence and identify a row.
    """

    __tablename__ = "scan_event"
    __table_args__ = (
        Index("ix_scan_event_offer_id_occurred_at", "offer_id", "occurred_at"),
        Index("ix_scan_event_placement_id_occurred_at", "placement_id", "occurred_at"),
    )

    id: int | None = Field(
        default=None,
        # BIGINT on PostgreSQL; on SQLite only INTEGER PRIMARY KEY is the auto-numbered rowid.
        sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    )
    offer_id: str | None = Field(
        default=None,
        sa_column=Column(String(26), ForeignKey("offer.id", ondelete="CASCADE"), nullable=True),
    )
    occurred_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    code_form: CodeForm = Field(sa_type=String(8))
    channel: Channel = Field(sa_type=String(8))
    device_class: str = Field(sa_type=String(16))
    os_family: str = Field(default="", sa_type=String(50))
    browser_family: str = Field(default="", sa_type=String(50))
    referrer_host: str = Field(default="", sa_type=String(255))
    is_bot: bool = False
    visitor_hash: str | None = Field(default=None, sa_type=String(64))
    # Analytics dimensions (app.analytics): no foreign keys, so a scan outlives its campaign's
    # rows and the write path checks nothing more than it did.
    campaign_id: int | None = None
    placement_id: int | None = None
    creative_id: int | None = None


class VisitorKey(SQLModel, table=True):
    """The random key of one UTC day's visitor hashes; deleted after 48 hours."""

    __tablename__ = "visitor_key"

    day: date = Field(primary_key=True)
    secret: str = Field(sa_type=String(64))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ScanSpoolProgress(SQLModel, table=True):
    """How much of a spool file (scans written while the database was unreachable) has been
    replayed. Updated in the same transaction as the replayed rows: each row lands once."""

    __tablename__ = "scan_spool_progress"

    name: str = Field(sa_type=String(200), primary_key=True)
    replayed_bytes: int = Field(default=0, sa_type=BigInteger)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ScanDaily(SQLModel, table=True):
    """Scan events past the retention period, counted per UTC day; the events are deleted.

    One row per day, offer and kind of visit (code form, channel, device class, bot flag).
    ``unique_visitors`` counts each visitor of that offer and day once, in the row of their
    first visit that day, so the rows of a day add up to that day's unique visitors.

    ``campaign_id``, ``placement_id`` and ``creative_id`` are for campaign analytics: plain
    integers (no foreign key yet) that the roll-up fills from the scan events once those carry
    them, so campaign reports read across the retention boundary like offer reports do.
    """

    __tablename__ = "scan_daily"
    __table_args__ = (Index("ix_scan_daily_offer_id_day", "offer_id", "day"),)

    id: int | None = Field(default=None, primary_key=True)
    day: date = Field(index=True)
    offer_id: str | None = Field(
        default=None,
        sa_column=Column(String(26), ForeignKey("offer.id", ondelete="CASCADE"), nullable=True),
    )
    campaign_id: int | None = Field(default=None, index=True)
    placement_id: int | None = None
    creative_id: int | None = None
    code_form: CodeForm = Field(sa_type=String(8))
    channel: Channel = Field(sa_type=String(8))
    device_class: str = Field(sa_type=String(16))
    is_bot: bool = False
    scans: int = 0
    unique_visitors: int = 0
    # Visits with Do Not Track / Global Privacy Control: counted, never told apart.
    untracked_scans: int = 0
