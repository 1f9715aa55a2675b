"""For procurement systems: an order's public updates as an Atom feed, and its expected
delivery as an iCalendar event. Both show what the order's page shows for the same code and
nothing more: the tracking ID's feed has no prices, lines or contacts (only stage updates and
their public notes, which the tracking ID's page shows too)."""

from datetime import date, datetime, timedelta
from urllib.parse import urlsplit

from sqlmodel import Session

from app import i18n
from app.config import Settings
from app.db import read_only, utcnow
from app.errors import NotFound
from app.offers.ids import hyphenate_tracking_id
from app.offers.models import Offer, OfferStatus
from app.tracking import service as tracking_service
from app.tracking.codes import TrackingCode
from app.tracking.service import Timeline


def preload() -> None:
    """Import the feed libraries now (icalendar alone takes a fifth of a second). The server
    calls this in a thread right after it starts rather than on import, which would delay its
    first answer; a feed asked for meanwhile waits on Python's import lock for it."""
    import feedgen.feed  # type: ignore[import-untyped]  # noqa: F401
    import icalendar  # noqa: F401


class NoDeliveryDate(NotFound):
    def __init__(self, tracking_id: str) -> None:
        super().__init__(
            f"Order {hyphenate_tracking_id(tracking_id)} has no expected delivery date yet."
        )


def _order(session: Session, code: TrackingCode) -> tuple[Offer, Timeline]:
    offer = tracking_service.find_by_code(session, code)
    if offer.status != OfferStatus.ORDERED:
        raise tracking_service.CodeNotFound()
    return offer, tracking_service.build_timeline(session, offer)


def order_feed(
    session: Session, code: TrackingCode, *, settings: Settings, language: str | None = None
) -> bytes:
    """The order's stage updates, newest first, as an Atom 1.0 document, in ``language`` (by
    default the offer's, as its mails: a feed reader names no language a person reads)."""
    with read_only(session):
        offer, timeline = _order(session, code)
    from feedgen.feed import FeedGenerator  # see preload()

    lang = language or offer.language
    page_url = f"{settings.public_base_url}/{code.value}"
    shown = hyphenate_tracking_id(offer.tracking_id)
    feed = FeedGenerator()
    feed.id(page_url)
    feed.language(lang)
    feed.title(f"{i18n.translate(lang, 'Order')} {shown} · {settings.company_name}")
    feed.author({"name": settings.company_name})
    feed.link(href=page_url, rel="alternate")
    feed.link(href=f"{page_url}/feed.atom", rel="self")
    feed.updated(_newest(timeline, offer))
    for update, stage in reversed(timeline.updates):  # feedgen puts the last added first
        entry = feed.add_entry()
        entry.id(f"{page_url}#update-{update.id}")
        entry.title(i18n.translate(lang, stage.label))
        entry.updated(update.happened_at)
        entry.published(update.happened_at)
        entry.link(href=page_url)
        text = _entry_text(update.public_note, update.expected_delivery_date, lang)
        entry.content(text, type="text")
    atom: bytes = feed.atom_str(pretty=True)
    return atom


def _newest(timeline: Timeline, offer: Offer) -> datetime:
    moments = [update.happened_at for update, _ in timeline.updates]
    return max(moments, default=offer.ordered_at or offer.updated_at)


def _entry_text(note: str, expected: date | None, language: str) -> str:
    lines = [note] if note else []
    if expected:
        shown = i18n.format_date(expected, language)
        lines.append(f"{i18n.translate(language, 'Expected delivery:')} {shown}")
    return "\n".join(lines) or i18n.translate(language, "Stage reached.")


def delivery_calendar(
    session: Session, code: TrackingCode, *, settings: Settings, language: str | None = None
) -> bytes:
    """The expected delivery date as an all-day iCalendar event; NoDeliveryDate without one.

    Its UID is the order's, and its SEQUENCE the number of updates, so a calendar that
    imports it again moves the event rather than adding a second one."""
    with read_only(session):
        offer, timeline = _order(session, code)
    if timeline.expected_delivery is None:
        raise NoDeliveryDate(offer.tracking_id)
    from icalendar import Calendar, Event  # see preload()

    lang = language or offer.language
    # A language asked for (?lang=) travels with the event's link, as with the mails' links:
    # the event read in it, the page it opens should too. Its UID stays one per order.
    query = f"?lang={language}" if language else ""
    page_url = f"{settings.public_base_url}/{code.value}{query}"
    shown = hyphenate_tracking_id(offer.tracking_id)
    calendar = Calendar()
    calendar.add("prodid", "-//OfferTrack//Order delivery//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = Event()
    host = urlsplit(settings.public_base_url).hostname or "offertrack"
    event.add("uid", f"delivery-{offer.tracking_id}@{host}")
    event.add("dtstamp", utcnow())
    event.add("sequence", len(timeline.updates))
    event.add("dtstart", timeline.expected_delivery)
    event.add("dtend", timeline.expected_delivery + timedelta(days=1))
    words = {"code": shown, "company": settings.company_name, "url": page_url}
    summary = i18n.translate(lang, "Delivery of order %(code)s (%(company)s)") % words
    description = i18n.translate(lang, "Expected delivery of order %(code)s. Follow it: %(url)s")
    event.add("summary", summary, parameters={"language": lang})
    event.add("description", description % words, parameters={"language": lang})
    event.add("url", page_url)
    event.add("transp", "TRANSPARENT")
    calendar.add_component(event)
    ical: bytes = calendar.to_ical()
    return ical
