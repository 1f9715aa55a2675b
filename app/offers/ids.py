"""Offer ids: ULIDs whose millisecond is unique per offer and whose 80 random bits are fresh.

python-ulid increments the random part for ULIDs made in the same millisecond, which makes a
neighbour's id guessable; we never use that path. Each id takes its random bits from
``os.urandom`` and a millisecond no other id of this process has used. Across processes the
unique constraint on ``tracking_id`` catches a clash and the service retries with a later one.
"""

import os
import threading
import time

from ulid import ULID

# The format of a tracking ID is written once, in app.formats (core), and offered here too.
from app.formats import TRACKING_ID_LENGTH as TRACKING_ID_LENGTH
from app.formats import hyphenate_tracking_id as hyphenate_tracking_id

ULID_LENGTH = 26


class _MillisecondClock:
    """Hands out strictly increasing milliseconds, never earlier than the wall clock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0

    def next(self, not_before: int = 0) -> int:
        with self._lock:
            now = time.time_ns() // 1_000_000
            self._last = max(now, self._last + 1, not_before)
            return self._last


_clock = _MillisecondClock()


def new_offer_ulid(not_before_ms: int = 0) -> str:
    """A fresh ULID on a millisecond this process has not used, at or after ``not_before_ms``."""
    millis = _clock.next(not_before_ms)
    return str(ULID.from_bytes(millis.to_bytes(6, "big") + os.urandom(10)))


def ulid_millis(value: str) -> int:
    return int(ULID.from_str(value).milliseconds)


def tracking_id_of(ulid: str) -> str:
    return ulid[:TRACKING_ID_LENGTH]
