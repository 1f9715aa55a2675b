"""A test event ("ping") for a webhook endpoint, from the API (the staff site's button:
tests/admin/test_webhook_ping_page.py): signed like
every delivery, through the same egress check and timeout, its result told at once, and
nothing else about the endpoint changed."""

import ipaddress
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from app.analytics import delivery, webhooks
from app.analytics.models import WebhookDelivery, WebhookEndpoint, WebhookOutbox
from app.config import get_settings
from tests.analytics.test_webhooks import Receiver, verify

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8")]


@pytest.fixture
def loopback_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    # The receivers here listen on loopback, which an operator has to allow deliberately.
    monkeypatch.setattr(get_settings(), "webhook_allowed_networks", LOOPBACK)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


def _endpoint(session: Session, url: str, secret: str = "whsec_test", **state: object) -> int:
    """An endpoint written straight to the table (the URL checks of creation are not tested
    here), in the state given."""
    endpoint = WebhookEndpoint(url=url, secret=secret, event_types=["conversion.created"])
    for name, value in state.items():
        setattr(endpoint, name, value)
    session.add(endpoint)
    session.commit()
    assert endpoint.id is not None
    return endpoint.id


def _nothing_queued_or_logged(session: Session) -> None:
    for table in (WebhookOutbox, WebhookDelivery):
        assert session.exec(select(func.count()).select_from(table)).one() == 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.usefixtures("loopback_allowed")
def test_a_test_event_arrives_signed_and_the_api_says_how_it_went(
    api: TestClient, session: Session, receiver: Receiver
) -> None:
    endpoint_id = _endpoint(session, receiver.url, "whsec_ping")
    receiver.secret = "whsec_ping"

    answer = api.post(f"/api/v1/webhooks/{endpoint_id}/test")

    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["delivered"] is True and result["status_code"] == 204
    assert result["error"] == "" and result["duration_ms"] >= 0
    assert receiver.bad_signatures == 0
    ((headers, body),) = receiver.requests
    assert verify("whsec_ping", headers["OfferTrack-Signature"], body)
    assert headers["OfferTrack-Event-Type"] == "ping"
    assert headers["OfferTrack-Event-Id"] == result["event_id"]
    event = json.loads(body)
    assert event["type"] == "ping" and event["id"] == result["event_id"]
    assert event["data"] == {"endpoint_id": endpoint_id}
    _nothing_queued_or_logged(session)


@pytest.mark.usefixtures("loopback_allowed")
def test_a_disabled_endpoint_can_be_tested_and_stays_as_it_was(
    api: TestClient, session: Session, receiver: Receiver
) -> None:
    since = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)
    endpoint_id = _endpoint(
        session,
        receiver.url,
        enabled=False,
        disabled_at=since,
        failure_count=20,
        failing_since=since,
        last_error="HTTP 503",
    )
    receiver.secret = "whsec_test"

    result = api.post(f"/api/v1/webhooks/{endpoint_id}/test").json()

    assert result["delivered"] is True and len(receiver.events) == 1
    read = api.get(f"/api/v1/webhooks/{endpoint_id}").json()
    assert read["enabled"] is False and read["failure_count"] == 20  # a success clears nothing
    assert datetime.fromisoformat(read["failing_since"]) == since
    assert read["last_error"] == "HTTP 503"


def test_an_internal_address_is_refused_and_never_connected_to(
    api: TestClient, session: Session, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stored while loopback was allowed; the operator has taken the allowance back since.
    endpoint_id = _endpoint(session, receiver.url)
    connections: list[object] = []
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: connections.append(a))

    result = api.post(f"/api/v1/webhooks/{endpoint_id}/test").json()

    assert result["delivered"] is False and result["status_code"] is None
    assert result["error"].startswith(
        "Refused: The URL points to an internal address (127.0.0.1)"
    ), result["error"]
    assert connections == [] and receiver.requests == []


@pytest.mark.usefixtures("loopback_allowed")
def test_a_failing_test_counts_no_failure_and_is_not_retried(
    api: TestClient, session: Session, receiver: Receiver
) -> None:
    receiver.fail_first = 5  # answers 500
    endpoint_id = _endpoint(session, receiver.url)

    result = api.post(f"/api/v1/webhooks/{endpoint_id}/test").json()

    assert result["delivered"] is False and result["status_code"] == 500
    assert result["error"] == "HTTP 500" and receiver.fail_first == 4
    read = api.get(f"/api/v1/webhooks/{endpoint_id}").json()
    assert read["enabled"] is True and read["failure_count"] == 0
    assert read["failing_since"] is None and read["last_error"] == ""
    _nothing_queued_or_logged(session)


@pytest.mark.concurrency
@pytest.mark.usefixtures("loopback_allowed")
def test_a_failed_test_is_never_sent_again_by_a_worker(
    committed: Engine, receiver: Receiver
) -> None:
    receiver.fail_first = 5
    fast = get_settings().model_copy(update={"webhook_retry_base_seconds": 0.01})
    with Session(committed) as session:
        endpoint_id = _endpoint(session, receiver.url)
        assert not webhooks.send_ping(session, endpoint_id, fast).delivered

    time.sleep(0.05)  # past any retry's backoff
    claimed = delivery.deliver_batch(committed, fast)

    assert claimed == 0 and receiver.fail_first == 4  # the one request of the test, no more


@pytest.mark.usefixtures("loopback_allowed")
def test_connection_refused_timeout_and_tls_errors_are_said_in_words(
    api: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "webhook_timeout_seconds", 0.3)
    slow, plain = Receiver(delay=1.0), Receiver()
    try:
        closed = _endpoint(session, f"http://127.0.0.1:{_free_port()}/hook")
        timing_out = _endpoint(session, slow.url)
        tls_to_plain = _endpoint(session, plain.url.replace("http://", "https://"))

        errors = {
            name: api.post(f"/api/v1/webhooks/{endpoint_id}/test").json()["error"]
            for name, endpoint_id in (
                ("closed", closed),
                ("slow", timing_out),
                ("tls", tls_to_plain),
            )
        }
    finally:
        slow.close()
        plain.close()

    assert errors["closed"].startswith("Connection refused: nothing accepts connections at")
    assert errors["slow"].startswith("Timed out: 127.0.0.1:") and "0.3 seconds" in errors["slow"]
    assert errors["tls"].startswith("TLS error: "), errors["tls"]


def test_an_unknown_endpoint_is_a_404_and_the_operation_is_documented(api: TestClient) -> None:
    assert api.post("/api/v1/webhooks/999999/test").status_code == 404
    api.headers.pop("Authorization")
    assert api.post("/api/v1/webhooks/1/test").status_code == 401

    schema = api.get("/openapi.json").json()
    operation = schema["paths"]["/api/v1/webhooks/{endpoint_id}/test"]["post"]
    assert "ping" in operation["description"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/WebhookTestResult"
    )


class _Trickler:
    """A receiver that answers one header byte at a time, each well within the timeout, and
    takes ``seconds`` over the whole answer: a slow or hostile receiver."""

    def __init__(self, seconds: float) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(5)
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}/hook"
        self._thread = threading.Thread(target=self._answer, args=(seconds,), daemon=True)
        self._thread.start()

    def _answer(self, seconds: float) -> None:
        try:
            connection, _ = self._server.accept()
        except OSError:
            return
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            until = time.monotonic() + seconds
            try:
                while time.monotonic() < until:
                    connection.sendall(b"z")
                    time.sleep(0.05)
                connection.sendall(b"\r\nContent-Length: 0\r\n\r\n")
            except OSError:  # the sender hung up: what it should do
                return

    def close(self) -> None:
        self._server.close()
        self._thread.join(timeout=10)


@pytest.mark.usefixtures("loopback_allowed")
def test_a_receiver_that_trickles_its_answer_is_cut_off_at_the_timeout(
    api: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The timeout bounds the whole request, not each read: a receiver sending a byte every
    50 ms would otherwise hold the request (and a server thread) as long as it likes, while
    the page says it did not answer within the timeout."""
    monkeypatch.setattr(get_settings(), "webhook_timeout_seconds", 0.5)
    trickler = _Trickler(seconds=3)
    try:
        endpoint_id = _endpoint(session, trickler.url)
        started = time.monotonic()
        result = api.post(f"/api/v1/webhooks/{endpoint_id}/test").json()
        took = time.monotonic() - started
    finally:
        trickler.close()

    assert result["delivered"] is False, result
    assert result["error"].startswith("Timed out: 127.0.0.1:") and "0.5 seconds" in result["error"]
    assert took < 1.5


@pytest.mark.concurrency
@pytest.mark.usefixtures("loopback_allowed")
def test_test_events_sent_at_once_are_limited_and_the_one_too_many_is_told_to_wait(
    committed: Engine,
) -> None:
    """Each test event holds a server thread until its receiver answers or the timeout ends,
    and those threads serve every other request too: a script (or a leaked API key) sending
    dozens at once to a receiver that never answers would stall the whole site."""
    slow = Receiver(delay=1.0)
    slow.secret = "whsec_test"
    too_many = webhooks.MAX_TESTS_AT_ONCE + 1
    start, outcomes = threading.Barrier(too_many), list[bool | str]()

    def test_once(endpoint_id: int) -> None:
        with Session(committed) as session:
            start.wait()
            try:
                outcomes.append(webhooks.send_ping(session, endpoint_id, get_settings()).delivered)
            except webhooks.BusyWithTestEvents as busy:
                outcomes.append(busy.headers()["Retry-After"])

    try:
        with Session(committed) as session:
            endpoint_id = _endpoint(session, slow.url)
        threads = [threading.Thread(target=test_once, args=(endpoint_id,)) for _ in range(too_many)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        slow.close()

    assert outcomes.count(True) == webhooks.MAX_TESTS_AT_ONCE and outcomes.count("10") == 1
    assert len(slow.events) == webhooks.MAX_TESTS_AT_ONCE


def test_the_api_answers_503_with_retry_after_while_tests_are_busy(
    api: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint_id = _endpoint(session, "http://127.0.0.1:9/hook")
    monkeypatch.setattr(webhooks, "MAX_TESTS_AT_ONCE", 0)
    connections: list[object] = []
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: connections.append(a))

    answer = api.post(f"/api/v1/webhooks/{endpoint_id}/test")

    assert answer.status_code == 503 and answer.headers["Retry-After"] == "10"
    assert "test events are being sent already" in answer.json()["detail"]
    assert connections == []
