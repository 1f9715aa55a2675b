"""Customer API schemas by role: Create, Update (partial) and Read."""

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

from app.fields import Email, RequiredText200, Text50, Text100, Text200, stripped
from app.i18n import DEFAULT_LANGUAGE, LANGUAGES


def _supported_language(value: str) -> str:
    if value not in LANGUAGES:
        raise ValueError(f"must be one of {', '.join(LANGUAGES)}")
    return value


Language = Annotated[str, AfterValidator(_supported_language)]
Postcode = Annotated[str, StringConstraints(max_length=20), AfterValidator(stripped)]
AddressLines = Annotated[str, StringConstraints(max_length=1000), AfterValidator(stripped)]
Notes = Annotated[str, StringConstraints(max_length=5000)]


class CustomerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    company: RequiredText200
    contact_name: Text200 = ""
    email: Email = ""
    phone: Text50 = ""
    address_lines: AddressLines = ""
    postcode: Postcode = ""
    city: Text100 = ""
    country: Text100 = ""
    vat_id: Text50 = ""
    language: Language = DEFAULT_LANGUAGE
    notes: Notes = ""


class CustomerUpdate(BaseModel):
    """A partial update: a field left out keeps its value."""

    model_config = ConfigDict(extra="forbid")

    company: RequiredText200 | None = None
    contact_name: Text200 | None = None
    email: Email | None = None
    phone: Text50 | None = None
    address_lines: AddressLines | None = None
    postcode: Postcode | None = None
    city: Text100 | None = None
    country: Text100 | None = None
    vat_id: Text50 | None = None
    language: Language | None = None
    notes: Notes | None = None


class CustomerRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    company: str
    contact_name: str
    email: str
    phone: str
    address_lines: str
    postcode: str
    city: str
    country: str
    vat_id: str
    language: str
    notes: str
    created_at: datetime
    updated_at: datetime


class CustomerPage(BaseModel):
    items: list[CustomerRead]
    total: int
    limit: int
    offset: int
