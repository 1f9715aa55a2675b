"""Webhook endpoints: staff register where events go and which ones."""

import secrets
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlmodel import Session, col, select
from ulid import ULID

from app import audit, netguard
from app.analytics import delivery, outbox
from app.analytics.models import WebhookDelivery, WebhookEndpoint, WebhookOutbox
from app.analytics.schemas import (
    DeliveryRead,
    WebhookEndpointCreate,
    WebhookEndpointUpdate,
    WebhookTestResult,
)
from app.config import Settings, get_settings
from app.db import read_only
from app.errors import NotFound, ServiceUnavailable, Unprocessable
from app.versions import Expected, next_stamp, require_version


class EndpointNotFound(NotFound):
    def __init__(self, endpoint_id: int) -> None:
        super().__init__(f"No webhook endpoint with id {endpoint_id}.")


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def create_endpoint(
    session: Session, data: WebhookEndpointCreate, *, actor: str
) -> WebhookEndpoint:
    """An endpoint with a fresh signing secret; events from now on are queued for it."""
    _check_egress(data.url)
    endpoint = WebhookEndpoint(
        url=data.url,
        secret=new_secret(),
        event_types=sorted(set(data.event_types)),
        enabled=data.enabled,
    )
    session.add(endpoint)
    session.flush()
    _audit(session, actor, "webhook.created", endpoint, f"Webhook endpoint {data.url} added")
    session.commit()
    return endpoint


def _check_egress(url: str) -> None:
    # At delivery the resolved addresses are checked again (app.analytics.delivery).
    netguard.check_url(url, get_settings().webhook_allowed_networks)


def get_endpoint(
    session: Session, endpoint_id: int, *, for_update: bool = False
) -> WebhookEndpoint:
    """An endpoint; ``for_update`` locks its row and reads it afresh for a save."""
    endpoint = session.get(
        WebhookEndpoint, endpoint_id, with_for_update=for_update, populate_existing=for_update
    )
    if endpoint is None:
        raise EndpointNotFound(endpoint_id)
    return endpoint


def list_endpoints(session: Session) -> Sequence[WebhookEndpoint]:
    with read_only(session):
        return session.exec(select(WebhookEndpoint).order_by(col(WebhookEndpoint.id))).all()


def update_endpoint(
    session: Session,
    endpoint_id: int,
    data: WebhookEndpointUpdate,
    *,
    actor: str,
    expected: Expected | None = None,
) -> WebhookEndpoint:
    """Change an endpoint, unless it changed since ``expected``; enabling it again clears its
    failures and resumes its backlog."""
    endpoint = _current(session, endpoint_id, expected)
    changes = data.model_dump(exclude_unset=True)
    for name in ("url", "event_types", "enabled"):
        if name in changes and changes[name] is None:
            raise Unprocessable(f"{name} cannot be null.", loc=("body", name))
    if "url" in changes:
        _check_egress(changes["url"])
        endpoint.url = changes["url"]
    if "event_types" in changes:
        endpoint.event_types = sorted(set(changes["event_types"]))
    if changes.get("enabled") is True:
        endpoint.enabled, endpoint.failure_count, endpoint.disabled_at = True, 0, None
        endpoint.failing_since = None  # a fresh start: the next streak counts from its own start
    elif changes.get("enabled") is False:
        endpoint.enabled, endpoint.disabled_at = False, None  # off by staff: nothing queued
    endpoint.updated_at = next_stamp(endpoint.updated_at)
    session.add(endpoint)
    if changes.keys() == {"enabled"}:
        verb = "enabled" if changes["enabled"] else "disabled"
        _audit(session, actor, f"webhook.{verb}", endpoint, f"Webhook endpoint {verb}")
    else:
        _audit(
            session, actor, "webhook.updated", endpoint, f"Webhook endpoint {endpoint.url} changed"
        )
    session.commit()
    return endpoint


def rotate_secret(
    session: Session, endpoint_id: int, *, actor: str, expected: Expected | None = None
) -> WebhookEndpoint:
    """A new signing secret, unless the endpoint changed since ``expected``; the old one stops
    working with the next delivery."""
    endpoint = _current(session, endpoint_id, expected)
    endpoint.secret = new_secret()
    endpoint.updated_at = next_stamp(endpoint.updated_at)
    session.add(endpoint)
    _audit(session, actor, "webhook.secret_rotated", endpoint, "Webhook signing secret rotated")
    session.commit()
    return endpoint


def delete_endpoint(
    session: Session, endpoint_id: int, *, actor: str, expected: Expected | None = None
) -> None:
    """Remove an endpoint with its queued events and delivery log, unless it changed since
    ``expected``. The audit log keeps where its events went."""
    endpoint = _current(session, endpoint_id, expected)
    _audit(session, actor, "webhook.deleted", endpoint, f"Webhook endpoint {endpoint.url} deleted")
    session.delete(endpoint)
    session.commit()


# Test events sent at once in one process. Each holds a server thread until its receiver
# answers or the timeout ends, and those threads serve every other request too: dozens sent
# at once to a receiver that never answers would stall the whole site.
MAX_TESTS_AT_ONCE = 2


class BusyWithTestEvents(ServiceUnavailable):
    title = "Too many test events at once"

    def __init__(self) -> None:
        super().__init__(
            f"{MAX_TESTS_AT_ONCE} test events are being sent already, the most this server "
            "sends at once. Please try again in a few seconds."
        )


class _TestsUnderWay:
    """The test events being sent in this process; one more than the most is refused at once
    (waiting would hold the request's thread all the same)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    @contextmanager
    def slot(self) -> Iterator[None]:
        with self._lock:
            if self._count >= MAX_TESTS_AT_ONCE:
                raise BusyWithTestEvents()
            self._count += 1
        try:
            yield
        finally:
            with self._lock:
                self._count -= 1


_tests_under_way = _TestsUnderWay()


def send_ping(session: Session, endpoint_id: int, settings: Settings) -> WebhookTestResult:
    """Send the endpoint a signed test event now, enabled or not, and say what happened.

    A check, not a delivery: it is tried once and never retried, and it neither counts toward
    the endpoint's failures (nor clears them) nor enters its delivery log, which keeps the
    attempts at the events the endpoint is owed, each with its queued event. The person who
    asked reads the result at once instead.
    """
    with read_only(session):  # no connection held while the receiver takes its time
        endpoint = get_endpoint(session, endpoint_id)
        url, secret = endpoint.url, endpoint.secret
    event_id = str(ULID())
    body = outbox.ping_body(event_id, endpoint_id)
    with _tests_under_way.slot():
        result = delivery.post_signed(url, secret, event_id, outbox.PING, body, settings)
    return WebhookTestResult(
        event_id=event_id,
        delivered=result.succeeded,
        status_code=result.status_code,
        duration_ms=result.duration_ms,
        error=result.error,
    )


def _current(session: Session, endpoint_id: int, expected: Expected | None) -> WebhookEndpoint:
    """The endpoint, locked for the change, if it is still the version ``expected``."""
    endpoint = get_endpoint(session, endpoint_id, for_update=True)
    require_version(
        session, expected, endpoint.updated_at, noun="webhook endpoint", entity=_entity(endpoint)
    )
    return endpoint


def deliveries(session: Session, endpoint_id: int, *, limit: int) -> list[DeliveryRead]:
    """The endpoint's latest delivery attempts, newest first."""
    get_endpoint(session, endpoint_id)
    # The type lives on the outbox row; a delivery is deleted with it, so the join loses none.
    query = (
        select(WebhookDelivery, WebhookOutbox.event_type)
        .join(WebhookOutbox, col(WebhookOutbox.id) == WebhookDelivery.outbox_id)
        .where(WebhookDelivery.endpoint_id == endpoint_id)
        .order_by(col(WebhookDelivery.id).desc())
        .limit(limit)
    )
    with read_only(session):
        rows = session.exec(query).all()
    return [_attempt(delivery, event_type) for delivery, event_type in rows]


def _attempt(delivery: WebhookDelivery, event_type: str) -> DeliveryRead:
    return DeliveryRead.model_validate({**delivery.model_dump(), "event_type": event_type})


def _entity(endpoint: WebhookEndpoint) -> tuple[str, int]:
    """The endpoint as the audit log names it."""
    assert endpoint.id is not None
    return "webhook_endpoint", endpoint.id


def _audit(
    session: Session, actor: str, action: str, endpoint: WebhookEndpoint, summary: str
) -> None:
    entity_type, entity_id = _entity(endpoint)
    audit.record(
        session,
        actor=actor,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        summary=summary,
    )
