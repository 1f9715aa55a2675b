"""Webhook delivery: a worker sends outbox rows, at least once, with exponential backoff.

Several workers (threads of ``offertrack serve`` processes, or ``offertrack worker``) may run
at once. A worker claims a batch by leasing its rows (``locked_until``) in a short transaction:
on PostgreSQL with SELECT ... FOR UPDATE SKIP LOCKED, on SQLite under the writer lock that every
write transaction takes. A worker killed mid-batch leaves leases that expire, and the rows are
sent again: a receiver deduplicates by the event id.
"""

import logging
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.client import HTTPException
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine, and_, delete, func, insert, literal, or_, select, update

from app import netguard
from app.analytics import egress
from app.analytics.models import WebhookDelivery, WebhookEndpoint, WebhookOutbox, table_of
from app.analytics.outbox import SIGNATURE_HEADER, sign
from app.config import Settings
from app.db import UTCDateTime, nothing_to_claim, utcnow
from app.metrics import WEBHOOK_FAILURES, WEBHOOK_OUTBOX_DEPTH
from app.versions import next_stamp

log = logging.getLogger(__name__)
BATCH_SIZE = 50
KEEP_DELIVERED = timedelta(days=30)

_outbox = table_of(WebhookOutbox).c
_endpoint = table_of(WebhookEndpoint).c


@dataclass(frozen=True)
class Claimed:
    outbox_id: int
    endpoint_id: int
    url: str
    secret: str
    event_id: str
    event_type: str
    body: str
    attempts: int


@dataclass(frozen=True)
class Outcome:
    succeeded: bool
    status_code: int | None
    error: str
    duration_ms: int


def backoff(attempts: int, settings: Settings) -> timedelta:
    """Wait before the next attempt: base, 2 x base, 4 x base ... capped."""
    seconds = settings.webhook_retry_base_seconds * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, settings.webhook_retry_max_seconds))


def claim(engine: Engine, settings: Settings, limit: int = BATCH_SIZE) -> list[Claimed]:
    """Lease up to ``limit`` due rows of enabled endpoints to this worker."""
    now = utcnow()
    query = (
        select(
            _outbox.id,
            _outbox.endpoint_id,
            _endpoint.url,
            _endpoint.secret,
            _outbox.event_id,
            _outbox.event_type,
            _outbox.body,
            _outbox.attempts,
        )
        .join(WebhookEndpoint, _endpoint.id == _outbox.endpoint_id)
        .where(_outbox.delivered_at.is_(None), _outbox.next_attempt_at <= now)
        .where(or_(_outbox.locked_until.is_(None), _outbox.locked_until < now))
        .where(_endpoint.enabled.is_(True))
        .order_by(_outbox.id)
        .limit(limit)
    )
    if nothing_to_claim(engine, query):
        return []
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=table_of(WebhookOutbox))
        found: Sequence[Any] = connection.execute(query).all()
        rows = [Claimed(*row) for row in found]
        if rows:
            lease = now + timedelta(seconds=settings.webhook_lease_seconds)
            ids = [row.outbox_id for row in rows]
            connection.execute(
                update(WebhookOutbox).where(_outbox.id.in_(ids)).values(locked_until=lease)
            )
    return rows


def send(row: Claimed, settings: Settings) -> Outcome:
    """POST the event, signed, to an address the egress rules allow; any 2xx is a delivery,
    anything else (a redirect, a refused address) a failure."""
    return post_signed(row.url, row.secret, row.event_id, row.event_type, row.body, settings)


def signed_headers(secret: str, event_id: str, event_type: str, body: bytes) -> dict[str, str]:
    """The headers of every webhook request, with the signature of ``body`` made now."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "OfferTrack-Webhooks/1.0",
        SIGNATURE_HEADER: sign(secret, int(time.time()), body),
        "OfferTrack-Event-Id": event_id,
        "OfferTrack-Event-Type": event_type,
    }


def post_signed(
    url: str, secret: str, event_id: str, event_type: str, body_text: str, settings: Settings
) -> Outcome:
    """One signed POST of an event (a queued one, or a test ping) through the egress check,
    with the webhook timeout; what happened, with any error in words a person can act on."""
    body = body_text.encode()
    headers = signed_headers(secret, event_id, event_type, body)
    started = time.monotonic()
    status, error = None, ""
    try:
        target = netguard.resolve(url, settings.webhook_allowed_networks)
        status = egress.post(target, url, body, headers, settings.webhook_timeout_seconds)
    except netguard.EgressRefused as exc:
        error = f"Refused: {exc.detail}"
    except (OSError, ValueError, HTTPException) as exc:
        error = describe_failure(exc, url, settings.webhook_timeout_seconds)
    if status is not None and not 200 <= status < 300:
        error = f"HTTP {status}"
    duration = int((time.monotonic() - started) * 1000)
    succeeded = status is not None and 200 <= status < 300
    return Outcome(succeeded, status, error[:500], duration)


def describe_failure(exc: Exception, url: str, timeout: float) -> str:
    """Why a request got no answer, as the staff who set the endpoint up read it."""
    where = urlsplit(url).netloc
    if isinstance(exc, TimeoutError):
        return f"Timed out: {where} did not answer within {timeout:g} seconds."
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS error: the certificate of {where} was not accepted ({exc.verify_message})."
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: the secure connection to {where} failed ({exc.reason or exc})."
    if isinstance(exc, ConnectionRefusedError):
        return f"Connection refused: nothing accepts connections at {where}."
    if isinstance(exc, HTTPException):
        return f"Invalid answer: {where} did not answer in HTTP ({type(exc).__name__}: {exc})."
    return f"Connection failed: {type(exc).__name__}: {exc}"


def record(engine: Engine, row: Claimed, outcome: Outcome, settings: Settings) -> None:
    """Log the attempt; mark the row delivered, or schedule its retry and count the failure."""
    now = utcnow()
    with engine.begin() as connection:
        connection.execute(
            insert(WebhookDelivery).values(
                outbox_id=row.outbox_id,
                endpoint_id=row.endpoint_id,
                event_id=row.event_id,
                attempted_at=now,
                succeeded=outcome.succeeded,
                status_code=outcome.status_code,
                error=outcome.error,
                duration_ms=outcome.duration_ms,
            )
        )
        attempts = row.attempts + 1
        this_row = update(WebhookOutbox).where(_outbox.id == row.outbox_id)
        if outcome.succeeded:
            connection.execute(
                this_row.values(attempts=attempts, delivered_at=now, locked_until=None)
            )
            connection.execute(
                update(WebhookEndpoint)
                .where(_endpoint.id == row.endpoint_id)
                .values(failure_count=0, last_error="", failing_since=None)
            )
            return
        connection.execute(
            this_row.values(
                attempts=attempts,
                next_attempt_at=now + backoff(attempts, settings),
                locked_until=None,
            )
        )
        _count_failure(connection, row.endpoint_id, outcome.error or "failed", now, settings)
    WEBHOOK_FAILURES.inc()


def _count_failure(
    connection: Any, endpoint_id: int, error: str, now: datetime, settings: Settings
) -> None:
    connection.execute(
        update(WebhookEndpoint)
        .where(_endpoint.id == endpoint_id)
        .values(
            failure_count=_endpoint.failure_count + 1,
            last_error=error,
            failing_since=func.coalesce(_endpoint.failing_since, literal(now, UTCDateTime)),
        )
    )
    # Off only when both hold: many attempts in a row failed (one failure is not an outage),
    # and for long (on a busy site a minute's hiccup fails many attempts; the backoff retries
    # them meanwhile). Read under the lock the count just took. Switching the endpoint off is
    # a new version of it (app.versions): a client that read it on is told before its PATCH
    # turns it on again.
    failing_long_enough = now - timedelta(seconds=settings.webhook_disable_after_seconds)
    stamp = connection.execute(
        select(_endpoint.updated_at).where(
            _endpoint.id == endpoint_id,
            _endpoint.enabled.is_(True),
            _endpoint.failure_count >= settings.webhook_max_failures,
            _endpoint.failing_since <= failing_long_enough,
        )
    ).scalar_one_or_none()
    if stamp is not None:
        connection.execute(
            update(WebhookEndpoint)
            .where(_endpoint.id == endpoint_id)
            .values(enabled=False, disabled_at=now, updated_at=next_stamp(stamp))
        )


def extend_lease(engine: Engine, rows: Sequence[Claimed], settings: Settings) -> None:
    lease = utcnow() + timedelta(seconds=settings.webhook_lease_seconds)
    with engine.begin() as connection:
        connection.execute(
            update(WebhookOutbox)
            .where(_outbox.id.in_([row.outbox_id for row in rows]))
            .values(locked_until=lease)
        )


def release(engine: Engine, rows: list[Claimed], settings: Settings) -> None:
    """Put back rows of an endpoint that just failed, untried, to wait with it."""
    if not rows:
        return
    with engine.begin() as connection:
        for row in rows:
            connection.execute(
                update(WebhookOutbox)
                .where(_outbox.id == row.outbox_id)
                .values(locked_until=None, next_attempt_at=utcnow() + backoff(1, settings))
            )


def deliver_batch(engine: Engine, settings: Settings) -> int:
    """Claim and send one batch; returns how many rows were claimed."""
    rows = claim(engine, settings)
    failed: set[int] = set()
    postponed = []
    leased_at = time.monotonic()
    for index, row in enumerate(rows):
        if time.monotonic() - leased_at > settings.webhook_lease_seconds / 2:
            # A slow batch keeps its rows: another worker must not send them meanwhile.
            extend_lease(engine, rows[index:], settings)
            leased_at = time.monotonic()
        if row.endpoint_id in failed:
            postponed.append(row)
            continue
        outcome = send(row, settings)
        record(engine, row, outcome, settings)
        if not outcome.succeeded:
            failed.add(row.endpoint_id)
    release(engine, postponed, settings)
    return len(rows)


def outbox_depth(engine: Engine) -> int:
    """Events not delivered yet, for the operators' metric."""
    with engine.connect() as connection:
        query = (
            select(func.count()).select_from(WebhookOutbox).where(_outbox.delivered_at.is_(None))
        )
        return int(connection.execute(query).scalar_one())


def purge_delivered(engine: Engine) -> None:
    """Delivered rows and their log go after KEEP_DELIVERED."""
    cutoff = utcnow() - KEEP_DELIVERED
    with engine.begin() as connection:
        connection.execute(
            delete(WebhookOutbox).where(
                and_(_outbox.delivered_at.is_not(None), _outbox.delivered_at < cutoff)
            )
        )


class DeliveryWorker:
    """Sends due webhook events until stopped; survives database outages by waiting."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self._engine = engine
        self._settings = settings
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="webhook-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    def run(self) -> None:
        pause, purged_at = 0.0, 0.0
        while not self._stop.wait(pause):
            try:
                claimed = deliver_batch(self._engine, self._settings)
                WEBHOOK_OUTBOX_DEPTH.set(outbox_depth(self._engine))
                if time.monotonic() - purged_at > 3600:
                    purge_delivered(self._engine)
                    purged_at = time.monotonic()
                pause = 0.0 if claimed else self._settings.webhook_poll_seconds
            except Exception:  # the database may be down: wait, then try again
                log.exception("webhook delivery failed; retrying")
                pause = min(max(pause * 2, 1.0), 30.0)
