"""The mail worker: a thread that sends the mail outbox (and runs the notification jobs).

``offertrack serve`` runs one in each process beside the webhook worker (unless
OFFERTRACK_WEBHOOK_WORKER=false), ``offertrack worker`` runs both on their own. Any number may
run at once: each batch is leased (see app.notifications.delivery).
"""

import logging
import threading
import time
from collections.abc import Callable, Sequence

from sqlalchemy import Engine

from app.config import Settings
from app.notifications import alerts, delivery, subscriptions

log = logging.getLogger(__name__)
# A job prepares mails (fans an update out to subscribers, finds offers about to expire) and
# returns how many things it did; a job that did something makes the worker look again at once.
Job = Callable[[Engine, Settings], int]


class Every:
    """``job`` at most every ``seconds`` (for jobs that read offers, not a queue)."""

    def __init__(self, seconds: float, job: Callable[[Engine, Settings], object]) -> None:
        self.seconds = seconds
        self.job = job
        self._last: float | None = None

    def __call__(self, engine: Engine, settings: Settings) -> int:
        now = time.monotonic()
        if self._last is not None and now - self._last < self.seconds:
            return 0
        self._last = now
        self.job(engine, settings)
        return 0  # its mails are in the outbox: nothing for the worker to hurry for


def default_jobs() -> list[Job]:
    return [
        subscriptions.fan_out,
        Every(600, alerts.check_validity),
        Every(600, alerts.send_digests),
    ]


class MailWorker:
    """Runs its jobs and sends due mails until stopped; survives database outages by waiting."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        jobs: Sequence[Job] | None = None,
        poll_seconds: float = 1.0,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._jobs = default_jobs() if jobs is None else list(jobs)
        self._poll = poll_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if not self._settings.smtp_url:
            log.info(
                "No OFFERTRACK_SMTP_URL: mails are written to %s",
                delivery.mail_directory(self._settings).resolve(),
            )
        self._thread = threading.Thread(target=self.run, name="mail-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    def run_once(self) -> int:
        """One pass: every job, then one batch of mails; returns how much was done."""
        done = sum(job(self._engine, self._settings) for job in self._jobs)
        done += delivery.deliver_batch(self._engine, self._settings)
        delivery.update_backlog_metric(self._engine)
        return done

    def run(self) -> None:
        pause, purged_at = 0.0, 0.0
        while not self._stop.wait(pause):
            try:
                done = self.run_once()
                if time.monotonic() - purged_at > 3600:
                    delivery.purge_sent(self._engine, self._settings)
                    subscriptions.purge_unconfirmed(self._engine)
                    purged_at = time.monotonic()
                pause = 0.0 if done else self._poll
            except Exception:  # the database may be down: wait, then try again
                log.exception("mail worker pass failed; retrying")
                pause = min(max(pause * 2, 1.0), 30.0)
