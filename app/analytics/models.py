"""Campaign analytics tables: campaigns, placements (each with its dynamic code), creatives,
conversions, and the webhook endpoints, outbox and delivery log."""

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
)
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime, utcnow

BigId = BigInteger().with_variant(Integer(), "sqlite")


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a model, for queries in SQLAlchemy Core."""
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


class SplitMode(StrEnum):
    WEIGHTED = "weighted"
    THOMPSON = "thompson"


class Campaign(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_type=String(200), unique=True)
    starts_on: date | None = None
    ends_on: date | None = None
    utm_source: str = Field(default="offertrack", sa_type=String(100))
    utm_medium: str = Field(default="qr", sa_type=String(100))
    utm_campaign: str = Field(sa_type=String(100))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Creative(SQLModel, table=True):
    """A variant of a campaign's message; its ``utm_content`` names it in the destination."""

    __table_args__ = (Index("ix_creative_campaign_id_name", "campaign_id", "name", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(
        sa_column=Column(Integer, ForeignKey("campaign.id", ondelete="CASCADE"), nullable=False)
    )
    name: str = Field(sa_type=String(200))
    utm_content: str = Field(sa_type=String(100))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Placement(SQLModel, table=True):
    """Where a campaign's code is printed ("store 47, table tent"), with its dynamic code.

    ``rules`` is the ordered list of routing rules (validated by schemas.RoutingRule); the
    first whose conditions all hold picks the destination, else the fallback.
    """

    __table_args__ = (Index("ix_placement_campaign_id_name", "campaign_id", "name", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(
        sa_column=Column(Integer, ForeignKey("campaign.id", ondelete="CASCADE"), nullable=False)
    )
    name: str = Field(sa_type=String(200))
    slug: str = Field(sa_type=String(40), unique=True)
    fallback_url: str = Field(sa_type=String(2000))
    fallback_creative_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("creative.id", ondelete="SET NULL"), nullable=True),
    )
    split_mode: SplitMode = Field(default=SplitMode.WEIGHTED, sa_type=String(16))
    rules: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Conversion(SQLModel, table=True):
    """A conversion with the scans it is attributed to, resolved once when it is recorded.

    First touch is the earliest non-bot scan that led to it, last touch the latest; their
    campaign, placement and creative are copied here so attribution is a plain GROUP BY.
    """

    __table_args__ = (Index("ix_conversion_occurred_at", "occurred_at"),)

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True))
    external_key: str = Field(sa_type=String(200), unique=True)
    body_hash: str = Field(sa_type=String(64))
    type: str = Field(sa_type=String(40))
    offer_id: str | None = Field(
        default=None,
        sa_column=Column(String(26), ForeignKey("offer.id", ondelete="SET NULL"), nullable=True),
    )
    value: Decimal = Field(sa_type=Numeric(16, 2))
    currency: str = Field(sa_type=String(3))
    channel: str = Field(default="", sa_type=String(40))
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    seconds_to_convert: int | None = None
    first_scan_id: int | None = Field(default=None, sa_type=BigId)
    last_scan_id: int | None = Field(default=None, sa_type=BigId)
    first_campaign_id: int | None = None
    first_placement_id: int | None = None
    first_creative_id: int | None = None
    last_campaign_id: int | None = None
    last_placement_id: int | None = None
    last_creative_id: int | None = None


class WebhookEndpoint(SQLModel, table=True):
    __tablename__ = "webhook_endpoint"

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(sa_type=String(2000))
    secret: str = Field(sa_type=String(100))
    event_types: list[str] = Field(default_factory=list, sa_type=JSON)
    enabled: bool = True
    failure_count: int = 0
    # When the current run of failures began (None while deliveries succeed): the endpoint is
    # switched off only once it has failed for a while, not after a burst (app.analytics.delivery).
    failing_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    disabled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str = Field(default="", sa_type=String(500))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # The version (app.versions): moved on by every change people make and by the delivery
    # worker switching the endpoint off, not by its counting of failures (one ETag a failure).
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class WebhookOutbox(SQLModel, table=True):
    """One event for one endpoint, written in the transaction of the change it reports."""

    __tablename__ = "webhook_outbox"
    __table_args__ = (
        Index("ix_webhook_outbox_delivered_at_next_attempt_at", "delivered_at", "next_attempt_at"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True))
    endpoint_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("webhook_endpoint.id", ondelete="CASCADE"), nullable=False
        )
    )
    event_id: str = Field(sa_type=String(26))
    event_type: str = Field(sa_type=String(40))
    body: str = Field(sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    attempts: int = 0
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebhookDelivery(SQLModel, table=True):
    """The log of delivery attempts, one row each."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        Index("ix_webhook_delivery_endpoint_id_attempted_at", "endpoint_id", "attempted_at"),
        # The staff page's latest attempts of one endpoint (ORDER BY id DESC LIMIT n): read in
        # this index's order they are the first n; with the index above SQLite (and
        # PostgreSQL without statistics) read and sorted every attempt of the endpoint.
        Index("ix_webhook_delivery_endpoint_id_id", "endpoint_id", "id"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True))
    outbox_id: int = Field(
        sa_column=Column(
            BigId, ForeignKey("webhook_outbox.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    endpoint_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("webhook_endpoint.id", ondelete="CASCADE"), nullable=False
        )
    )
    event_id: str = Field(sa_type=String(26))
    attempted_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    succeeded: bool = False
    status_code: int | None = None
    error: str = Field(default="", sa_type=String(500))
    duration_ms: int = 0


class CampaignDayTotal(SQLModel, table=True):
    """Human scans and unique visitors per local day and dimensions, kept up to date by the
    scan writer in the transaction of the scans: the dashboard reads this, never a million
    raw rows. A missing campaign, placement or creative is 0 (NULLs never match an upsert)."""

    __tablename__ = "campaign_day_total"
    __table_args__ = (
        Index(
            "ix_campaign_day_total_day_dimensions",
            "day",
            "campaign_id",
            "placement_id",
            "creative_id",
            "channel",
            "device_class",
            unique=True,
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    day: date
    campaign_id: int = 0
    placement_id: int = 0
    creative_id: int = 0
    channel: str = Field(sa_type=String(8))
    device_class: str = Field(sa_type=String(16))
    scans: int = 0
    visitors: int = 0


class VisitorSeen(SQLModel, table=True):
    """Visitor hashes seen so far (48 hours, like their keys): a hash's first scan is the one
    that counts it as a unique visitor."""

    __tablename__ = "visitor_seen"

    visitor_hash: str = Field(sa_type=String(64), primary_key=True)
    seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class ScanFeedMark(SQLModel, table=True):
    """How far the derivation from committed scans has got (app.analytics.scanfeed): every
    scan with an id up to ``last_scan_id`` is rolled up, sent as webhook events and published.
    Advanced in the transaction of what it derived; its row lock keeps two servers apart.
    ``gap_since``: when the feed first waited at a missing id (a batch still in flight, or
    rolled back), so that a gap left by a rollback is passed after a while."""

    __tablename__ = "scan_feed_mark"

    name: str = Field(sa_type=String(40), primary_key=True)
    last_scan_id: int = Field(default=0, sa_type=BigInteger)
    gap_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
