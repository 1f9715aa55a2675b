"""Offer API schemas by role: what a client sends (Create, Update) and what it reads back."""

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from app.customers.schemas import AddressLines, Postcode
from app.fields import (
    Currency,
    Email,
    RequiredText200,
    RequiredText500,
    RowId,
    Text50,
    Text100,
    Text200,
    Unit,
)
from app.i18n import LanguageCode
from app.offers.models import Offer, OfferStatus
from app.offers.pricing import compute_totals

MAX_LINES = 500
# No quotation of ours reaches a trillion; a bigger amount is a typo (a price in the quantity
# field, a pasted article number). Below 10^12 an amount with its cents has 14 digits, within
# the 15 significant digits SQLite's REAL and the PDF's columns hold.
MAX_AMOUNT = Decimal(10) ** 12
# Notes and terms keep their whitespace: line breaks and indentation are the author's.
LongText = Annotated[str, StringConstraints(max_length=20_000)]

# Bounds keep every amount within 15 significant digits (exact in SQLite's REAL) and make an
# absurd quantity a 422 instead of an overflow further down.


def _plausible_date(value: date) -> date:
    if not 2000 <= value.year <= 2999:
        raise ValueError("must be a date between the years 2000 and 2999")
    return value


PlausibleDate = Annotated[date, AfterValidator(_plausible_date)]
Quantity = Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=3)]
UnitPrice = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=4)]
Percent = Annotated[Decimal, Field(ge=0, le=100, max_digits=5, decimal_places=2)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CustomerIn(StrictModel):
    """The customer typed inline: stored on the offer only, as its snapshot."""

    company: RequiredText200
    contact_name: Text200 = ""
    email: Email = ""
    phone: Text50 = ""
    reference: Text100 = ""
    address_lines: AddressLines = ""
    postcode: Postcode = ""
    city: Text100 = ""
    country: Text100 = ""
    vat_id: Text50 = ""


class LineIn(StrictModel):
    description: RequiredText500
    quantity: Quantity
    unit: Unit = ""
    unit_price: UnitPrice
    discount_percent: Percent = Decimal(0)
    vat_rate: Percent

    @model_validator(mode="after")
    def _plausible_amount(self) -> "LineIn":
        if self.quantity * self.unit_price >= MAX_AMOUNT:
            raise ValueError(f"quantity × unit_price must stay below {MAX_AMOUNT:,.0f}")
        return self


def _check_offer_total(lines: list[LineIn] | None) -> None:
    if not lines:
        return
    gross = sum(
        (line.quantity * line.unit_price * (1 + line.vat_rate / 100) for line in lines), Decimal(0)
    )
    if gross >= MAX_AMOUNT:
        raise ValueError(f"the offer's total must stay below {MAX_AMOUNT:,.0f}")


def _one_customer(customer: CustomerIn | None, customer_id: int | None, required: bool) -> None:
    if customer is not None and customer_id is not None:
        raise ValueError("give either customer or customer_id, not both")
    if required and customer is None and customer_id is None:
        raise ValueError("give either customer (typed inline) or customer_id (a customer record)")


class OfferCreate(StrictModel):
    """A new draft. The customer comes either inline (``customer``) or from a customer record
    (``customer_id``); either way the offer stores a snapshot of it."""

    customer: CustomerIn | None = None
    customer_id: RowId | None = None
    # The customer's own reference for this offer (their RFQ number); overrides
    # customer.reference when both are given.
    customer_reference: Text100 | None = None
    currency: Currency | None = None
    # The PDF's, the mails' and (unless the visitor asks otherwise) the pages' language;
    # OFFERTRACK_DEFAULT_LANGUAGE when left out.
    language: LanguageCode | None = None
    valid_until: PlausibleDate | None = None
    lines: Annotated[list[LineIn], Field(max_length=MAX_LINES)] = []
    notes: LongText = ""
    terms: LongText = ""
    campaign_id: RowId | None = None
    placement_id: RowId | None = None
    creative_id: RowId | None = None

    @model_validator(mode="after")
    def _plausible_total(self) -> "OfferCreate":
        _one_customer(self.customer, self.customer_id, required=True)
        _check_offer_total(self.lines)
        return self


class OfferUpdate(StrictModel):
    """A partial update of a draft; ``lines``, when given, replaces all lines."""

    customer: CustomerIn | None = None
    customer_id: RowId | None = None
    customer_reference: Text100 | None = None
    currency: Currency | None = None
    language: LanguageCode | None = None
    valid_until: PlausibleDate | None = None
    lines: Annotated[list[LineIn], Field(max_length=MAX_LINES)] | None = None
    notes: LongText | None = None
    terms: LongText | None = None
    # Campaign analytics; null clears, leaving a field out keeps it.
    campaign_id: RowId | None = None
    placement_id: RowId | None = None
    creative_id: RowId | None = None

    @model_validator(mode="after")
    def _plausible_total(self) -> "OfferUpdate":
        _one_customer(self.customer, self.customer_id, required=False)
        _check_offer_total(self.lines)
        return self


class CustomerRead(BaseModel):
    id: int | None = None
    company: str
    contact_name: str
    email: str
    phone: str
    reference: str
    address_lines: str = ""
    postcode: str = ""
    city: str = ""
    country: str = ""
    vat_id: str = ""


class LineRead(BaseModel):
    position: int
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    discount_percent: Decimal
    vat_rate: Decimal
    net: Decimal


class VatRead(BaseModel):
    rate: Decimal
    net: Decimal
    vat: Decimal


class TotalsRead(BaseModel):
    net: Decimal
    vat: list[VatRead]
    vat_total: Decimal
    gross: Decimal


class OfferRead(BaseModel):
    id: str
    tracking_id: str
    tracking_url: str
    pdf_url: str
    status: OfferStatus
    customer: CustomerRead
    currency: str
    language: str
    valid_until: date
    lines: list[LineRead]
    totals: TotalsRead
    notes: str
    terms: str
    supersedes_id: str | None
    superseded_by_id: str | None
    created_at: datetime
    updated_at: datetime
    issued_at: datetime | None
    accepted_at: datetime | None
    declined_at: datetime | None
    ordered_at: datetime | None
    superseded_at: datetime | None
    campaign_id: RowId | None = None
    placement_id: RowId | None = None
    creative_id: RowId | None = None

    @classmethod
    def from_offer(
        cls,
        offer: Offer,
        *,
        status: OfferStatus,
        base_url: str,
        pdf_url: str,
        superseded_by_id: str | None,
    ) -> "OfferRead":
        totals = compute_totals(offer.lines, offer.currency)
        return cls(
            id=offer.id,
            tracking_id=offer.tracking_id,
            tracking_url=f"{base_url}/{offer.id}",
            pdf_url=pdf_url,
            status=status,
            customer=CustomerRead(
                id=offer.customer_id,
                company=offer.customer_company,
                contact_name=offer.customer_contact_name,
                email=offer.customer_email,
                phone=offer.customer_phone,
                reference=offer.customer_reference,
                address_lines=offer.customer_address_lines,
                postcode=offer.customer_postcode,
                city=offer.customer_city,
                country=offer.customer_country,
                vat_id=offer.customer_vat_id,
            ),
            lines=[
                LineRead(net=net, **line.model_dump(exclude={"id", "offer_id"}))
                for line, net in zip(offer.lines, totals.line_nets, strict=True)
            ],
            totals=TotalsRead(
                net=totals.net,
                vat=[VatRead(rate=b.rate, net=b.net, vat=b.vat) for b in totals.vat],
                vat_total=totals.vat_total,
                gross=totals.gross,
            ),
            superseded_by_id=superseded_by_id,
            **offer.model_dump(
                include={
                    "currency",
                    "language",
                    "valid_until",
                    "notes",
                    "terms",
                    "supersedes_id",
                    "created_at",
                    "updated_at",
                    "issued_at",
                    "accepted_at",
                    "declined_at",
                    "ordered_at",
                    "superseded_at",
                    "campaign_id",
                    "placement_id",
                    "creative_id",
                }
            ),
        )


class OfferPage(BaseModel):
    items: list[OfferRead]
    total: int
    limit: int
    offset: int
