"""Cache invalidation across processes and nodes: a change committed in one process drops the
copies that every other process keeps in memory (tracking pages, verified API keys, campaign
routing rules).

Messages go through Redis pub/sub when ``OFFERTRACK_REDIS_URL`` is set, else through
PostgreSQL's ``LISTEN/NOTIFY``; on SQLite without Redis there is no channel (one node), and
the caches keep to their own short lifetimes. Each server process listens on a thread of its
own. Delivery is not guaranteed (a listener may be reconnecting), so a process that was not
listening drops everything it holds when it (re)connects, and the caches ask ``is_live()``
before trusting an entry for longer than a moment.

A Redis gone silent (connections taken, nothing answered) looks like a quiet channel: the
listener asks it whenever nothing came for PING_SECONDS, and takes an answer that does not come
within REDIS_TIMEOUT_SECONDS for a lost connection. Publishing follows the same rule
(``app.backoff``): one short wait, then Redis is left alone for a few seconds.
"""

import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from app.backoff import REDIS_TIMEOUT_SECONDS, Backoff
from app.db import PG_TIMEOUTS
from app.metrics import INVALIDATION_LISTENERS_DOWN

log = logging.getLogger(__name__)

CHANNEL = "offertrack_invalidate"
EVERYTHING = "*"  # the topic a handler receives when it missed messages: drop all it holds
RECONNECT_SECONDS = 0.5
# How often an idle listener checks its connection: a dead or silent one is noticed within
# this time (and the answer's wait), and a verified API key is then trusted for a second only.
PING_SECONDS = 1.0
# How long stopping waits for the listening thread: a listener asks at least that often
# whether it should stop, so it normally ends well within it.
STOP_WAIT_SECONDS = PING_SECONDS + 2

Handler = Callable[[str], None]
_handlers: dict[str, list[Handler]] = {}
# Tells our own messages apart from the other processes' (this process applied them already).
ORIGIN = f"{os.getpid()}-{secrets.token_hex(4)}"


class Transport(Protocol):
    def publish(self, message: str) -> None: ...

    def listen(self, deliver: Callable[[str], None], stop: threading.Event) -> None:
        """Deliver messages until ``stop`` is set; return (or raise) when the connection ends."""


def subscribe(topic: str, handler: Handler) -> None:
    """Call ``handler(payload)`` for each message on ``topic`` from another process, and with
    EVERYTHING when messages may have been missed."""
    _handlers.setdefault(topic, []).append(handler)


def publish(topic: str, payload: str = EVERYTHING) -> None:
    """Tell the other processes; never raises (their caches expire on their own anyway)."""
    bus = _bus
    if bus is None:
        return
    message = json.dumps({"origin": ORIGIN, "topic": topic, "payload": payload})
    try:
        bus.transport.publish(message)
    except Exception:
        log.warning("cache invalidation not sent (%s); other processes expire it", topic)


def is_live() -> bool:
    """True while this process receives the other processes' invalidations."""
    bus = _bus
    return bus is not None and bus.connected.is_set()


class Bus:
    """The listening thread of one process, reconnecting until stopped."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.connected = threading.Event()
        self._stop = threading.Event()
        # Held for every change of the liveness gauge, and by ``stop``: a thread that outlives
        # the join (a connection slow to give up) must not set the gauge of a process that has
        # stopped listening, or of the listener started after it, once ``stop`` has returned.
        self._gauge = threading.Lock()
        self._thread = threading.Thread(
            target=self._run, name="offertrack invalidation", daemon=True
        )

    def start(self) -> None:
        self._report_down(True)  # until it hears
        self._thread.start()

    def stop(self) -> None:
        with self._gauge:
            self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=STOP_WAIT_SECONDS)

    def _report_down(self, down: bool) -> None:
        with self._gauge:
            if not self._stop.is_set():
                INVALIDATION_LISTENERS_DOWN.set(1 if down else 0)

    def _run(self) -> None:
        warned = False  # once per outage: a silent channel fails every reconnection
        while not self._stop.is_set():
            try:
                self.transport.listen(self._on_message, self._stop)
            except Exception as exc:
                if not self._stop.is_set() and (self.connected.is_set() or not warned):
                    log.warning("cache invalidation channel lost (%s); reconnecting", exc)
                    warned = True
            self._live(False)
            self._stop.wait(RECONNECT_SECONDS)

    def _live(self, live: bool) -> None:
        if live:
            self.connected.set()
        else:
            self.connected.clear()
        self._report_down(not live)

    def _on_message(self, message: str) -> None:
        if message == _CONNECTED:
            # Whatever was published while we were not listening is lost: start afresh.
            _deliver_everywhere(EVERYTHING)
            self._live(True)
            log.info("cache invalidation channel listening")
            return
        try:
            data: dict[str, Any] = json.loads(message)
        except ValueError:
            return
        if data.get("origin") != ORIGIN:
            _deliver(str(data.get("topic")), str(data.get("payload")))


_CONNECTED = "\x00connected"  # what a transport delivers once it listens


def _deliver(topic: str, payload: str) -> None:
    for handler in _handlers.get(topic, ()):
        try:
            handler(payload)
        except Exception:
            log.exception("cache invalidation handler failed for %s", topic)


def _deliver_everywhere(payload: str) -> None:
    for topic in list(_handlers):
        _deliver(topic, payload)


class RedisTransport:
    def __init__(self, url: str) -> None:
        import redis

        self._url = url
        self._client = redis.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
        )
        self._left_alone = Backoff()
        # Pub/sub ignores database numbers: the channel names ours, so that installations
        # sharing one Redis on different databases do not hear each other.
        self.channel = f"{CHANNEL}:{self._client.connection_pool.connection_kwargs.get('db', 0)}"
        self.client_name = f"offertrack-listener-{ORIGIN}"

    def publish(self, message: str) -> None:
        """Sent after a commit, in the saving request: a silent Redis may cost it one short
        wait, and is then left alone (the other processes' copies expire on their own)."""
        import redis

        if self._left_alone.waiting():  # raised, so the caller logs the change as not sent
            raise redis.ConnectionError("Redis is left alone after a call it did not answer")
        try:
            self._client.publish(self.channel, message)
        except redis.RedisError:
            self._left_alone.failed()
            raise

    def listen(self, deliver: Callable[[str], None], stop: threading.Event) -> None:
        import redis

        client = redis.Redis.from_url(
            self._url,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            client_name=self.client_name,
        )
        with client.pubsub() as pubsub:  # type: ignore[no-untyped-call]
            pubsub.subscribe(self.channel)
            # Any answer the listener hears, a reconnection's or a PING's, shows Redis answers
            # again: changes must not go unannounced for the rest of a pause (the other
            # processes, hearing all along or again, would trust a key revoked meanwhile).
            _hear(pubsub, deliver, stop, answered=self._left_alone.answered)


def _hear(
    pubsub: Any,
    deliver: Callable[[str], None],
    stop: threading.Event,
    *,
    answered: Callable[[], None],
) -> None:
    """Deliver a Redis channel's messages until ``stop``, and call ``answered`` on each answer;
    raise once Redis leaves a question unanswered (the subscription, or a PING when nothing
    came for PING_SECONDS)."""
    import redis

    heard = time.monotonic()
    asked: float | None = heard  # the subscription: its confirmation answers
    while not stop.is_set():
        now = time.monotonic()
        if asked is not None and now - asked > REDIS_TIMEOUT_SECONDS:
            raise redis.TimeoutError(f"no answer from Redis in {REDIS_TIMEOUT_SECONDS:g} s")
        if asked is None and now - heard > PING_SECONDS:
            pubsub.ping()
            asked = now
        wait = PING_SECONDS if asked is None else REDIS_TIMEOUT_SECONDS
        message = pubsub.get_message(timeout=wait)
        if message is None:
            continue
        heard, asked = time.monotonic(), None
        answered()
        if message["type"] == "subscribe":
            deliver(_CONNECTED)
        elif message["type"] == "message":
            deliver(message["data"].decode())


class PostgresTransport:
    def __init__(self, url: str) -> None:
        from sqlalchemy.engine import make_url

        # psycopg's own URL: the listener holds a plain connection, outside SQLAlchemy's pool.
        self._url = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)

    def publish(self, message: str) -> None:
        import psycopg

        with psycopg.connect(self._url, autocommit=True, **PG_TIMEOUTS) as connection:
            connection.execute("SELECT pg_notify(%s, %s)", (CHANNEL, message))

    def listen(self, deliver: Callable[[str], None], stop: threading.Event) -> None:
        import psycopg

        with psycopg.connect(self._url, autocommit=True, **PG_TIMEOUTS) as connection:
            connection.execute(f"LISTEN {CHANNEL}")
            deliver(_CONNECTED)
            pinged = time.monotonic()
            while not stop.is_set():
                for notify in connection.notifies(timeout=1.0):
                    deliver(notify.payload)
                if time.monotonic() - pinged > PING_SECONDS:
                    connection.execute("SELECT 1")  # a dead connection raises here
                    pinged = time.monotonic()


_bus: Bus | None = None


def transport_for(redis_url: str, database_url: str) -> Transport | None:
    if redis_url:
        return RedisTransport(redis_url)
    if database_url.startswith("postgresql"):
        return PostgresTransport(database_url)
    return None


def start(redis_url: str, database_url: str, *, listen: bool = True) -> bool:
    """Publish through Redis, else PostgreSQL, and listen on a thread (a server process; a
    command-line process only publishes); nothing on plain SQLite. True if this call started
    the channel (and so its caller stops it)."""
    global _bus
    transport = transport_for(redis_url, database_url)
    if transport is None or _bus is not None:
        return False
    _bus = Bus(transport)
    if listen:
        _bus.start()
    return True


def stop() -> None:
    global _bus
    bus, _bus = _bus, None
    if bus is not None:
        bus.stop()
        INVALIDATION_LISTENERS_DOWN.set(0)  # none left to be down
