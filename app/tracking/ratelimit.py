"""Throttle for failed code lookups: guessing codes gets slow, valid codes never are.

Kept in process memory: a guesser gets at most ``limit`` misses a minute per worker process,
which is what the limit is for, and a restart forgives everyone.
"""

import math
import threading
import time
from collections import OrderedDict, deque

from app.errors import AppError

MAX_TRACKED_CLIENTS = 100_000


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
    def __init__(self, limit: int, window_seconds: float = 60.0) -> None:
        self.limit = limit
        self.window = window_seconds
        self._misses: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, client: str) -> None:
        """Raise TooManyMisses while ``client`` has used up its misses."""
        with self._lock:
            misses = self._recent(client, time.monotonic())
            if len(misses) >= self.limit:
                raise TooManyMisses(max(1, math.ceil(misses[0] + self.window - time.monotonic())))

    def record_miss(self, client: str) -> None:
        with self._lock:
            self._recent(client, time.monotonic()).append(time.monotonic())
            self._misses.move_to_end(client)
            while len(self._misses) > MAX_TRACKED_CLIENTS:
                self._misses.popitem(last=False)

    def _recent(self, client: str, now: float) -> deque[float]:
        misses = self._misses.setdefault(client, deque())
        while misses and misses[0] <= now - self.window:
            misses.popleft()
        return misses
