"""The mail component: queued in the caller's transaction, sent by the worker over real SMTP."""

import logging
import stat
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update
from sqlmodel import Session, col

from app.config import Settings
from app.db import utcnow
from app.metrics import MAIL_OUTBOX_DEPTH, exposition
from app.notifications import delivery
from app.notifications.mail import Attachment, InvalidAddress, normalize_address, queue_mail
from app.notifications.models import MailOutbox
from app.notifications.templates import render_mail
from app.notifications.worker import MailWorker
from tests.conftest import fill
from tests.notifications.conftest import Inbox, deliver_all, free_port
from tests.plans import (
    assert_reads_at_most_with_and_without_statistics,
    bulk_insert,
    captured,
    statistics_held,
)

pytestmark = pytest.mark.concurrency


def _queue(engine: Engine, settings: Settings, key: str = "test:1", **extra: object) -> str:
    with Session(engine) as session:
        message_id = queue_mail(
            session,
            to=str(extra.pop("to", "maria@example.com")),
            subject="Your offer 01H0W-ARY2W",
            text="Hello Maria,\nyour offer is ready.",
            html="<p>Hello Maria,<br>your offer is ready.</p>",
            dedupe_key=key,
            settings=settings,
            **extra,  # type: ignore[arg-type]
        )
        session.commit()
    return message_id


def test_a_queued_mail_arrives_as_multipart_text_and_html_with_its_attachment(
    committed: Engine, mail_settings: Settings, inbox: Inbox
) -> None:
    pdf = Attachment("offer-01H0WARY2W.pdf", b"%PDF-1.7 test", "application/pdf")
    message_id = _queue(committed, mail_settings, attachments=[pdf], reply_to="ana@acme.example")

    assert inbox.messages == []  # nothing is sent before the worker runs
    deliver_all(committed, mail_settings)

    [mail] = inbox.messages
    assert mail["Message-ID"] == message_id
    assert mail["From"] == "Acme Sales <sales@acme.example>"
    assert mail["Reply-To"] == "ana@acme.example"
    assert inbox.envelopes == [("sales@acme.example", ["maria@example.com"])]
    assert mail.get_body(("plain",)).get_content().startswith("Hello Maria,")  # type: ignore[union-attr]
    assert "<p>Hello Maria" in mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    [attached] = list(mail.iter_attachments())
    assert attached.get_filename() == "offer-01H0WARY2W.pdf"
    assert attached.get_content() == b"%PDF-1.7 test"


def test_the_same_dedupe_key_queues_one_mail(
    committed: Engine, mail_settings: Settings, inbox: Inbox
) -> None:
    first = _queue(committed, mail_settings, key="offer-sent:X")
    second = _queue(committed, mail_settings, key="offer-sent:X")
    deliver_all(committed, mail_settings)

    assert first == second
    assert len(inbox.messages) == 1


def test_a_rolled_back_change_sends_no_mail(
    committed: Engine, mail_settings: Settings, inbox: Inbox
) -> None:
    with Session(committed) as session:
        queue_mail(
            session,
            to="maria@example.com",
            subject="s",
            text="t",
            html="<p>t</p>",
            dedupe_key="rolled-back",
            settings=mail_settings,
        )
        session.rollback()
    deliver_all(committed, mail_settings)

    assert inbox.messages == []


def test_a_server_failing_the_first_attempt_gets_the_mail_once_with_the_same_message_id(
    committed: Engine, mail_settings: Settings, inbox: Inbox
) -> None:
    inbox.refuse_next = 1
    message_id = _queue(committed, mail_settings)

    delivery.deliver_batch(committed, mail_settings)
    assert inbox.messages == [] and len(inbox.refused) == 1
    time.sleep(0.01)  # the backoff
    deliver_all(committed, mail_settings)

    [mail] = inbox.messages
    assert mail["Message-ID"] == inbox.refused[0]["Message-ID"] == message_id
    with Session(committed) as session:
        row = session.scalars(select(MailOutbox)).one()
    assert row.attempts == 2 and row.sent_at is not None


def test_a_refused_recipient_is_not_tried_again_and_does_not_hold_up_the_others(
    committed: Engine, mail_settings: Settings, inbox: Inbox
) -> None:
    inbox.reject_recipients = {"gone@example.com"}
    _queue(committed, mail_settings, key="a", to="gone@example.com")
    _queue(committed, mail_settings, key="b", to="maria@example.com")

    deliver_all(committed, mail_settings)

    assert [m["To"] for m in inbox.messages] == ["maria@example.com"]
    with Session(committed) as session:
        refused = session.scalars(
            select(MailOutbox).where(col(MailOutbox.recipient) == "gone@example.com")
        ).one()
    assert refused.failed_at is not None and refused.attempts == 1
    assert "550" in refused.last_error


def test_an_unreachable_server_leaves_mails_waiting_and_the_metric_shows_the_backlog(
    committed: Engine, settings: Settings
) -> None:
    down = settings.model_copy(
        update={"smtp_url": f"smtp://127.0.0.1:{free_port()}", "mail_timeout_seconds": 1}
    )
    started = time.monotonic()
    for n in range(3):
        _queue(committed, down, key=f"waiting:{n}")
    queued_in = time.monotonic() - started

    MailWorker(committed, down).run_once()

    assert queued_in < 0.5  # queueing never talks to the server
    assert MAIL_OUTBOX_DEPTH._value.get() == 3
    assert b"offertrack_mail_outbox_depth 3.0" in exposition()[0]  # what /metrics serves
    with Session(committed) as session:
        rows = session.scalars(select(MailOutbox)).all()
    assert all(r.sent_at is None and r.failed_at is None for r in rows)
    assert all(r.attempts == 1 and "Connection" in r.last_error for r in rows)


def test_without_smtp_mails_are_written_as_eml_files_and_the_log_says_where(
    committed: Engine, settings: Settings, caplog: pytest.LogCaptureFixture, tmp_path: object
) -> None:
    local = settings.model_copy(update={"smtp_url": "", "var_dir": tmp_path})
    message_id = _queue(committed, local)

    with caplog.at_level(logging.INFO, logger="app.notifications"):
        worker = MailWorker(committed, local)
        worker.start()
        worker.stop()
        delivery.deliver_batch(committed, local)

    [path] = list(delivery.mail_directory(local).glob("*.eml"))
    assert f"Message-ID: {message_id}" in path.read_text()
    # personal data: readable by the server's user only, as a backup is
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert str(delivery.mail_directory(local).resolve()) in caplog.text
    assert str(path) in caplog.text


def test_without_smtp_a_full_disk_leaves_the_mails_waiting_for_a_retry(
    committed: Engine, settings: Settings, small_disk: Path
) -> None:
    """The .eml files' disk is full: as with an SMTP server that is away, the mail records its
    error and waits for its retry (it ended the worker's pass with a traceback, the mail
    leased, its attempts and error unrecorded), and no half-written file is left."""
    local = settings.model_copy(update={"smtp_url": "", "var_dir": small_disk})
    message_id = _queue(committed, local)
    delivery.mail_directory(local).mkdir()
    filler = fill(small_disk)

    MailWorker(committed, local, jobs=[]).run_once()

    with Session(committed) as session:
        [waiting] = session.scalars(select(MailOutbox)).all()
    assert waiting.sent_at is None and waiting.failed_at is None
    assert waiting.attempts == 1 and "No space left on device" in waiting.last_error
    assert waiting.locked_until is None and waiting.next_attempt_at > utcnow()
    assert list(delivery.mail_directory(local).iterdir()) == []  # nothing half-written

    filler.unlink()  # space again, and the retry is due
    with Session(committed) as session:
        session.execute(update(MailOutbox).values(next_attempt_at=utcnow()))
        session.commit()
    MailWorker(committed, local, jobs=[]).run_once()
    [path] = list(delivery.mail_directory(local).glob("*.eml"))
    assert f"Message-ID: {message_id}" in path.read_text()


def test_an_invalid_address_is_refused_with_its_field() -> None:
    with pytest.raises(InvalidAddress) as refused:
        normalize_address("maria@@example", loc=("body", "email"))

    assert refused.value.loc == ("body", "email")
    assert normalize_address(" Maria@Example.COM ") == "Maria@example.com"


def test_a_rendered_mail_names_the_company_and_the_tracking_id(settings: Settings) -> None:
    url = "https://track.example.com/updates/confirm/a?b&c"
    mail = render_mail(
        "subscription_confirm",
        {"tracking_id": "01H0WARY2W", "confirm_url": url},
        settings=settings,
    )

    assert mail.subject == "Confirm updates for order 01H0W-ARY2W"
    assert settings.company_name in mail.text and "01H0W-ARY2W" in mail.text
    assert url in mail.text  # the text part is not HTML-escaped
    assert 'href="https://track.example.com/updates/confirm/a?b&amp;c"' in mail.html
    assert settings.company_name in mail.html and "01H0W-ARY2W" in mail.html


def test_retries_back_off_exponentially_up_to_the_cap(
    committed: Engine, mail_settings: Settings, inbox: Inbox
) -> None:
    patient = mail_settings.model_copy(
        update={"mail_retry_base_seconds": 30, "mail_retry_max_seconds": 100}
    )
    assert [delivery.backoff(n, patient).total_seconds() for n in (1, 2, 3, 4)] == [
        30,
        60,
        100,
        100,
    ]
    inbox.refuse_next = 1
    message_id = _queue(committed, patient)

    delivery.deliver_batch(committed, patient)  # 451: try again in 30 s
    delivery.deliver_batch(committed, patient)  # not yet due
    assert inbox.messages == [] and len(inbox.refused) == 1
    with Session(committed) as session:
        row = session.scalars(select(MailOutbox)).one()
        wait = (row.next_attempt_at - row.created_at).total_seconds()
        assert 29 < wait < 40, wait
        row.next_attempt_at = row.created_at  # as if the 30 s had passed
        session.add(row)
        session.commit()
    delivery.deliver_batch(committed, patient)

    [mail] = inbox.messages
    assert mail["Message-ID"] == message_id


def test_a_worker_that_dies_mid_batch_leaves_its_mails_to_the_next_once_the_lease_ends(
    committed: Engine, mail_settings: Settings, inbox: Inbox
) -> None:
    message_id = _queue(committed, mail_settings)
    [claimed] = delivery.claim(committed, mail_settings)  # ... and the worker dies here

    delivery.deliver_batch(committed, mail_settings)
    assert inbox.messages == []  # leased to the dead worker: nobody sends it meanwhile
    with Session(committed) as session:
        row = session.scalars(select(MailOutbox)).one()
        row.locked_until = row.created_at  # the lease ran out
        session.add(row)
        session.commit()
    delivery.deliver_batch(committed, mail_settings)

    [mail] = inbox.messages
    assert mail["Message-ID"] == message_id == claimed.message_id


def test_the_workers_claim_and_backlog_read_the_waiting_mails_not_the_done_ones(
    committed: Engine, settings: Settings
) -> None:
    """Every second, in every process, the worker claims due mails and counts the backlog.
    What they read must not grow with the mails sent (kept for a week) or refused for good
    (kept for ever): SQLite read every refused mail, and PostgreSQL with statistics walked the
    primary key from the oldest mail through every one of them."""
    done_at = utcnow() - timedelta(days=3)
    with statistics_held(committed, "mail_outbox"):
        with committed.begin() as connection:
            bulk_insert(
                connection,
                "mail_outbox",
                20_000,
                {
                    "dedupe_key": "'done:' || n",
                    "message_id": "'<done@acme.example>'",
                    "category": "''",
                    "recipient": "'maria@example.com'",
                    "subject": "'Sent'",
                    "message": ":message",
                    "created_at": ":at",
                    "next_attempt_at": ":at",
                    "attempts": "1",
                    "last_error": "''",
                    "sent_at": "CASE WHEN n % 2 = 0 THEN :at END",
                    "failed_at": "CASE WHEN n % 2 = 1 THEN :at END",
                },
                at=done_at,
                message=b"Subject: Sent\r\n\r\nSent.\r\n",
            )
        for n in range(20):
            _queue(committed, settings, key=f"waiting:{n}")

        with captured(committed) as statements:
            assert len(delivery.claim(committed, settings)) == 20
            assert delivery.backlog(committed) == 20

        # 10,020 before, and 20,020 with statistics.
        assert_reads_at_most_with_and_without_statistics(
            committed, statements, "mail_outbox", 1_000
        )
