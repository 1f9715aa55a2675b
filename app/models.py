"""Every table model, imported in one place so Alembic and the tests see the whole schema."""

from app.analytics.models import (
    Campaign,
    Conversion,
    Creative,
    Placement,
    ScanDaily,
    VisitorSeen,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookOutbox,
)
from app.auth.models import ApiKey
from app.db import metadata
from app.offers.models import Offer, OfferLine, OfferPdf
from app.tracking.models import OrderStage, ScanEvent, StageUpdate, VisitorKey

__all__ = [
    "ApiKey",
    "Campaign",
    "Conversion",
    "Creative",
    "Placement",
    "ScanDaily",
    "VisitorSeen",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookOutbox",
    "Offer",
    "OfferLine",
    "OfferPdf",
    "OrderStage",
    "ScanEvent",
    "StageUpdate",
    "VisitorKey",
    "metadata",
]
