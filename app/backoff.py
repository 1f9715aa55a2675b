"""One rule for a Redis that has gone silent (a host that hangs, a network that drops its
packets: connections are taken, nothing answers).

A call waits REDIS_TIMEOUT_SECONDS for an answer at most; after a call that failed, Redis is
left alone for REDIS_PAUSE_SECONDS, and the caller goes on without it. The miss limit
(``app.tracking.ratelimit``) and cache invalidation (``app.invalidation``) follow it: without
the timeout the miss limit's first check held the event loop, and with it every page of the
process, for good, and every staff save waited 2 s for its invalidation message; without the
pause each caller in a burst would pay the timeout in turn. An answer takes a fraction of a
millisecond on the same network, so the timeout is far from what a working Redis needs.
"""

import time

REDIS_TIMEOUT_SECONDS = 0.25
REDIS_PAUSE_SECONDS = 5.0


class Backoff:
    """Whether a service that has just failed a call is being left alone."""

    def __init__(self, seconds: float = REDIS_PAUSE_SECONDS) -> None:
        self.seconds = seconds
        self._until = 0.0

    def waiting(self) -> bool:
        """True while the service is left alone: do without it."""
        return time.monotonic() < self._until

    def failed(self) -> None:
        """A call failed: leave the service alone for ``seconds``."""
        self._until = time.monotonic() + self.seconds

    def answered(self) -> None:
        """The service was seen to answer again (by another caller): call it at once."""
        self._until = 0.0
