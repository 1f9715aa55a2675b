"""A contact person asks "what do you hold about me, and delete it": the export lists every
place, the erasure leaves the address nowhere but in the offers sent to it (a business record),
and the mails written to files follow their retention."""

import json
import os
import time
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, MetaData, String, cast, func, or_, select
from sqlalchemy.exc import SAWarning
from sqlmodel import Session
from typer.testing import CliRunner

from app import audit, privacy
from app.audit import AuditLogEntry
from app.auth.staff import Role, StaffUser
from app.cli import cli
from app.config import Settings
from app.customers.models import Customer
from app.db import utcnow
from app.notifications import delivery, questions
from app.notifications.models import (
    CustomerQuestion,
    MailOutbox,
    OrderSubscription,
    StaffAlert,
)
from app.offers.models import Offer
from tests.notifications.conftest import run_worker
from tests.notifications.test_questions import CSRF, _offer

pytestmark = pytest.mark.concurrency
ADDRESS = "maria@example.com"
runner = CliRunner()


@pytest.fixture
def file_settings(settings: Settings, tmp_path: Path) -> Settings:
    """No SMTP: mails become .eml files under a var directory of the test's own."""
    return settings.model_copy(update={"smtp_url": "", "var_dir": tmp_path})


def _ask(web: TestClient, code: str, email: str, message: str) -> None:
    # The first page a cold test process renders may miss its deadline on a loaded machine
    # (a 503 without the form): ask for it again, as a person would reload.
    for _ in range(3):
        if token := CSRF.search(web.get(f"/{code}").text):
            break
    assert token, "the offer page has no form"
    form = {"email": email, "message": message, "csrf_token": token.group(1)}
    assert web.post(f"/{code}/question", data=form).status_code == 200


def _held_everywhere(engine: Engine, web: TestClient, settings: Settings) -> Offer:
    """The address as a customer leaves it: a customer record, a question (its alert mail
    written to a file), a subscription, and an audit entry of an older kind that named it."""
    offer = _offer(engine, settings)  # its snapshot's contact is maria@example.com
    _ask(web, offer.id, email="Maria@Example.com", message="Delivery in May?")
    with Session(engine) as session:
        session.add(Customer(company="Maria Papadopoulou", email=ADDRESS))
        session.add(OrderSubscription(offer_id=offer.id, email=ADDRESS))
        stored = session.get(Offer, offer.id)
        assert stored is not None
        stored.notes = f"Send the drawings to {ADDRESS} too."
        session.add(stored)
        audit.record(
            session,
            actor="staff:ana@acme.example",
            action="offer.update",
            entity_type="offer",
            entity_id=offer.id,
            offer_id=offer.id,
            summary=f"Changed the contact to {ADDRESS}",
            changes={"customer_email": ["old@example.com", ADDRESS]},
        )
        session.commit()
    run_worker(engine, settings)
    return offer


def _database_rows_naming(engine: Engine, address: str) -> list[str]:
    """Every table and column whose text holds ``address``, read from the schema itself."""
    found = []
    tables = MetaData()
    with warnings.catch_warnings():  # SQLite's expression index (api_key's lower(name)): no text
        warnings.filterwarnings(
            "ignore", "Skipped unsupported reflection of expression-based index", SAWarning
        )
        tables.reflect(engine)
    with engine.connect() as connection:
        for table in tables.sorted_tables:
            text_columns = [
                c for c in table.columns if isinstance(c.type, String) or "JSON" in str(c.type)
            ]
            if not text_columns:
                continue
            query = select(func.count()).select_from(table)
            query = query.where(
                or_(*(func.lower(cast(c, String)).like(f"%{address}%") for c in text_columns))
            )
            if connection.execute(query).scalar_one():
                found.append(table.name)
        mails: list[bytes] = list(connection.execute(select(MailOutbox.message)).scalars())  # type: ignore[call-overload]
        if any(address.encode() in m.lower() for m in mails):
            found.append("mail_outbox.message")
    return found


def test_the_export_lists_every_place_and_what_each_holds(
    web: TestClient, committed: Engine, file_settings: Settings
) -> None:
    offer = _held_everywhere(committed, web, file_settings)

    with Session(committed) as session:
        report = privacy.contact_data(session, file_settings, " MARIA@example.com ")

    counts = {place["place"].split(" (")[0]: place["count"] for place in report["places"]}
    assert report["email"] == ADDRESS
    assert counts["customer records"] == 1
    assert counts["offers sent to this address: the customer snapshot"] == 1
    assert counts["order update subscriptions"] == 1
    assert counts["questions asked on a tracking page"] == 1
    assert counts["mails waiting or sent"] >= 1  # the owner's alert, Reply-To the asker
    assert counts["mail files"] >= 1
    assert counts["audit log entries naming the address"] >= 1
    assert counts["staff accounts"] == 0
    assert counts["free text staff wrote that names the address"] == 1
    [question] = next(p for p in report["places"] if p["place"].startswith("questions"))["records"]
    assert question["message"] == "Delivery in May?" and question["offer_id"] == offer.id
    # Every place is listed, found or not, with how long it is kept.
    assert all(place["kept"] and place["on_erase"] for place in report["places"])
    json.dumps(report)  # the CLI prints it as it is


def test_erasing_an_address_leaves_it_only_in_the_offers_sent_to_it(
    web: TestClient, committed: Engine, file_settings: Settings
) -> None:
    offer = _held_everywhere(committed, web, file_settings)
    mail_dir = delivery.mail_directory(file_settings)
    assert any(ADDRESS.encode() in p.read_bytes().lower() for p in mail_dir.glob("*.eml"))
    assert set(_database_rows_naming(committed, ADDRESS)) > {"offer", "audit_log"}

    with Session(committed, expire_on_commit=False) as session:
        erased = privacy.erase_contact(session, file_settings, ADDRESS.upper(), actor="cli")

    # The offer keeps the quotation sent, by design; nothing else has the address any more.
    assert _database_rows_naming(committed, ADDRESS) == ["offer"]
    assert not [p for p in mail_dir.glob("*.eml") if ADDRESS.encode() in p.read_bytes().lower()]
    assert erased.kept_offers == 1 and not erased.staff_account
    assert erased.counts["customer"] == 1 and erased.counts["customer_question"] == 1
    with Session(committed) as session:
        assert session.get(Offer, offer.id) is not None
        entries = session.scalars(select(AuditLogEntry)).all()
        [record] = [e for e in entries if e.action == privacy.ERASED]
        reworded = [e for e in entries if e.summary.startswith("Changed the contact")]
        assert session.scalars(select(CustomerQuestion)).all() == []
    # The erasure is audited by a reference the address always gets, not by the address.
    assert record.entity_id == erased.reference == privacy.reference(ADDRESS, file_settings)
    assert reworded[0].summary == f"Changed the contact to {erased.reference}"
    assert reworded[0].changes == {"customer_email": ["old@example.com", erased.reference]}
    assert reworded[0].actor == "staff:ana@acme.example"  # who did it stays


def test_an_erasure_run_again_changes_nothing_and_a_staff_account_is_kept(
    committed: Engine, file_settings: Settings
) -> None:
    with Session(committed, expire_on_commit=False) as session:
        session.add(StaffUser(email=ADDRESS, role=Role.SALES, password_hash="-"))
        session.commit()
        privacy.erase_contact(session, file_settings, ADDRESS, actor="cli")
        again = privacy.erase_contact(session, file_settings, ADDRESS, actor="cli")

    assert again.counts == {}
    assert again.staff_account
    with pytest.raises(privacy.NotAnAddress):
        with Session(committed) as session:
            privacy.erase_contact(session, file_settings, "not an address", actor="cli")


def test_the_command_asks_before_erasing_and_reports_what_went(committed: Engine) -> None:
    with Session(committed) as session:
        session.add(Customer(company="Maria Papadopoulou", email=ADDRESS))
        session.commit()

    held = runner.invoke(cli, ["contact-data", ADDRESS])
    declined = runner.invoke(cli, ["erase-contact", ADDRESS], input="n\n")
    with Session(committed) as session:
        kept = session.scalars(select(Customer)).all()
    erased = runner.invoke(cli, ["erase-contact", ADDRESS], input="y\n")
    bad = runner.invoke(cli, ["erase-contact", "nobody"])

    assert held.exit_code == 0, held.output
    assert json.loads(held.stdout)["places"][0]["count"] == 1
    assert declined.exit_code == 1 and len(kept) == 1
    assert erased.exit_code == 0, erased.output
    assert "1  customer records" in erased.output and "Erased: 1 customer" in erased.output
    assert bad.exit_code != 0 and "e-mail address" in bad.output
    with Session(committed) as session:
        assert session.scalars(select(Customer)).all() == []


def test_deleting_a_question_deletes_its_alert_mail_file(
    web: TestClient, committed: Engine, file_settings: Settings
) -> None:
    # The outbox row went with the question; the .eml file written without SMTP stayed.
    offer = _offer(committed, file_settings)
    _ask(web, offer.id, email="jonas@example.com", message="Lieferung im Mai?")
    run_worker(committed, file_settings)
    mail_dir = delivery.mail_directory(file_settings)
    naming = [p for p in mail_dir.glob("*.eml") if b"jonas@example.com" in p.read_bytes()]
    assert naming

    with Session(committed) as session:
        [question] = session.scalars(select(CustomerQuestion)).all()
        questions.delete_question(
            session, offer.id, question.id, actor="staff:ana", settings=file_settings
        )

    assert not [p for p in naming if p.exists()]


def test_sent_mail_files_go_with_their_rows_after_the_retention_period(
    committed: Engine, file_settings: Settings
) -> None:
    mail_dir = delivery.mail_directory(file_settings)
    mail_dir.mkdir(parents=True)
    old, new = mail_dir / "00000001.eml", mail_dir / "00000002.eml"
    for path in (old, new):
        path.write_bytes(b"To: maria@example.com\r\n\r\nHello")
    eight_days_ago = time.time() - 8 * 86400
    os.utime(old, (eight_days_ago, eight_days_ago))

    removed = delivery.purge_sent(committed, file_settings)

    assert removed == 1 and not old.exists() and new.exists()
    longer = file_settings.model_copy(update={"mail_retention_days": 30})
    os.utime(new, (eight_days_ago, eight_days_ago))
    assert delivery.purge_sent(committed, longer) == 0 and new.exists()


def test_a_mail_refused_for_good_goes_30_days_after_the_refusal(
    committed: Engine, file_settings: Settings
) -> None:
    # A 5xx refusal kept the recipient's address and the whole message for ever.
    now = utcnow()
    with Session(committed) as session:
        for key, failed in (("old", now - timedelta(days=31)), ("recent", now - timedelta(days=2))):
            session.add(
                MailOutbox(
                    dedupe_key=key,
                    message_id=f"<{key}@acme.example>",
                    recipient=ADDRESS,
                    subject="Your offer",
                    message=b"To: maria@example.com",
                    failed_at=failed,
                    last_error="SMTP 550: no such user",
                )
            )
        session.commit()

    delivery.purge_sent(committed, file_settings)

    with Session(committed) as session:
        kept = session.scalars(select(MailOutbox.dedupe_key)).all()  # type: ignore[call-overload]
    assert kept == ["recent"]


def _mail(key: str, recipient: str, message: bytes, category: str = "offer") -> MailOutbox:
    return MailOutbox(
        dedupe_key=key,
        message_id=f"<{key}@acme.example>",
        category=category,
        recipient=recipient,
        subject="Your offer",
        message=message,
        sent_at=utcnow(),
    )


def _write_mail_files(settings: Settings, session: Session) -> None:
    directory = delivery.mail_directory(settings)
    directory.mkdir(parents=True, exist_ok=True)
    for mail in session.scalars(select(MailOutbox)).all():
        assert mail.id is not None
        delivery.mail_file(directory, mail.id).write_bytes(mail.message)


def test_erasing_an_address_leaves_the_longer_addresses_that_contain_it(
    committed: Engine, file_settings: Settings
) -> None:
    # LIKE '%maria@example.com%' also matched annamaria@example.com and maria@example.com.cy:
    # erasing one contact deleted another's alerts, mails and files and garbled their audit.
    offer = _offer(committed, file_settings)
    others = ("annamaria@example.com", "maria@example.com.cy")
    with Session(committed) as session:
        for n, other in enumerate(others):
            session.add(
                StaffAlert(
                    dedupe_key=f"question:{n}",
                    offer_id=offer.id,
                    kind="question",
                    recipient="ana@acme.example",
                    mode="immediately",
                    summary=f"Question from {other}",
                )
            )
            session.add(_mail(f"m{n}", other, f"To: {other}\r\n\r\nHello".encode()))
            audit.record(
                session,
                actor="staff:ana@acme.example",
                action="offer.update",
                entity_type="offer",
                entity_id=offer.id,
                summary=f"Changed the contact to {other}",
            )
        session.add(_mail("maria", ADDRESS, b"To: Maria@Example.com\r\n\r\nHello"))
        noted = session.get(Offer, offer.id)
        assert noted is not None
        noted.notes = f"Copy {others[0]} on every mail."
        session.add(noted)
        session.commit()
        _write_mail_files(file_settings, session)
        notes = privacy.contact_data(session, file_settings, ADDRESS)["places"][-2]
    assert notes["place"].startswith("free text staff wrote") and notes["count"] == 0

    with Session(committed, expire_on_commit=False) as session:
        erased = privacy.erase_contact(session, file_settings, ADDRESS, actor="cli")

    assert erased.counts["mail_outbox"] == 1 and erased.counts["mail_file"] == 1
    with Session(committed) as session:
        alerts = session.scalars(select(StaffAlert.summary)).all()  # type: ignore[call-overload]
        mails = session.scalars(select(MailOutbox.recipient)).all()  # type: ignore[call-overload]
        summaries = session.scalars(select(AuditLogEntry.summary)).all()  # type: ignore[call-overload]
    assert sorted(alerts) == sorted(f"Question from {other}" for other in others)
    assert sorted(mails) == sorted(others)
    assert {f"Changed the contact to {other}" for other in others} <= set(summaries)
    files = delivery.mail_directory(file_settings).glob("*.eml")
    assert sorted(p.read_bytes() for p in files) == sorted(
        f"To: {other}\r\n\r\nHello".encode() for other in others
    )


def test_erasing_a_staff_users_address_keeps_their_alerts_and_alert_mails(
    committed: Engine, file_settings: Settings
) -> None:
    # The alerts are the owner's record of their offers (the dashboard's "not opened yet"
    # reads them): erasing the owner's address as a contact's deleted every one.
    offer = _offer(committed, file_settings)  # owned by ana@acme.example
    owner = "ana@acme.example"
    with Session(committed) as session:
        session.add(
            StaffAlert(
                dedupe_key="scanned:x",
                offer_id=offer.id,
                kind="scanned",
                recipient=owner,
                mode="immediately",
                summary="Acme Hellas opened the offer",
            )
        )
        session.add(_mail("alert", owner, f"To: {owner}\r\n\r\nOpened".encode(), "alert.scanned"))
        session.add(OrderSubscription(offer_id=offer.id, email=owner))
        session.commit()
        _write_mail_files(file_settings, session)

    with Session(committed, expire_on_commit=False) as session:
        erased = privacy.erase_contact(session, file_settings, owner, actor="cli")

    assert erased.staff_account and erased.counts["order_subscription"] == 1
    with Session(committed) as session:
        assert [a.kind for a in session.scalars(select(StaffAlert)).all()] == ["scanned"]
        assert [m.category for m in session.scalars(select(MailOutbox)).all()] == ["alert.scanned"]
    assert len(list(delivery.mail_directory(file_settings).glob("*.eml"))) == 1


def test_a_question_sent_while_the_erasure_runs_is_erased_too(
    committed: Engine, file_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The erasure read the questions once: one asked from the same address while it ran
    # stayed, and the command said the address was erased.
    offer = _offer(committed, file_settings)
    with Session(committed) as session:
        session.add(
            CustomerQuestion(
                id="Q1", offer_id=offer.id, topic="question", email=ADDRESS, message="?"
            )
        )
        session.commit()
    delete_question = questions.delete_question
    arrived: list[bool] = []

    def a_new_question_arrives(session: Session, *args: Any, **kwargs: Any) -> Any:
        deleted = delete_question(session, *args, **kwargs)
        with Session(committed) as other:
            if not arrived:
                arrived.append(True)
                other.add(
                    CustomerQuestion(
                        id="Q2", offer_id=offer.id, topic="question", email=ADDRESS, message="?"
                    )
                )
                other.commit()
        return deleted

    monkeypatch.setattr(questions, "delete_question", a_new_question_arrives)
    with Session(committed, expire_on_commit=False) as session:
        erased = privacy.erase_contact(session, file_settings, ADDRESS, actor="cli")

    assert erased.counts["customer_question"] == 2
    with Session(committed) as session:
        assert session.scalars(select(CustomerQuestion)).all() == []
