"""Throttle for failed code lookups: guessing codes gets slow, valid codes never are.

Counted by the ``limits`` library in a moving window: in process memory by default (one
process), in Redis when ``OFFERTRACK_REDIS_URL`` is set, so that every process and node
shares one budget per client. A Redis that does not answer lets lookups through (logged):
the throttle slows guessing down, it must not take the tracking pages with it.

With Redis, a check is a round trip made on the event loop (a fraction of a millisecond on
the same network), and only for lookups that already failed: views of valid codes never
touch the limiter. So a Redis that stops answering (a host gone, a network that drops packets)
may cost a lookup REDIS_TIMEOUT_SECONDS at most, and is then left alone for
REDIS_PAUSE_SECONDS (``app.backoff``): without a timeout the first miss blocked the event
loop, and so every page of the process, for good; without the pause a guesser's burst of
misses would pay the timeout on every one.
"""

import hashlib
import hmac
import logging
import math
import secrets
import time

from limits import RateLimitItemPerSecond, strategies
from limits.errors import StorageError
from limits.storage import MemoryStorage, storage_from_string

from app.backoff import REDIS_TIMEOUT_SECONDS, Backoff
from app.errors import AppError

log = logging.getLogger(__name__)
NAMESPACE = "offertrack-miss"
# Counts are kept under a keyed hash of the client's address, never the address itself (a
# shared Redis holds them for the window): this process's own key unless the app passes the
# installation's, which every process and node shares.
_PROCESS_PEPPER = secrets.token_bytes(32)


class TooManyMisses(AppError):
    status_code = 429
    title = "Too many attempts"
    web_template = "tracking/lookup_error.html"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Too many codes were not found from your connection. Please wait {retry_after} "
            "seconds, then check the code on your document and try again."
        )
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class MissLimiter:
    def __init__(
        self,
        limit: int,
        window_seconds: int = 60,
        storage_uri: str = "memory://",
        namespace: str = NAMESPACE,
        pepper: bytes = _PROCESS_PEPPER,
    ) -> None:
        # ``namespace`` keeps other budgets kept the same way (the public forms') apart from
        # the misses in a shared Redis, even for the same client address.
        self.item = RateLimitItemPerSecond(limit, window_seconds, namespace=namespace)
        options: dict[str, float | bool] = {}
        if not storage_uri.startswith("memory"):
            options = {
                "wrap_exceptions": True,
                "socket_timeout": REDIS_TIMEOUT_SECONDS,
                "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
            }
        self.storage = storage_from_string(storage_uri, **options)
        self._window = strategies.MovingWindowRateLimiter(self.storage)
        self._window_seconds = window_seconds
        self._next_sweep = 0.0
        self._storage_away = Backoff()
        self._pepper = pepper

    def _key(self, client: str) -> str:
        return hmac.new(self._pepper, client.encode(), hashlib.sha256).hexdigest()[:32]

    def check(self, client: str) -> None:
        """Raise TooManyMisses while ``client`` has used up its misses."""
        if self._storage_away.waiting():
            return
        client = self._key(client)
        try:
            if self._window.test(self.item, client):
                return
            reset_at = self._window.get_window_stats(self.item, client).reset_time
        except StorageError as exc:
            self._storage_failed("miss limit not checked", exc)
            return
        raise TooManyMisses(max(1, math.ceil(reset_at - time.time())))

    def record_miss(self, client: str) -> None:
        if self._storage_away.waiting():
            return
        try:
            self._window.hit(self.item, self._key(client))
        except StorageError as exc:
            self._storage_failed("miss not counted", exc)
        if isinstance(self.storage, MemoryStorage):
            self._forget_idle_clients(self.storage)

    def _storage_failed(self, what: str, exc: StorageError) -> None:
        """Let lookups through uncounted for a while, then ask the storage again."""
        self._storage_away.failed()
        log.warning(
            "%s: the rate limit storage does not answer (%s); lookups are let through for %g s",
            what,
            exc.storage_error,
            self._storage_away.seconds,
        )

    def _forget_idle_clients(self, storage: MemoryStorage) -> None:
        """Drop the clients whose window has passed, at most once a window.

        limits' memory storage (5.8) empties a client's list of hits once they expire but keeps
        the client's key for good: one key per address (per /64) that ever missed, which a
        server running for weeks, or a guesser rotating addresses, grows without end; and its
        expiry timer walks every key it holds each time it runs. Redis expires its keys itself.
        """
        now = time.time()
        if now < self._next_sweep:
            return
        self._next_sweep = now + self._window_seconds
        for key, hits in list(storage.events.items()):
            if hits and hits[0].expiry > now:  # newest first: this client is still counted
                continue
            with storage.locks[key]:  # the lock limits takes to add a hit to this key
                hits = storage.events.get(key, [])
                if hits and hits[0].expiry > now:  # a hit came meanwhile
                    continue
                storage.events.pop(key, None)
                storage.locks.pop(key, None)  # as limits drops the lock of a key without hits
