"""Shared state between processes: the miss limit in Redis, invalidation over Redis pub/sub or
PostgreSQL LISTEN/NOTIFY, and how long another process may trust a verified API key."""

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import cast

import pytest
import redis
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import Engine, event
from sqlalchemy.orm import ORMExecuteState
from sqlmodel import Session

from app import invalidation
from app.auth import service as auth_service
from app.auth.models import ApiKey
from app.config import Settings
from app.db import utcnow
from app.main import create_app
from app.tracking.ratelimit import MissLimiter, TooManyMisses
from tests.tcpproxy import TcpProxy


def test_two_processes_share_one_miss_budget_through_redis(redis_url: str) -> None:
    first, second = (MissLimiter(3, storage_uri=redis_url) for _ in range(2))
    client = f"203.0.113.{uuid.uuid4().int % 250}-{uuid.uuid4().hex}"
    first.record_miss(client)
    first.record_miss(client)
    second.check(client)  # 2 of 3 used, wherever they were counted
    second.record_miss(client)
    with pytest.raises(TooManyMisses) as refused:
        first.check(client)
    assert 1 <= refused.value.retry_after <= 60
    second.check("someone-else-" + client)  # a budget per client


def test_redis_holds_no_client_address_and_no_e_mail_address(
    redis_url: str, engine: Engine, settings: Settings
) -> None:
    # The counts were kept under the client's address itself, readable by anyone with Redis.
    address = f"198.51.100.{uuid.uuid4().int % 250}"
    app = create_app(settings.model_copy(update={"redis_url": redis_url}))
    app.state.miss_limiter.record_miss(address)
    app.state.notification_limits.client_sent(address)
    app.state.notification_limits.client_refused(address)
    app.state.notification_limits.order_attempt("01H0WARY2WHGGRF3K72D299T3T")

    client = redis.Redis.from_url(redis_url)
    keys = [key.decode() for key in client.scan_iter("LIMITS*")]
    assert any("offertrack-miss" in key for key in keys)
    assert any("offertrack-form-client" in key for key in keys)
    assert any("offertrack-form-refused" in key for key in keys)
    assert not [key for key in keys if address in key or "@" in key]
    # Two apps of one installation (two nodes) still count a client once.
    other = create_app(settings.model_copy(update={"redis_url": redis_url}))
    other.state.miss_limiter.record_miss(address)
    assert len(list(client.scan_iter("LIMITS*offertrack-miss*"))) == len(
        [key for key in keys if "offertrack-miss" in key]
    )


def test_the_in_memory_default_counts_per_process() -> None:
    first, second = MissLimiter(1), MissLimiter(1)
    first.record_miss("198.51.100.7")
    with pytest.raises(TooManyMisses):
        first.check("198.51.100.7")
    second.check("198.51.100.7")


def test_a_redis_that_does_not_answer_lets_lookups_through() -> None:
    limiter = MissLimiter(1, storage_uri="redis://127.0.0.1:1/0")
    limiter.record_miss("198.51.100.8")
    limiter.check("198.51.100.8")  # no 500, no 429: the pages stay up


def test_a_redis_that_stops_answering_costs_a_mistyped_code_a_moment_not_the_server(
    settings: Settings, silent_redis: str
) -> None:
    """The miss limit asks Redis on the event loop: a Redis without a timeout held the first
    mistyped code's page, and with it every page and probe of the process, for good."""
    app = create_app(settings.model_copy(update={"redis_url": silent_redis}))
    client = TestClient(app, base_url="https://track.example.com")
    answers: list[tuple[int, float]] = []

    def mistype_codes() -> None:
        for _ in range(3):
            started = time.monotonic()
            status = client.get("/ZZZZZZZZZZ").status_code
            answers.append((status, time.monotonic() - started))

    visitor = threading.Thread(target=mistype_codes, daemon=True)
    visitor.start()
    visitor.join(10)

    assert [status for status, _ in answers] == [400, 400, 400]  # let through, not a 429
    first, *later = [seconds for _, seconds in answers]
    assert first < 2
    assert all(seconds < 0.2 for seconds in later)  # Redis is left alone for a while


@pytest.mark.usefixtures("engine")  # the schema: run first, the forms found no table
def test_two_app_instances_share_the_public_forms_limits_through_redis(
    redis_url: str, settings: Settings
) -> None:
    """Subscribe and question attempts count in the miss limit's storage: with Redis, what one
    instance counted, the other refuses (5 attempts per client in 10 minutes)."""
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.web import verify_csrf

    shared = settings.model_copy(update={"redis_url": redis_url})
    visitor = (f"2001:db8:{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}::7", 50000)
    clients = []
    for _ in range(2):
        app = create_app(shared)
        app.dependency_overrides[verify_csrf] = lambda: None  # not what this test is about
        clients.append(TestClient(app, base_url="https://track.example.com", client=visitor))
    form = {"email": "maria@example.com", "message": "Delivery in May?"}

    answers = [
        clients[n % 2].post(f"/01H0WARY2W/{action}", data=form).status_code
        for n, action in enumerate(["subscribe", "question"] * 3)
    ]

    assert 429 not in answers[:5] and answers[5] == 429
    # Another visitor, new to this run too (attempts stay in Redis for 10 minutes).
    other = (f"2001:db8:{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}::8", 50000)
    fresh = TestClient(clients[0].app, base_url="https://track.example.com", client=other)
    assert fresh.post("/01H0WARY2W/subscribe", data=form).status_code != 429


@pytest.fixture
def own_listener_stopped(settings: Settings) -> Iterator[None]:
    """The test app's lifespan started this process's listener; on PostgreSQL it listens on
    the same channel and would hand each message to the same handlers a second time."""
    was_running = invalidation._bus is not None
    invalidation.stop()
    yield
    if was_running:
        invalidation.start(settings.redis_url, settings.database_url)


@pytest.fixture
def heard(own_listener_stopped: None) -> Iterator[list[str]]:
    received: list[str] = []
    invalidation.subscribe("test-topic", received.append)
    yield received
    invalidation._handlers.pop("test-topic", None)


@contextmanager
def _listening(transport: invalidation.Transport) -> Iterator[invalidation.Bus]:
    bus = invalidation.Bus(transport)
    bus.start()
    assert bus.connected.wait(10), "the listener did not connect"
    try:
        yield bus
    finally:
        bus.stop()


def _from_another_process(topic: str, payload: str) -> str:
    return json.dumps({"origin": "another-process", "topic": topic, "payload": payload})


def _wait_for(received: list[str], expected: str, seconds: float = 1.0) -> None:
    deadline = time.monotonic() + seconds
    while expected not in received and time.monotonic() < deadline:
        time.sleep(0.01)
    assert expected in received


@pytest.mark.parametrize("channel", ["redis", "postgresql"])
def test_a_message_from_another_process_arrives_within_a_second(
    channel: str, redis_url: str, engine: Engine, heard: list[str]
) -> None:
    if channel == "redis":
        transport: invalidation.Transport = invalidation.RedisTransport(redis_url)
    elif engine.dialect.name == "postgresql":
        transport = invalidation.PostgresTransport(engine.url.render_as_string(hide_password=False))
    else:
        pytest.skip("LISTEN/NOTIFY: the PostgreSQL run of the suite")
    with _listening(transport):
        assert heard == [invalidation.EVERYTHING]  # on connecting: drop what may be stale
        transport.publish(_from_another_process("test-topic", "01ABC,01DEF"))
        _wait_for(heard, "01ABC,01DEF")
        transport.publish(
            json.dumps({"origin": invalidation.ORIGIN, "topic": "test-topic", "payload": "mine"})
        )
        transport.publish(_from_another_process("other-topic", "not for us"))
        transport.publish(_from_another_process("test-topic", "last"))
        _wait_for(heard, "last")
        assert heard == [invalidation.EVERYTHING, "01ABC,01DEF", "last"]  # not our own echo


def test_a_listener_that_loses_its_connection_reconnects_and_drops_everything(
    redis_url: str, heard: list[str]
) -> None:
    transport = invalidation.RedisTransport(redis_url)
    with _listening(transport) as bus:
        client = redis.Redis.from_url(redis_url)
        # redis-py types its sync and asyncio commands alike (an awaitable or a value).
        clients = cast(list[dict[str, str]], client.client_list())
        (ours,) = [c for c in clients if c["name"] == transport.client_name]
        client.client_kill_filter(_id=ours["id"])  # what a Redis restart does to a listener
        deadline = time.monotonic() + 10
        while heard.count(invalidation.EVERYTHING) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert heard.count(invalidation.EVERYTHING) == 2
        assert bus.connected.wait(5)


def _listeners_down() -> float | None:
    return REGISTRY.get_sample_value("offertrack_invalidation_listeners_down")


def test_a_listener_notices_a_redis_gone_silent_and_hears_again_once_it_answers(
    redis_url: str, heard: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Redis that stops answering (a host that hangs, a network that drops packets) keeps the
    listener's connection open and sends nothing, just like a quiet channel: the listener went
    on reporting itself live, and another process's revocation, never heard, left a verified
    API key trusted here for 30 s instead of one."""
    server = redis_url.removeprefix("redis://").split("/")[0].split(":")
    with TcpProxy((server[0], int(server[1]))) as proxy:
        database = redis_url.rsplit("/", 1)[1]
        transport = invalidation.RedisTransport(f"redis://127.0.0.1:{proxy.port}/{database}")
        bus = invalidation.Bus(transport)
        monkeypatch.setattr(invalidation, "_bus", bus)  # this process's listener
        bus.start()
        try:
            assert bus.connected.wait(10), "the listener did not connect"
            assert invalidation.is_live() and _listeners_down() == 0

            proxy.silence()
            silenced = time.monotonic()
            while invalidation.is_live() and time.monotonic() - silenced < 10:
                time.sleep(0.02)
            noticed = time.monotonic() - silenced
            assert not invalidation.is_live(), "the listener still reports itself live"
            assert noticed < invalidation.PING_SECONDS + 1  # generous: not a benchmark
            assert _listeners_down() == 1
            with pytest.raises(redis.RedisError):  # and Redis is left alone for a while
                transport.publish(_from_another_process("test-topic", "lost"))

            proxy.resume()
            assert bus.connected.wait(10), "the listener did not come back"
            assert _listeners_down() == 0
            assert heard.count(invalidation.EVERYTHING) == 2  # what it may have missed, dropped
            # Heard again, Redis is no longer left alone: a change is announced at once.
            transport.publish(_from_another_process("test-topic", "announced"))
            _wait_for(heard, "announced")
        finally:
            bus.stop()


@pytest.fixture
def tell_keys() -> Iterator[Callable[[], None]]:
    """Only the test tells the key cache of revocations, by calling what it yields. The cache is
    shared by the process, whose own listener (the live app's) may empty it at any moment: a
    change in another process, or everything after a reconnect on a loaded machine. Mid-test,
    that made a key the test had just verified be read again, and found revoked."""
    topic = auth_service.API_KEYS_TOPIC
    handlers = invalidation._handlers.pop(topic, [])

    def tell() -> None:
        for handler in handlers:
            handler(invalidation.EVERYTHING)

    try:
        yield tell
    finally:
        invalidation._handlers[topic] = handlers


def test_a_verified_key_is_trusted_for_a_second_only_while_revocations_cannot_be_heard(
    session: Session, monkeypatch: pytest.MonkeyPatch, tell_keys: Callable[[], None]
) -> None:
    monkeypatch.setattr(invalidation, "is_live", lambda: False)  # no channel to hear it on
    key, token = auth_service.create_api_key(session, "erp", actor="tests")
    auth_service.verified_keys.forget()
    assert auth_service.authenticate(session, token).key_id == key.id
    _revoke_behind_our_back(session, key)  # as another process does, unheard here
    assert auth_service.authenticate(session, token).key_id == key.id  # from memory
    time.sleep(auth_service.REVOCATION_SECONDS + 0.1)
    with pytest.raises(auth_service.InvalidApiKey):
        auth_service.authenticate(session, token)


def test_while_revocations_are_heard_a_verified_key_needs_no_database_read(
    session: Session, monkeypatch: pytest.MonkeyPatch, tell_keys: Callable[[], None]
) -> None:
    monkeypatch.setattr(invalidation, "is_live", lambda: True)
    key, token = auth_service.create_api_key(session, "crm", actor="tests")
    auth_service.verified_keys.forget()
    auth_service.authenticate(session, token)
    _revoke_behind_our_back(session, key)
    time.sleep(auth_service.REVOCATION_SECONDS + 0.1)
    queries: list[ORMExecuteState] = []
    count = queries.append  # one bound method, to remove the listener by
    event.listen(session, "do_orm_execute", count)
    try:
        assert auth_service.authenticate(session, token).key_id == key.id  # from memory
    finally:
        event.remove(session, "do_orm_execute", count)
    assert queries == []  # no database round trip for it
    tell_keys()  # it is heard
    with pytest.raises(auth_service.InvalidApiKey):
        auth_service.authenticate(session, token)


def test_a_revocation_heard_while_a_key_is_read_is_not_undone_by_that_read(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read found the key active; a revocation arrived before the answer was remembered:
    the key must not then be trusted from memory for VERIFIED_TTL_SECONDS."""
    monkeypatch.setattr(invalidation, "is_live", lambda: True)
    key, token = auth_service.create_api_key(session, "bi-tool", actor="tests")
    auth_service.verified_keys.forget()
    heard: list[bool] = []

    def revocation_arrives(_state: ORMExecuteState) -> None:
        if not heard:
            heard.append(True)
            invalidation._deliver(auth_service.API_KEYS_TOPIC, invalidation.EVERYTHING)

    event.listen(session, "do_orm_execute", revocation_arrives)
    try:
        assert auth_service.authenticate(session, token).key_id == key.id  # read it as active
    finally:
        event.remove(session, "do_orm_execute", revocation_arrives)
    assert heard
    _revoke_behind_our_back(session, key)  # the revocation that message announced

    with pytest.raises(auth_service.InvalidApiKey):
        auth_service.authenticate(session, token)


def _revoke_behind_our_back(session: Session, key: ApiKey) -> None:
    key.revoked_at = utcnow()
    session.add(key)
    session.flush()


def test_publishing_without_a_channel_or_to_a_dead_one_never_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    invalidation.publish("pages", "01ABC")  # no bus started: nothing to do
    bus = invalidation.Bus(invalidation.RedisTransport("redis://127.0.0.1:1/0"))
    monkeypatch.setattr(invalidation, "_bus", bus)
    invalidation.publish("pages", "01ABC")
    assert not invalidation.is_live()


def test_installations_on_different_redis_databases_do_not_hear_each_other(redis_url: str) -> None:
    base = redis_url.rsplit("/", 1)[0]
    assert (
        invalidation.RedisTransport(base + "/5").channel
        != invalidation.RedisTransport(base + "/6").channel
    )


def test_revoke_api_key_from_the_command_line(committed: Engine) -> None:
    from typer.testing import CliRunner

    from app.cli import cli

    with Session(committed) as session:
        _, token = auth_service.create_api_key(session, "old-laptop", actor="tests")
        assert auth_service.authenticate(session, token)
    result = CliRunner().invoke(cli, ["revoke-api-key", "old-laptop"])
    assert result.exit_code == 0, result.output
    with Session(committed) as session, pytest.raises(auth_service.InvalidApiKey):
        auth_service.authenticate(session, token)
    again = CliRunner().invoke(cli, ["revoke-api-key", "old-laptop"])
    assert again.exit_code == 2 and "No active API keys are called 'old-laptop'" in again.output


def test_after_a_failed_announcement_the_next_is_logged_and_sent_once_redis_answers_again(
    redis_url: str,
    heard: list[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One publish that timed out (a Redis blip the listeners never noticed) left Redis alone
    for 5 s: every change meanwhile, an API key's revocation included, went unannounced and
    unlogged while the other processes, still hearing, trusted that key for 30 s."""
    transport = invalidation.RedisTransport(redis_url)
    publish = transport._client.publish
    blips = iter([redis.TimeoutError("Timeout reading from socket")])

    def blip_once(channel: str, message: str) -> object:
        for error in blips:
            raise error
        return publish(channel, message)

    monkeypatch.setattr(transport._client, "publish", blip_once)
    with _listening(transport) as bus:
        monkeypatch.setattr(invalidation, "_bus", bus)
        with pytest.raises(redis.RedisError):
            transport.publish(_from_another_process("test-topic", "during the blip"))
        invalidation.publish("api-keys")
        assert "cache invalidation not sent (api-keys)" in caplog.text  # not dropped unsaid

        time.sleep(invalidation.PING_SECONDS + 0.5)  # the listener has asked Redis since
        transport.publish(_from_another_process("test-topic", "revoked"))
        _wait_for(heard, "revoked")


class _SlowToGiveUp:
    """A connection that does not notice ``stop`` in time (a TCP peer gone without a word, a
    read stuck past its timeout): it fails only when the test says so."""

    def __init__(self) -> None:
        self.listening = threading.Event()
        self.give_up = threading.Event()

    def publish(self, message: str) -> None:
        raise AssertionError("not what this test is about")

    def listen(self, deliver: Callable[[str], None], stop: threading.Event) -> None:
        deliver(invalidation._CONNECTED)
        self.listening.set()
        self.give_up.wait(10)
        raise ConnectionError("connection reset by peer")


@pytest.mark.usefixtures("own_listener_stopped")
def test_a_listener_that_outlives_stop_never_reports_itself_down_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Stopping waits a while for the listening thread, then goes on without it. The thread,
    ending later, set the gauge of a process that had stopped listening (or that listens on a
    new connection since) back to one listener down, and every alert on it fired for good."""
    monkeypatch.setattr(invalidation, "STOP_WAIT_SECONDS", 0.05)
    transport = _SlowToGiveUp()
    bus = invalidation.Bus(transport)
    monkeypatch.setattr(invalidation, "_bus", bus)  # this process's listener
    bus.start()
    assert transport.listening.wait(10) and bus.connected.wait(10)
    assert _listeners_down() == 0

    invalidation.stop()  # as the server's shutdown does
    assert bus._thread.is_alive()  # stop() returned without it
    assert _listeners_down() == 0
    transport.give_up.set()  # the lost connection is noticed only now
    bus._thread.join(10)

    assert not bus._thread.is_alive()
    assert _listeners_down() == 0
