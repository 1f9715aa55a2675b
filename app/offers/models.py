"""Offer tables. The schema itself comes from Alembic migrations, never from create_all."""

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import Column, ForeignKey, Index, Integer, LargeBinary, Numeric, String, Text
from sqlmodel import Field, Relationship, SQLModel

from app.db import UTCDateTime, utcnow
from app.offers.pricing import compute_totals


class OfferStatus(StrEnum):
    DRAFT = "draft"
    ISSUED = "issued"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    ORDERED = "ordered"
    SUPERSEDED = "superseded"


class Offer(SQLModel, table=True):
    # The mail worker's validity check (every 10 minutes) reads the issued offers whose
    # valid_until is near, not every issued offer that ever expired (their status stays
    # "issued").
    # The staff dashboard (every view) counts the orders short of the last stage and lists the
    # late ones: a range of the orders in progress, not every order ever delivered.
    __table_args__ = (
        Index("ix_offer_status_valid_until", "status", "valid_until"),
        Index(
            "ix_offer_stage_position_expected_delivery_date",
            "stage_position",
            "expected_delivery_date",
        ),
    )

    id: str = Field(sa_type=String(26), primary_key=True)
    tracking_id: str = Field(sa_type=String(10), unique=True)
    # Stored status never says "expired": an issued offer past valid_until *reads* as expired
    # (see effective_status), so no job has to run before the page is right.
    status: OfferStatus = Field(sa_type=String(16), default=OfferStatus.DRAFT, index=True)

    customer_company: str = Field(sa_type=String(200))
    customer_contact_name: str = Field(default="", sa_type=String(200))
    customer_email: str = Field(default="", sa_type=String(320))
    customer_phone: str = Field(default="", sa_type=String(50))
    customer_reference: str = Field(default="", sa_type=String(100))
    # The postal address and VAT ID as printed on this offer: a snapshot, like the fields
    # above, so the customer record can change without changing an issued document.
    customer_address_lines: str = Field(default="", sa_type=Text)
    customer_postcode: str = Field(default="", sa_type=String(20))
    customer_city: str = Field(default="", sa_type=String(100))
    customer_country: str = Field(default="", sa_type=String(100))
    customer_vat_id: str = Field(default="", sa_type=String(50))
    # The customer record the snapshot was taken from, when there is one.
    customer_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("customer.id", ondelete="SET NULL"), index=True),
    )

    currency: str = Field(sa_type=String(3))
    notes: str = Field(default="", sa_type=Text)
    terms: str = Field(default="", sa_type=Text)
    valid_until: date

    supersedes_id: str | None = Field(
        default=None,
        sa_column=Column(String(26), ForeignKey("offer.id"), unique=True, nullable=True),
    )

    # Campaign analytics: the campaign, placement and creative that brought this offer.
    campaign_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("campaign.id", ondelete="SET NULL"), nullable=True),
    )
    placement_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("placement.id", ondelete="SET NULL"), nullable=True),
    )
    creative_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("creative.id", ondelete="SET NULL"), nullable=True),
    )

    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Indexed for the staff dashboard's counts of this month (every view) and the campaign
    # dashboard's funnel: a range of them, not the whole table.
    issued_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    accepted_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    declined_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ordered_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    superseded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    accepted_by_name: str = Field(default="", sa_type=String(200))
    accepted_po_number: str = Field(default="", sa_type=String(100))
    declined_reason: str = Field(default="", sa_type=Text)
    activated_by: str = Field(default="", sa_type=String(200))
    # The staff user who owns the offer (its author unless reassigned): alerts go to them and
    # the public pages name them as the contact. No ORM relationship: offers sit below the
    # staff site, which reads the user through its own package.
    owner_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("staff_user.id", ondelete="SET NULL"), index=True),
    )
    # The language of the PDF, the mails and, unless the visitor asks otherwise, the pages.
    language: str = Field(default="en", sa_type=String(8))
    # An order's progress as its stage history says it (app/tracking/progress.py writes them
    # with every change of the history or of the stage positions): the position of its
    # furthest stage, and the expected delivery date of its latest update that gave one.
    stage_position: int | None = None
    expected_delivery_date: date | None = None
    # The gross total as the lines price it (gross_total below), stored by the offers service
    # with every change of lines or currency, for the staff lists' amount filter: summing
    # every offer's lines per query read the whole line table (0.75 s at 60,000 offers).
    gross_amount: Decimal = Field(
        default=Decimal(0),
        sa_type=Numeric(20, 2),
        index=True,
        sa_column_kwargs={"server_default": "0"},
    )

    lines: list["OfferLine"] = Relationship(
        back_populates="offer",
        sa_relationship_kwargs={
            "order_by": "OfferLine.position",
            "cascade": "all, delete-orphan",
            "lazy": "selectin",
        },
    )

    # The offer's amounts, from its lines (loaded with it), for its list's export. One rule:
    # app.offers.pricing, as on the PDF and the pages.
    @property
    def net_total(self) -> Decimal:
        return compute_totals(self.lines, self.currency).net

    @property
    def vat_total(self) -> Decimal:
        return compute_totals(self.lines, self.currency).vat_total

    @property
    def gross_total(self) -> Decimal:
        return compute_totals(self.lines, self.currency).gross

    def effective_status(self, today: date) -> OfferStatus:
        if self.status == OfferStatus.ISSUED and self.valid_until < today:
            return OfferStatus.EXPIRED
        return self.status


class OfferLine(SQLModel, table=True):
    __tablename__ = "offer_line"

    id: int | None = Field(default=None, primary_key=True)
    offer_id: str = Field(
        sa_column=Column(
            String(26), ForeignKey("offer.id", ondelete="CASCADE"), index=True, nullable=False
        )
    )
    position: int
    description: str = Field(sa_type=String(500))
    quantity: Decimal = Field(sa_type=Numeric(14, 3))
    unit: str = Field(default="", sa_type=String(20))
    unit_price: Decimal = Field(sa_type=Numeric(16, 4))
    discount_percent: Decimal = Field(default=Decimal(0), sa_type=Numeric(5, 2))
    vat_rate: Decimal = Field(sa_type=Numeric(5, 2))

    offer: Offer | None = Relationship(back_populates="lines")


class OfferPdf(SQLModel, table=True):
    """The rendered PDF of an issued offer: it never changes again, so it is rendered once."""

    __tablename__ = "offer_pdf"

    offer_id: str = Field(
        sa_column=Column(String(26), ForeignKey("offer.id", ondelete="CASCADE"), primary_key=True)
    )
    etag: str = Field(sa_type=String(64))
    content: bytes = Field(sa_type=LargeBinary)
    rendered_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class TermsTemplate(SQLModel, table=True):
    """A named block of terms or notes that staff insert into an offer instead of retyping."""

    __tablename__ = "terms_template"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_type=String(100), unique=True)
    kind: str = Field(default="terms", sa_type=String(10))  # "terms" or "notes"
    body: str = Field(sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
