"""Scan events: what a visit tells us, kept without anything that identifies the visitor.

The visitor hash is HMAC(key of the day, IP | user agent | offer). The key is random, rotates
every UTC day and is deleted after 48 hours, so unique visitors can be counted within a day and
nobody can be followed from one day to the next, or from one offer to another.
"""

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode, urlsplit

from crawlerdetect import CrawlerDetect
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col
from ua_parser import parse as parse_user_agent

from app.db import read_only, utcnow
from app.tracking.models import Channel, CodeForm, VisitorKey

PDF_MARKER = "pdf"
FORM_MARKER = "form"
MAIL_MARKER = "mail"
_crawlers = CrawlerDetect()
_crawler_lock = threading.Lock()


@dataclass(frozen=True)
class Visit:
    """What the request says about the visitor; it is reduced to a ScanEvent and forgotten."""

    client_ip: str
    user_agent: str
    referrer: str
    do_not_track: bool
    marker: str  # the ``src`` query parameter: "pdf" (PDF link), "form" (form), "mail" (our mails)


@dataclass(frozen=True)
class Device:
    device_class: str
    os_family: str
    browser_family: str
    is_bot: bool


@lru_cache(maxsize=4096)
def classify_user_agent(user_agent: str) -> Device:
    """Device class, OS and browser families from ua-parser; bots from CrawlerDetect's list."""
    with _crawler_lock:  # CrawlerDetect keeps per-call state on the instance
        is_bot = bool(user_agent) and _crawlers.isCrawler(user_agent)
    parsed = parse_user_agent(user_agent) if user_agent else None
    os_family = parsed.os.family if parsed and parsed.os else ""
    browser = parsed.user_agent.family if parsed and parsed.user_agent else ""
    device = parsed.device.family if parsed and parsed.device else ""
    if is_bot or device == "Spider":
        return Device("bot", os_family[:50], browser[:50], True)
    return Device(_device_class(user_agent, os_family, device), os_family[:50], browser[:50], False)


def _device_class(user_agent: str, os_family: str, device: str) -> str:
    if "iPad" in user_agent or "Tablet" in user_agent or device.startswith("Kindle"):
        return "tablet"
    if os_family == "Android" and "Mobile" not in user_agent:
        return "tablet"
    if os_family in {"iOS", "Android"} or "Mobile" in user_agent:
        return "mobile"
    if os_family in {"Windows", "Mac OS X", "Linux", "Ubuntu", "Chrome OS", "Fedora", "macOS"}:
        return "desktop"
    return "other"


def channel_of(visit: Visit, device: Device) -> Channel:
    """PDF link, form and our mails' links carry a marker; the QR code cannot (scanners strip
    parameters), so a marker-less visit from a phone or tablet without a referrer is a camera
    scan."""
    if visit.marker == PDF_MARKER:
        return Channel.PDF
    if visit.marker == FORM_MARKER:
        return Channel.TYPED
    if visit.marker == MAIL_MARKER:
        return Channel.WEB
    if not visit.referrer and device.device_class in {"mobile", "tablet"}:
        return Channel.QR
    return Channel.WEB


def mail_link(page_url: str, **params: str) -> str:
    """A page's address as our mails give it: marked, because a mail app on a phone sends no
    referrer, and a tap on the link was taken for a camera scan of the paper."""
    return f"{page_url}?{urlencode({'src': MAIL_MARKER, **params})}"


def referrer_host(referrer: str) -> str:
    try:
        return (urlsplit(referrer).hostname or "")[:255]
    except ValueError:
        return ""


class VisitorKeys:
    """Today's key, cached per process; created on first use and rotated at UTC midnight."""

    def __init__(self) -> None:
        self._cache: tuple[date, bytes] | None = None
        self._lock = threading.Lock()

    def cached_today(self) -> bytes | None:
        """Today's key if this process has it already: no database needed."""
        cached = self._cache
        return cached[1] if cached and cached[0] == utcnow().date() else None

    def today(self, session: Session) -> bytes:
        day = utcnow().date()
        cached = self._cache
        if cached and cached[0] == day:
            return cached[1]
        with self._lock:
            key = self._load_or_create(session, day)
            self._cache = (day, key)
            return key

    def _load_or_create(self, session: Session, day: date) -> bytes:
        with read_only(session):  # a lookup must not keep a write transaction open
            row = session.get(VisitorKey, day)
        if row is None:
            row = VisitorKey(day=day, secret=secrets.token_hex(32), created_at=utcnow())
            try:
                with session.begin_nested():
                    session.add(row)
                    _delete_expired_keys(session, day)
                session.commit()  # other workers must hash with this very key
            except IntegrityError:  # another worker created today's key first
                session.rollback()
                row = session.get(VisitorKey, day)
                assert row is not None
        return bytes.fromhex(row.secret)

    def forget(self) -> None:
        self._cache = None


visitor_keys = VisitorKeys()


def _delete_expired_keys(session: Session, today: date) -> None:
    # Today's and yesterday's keys are at most 48 hours old; anything before goes.
    session.execute(delete(VisitorKey).where(col(VisitorKey.day) < today - timedelta(days=1)))


def purge_visitor_keys(session: Session) -> None:
    """Delete keys past their 48 hours even on days without a single scan."""
    _delete_expired_keys(session, utcnow().date())
    session.commit()


def visitor_hash(key: bytes, visit: Visit, offer_id: str) -> str:
    mac = _keyed(key).copy()
    mac.update("\x1f".join((visit.client_ip, visit.user_agent, offer_id)).encode())
    return mac.hexdigest()


@lru_cache(maxsize=1)
def _keyed(key: bytes) -> "hmac.HMAC":
    """The day's keyed HMAC, to copy for each scan (a copy costs less than keying anew). One
    only: a key is kept in memory no longer than VisitorKeys keeps it (until the next day's)."""
    return hmac.new(key, digestmod=hashlib.sha256)


def todays_visitor_hash(session: Session, visit: Visit, subject: str) -> str | None:
    """The visitor's hash for ``subject`` today; none for a visitor who asks not to be tracked."""
    if visit.do_not_track:
        return None
    return visitor_hash(visitor_keys.today(session), visit, subject)


def scan_row(offer_id: str, form: CodeForm, visit: Visit, key: bytes) -> dict[str, Any]:
    """The scan event of one page view, as a row: the visit reduced to what may be kept.
    ``key`` is today's visitor key (VisitorKeys.today)."""
    hashed = None if visit.do_not_track else visitor_hash(key, visit, offer_id)
    return event_row(offer_id, form, visit, hashed)


def event_row(
    offer_id: str | None, form: CodeForm, visit: Visit, hashed: str | None
) -> dict[str, Any]:
    """The row of a scan event whose visitor hash is known; needs no database."""
    device = classify_user_agent(visit.user_agent[:512])
    return {
        "offer_id": offer_id,
        "occurred_at": utcnow(),
        "code_form": form,
        "channel": channel_of(visit, device),
        "device_class": device.device_class,
        "os_family": device.os_family,
        "browser_family": device.browser_family,
        "referrer_host": referrer_host(visit.referrer),
        "is_bot": device.is_bot,
        "visitor_hash": hashed,
    }
