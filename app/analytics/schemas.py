"""Analytics API schemas: campaigns, placements with their routing rules, creatives,
conversions and webhook endpoints."""

import re
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)

from app.analytics.models import SplitMode
from app.db import utcnow
from app.fields import Currency, RowId
from app.offers.schemas import PlausibleDate

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
UtmValue = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
OsName = Literal["ios", "android", "desktop", "other"]
WEBHOOK_EVENT_TYPES = (
    "scan.created",
    "conversion.created",
    "offer.accepted",
    "order.stage_changed",
    # Staff alerts (app.notifications.alerts), the same moments a salesperson is told of.
    "offer.scanned",
    "offer.declined",
    "offer.expiring",
    "offer.expired",
    "offer.question",
)
EventType = Literal[
    "scan.created",
    "conversion.created",
    "offer.accepted",
    "order.stage_changed",
    "offer.scanned",
    "offer.declined",
    "offer.expiring",
    "offer.expired",
    "offer.question",
]


def _web_url(value: str) -> str:
    if not value:  # said as what to enter, not as the check an empty field fails
        raise ValueError("Required: enter a full web address starting with https:// or http://.")
    if not re.match(r"^https?://[^/\s?#]+", value, re.IGNORECASE):
        raise ValueError("must be an absolute http or https URL")
    if any(ch.isspace() for ch in value):
        raise ValueError("must not contain spaces")
    return value


def _language(value: str) -> str:
    if not re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]{2,8})?", value):
        raise ValueError("must be a language tag such as 'de' or 'pt-br'")
    return value


def _slug(value: str) -> str:
    # Said in words: the people who choose a code read this message, not a pattern.
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{1,39}", value):
        raise ValueError(
            "must be 2 to 40 letters, digits, hyphens or underscores, "
            "starting with a letter or digit"
        )
    return value


def _weight_in_words(value: Any, check: ValidatorFunctionWrapHandler) -> int:
    # Pydantic's "Input should be greater than or equal to 1" names the check; the person
    # splitting visitors needs to read what a weight is.
    try:
        return int(check(value))
    except ValidationError:
        raise ValueError(
            "Enter a whole number from 1 to 1000: a destination with weight 2 gets twice "
            "the visitors of one with weight 1."
        ) from None


Slug = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_slug)]
# The bounds stay in the schema (the API's OpenAPI); the wrapper only words the refusal.
Weight = Annotated[int, Field(ge=1, le=1000), WrapValidator(_weight_in_words)]
WebUrl = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=2000), AfterValidator(_web_url)
]
Language = Annotated[
    str, StringConstraints(strip_whitespace=True, to_lower=True), AfterValidator(_language)
]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Destination(StrictModel):
    url: WebUrl
    creative_id: RowId | None = None
    weight: Weight = 1


class Conditions(StrictModel):
    """Every condition given must hold; an empty set of conditions always holds."""

    os: Annotated[list[OsName], Field(max_length=4)] | None = None
    languages: Annotated[list[Language], Field(min_length=1, max_length=50)] | None = None
    time_from: time | None = None
    time_to: time | None = None
    weekdays: Annotated[list[Annotated[int, Field(ge=1, le=7)]], Field(min_length=1)] | None = None
    date_from: PlausibleDate | None = None
    date_to: PlausibleDate | None = None

    @model_validator(mode="after")
    def _ranges(self) -> "Conditions":
        # Said in the staff form's words, with the API's names in brackets: both read these.
        if (self.time_from is None) != (self.time_to is None):
            raise ValueError(
                "Give both a from time and an until time (time_from, time_to: local, HH:MM), "
                "or neither"
            )
        if self.time_from is not None and self.time_from == self.time_to:
            raise ValueError("The from time and the until time must differ (time_from, time_to)")
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError("The until date must not be before the from date (date_to, date_from)")
        return self


class RoutingRule(StrictModel):
    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] = ""
    when: Conditions = Conditions()
    destinations: Annotated[list[Destination], Field(min_length=1, max_length=20)]


Rules = Annotated[list[RoutingRule], Field(max_length=100)]


class CampaignCreate(StrictModel):
    name: Name
    starts_on: PlausibleDate | None = None
    ends_on: PlausibleDate | None = None
    utm_source: UtmValue = "offertrack"
    utm_medium: UtmValue = "qr"
    utm_campaign: UtmValue | None = None


class CampaignUpdate(StrictModel):
    name: Name | None = None
    starts_on: PlausibleDate | None = None
    ends_on: PlausibleDate | None = None
    utm_source: UtmValue | None = None
    utm_medium: UtmValue | None = None
    utm_campaign: UtmValue | None = None


class CampaignRead(BaseModel):
    id: int
    name: str
    starts_on: date | None
    ends_on: date | None
    utm_source: str
    utm_medium: str
    utm_campaign: str
    created_at: datetime


class CreativeCreate(StrictModel):
    name: Name
    utm_content: UtmValue | None = None


class CreativeRead(BaseModel):
    id: int
    campaign_id: RowId
    name: str
    utm_content: str


class PlacementCreate(StrictModel):
    name: Name
    slug: Slug | None = None
    fallback_url: WebUrl
    fallback_creative_id: RowId | None = None
    split_mode: SplitMode = SplitMode.WEIGHTED
    rules: Rules = []


class PlacementUpdate(StrictModel):
    name: Name | None = None
    fallback_url: WebUrl | None = None
    fallback_creative_id: RowId | None = None
    split_mode: SplitMode | None = None
    rules: Rules | None = None


class PlacementRead(BaseModel):
    id: int
    campaign_id: RowId
    name: str
    slug: str
    code_url: str
    fallback_url: str
    fallback_creative_id: RowId | None
    split_mode: SplitMode
    rules: list[RoutingRule]


def _aware_past(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must include a time zone, e.g. 2026-11-22T10:00:00Z")
    if value > utcnow() + timedelta(minutes=5):
        raise ValueError("must not lie in the future")
    if value.year < 2000:
        raise ValueError("must be after the year 2000")
    return value


ExternalKey = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[\x21-\x7e]{1,200}$")
]


class ConversionCreate(StrictModel):
    """An external conversion: a shop's point of sale, an e-commerce order, a signed contract."""

    external_key: ExternalKey
    scan_id: Annotated[int, Field(ge=1, le=2**63 - 1)] | None = None
    code: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None
    type: Annotated[
        str, StringConstraints(strip_whitespace=True, pattern=r"^[a-z][a-z0-9_.-]{0,39}$")
    ]
    value: Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)] = Decimal(0)
    currency: Currency
    channel: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)] = ""
    occurred_at: Annotated[datetime, AfterValidator(_aware_past)] | None = None

    @model_validator(mode="after")
    def _one_touch(self) -> "ConversionCreate":
        if (self.scan_id is None) == (not self.code):
            raise ValueError("give either scan_id or code (a campaign code or an offer code)")
        return self


class ConversionRead(BaseModel):
    id: int
    external_key: str
    type: str
    offer_id: str | None
    value: Decimal
    currency: str
    channel: str
    occurred_at: datetime
    seconds_to_convert: int | None
    first_scan_id: int | None
    last_scan_id: int | None
    first_campaign_id: int | None
    first_placement_id: int | None
    first_creative_id: int | None
    last_campaign_id: int | None
    last_placement_id: int | None
    last_creative_id: int | None


class WebhookEndpointCreate(StrictModel):
    url: WebUrl
    event_types: Annotated[list[EventType], Field(min_length=1)]
    enabled: bool = True


class WebhookEndpointUpdate(StrictModel):
    url: WebUrl | None = None
    event_types: Annotated[list[EventType], Field(min_length=1)] | None = None
    enabled: bool | None = None


class WebhookEndpointRead(BaseModel):
    id: int
    url: str
    event_types: list[str]
    enabled: bool
    failure_count: int
    failing_since: datetime | None  # when the current run of failures began; null when none
    disabled_at: datetime | None
    last_error: str
    created_at: datetime


class WebhookEndpointCreated(WebhookEndpointRead):
    secret: str  # shown on creation and rotation only: the receiver needs it to verify


class DeliveryRead(BaseModel):
    id: int
    event_id: str
    event_type: str
    attempted_at: datetime
    succeeded: bool
    status_code: int | None
    error: str
    duration_ms: int


class WebhookTestResult(BaseModel):
    """What a test ping met: the receiver's status and how long it took, or why it failed."""

    event_id: str = Field(description="The `id` of the ping sent, as the receiver saw it.")
    delivered: bool = Field(description="The receiver answered 2xx.")
    status_code: int | None = Field(description="The receiver's HTTP status; null without one.")
    duration_ms: int = Field(description="From resolving the host to the answer, in ms.")
    error: str = Field(
        description="Why it was not delivered, in words (a refused address, a timeout, a TLS "
        "error, a refused connection, a non-2xx status); empty when delivered."
    )
