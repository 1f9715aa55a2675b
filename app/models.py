"""Every table model, imported in one place so Alembic and the tests see the whole schema."""

from app.admin.reveal import RevealShown
from app.admin.sessions import StaffSession
from app.admin.twofactor import StaffTotp
from app.analytics.models import (
    Campaign,
    CampaignDayTotal,
    Conversion,
    Creative,
    Placement,
    VisitorSeen,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookOutbox,
)
from app.audit import AuditLogEntry
from app.auth.models import ApiKey
from app.auth.staff import LoginFailure, StaffUser
from app.customers.models import Customer
from app.db import metadata
from app.notifications.models import (
    AlertPreference,
    MailOutbox,
    OrderSubscription,
    StaffAlert,
    UpdateFanout,
)
from app.offers.models import Offer, OfferLine, OfferPdf, TermsTemplate
from app.tracking.models import OrderStage, ScanDaily, ScanEvent, StageUpdate, VisitorKey

__all__ = [
    "ApiKey",
    "RevealShown",
    "AlertPreference",
    "MailOutbox",
    "StaffAlert",
    "OrderSubscription",
    "UpdateFanout",
    "AuditLogEntry",
    "LoginFailure",
    "Campaign",
    "Conversion",
    "Customer",
    "Creative",
    "CampaignDayTotal",
    "Placement",
    "VisitorSeen",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookOutbox",
    "Offer",
    "OfferLine",
    "OfferPdf",
    "OrderStage",
    "ScanDaily",
    "ScanEvent",
    "StaffSession",
    "StaffTotp",
    "StaffUser",
    "StageUpdate",
    "TermsTemplate",
    "VisitorKey",
    "metadata",
]
