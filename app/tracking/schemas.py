"""Schemas of the order API and the customer's forms."""

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

from app.fields import RequiredText100, Text100, Text500, Text5000

Note = Text5000
Short = Text100


def _http_link(value: str) -> str:
    # The link is shown to customers as a button; only web links, never javascript: or data:.
    if value and not value.lower().startswith(("https://", "http://")):
        raise ValueError("must be an http or https link")
    return value


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must include a time zone, e.g. 2026-11-22T10:00:00Z")
    return value


Link = Annotated[Text500, AfterValidator(_http_link)]


class StageUpdateCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage: RequiredText100
    happened_at: Annotated[datetime, AfterValidator(_aware)] | None = None
    public_note: Note = ""
    internal_note: Note = ""
    expected_delivery_date: date | None = None
    carrier: Short = ""
    tracking_number: Short = ""
    tracking_link: Link = ""


class StageUpdateRead(BaseModel):
    id: int
    order_id: str
    tracking_id: str
    stage: str
    stage_label: str
    happened_at: datetime
    public_note: str
    internal_note: str
    expected_delivery_date: date | None
    carrier: str
    tracking_number: str
    tracking_link: str
    created_by: str


class AcceptForm(BaseModel):
    signer_name: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=2, max_length=200)
    ]
    po_number: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] = ""
    # The "I accept these terms" checkbox: without it nothing is accepted.
    accept_terms: Literal["yes"]


class DeclineForm(BaseModel):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=2000)]
