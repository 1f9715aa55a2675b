"""Mail delivery: the worker sends outbox rows, at least once, with exponential backoff.

The webhook worker's design (app.analytics.delivery): a worker leases a batch of due rows
(``locked_until``) in a short transaction, on PostgreSQL with SELECT ... FOR UPDATE SKIP LOCKED,
on SQLite under its writer lock; a worker killed mid-batch leaves leases that expire and the
mails are sent again, with the same Message-ID.

SMTP is the standard library's smtplib, in the worker's thread: the worker is a thread doing
blocking database work already (as the webhook worker does with urllib), smtplib is maintained
with Python itself and does STARTTLS, implicit TLS and AUTH; an asyncio client (aiosmtplib)
would need an event loop inside that thread and buy nothing here.
"""

import logging
import smtplib
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import unquote, urlsplit

from sqlalchemy import Engine, and_, delete, func, or_, select, update

from app.config import Settings
from app.db import nothing_to_claim, utcnow
from app.files import make_private_dir, write_atomically
from app.metrics import MAIL_FAILURES, MAIL_OUTBOX_DEPTH, MAILS_SENT
from app.notifications.mail import sender
from app.notifications.models import MailOutbox
from app.observability import without_addresses

log = logging.getLogger(__name__)
BATCH_SIZE = 100
# Sent mails are marked in groups of this many, one transaction each: a worker that dies
# before marking sends at most this many again (at least once, as promised), and a batch costs
# a few commits rather than one per mail.
SENT_FLUSH = 20
KEEP_REFUSED = timedelta(days=30)

_mail = MailOutbox.__table__.c  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ClaimedMail:
    id: int
    recipient: str
    message: bytes
    attempts: int
    message_id: str


class TransientFailure(Exception):
    """Try again later: the server is away, busy (4xx), or the connection broke."""


class PermanentFailure(Exception):
    """The server refused this mail for good (5xx): it is not tried again."""


class Deferred(Exception):
    """The server put off this one mail (4xx, e.g. greylisting); the session goes on."""


class Transport(Protocol):
    def send(self, mail: ClaimedMail) -> None: ...


def backoff(attempts: int, settings: Settings) -> timedelta:
    """Wait before the next attempt: base, 2 x base, 4 x base ... capped."""
    seconds = settings.mail_retry_base_seconds * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, settings.mail_retry_max_seconds))


def claim(engine: Engine, settings: Settings, limit: int = BATCH_SIZE) -> list[ClaimedMail]:
    """Lease up to ``limit`` due mails to this worker."""
    now = utcnow()
    query = (
        select(_mail.id, _mail.recipient, _mail.message, _mail.attempts, _mail.message_id)
        .where(_mail.sent_at.is_(None), _mail.failed_at.is_(None), _mail.next_attempt_at <= now)
        .where(or_(_mail.locked_until.is_(None), _mail.locked_until < now))
        .order_by(_mail.id)
        .limit(limit)
    )
    if nothing_to_claim(engine, query):
        return []
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        found: Sequence[Any] = connection.execute(query).all()
        rows = [ClaimedMail(*row) for row in found]
        if rows:
            lease = now + timedelta(seconds=settings.mail_lease_seconds)
            connection.execute(
                update(MailOutbox)
                .where(_mail.id.in_([row.id for row in rows]))
                .values(locked_until=lease)
            )
    return rows


class SmtpTransport:
    """One SMTP session for a batch of mails, opened on the first mail."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._url = urlsplit(settings.smtp_url)
        self._client: smtplib.SMTP | None = None
        self._envelope_from = sender(settings)[1]

    def _connect(self) -> smtplib.SMTP:
        url, timeout = self._url, self._settings.mail_timeout_seconds
        host = url.hostname or "localhost"
        context = ssl.create_default_context()
        client: smtplib.SMTP
        if url.scheme == "smtps":
            client = smtplib.SMTP_SSL(host, url.port or 465, timeout=timeout, context=context)
        else:
            client = smtplib.SMTP(host, url.port or 587, timeout=timeout)
            client.ehlo()
            if client.has_extn("starttls"):
                client.starttls(context=context)
                client.ehlo()
            elif url.username:
                client.close()  # never send a password in the clear
                raise TransientFailure(f"{host} offers no STARTTLS; refusing to log in")
        if url.username:
            client.login(unquote(url.username), unquote(url.password or ""))
        return client

    def send(self, mail: ClaimedMail) -> None:
        try:
            if self._client is None:
                self._client = self._connect()
            self._client.sendmail(self._envelope_from, [mail.recipient], mail.message)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            raise _classified(code, reply) from exc
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            raise _classified(exc.smtp_code, exc.smtp_error) from exc
        except (smtplib.SMTPException, OSError) as exc:
            self._client = None  # the session is in an unknown state: a new one next time
            raise TransientFailure(f"{type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.quit()
            except (smtplib.SMTPException, OSError):
                pass  # the mails are sent; a session that ends badly changes nothing
            self._client = None


def _classified(code: int, reply: bytes | str) -> Exception:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
    message = f"SMTP {code}: {text}"
    return PermanentFailure(message) if 500 <= code < 600 else Deferred(message)


def mail_file(directory: Path, mail_id: int) -> Path:
    return directory / f"{mail_id:08d}.eml"


class FileTransport:
    """No SMTP configured (development): each mail becomes ``{var_dir}/mail/<id>.eml``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, mail: ClaimedMail) -> None:
        path = mail_file(self.directory, mail.id)
        try:
            # Mails hold customers' names, addresses and offers: their owner's only, as the
            # backups are (in a data directory other local users may list).
            make_private_dir(self.directory)
            # A reader never sees half a mail, a full disk leaves none; a retry writes the same.
            write_atomically(path, mail.message, mode=0o600)
        except OSError as exc:
            # A full or read-only disk is this transport's server being away: the mails wait
            # and are retried, as over SMTP. Raised as it was, it ended the worker's pass with a
            # traceback and left the batch leased, its attempts and error unrecorded.
            raise TransientFailure(f"cannot write {path}: {exc.strerror or exc}") from exc
        log.info("mail %s written to %s (no OFFERTRACK_SMTP_URL set)", mail.id, path)

    def close(self) -> None:
        pass


def mail_directory(settings: Settings) -> Path:
    return settings.var_dir / "mail"


@contextmanager
def transport_for(settings: Settings) -> Iterator[SmtpTransport | FileTransport]:
    transport: SmtpTransport | FileTransport = (
        SmtpTransport(settings) if settings.smtp_url else FileTransport(mail_directory(settings))
    )
    try:
        yield transport
    finally:
        transport.close()


def mark_sent(engine: Engine, mails: Sequence[ClaimedMail]) -> None:
    if not mails:
        return
    with engine.begin() as connection:
        connection.execute(
            update(MailOutbox)
            .where(_mail.id.in_([mail.id for mail in mails]))
            .values(sent_at=utcnow(), attempts=_mail.attempts + 1, locked_until=None, last_error="")
        )
    MAILS_SENT.inc(len(mails))


def mark_failed(
    engine: Engine, mails: Sequence[ClaimedMail], error: str, settings: Settings, *, final: bool
) -> None:
    """A refused mail is kept as failed; mails that met a transient failure wait and retry."""
    now = utcnow()
    with engine.begin() as connection:
        for mail in mails:
            attempts = mail.attempts + 1
            values: dict[str, Any] = {
                "attempts": attempts,
                "locked_until": None,
                "last_error": error[:500],
            }
            if final:
                values["failed_at"] = now
            else:
                values["next_attempt_at"] = now + backoff(attempts, settings)
            connection.execute(update(MailOutbox).where(_mail.id == mail.id).values(values))
    MAIL_FAILURES.inc(len(mails))


def extend_lease(engine: Engine, mails: Sequence[ClaimedMail], settings: Settings) -> None:
    lease = utcnow() + timedelta(seconds=settings.mail_lease_seconds)
    with engine.begin() as connection:
        connection.execute(
            update(MailOutbox)
            .where(_mail.id.in_([mail.id for mail in mails]))
            .values(locked_until=lease)
        )


def deliver_batch(engine: Engine, settings: Settings) -> int:
    """Claim and send one batch over one connection; returns how many mails were settled
    before the server (if it did) went away."""
    mails = claim(engine, settings)
    if not mails:
        return 0
    leased_at = time.monotonic()
    sent: list[ClaimedMail] = []
    try:
        with transport_for(settings) as transport:
            for index, mail in enumerate(mails):
                if time.monotonic() - leased_at > settings.mail_lease_seconds / 2:
                    # A slow batch keeps its mails: another worker must not send them meanwhile.
                    extend_lease(engine, mails[index:], settings)
                    leased_at = time.monotonic()
                outcome = _send(engine, transport, mail, mails[index:], settings)
                if outcome == "server away":
                    return index
                if outcome == "sent":
                    sent.append(mail)
                if len(sent) >= SENT_FLUSH:
                    mark_sent(engine, sent)
                    sent = []
    finally:
        mark_sent(engine, sent)
    return len(mails)


def _send(
    engine: Engine,
    transport: Transport,
    mail: ClaimedMail,
    rest: Sequence[ClaimedMail],
    settings: Settings,
) -> Literal["sent", "refused", "server away"]:
    """Send one mail; when the server went away, ``rest`` waits for a retry."""
    try:
        transport.send(mail)
    except PermanentFailure as exc:
        log.warning("mail %s refused for good: %s", mail.id, without_addresses(str(exc)))
        mark_failed(engine, [mail], str(exc), settings, final=True)
        return "refused"
    except Deferred as exc:
        log.info("mail %s deferred by the server: %s", mail.id, without_addresses(str(exc)))
        mark_failed(engine, [mail], str(exc), settings, final=False)
        return "refused"
    except TransientFailure as exc:
        # The server is away or broke the session: the rest of the batch waits with it.
        log.warning("mail %s not sent, retrying later: %s", mail.id, without_addresses(str(exc)))
        mark_failed(engine, rest, str(exc), settings, final=False)
        return "server away"
    return "sent"


def backlog(engine: Engine) -> int:
    """Mails waiting to be sent (failed for good ones not counted), for the operators' metric."""
    query = (
        select(func.count())
        .select_from(MailOutbox)
        .where(_mail.sent_at.is_(None), _mail.failed_at.is_(None))
    )
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def update_backlog_metric(engine: Engine) -> int:
    waiting = backlog(engine)
    MAIL_OUTBOX_DEPTH.set(waiting)
    return waiting


def purge_sent(engine: Engine, settings: Settings) -> int:
    """Sent mails (their addresses and contents) go OFFERTRACK_MAIL_RETENTION_DAYS after
    sending: the outbox rows, and the .eml files written without SMTP. How many files went."""
    keep = timedelta(days=settings.mail_retention_days)
    cutoff, now = utcnow() - keep, utcnow()
    with engine.begin() as connection:
        connection.execute(
            delete(MailOutbox).where(
                or_(
                    and_(_mail.sent_at.is_not(None), _mail.sent_at < cutoff),
                    # Refused for good (5xx): kept a while for the operators to see why,
                    # not for ever with the recipient's address and the whole message.
                    and_(_mail.failed_at.is_not(None), _mail.failed_at < now - KEEP_REFUSED),
                )
            )
        )
    # A file is written when its mail is sent: its age is the mail's.
    oldest = time.time() - keep.total_seconds()
    return remove_mail_files(path for path in _mail_files(settings) if _modified(path) < oldest)


def remove_mail_files(paths: Iterable[Path]) -> int:
    """Delete these .eml files (a copy of a mail whose personal data goes); how many went."""
    removed = 0
    for path in paths:
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            pass  # gone already: deleted twice, or by another purge
    return removed


def files_of_mails(settings: Settings, mail_ids: Iterable[int]) -> list[Path]:
    """The .eml files of these outbox mails, where they exist."""
    directory = mail_directory(settings)
    return [path for mail_id in mail_ids if (path := mail_file(directory, mail_id)).exists()]


def files_naming(settings: Settings, names: Callable[[bytes], bool]) -> list[Path]:
    """The .eml files whose message ``names`` (an address), whatever became of their rows."""
    return [path for path in _mail_files(settings) if names(_read(path))]


def _mail_files(settings: Settings) -> list[Path]:
    directory = mail_directory(settings)
    return sorted(directory.glob("*.eml")) if directory.is_dir() else []


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return float("inf")  # gone already: nothing to delete


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""
