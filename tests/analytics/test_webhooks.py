"""Signed webhooks: a receiver written here verifies every signature; retries, disabling,
several workers, and no event lost when a worker is killed mid-run."""

import asyncio
import hashlib
import hmac
import ipaddress
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import Engine, func, select, text, update
from sqlmodel import Session, col

from app.analytics import delivery, outbox, scanfeed, webhooks
from app.analytics.models import WebhookDelivery, WebhookEndpoint, WebhookOutbox
from app.analytics.schemas import WebhookEndpointCreate, WebhookEndpointUpdate
from app.config import ROOT_DIR, Settings, get_settings
from app.offers import service as offers_service
from app.tracking import service as tracking_service
from app.tracking.models import ScanEvent
from app.tracking.scanlog import ScanWriter
from app.tracking.schemas import StageUpdateCreate
from app.versions import Expected, StaleEdit, etag_of
from tests.aio import run_async
from tests.conftest import TEST_DATABASE_URL
from tests.factories import make_offer
from tests.plans import analyze, assert_reads_at_most, bulk_insert, captured
from tests.scanlogs import write as write_scan

TOLERANCE_SECONDS = 300


def verify(secret: str, header: str, body: bytes) -> bool:
    """What a receiver does: recompute the HMAC over timestamp + "." + body, compare, and
    refuse old timestamps (replays)."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    timestamp = int(parts["t"])
    if abs(time.time() - timestamp) > TOLERANCE_SECONDS:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), parts["v1"])


class Receiver:
    """A data warehouse's endpoint: verifies, records, and fails on demand."""

    def __init__(self, fail_first: int = 0, delay: float = 0.0) -> None:
        self.secret = ""
        self.events: list[dict[str, Any]] = []
        self.requests: list[tuple[Message, bytes]] = []  # headers and body, as received
        self.bad_signatures = 0
        self.fail_first = fail_first
        self.delay = delay
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(receiver.delay)
                status = receiver.handle(self.headers, body)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def handle(self, headers: Message, body: bytes) -> int:
        with self.lock:
            if self.fail_first > 0:
                self.fail_first -= 1
                return 500
            if not verify(self.secret, headers.get("OfferTrack-Signature", ""), body):
                self.bad_signatures += 1
                return 400
            self.events.append(json.loads(body))
            self.requests.append((headers, body))
            return 204

    def ids(self) -> set[str]:
        with self.lock:
            return {event["id"] for event in self.events}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def _loopback_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    # The receivers here listen on loopback, which an operator has to allow deliberately.
    loopback = [ipaddress.ip_network("127.0.0.0/8")]
    monkeypatch.setattr(get_settings(), "webhook_allowed_networks", loopback)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def fast() -> Settings:
    return get_settings().model_copy(
        update={
            "webhook_retry_base_seconds": 0.05,
            "webhook_retry_max_seconds": 0.2,
            "webhook_max_failures": 3,
            "webhook_disable_after_seconds": 0.3,
            "webhook_lease_seconds": 1.0,
            "webhook_poll_seconds": 0.05,
        }
    )


def _stored_stamp(engine: Engine, endpoint_id: int) -> datetime:
    """The endpoint's version as stored."""
    with Session(engine) as session:
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        assert endpoint is not None
        return endpoint.updated_at


def _endpoint(engine: Engine, receiver: Receiver, *types: str) -> int:
    with Session(engine, expire_on_commit=False) as session:
        data = WebhookEndpointCreate.model_validate(
            {"url": receiver.url, "event_types": list(types)}
        )
        endpoint = webhooks.create_endpoint(session, data, actor="test")
    receiver.secret = endpoint.secret
    assert endpoint.id is not None
    return endpoint.id


def _drain(
    engine: Engine, settings: Settings, until: Callable[[], bool], seconds: float = 20
) -> None:
    deadline = time.monotonic() + seconds
    while not until():
        assert time.monotonic() < deadline, "webhooks not delivered in time"
        if not delivery.deliver_batch(engine, settings):
            time.sleep(0.05)


ALL_TYPES = ("scan.created", "conversion.created", "offer.accepted", "order.stage_changed")
# The staff alerts' types; their payloads are checked against the README in
# tests/notifications/test_alerts.py.
ALERT_TYPES = (
    "offer.scanned",
    "offer.declined",
    "offer.expiring",
    "offer.expired",
    "offer.question",
)


def _one_of_each_type(engine: Engine) -> str:
    """A scan, an acceptance, an activation and a stage update of one offer: six events."""
    settings = get_settings()
    with Session(engine, expire_on_commit=False) as session:
        offer = make_offer(session, settings, issued=True)
        scan_log = ScanWriter(engine)
        try:
            write_scan(scan_log, session, _scan_row(offer.id))
        finally:
            scan_log.close()
        scanfeed.catch_up(engine, settings.zone)  # what the server's feed does within 0.2 s
        offers_service.accept_offer(
            session, offer.id, signer_name="M", po_number="", settings=settings
        )
        tracking_service.activate_offer(session, offer.id, actor="t", settings=settings)
        tracking_service.add_stage_update(
            session, offer.id, StageUpdateCreate(stage="shipped"), actor="t", settings=settings
        )
    return offer.id


@pytest.mark.concurrency
def test_each_scan_created_event_carries_its_own_scan(
    committed: Engine, receiver: Receiver, fast: Settings
) -> None:
    """A batch's events name each scan by its id, with that scan's own fields, and write its
    time in one form on both databases (with microseconds, even when they are 0)."""
    _endpoint(committed, receiver, "scan.created")
    with Session(committed, expire_on_commit=False) as session:
        offer = make_offer(session, get_settings(), issued=True)
    start = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # a whole second: no microseconds
    rows = [
        {
            **_scan_row(offer.id),
            "occurred_at": start + timedelta(seconds=n, microseconds=n * 1001),
            "referrer_host": f"host-{n}.example",
            "is_bot": n % 3 == 0,
        }
        for n in range(30)
    ]
    scan_log = ScanWriter(committed)

    async def views() -> None:
        await asyncio.gather(*(scan_log.record(row) for row in rows))

    try:
        run_async(views)
    finally:
        scan_log.close()
    scanfeed.catch_up(committed, get_settings().zone)

    _drain(committed, fast, lambda: len(receiver.events) >= 30)
    with Session(committed) as session:
        stored = {scan.id: scan for scan in session.scalars(select(ScanEvent))}
    assert len({event["id"] for event in receiver.events}) == 30
    for event in receiver.events:
        assert event["type"] == "scan.created"
        data = event["data"]
        assert set(data) == {"scan_id", "occurred_at", *outbox.SCAN_FIELDS}
        scan = stored[data["scan_id"]]
        assert datetime.fromisoformat(data["occurred_at"]) == scan.occurred_at
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", data["occurred_at"])
        assert (data["referrer_host"], data["is_bot"]) == (scan.referrer_host, scan.is_bot)
        assert (data["offer_id"], data["channel"], data["os_family"]) == (offer.id, "qr", "iOS")
        assert datetime.fromisoformat(event["created_at"]).tzinfo is not None


@pytest.mark.concurrency
def test_every_event_type_arrives_signed(
    committed: Engine, receiver: Receiver, fast: Settings
) -> None:
    _endpoint(committed, receiver, *ALL_TYPES)
    offer_id = _one_of_each_type(committed)

    _drain(committed, fast, lambda: len(receiver.events) >= 6)
    types = sorted(event["type"] for event in receiver.events)
    assert types == [
        "conversion.created",
        "conversion.created",
        "offer.accepted",
        "order.stage_changed",
        "order.stage_changed",
        "scan.created",
    ]
    assert receiver.bad_signatures == 0
    by_type = {event["type"]: event for event in receiver.events}
    assert by_type["scan.created"]["data"]["offer_id"] == offer_id
    assert "visitor_hash" not in by_type["scan.created"]["data"]
    assert by_type["offer.accepted"]["data"]["gross_total"] == "3100.00"
    stages = [e["data"]["stage"] for e in receiver.events if e["type"] == "order.stage_changed"]
    assert sorted(stages) == ["confirmed", "shipped"]
    assert len(receiver.ids()) == len(receiver.events)  # one id per event


def _readme_webhooks() -> str:
    text = (ROOT_DIR / "README.md").read_text(encoding="utf-8")
    return text.split("### Webhooks\n", 1)[1].split("\n## ", 1)[0]


def _backticked(text: str) -> list[str]:
    return re.findall(r"`([A-Za-z_.-]+)`", text)


def _readme_verify(section: str) -> Callable[[str, str, bytes], bool]:
    """The README's verification example, run as it is printed."""
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found, "the README shows no verification code"
    namespace: dict[str, Any] = {}
    exec(found.group(1), namespace)
    check: Callable[[str, str, bytes], bool] = namespace["verify"]
    return check


@pytest.mark.concurrency
def test_payloads_and_headers_are_as_the_readme_documents(
    committed: Engine, receiver: Receiver, fast: Settings
) -> None:
    section = _readme_webhooks()
    fields = {
        event: set(_backticked(row))
        for event, row in re.findall(r"^\| `([a-z_.]+)` \| (.+) \|$", section, re.M)
    }
    assert set(fields) == set(ALL_TYPES + ALERT_TYPES)
    touch = re.search(r"`last_touch` are objects with the fields (.*?) of the scan", section, re.S)
    assert touch
    touch_fields = set(_backticked(touch.group(1)))
    headers_named = set(re.findall(r"`(OfferTrack-[A-Za-z-]+)", section))
    assert headers_named == {"OfferTrack-Event-Id", "OfferTrack-Event-Type", "OfferTrack-Signature"}
    readme_verify = _readme_verify(section)

    _endpoint(committed, receiver, *ALL_TYPES)
    _one_of_each_type(committed)
    _drain(committed, fast, lambda: len(receiver.events) >= 6)
    assert {json.loads(body)["type"] for _, body in receiver.requests} == set(ALL_TYPES)
    for headers, body in receiver.requests:
        event = json.loads(body)
        assert set(event) == {"id", "type", "created_at", "data"}
        assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", event["id"])  # a ULID
        assert datetime.fromisoformat(event["created_at"]).utcoffset() == timedelta(0)
        assert headers["OfferTrack-Event-Id"] == event["id"]
        assert headers["OfferTrack-Event-Type"] == event["type"]
        signature = headers["OfferTrack-Signature"]
        signed = re.fullmatch(r"t=(\d+),v1=[0-9a-f]{64}", signature)
        assert signed and abs(int(signed.group(1)) - time.time()) < 60
        assert readme_verify(receiver.secret, signature, body)
        assert not readme_verify(receiver.secret, signature, body.replace(b'"data"', b'"dat4"'))
        assert not readme_verify("whsec_other", signature, body)
        data = event["data"]
        assert set(data) == fields[event["type"]], event["type"]
        for name, value in data.items():
            if name.endswith("_at"):  # times in UTC
                assert datetime.fromisoformat(value).utcoffset() == timedelta(0), name
            if name in {"value", "gross_total"}:  # money as a decimal string
                assert re.fullmatch(r"\d+\.\d{2}", value), (name, value)
        if event["type"] == "conversion.created":
            assert set(data["first_touch"]) == set(data["last_touch"]) == touch_fields
            assert data["first_touch"]["scan_id"] is not None  # the offer's scan


def _scan_row(offer_id: str) -> dict[str, Any]:
    from app.db import utcnow

    return {
        "offer_id": offer_id,
        "occurred_at": utcnow(),
        "code_form": "full",
        "channel": "qr",
        "device_class": "mobile",
        "os_family": "iOS",
        "browser_family": "Mobile Safari",
        "referrer_host": "",
        "is_bot": False,
        "visitor_hash": "f" * 64,
    }


def _emit(engine: Engine, count: int, event_type: str = "conversion.created") -> None:
    with Session(engine) as session:
        for i in range(count):
            outbox.emit(session, event_type, {"n": i})
        session.commit()


@pytest.mark.concurrency
def test_a_tampered_body_fails_verification(receiver: Receiver) -> None:
    receiver.secret = "whsec_test"
    body = b'{"id":"1","type":"scan.created"}'
    header = outbox.sign("whsec_test", int(time.time()), body)
    assert verify("whsec_test", header, body)
    assert not verify("whsec_test", header, body.replace(b"1", b"2"))
    assert not verify("whsec_other", header, body)
    assert not verify("whsec_test", outbox.sign("whsec_test", int(time.time()) - 3600, body), body)


@pytest.mark.concurrency
def test_retries_after_a_receiver_that_fails_first(committed: Engine, fast: Settings) -> None:
    receiver = Receiver(fail_first=2)
    failures_before = REGISTRY.get_sample_value("offertrack_webhook_delivery_failures_total") or 0
    try:
        endpoint_id = _endpoint(committed, receiver, "conversion.created")
        _emit(committed, 1)
        assert delivery.outbox_depth(committed) == 1
        _drain(committed, fast, lambda: len(receiver.events) == 1)
    finally:
        receiver.close()
    failures = REGISTRY.get_sample_value("offertrack_webhook_delivery_failures_total")
    assert failures == failures_before + 2  # what operators see on /metrics
    assert delivery.outbox_depth(committed) == 0
    with Session(committed) as session:
        attempts = session.execute(
            select(col(WebhookDelivery.succeeded), col(WebhookDelivery.status_code))
            .where(col(WebhookDelivery.endpoint_id) == endpoint_id)
            .order_by(col(WebhookDelivery.id))
        ).all()
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        assert endpoint is not None
        assert [tuple(a) for a in attempts] == [(False, 500), (False, 500), (True, 204)]
        assert endpoint.failure_count == 0 and endpoint.enabled
        row = session.scalars(select(WebhookOutbox)).one()
        assert row.attempts == 3 and row.delivered_at is not None


def test_backoff_doubles_up_to_the_cap(fast: Settings) -> None:
    settings = get_settings()
    waits = [delivery.backoff(n, settings).total_seconds() for n in (1, 2, 3, 4, 20)]
    assert waits == [10, 20, 40, 80, 3600]


@pytest.mark.concurrency
def test_an_endpoint_failing_repeatedly_is_disabled_and_keeps_its_events(
    committed: Engine, fast: Settings
) -> None:
    receiver = Receiver(fail_first=10**6)
    try:
        endpoint_id = _endpoint(committed, receiver, "conversion.created")
        read_while_on = Expected.from_if_match(etag_of(_stored_stamp(committed, endpoint_id)))
        _emit(committed, 2)

        def disabled() -> bool:
            with Session(committed) as session:
                endpoint = session.get(WebhookEndpoint, endpoint_id)
                return endpoint is not None and not endpoint.enabled

        _drain(committed, fast, disabled)
        _emit(committed, 1)  # queued while disabled after failures
        receiver.fail_first = 0
        turn_on = WebhookEndpointUpdate(enabled=True)
        # Switched off is a new version: a client that read it on is told before turning it on.
        with Session(committed) as session, pytest.raises(StaleEdit):
            webhooks.update_endpoint(
                session, endpoint_id, turn_on, actor="test", expected=read_while_on
            )
        with Session(committed) as session:
            webhooks.update_endpoint(session, endpoint_id, turn_on, actor="test")
        _drain(committed, fast, lambda: len(receiver.events) == 3)
    finally:
        receiver.close()
    assert sorted(e["data"]["n"] for e in receiver.events) == [0, 0, 1]


FAILED = delivery.Outcome(succeeded=False, status_code=503, error="HTTP 503", duration_ms=5)
DELIVERED = delivery.Outcome(succeeded=True, status_code=204, error="", duration_ms=5)


def _queued_row(engine: Engine, receiver: Receiver) -> tuple[int, delivery.Claimed]:
    """An endpoint with one event leased to this test, to record attempts of by hand."""
    endpoint_id = _endpoint(engine, receiver, "conversion.created")
    _emit(engine, 1)
    (row,) = delivery.claim(engine, get_settings())
    return endpoint_id, row


def _stored(engine: Engine, endpoint_id: int) -> WebhookEndpoint:
    with Session(engine) as session:
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        assert endpoint is not None
        return endpoint


def _failing_since(engine: Engine, endpoint_id: int, ago: timedelta) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(WebhookEndpoint)
            .where(col(WebhookEndpoint.id) == endpoint_id)
            .values(failing_since=datetime.now(UTC) - ago)
        )


@pytest.mark.concurrency
def test_a_burst_of_failures_keeps_the_endpoint_on(committed: Engine, receiver: Receiver) -> None:
    """A receiver or DNS hiccup of a minute on a busy site: many failures, all within minutes."""
    settings = get_settings()  # 20 failures, a day
    endpoint_id, row = _queued_row(committed, receiver)
    started = datetime.now(UTC)
    for _ in range(settings.webhook_max_failures + 5):
        delivery.record(committed, row, FAILED, settings)

    endpoint = _stored(committed, endpoint_id)
    assert endpoint.enabled and endpoint.disabled_at is None
    assert endpoint.failure_count == settings.webhook_max_failures + 5
    assert endpoint.failing_since is not None
    assert started <= endpoint.failing_since <= started + timedelta(seconds=5)


@pytest.mark.concurrency
def test_failing_for_longer_than_the_setting_switches_the_endpoint_off(
    committed: Engine, receiver: Receiver
) -> None:
    settings = get_settings()
    endpoint_id, row = _queued_row(committed, receiver)
    delivery.record(committed, row, FAILED, settings)
    a_day = timedelta(seconds=settings.webhook_disable_after_seconds)
    _failing_since(committed, endpoint_id, a_day + timedelta(minutes=1))
    # Failing for a day, but one failure so far (a receiver that is rarely sent anything):
    # the count must be reached too.
    assert _stored(committed, endpoint_id).enabled
    for _ in range(settings.webhook_max_failures - 1):
        delivery.record(committed, row, FAILED, settings)

    endpoint = _stored(committed, endpoint_id)
    assert not endpoint.enabled and endpoint.disabled_at is not None

    with Session(committed) as session:
        webhooks.update_endpoint(
            session, endpoint_id, WebhookEndpointUpdate(enabled=True), actor="test"
        )
    endpoint = _stored(committed, endpoint_id)
    assert endpoint.enabled and endpoint.failure_count == 0 and endpoint.failing_since is None


@pytest.mark.concurrency
def test_a_delivery_in_between_starts_the_streak_again(
    committed: Engine, receiver: Receiver
) -> None:
    settings = get_settings()
    endpoint_id, row = _queued_row(committed, receiver)
    for _ in range(settings.webhook_max_failures):
        delivery.record(committed, row, FAILED, settings)
    _failing_since(committed, endpoint_id, timedelta(days=2))
    delivery.record(committed, row, DELIVERED, settings)
    recovered = _stored(committed, endpoint_id)
    assert recovered.failure_count == 0 and recovered.failing_since is None

    for _ in range(settings.webhook_max_failures + 1):
        delivery.record(committed, row, FAILED, settings)

    endpoint = _stored(committed, endpoint_id)
    assert endpoint.enabled  # the day counts from the first failure after the delivery
    assert endpoint.failing_since is not None
    assert endpoint.failing_since > datetime.now(UTC) - timedelta(minutes=1)


def test_the_api_says_since_when_an_endpoint_is_failing(api: TestClient, session: Session) -> None:
    made = api.post(
        "/api/v1/webhooks",
        json={"url": "https://hooks.example.com/x", "event_types": ["scan.created"]},
    ).json()
    assert made["failing_since"] is None
    endpoint = session.get(WebhookEndpoint, made["id"])
    assert endpoint is not None
    since = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)
    endpoint.failure_count, endpoint.failing_since = 4, since
    session.add(endpoint)
    session.commit()

    read = api.get(f"/api/v1/webhooks/{made['id']}").json()

    assert read["failure_count"] == 4
    assert datetime.fromisoformat(read["failing_since"]) == since


@pytest.mark.concurrency
def test_switched_off_endpoints_get_nothing_queued(committed: Engine, receiver: Receiver) -> None:
    endpoint_id = _endpoint(committed, receiver, "conversion.created")
    with Session(committed) as session:
        webhooks.update_endpoint(
            session, endpoint_id, WebhookEndpointUpdate(enabled=False), actor="test"
        )
        outbox.emit(session, "conversion.created", {"n": 1})
        outbox.emit(session, "scan.created", {"n": 2})  # not subscribed anyway
        session.commit()
        assert outbox.pending_count(session) == 0


@pytest.mark.concurrency
def test_an_event_rolled_back_with_its_change_is_never_sent(
    committed: Engine, receiver: Receiver
) -> None:
    _endpoint(committed, receiver, "conversion.created")
    with Session(committed) as session:
        outbox.emit(session, "conversion.created", {"n": 1})
        session.rollback()
        assert outbox.pending_count(session) == 0


@pytest.mark.concurrency
def test_two_workers_share_the_outbox_without_sending_twice(
    committed: Engine, receiver: Receiver, fast: Settings
) -> None:
    _endpoint(committed, receiver, "conversion.created")
    _emit(committed, 60)
    workers = [delivery.DeliveryWorker(committed, fast) for _ in range(2)]
    for worker in workers:
        worker.start()
    try:
        deadline = time.monotonic() + 30
        while len(receiver.events) < 60 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        for worker in workers:
            worker.stop()
    assert len(receiver.events) == 60
    assert len(receiver.ids()) == 60


def _worker_process(log_path: Any) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "OFFERTRACK_DATABASE_URL": TEST_DATABASE_URL,
        "OFFERTRACK_WEBHOOK_LEASE_SECONDS": "1",
        "OFFERTRACK_WEBHOOK_POLL_SECONDS": "0.05",
        "OFFERTRACK_WEBHOOK_RETRY_BASE_SECONDS": "0.05",
        "OFFERTRACK_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.0/8"]',
    }
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker"],
            env=env,
            cwd=ROOT_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.concurrency
def test_no_event_is_lost_when_the_worker_is_killed_mid_run(
    committed: Engine, tmp_path: Any
) -> None:
    receiver = Receiver(delay=0.02)
    try:
        _endpoint(committed, receiver, "conversion.created")
        _emit(committed, 120)
        with Session(committed) as session:
            expected = set(session.scalars(select(col(WebhookOutbox.event_id))))
        worker = _worker_process(tmp_path / "worker.log")
        deadline = time.monotonic() + 30
        while len(receiver.events) < 20:
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
            time.sleep(0.01)
        worker.send_signal(signal.SIGKILL)  # mid-batch: leased rows are left behind
        worker.wait(timeout=10)
        assert len(receiver.ids()) < 120
        restarted = _worker_process(tmp_path / "worker.log")
        try:
            deadline = time.monotonic() + 60
            while receiver.ids() != expected:
                assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
                time.sleep(0.05)
        finally:
            restarted.terminate()
            restarted.wait(timeout=20)
    finally:
        receiver.close()
    assert receiver.bad_signatures == 0
    with Session(committed) as session:
        pending = session.scalars(
            select(func.count()).where(col(WebhookOutbox.delivered_at).is_(None))
        ).one()
    assert pending == 0


@pytest.mark.concurrency
def test_the_server_runs_a_worker_unless_disabled(committed: Engine, receiver: Receiver) -> None:
    from fastapi.testclient import TestClient

    from app.main import create_app

    _endpoint(committed, receiver, "conversion.created")
    _emit(committed, 1)
    off = get_settings().model_copy(update={"webhook_worker": False})
    with TestClient(create_app(off)):
        time.sleep(1.0)
    assert receiver.events == []
    on = get_settings().model_copy(update={"webhook_worker": True, "webhook_poll_seconds": 0.05})
    with TestClient(create_app(on)):
        deadline = time.monotonic() + 20
        while not receiver.events:
            assert time.monotonic() < deadline, "the server's worker sent nothing"
            time.sleep(0.05)
    assert receiver.events[0]["data"] == {"n": 0}


def test_a_conversion_sent_with_an_offset_is_reported_in_utc(
    api: Any, session: Session, settings: Settings
) -> None:
    endpoint = WebhookEndpointCreate.model_validate(
        {"url": "https://warehouse.example.com/in", "event_types": ["conversion.created"]}
    )
    webhooks.create_endpoint(session, endpoint, actor="test")
    local = (datetime.now(settings.zone) - timedelta(hours=1)).replace(microsecond=0)
    body: dict[str, Any] = {
        "external_key": "pos-offset-1",
        "type": "purchase",
        "value": "10.00",
        "currency": "EUR",
        "occurred_at": local.isoformat(),
    }
    body["code"] = make_offer(session, settings, issued=True).id
    answer = api.post("/api/v1/conversions", json=body)
    assert answer.status_code == 201, answer.text
    assert local.utcoffset() != timedelta(0)  # Berlin: +01:00 or +02:00
    expected = local.astimezone(UTC).isoformat()
    event = json.loads(session.scalars(select(col(WebhookOutbox.body))).one())
    assert event["data"]["occurred_at"] == expected
    assert datetime.fromisoformat(answer.json()["occurred_at"]) == local
    assert answer.json()["occurred_at"].replace("Z", "+00:00") == expected


def _flaky_engine(down: threading.Event, refused: list[float]) -> Engine:
    """The test database, as long as ``down`` is clear; every statement fails while it is set,
    the way they do while the database server is away."""
    from sqlalchemy import event
    from sqlalchemy.exc import OperationalError

    from app.db import make_engine

    engine = make_engine(TEST_DATABASE_URL)

    @event.listens_for(engine, "before_cursor_execute")
    def _away(*args: Any) -> None:
        if down.is_set():
            refused.append(time.monotonic())
            raise OperationalError("(the database is away)", {}, ConnectionRefusedError())

    return engine


@pytest.mark.concurrency
def test_the_worker_rides_out_a_database_outage_and_sends_each_event_once(
    committed: Engine, receiver: Receiver, fast: Settings
) -> None:
    _endpoint(committed, receiver, "conversion.created")
    down = threading.Event()
    refused: list[float] = []
    flaky = _flaky_engine(down, refused)
    worker = delivery.DeliveryWorker(flaky, fast)
    worker.start()
    try:
        _emit(committed, 3)
        _wait(lambda: len(receiver.ids()) == 3 and delivery.outbox_depth(committed) == 0)
        down.set()
        _emit(committed, 4)  # written by the application while the worker cannot reach it
        time.sleep(3.5)
        during_outage = len(receiver.events)
        down.clear()
        _wait(lambda: len(receiver.ids()) == 7)
        time.sleep(1.0)  # an event sent twice would show now
    finally:
        worker.stop()
        flaky.dispose()

    assert during_outage == 3
    # It backs off (1 s, then 2 s, ...) instead of hammering the database every poll (50 ms).
    assert 2 <= len(refused) <= 4, refused
    assert len(receiver.events) == len(receiver.ids()) == 7  # none lost, none twice
    assert delivery.outbox_depth(committed) == 0


def _wait(until: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not until():
        assert time.monotonic() < deadline, "webhooks not delivered in time"
        time.sleep(0.05)


@pytest.mark.concurrency
def test_delivered_events_are_kept_30_days_and_waiting_ones_until_sent(
    committed: Engine, receiver: Receiver, fast: Settings
) -> None:
    from sqlalchemy import update

    from app.db import utcnow

    _endpoint(committed, receiver, "conversion.created")
    _emit(committed, 3)
    _drain(committed, fast, lambda: len(receiver.ids()) == 3)
    _emit(committed, 1)  # not sent yet
    with Session(committed) as session:
        first = select(col(WebhookOutbox.id)).order_by(col(WebhookOutbox.id)).limit(1)
        oldest = session.scalars(first).one()
        long_ago = utcnow() - delivery.KEEP_DELIVERED - timedelta(hours=1)
        session.execute(
            update(WebhookOutbox)
            .where(col(WebhookOutbox.id) == oldest)
            .values(delivered_at=long_ago)
        )
        session.execute(
            update(WebhookOutbox)
            .where(col(WebhookOutbox.delivered_at).is_(None))
            .values(created_at=utcnow() - timedelta(days=500))
        )
        session.commit()

    delivery.purge_delivered(committed)

    with Session(committed) as session:
        kept = session.execute(select(col(WebhookOutbox.id), col(WebhookOutbox.delivered_at))).all()
        logged = session.scalars(select(col(WebhookDelivery.outbox_id))).all()
    assert oldest not in {row_id for row_id, _ in kept}
    assert len(kept) == 3 and sum(at is None for _, at in kept) == 1
    assert oldest not in logged and len(logged) == 2  # its delivery log went with it


def test_an_endpoints_latest_attempts_are_read_from_the_newest_not_every_attempt(
    session: Session,
) -> None:
    """The staff page and the API show an endpoint's latest attempts; the log keeps 30 days of
    them (one per event for a busy endpoint), and SQLite (PostgreSQL too, without statistics)
    read and sorted every one."""
    data = WebhookEndpointCreate.model_validate(
        {"url": "https://warehouse.example.com/in", "event_types": ["scan.created"]}
    )
    endpoint = webhooks.create_endpoint(session, data, actor="test")
    connection = session.connection()
    at = datetime.now(UTC) - timedelta(days=1)
    bulk_insert(
        connection,
        "webhook_outbox",
        20_000,
        {
            "endpoint_id": ":endpoint",
            "event_id": "'E' || n",
            "event_type": "'scan.created'",
            "body": "'{}'",
            "created_at": ":at",
            "next_attempt_at": ":at",
            "attempts": "1",
            "delivered_at": ":at",
        },
        endpoint=endpoint.id,
        at=at,
    )
    connection.execute(
        text(
            "INSERT INTO webhook_delivery (outbox_id, endpoint_id, event_id, attempted_at,"
            " succeeded, status_code, error, duration_ms) SELECT id, endpoint_id, event_id,"
            " delivered_at, true, 200, '', 5 FROM webhook_outbox WHERE endpoint_id = :endpoint"
        ),
        {"endpoint": endpoint.id},
    )

    with captured(session.get_bind().engine) as statements:
        assert endpoint.id is not None
        assert len(webhooks.deliveries(session, endpoint.id, limit=50)) == 50

    # PostgreSQL with statistics (autovacuum keeps them for this table) reads the newest; the
    # statistics of an earlier test's handful of rows would still make it read all 20,000.
    analyze(connection, "webhook_delivery")
    assert_reads_at_most(connection, statements, "webhook_delivery", 1_000)  # 20,000 before
