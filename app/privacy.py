"""A data subject's requests about one e-mail address: what we hold about it (a subject access
request's answer), and erasing it.

The address is the key a customer's contact person asks by. It lands in every package's
tables, in the .eml files written without SMTP, and perhaps in a webhook body, so this module
sits above every package but the staff site, whose "Personal data" page and the `offertrack`
command both answer through it. What erasure leaves is said where it is kept:
an offer's customer snapshot (the quotation the company sent, a business record that goes with
the offer) and a staff account (deleted on the Users page, not by a customer's request)."""

import hashlib
import hmac
import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import String, cast, delete, func, or_
from sqlmodel import Session, col, select

from app import audit
from app.analytics.models import WebhookOutbox
from app.audit import AuditLogEntry
from app.auth.staff import StaffUser
from app.config import Settings
from app.customers import service as customers
from app.customers.models import Customer
from app.db import utcnow
from app.errors import Unprocessable
from app.notifications import delivery, questions
from app.notifications.models import CustomerQuestion, MailOutbox, OrderSubscription, StaffAlert
from app.offers.models import Offer
from app.offers.service import SNAPSHOT_FIELDS
from app.tracking.models import StageUpdate

ERASED = "privacy.contact_erased"
MAX_ADDRESS = 254
# An offer's personal data: its customer snapshot (the record's id aside) and the answer.
_OFFER_FIELDS = (
    *(name for name in SNAPSHOT_FIELDS if name.startswith("customer_") and name != "customer_id"),
    "accepted_by_name",
    "accepted_po_number",
    "declined_reason",
)


class NotAnAddress(Unprocessable):
    def __init__(self) -> None:
        super().__init__("Please give an e-mail address.", loc=("email",))


def normalized(email: str) -> str:
    """Addresses are compared as written, less case and surrounding space."""
    address = email.strip().lower()
    # Control characters and more than an address can hold (RFC 5321's 254) name nobody:
    # refused before any query, as a staff form's typing is.
    printable = address.isprintable() and " " not in address
    if "@" not in address or not printable or len(address) > MAX_ADDRESS:
        raise NotAnAddress()
    return address


def reference(address: str, settings: Settings) -> str:
    """What the audit log names an erased address by: the same address always gets the same
    reference (a second request can be linked to the first), which cannot be turned back
    into the address without the installation's secret key."""
    key = settings.resolved_secret_key().encode()
    digest = hmac.new(key, b"erased-contact:" + address.encode(), hashlib.sha256).hexdigest()
    return f"erased-contact-{digest[:16]}"


@dataclass
class Place:
    """One place the address is held: what it is, how long it is kept, what erasure does.
    ``key`` names it on the staff page, ``essentials`` are the fields of a record shown
    there (the JSON answer has them all), ``goes``: whether erasure removes the address."""

    key: str
    name: str
    kept: str
    on_erase: str
    records: list[dict[str, Any]] = field(default_factory=list)
    essentials: tuple[str, ...] = ()
    goes: bool = True


def contact_data(session: Session, settings: Settings, email: str) -> dict[str, Any]:
    """Everything held about ``email``, place by place, as JSON for a subject access request;
    a place that holds nothing is listed too, so the answer shows where was looked."""
    address = normalized(email)
    return {
        "email": address,
        "generated_at": utcnow().isoformat(),
        "places": [_place(p) for p in held_places(session, settings, address)],
        "not_held": NOT_HELD,
        "backups": BACKUPS,
    }


def as_json(report: dict[str, Any]) -> str:
    """The answer as the command prints it and the staff site's download holds it."""
    return json.dumps(report, indent=2, ensure_ascii=False, default=str)


NOT_HELD = (
    "IP addresses and user agents (never stored); scan events and counts (no address); "
    "Redis (counts under a keyed hash of the client's network address, for minutes)"
)
BACKUPS = (
    "Backups made before an erasure hold the data until they are deleted: keep them "
    "no longer than needed, and erase again after restoring one."
)


def held_places(session: Session, settings: Settings, email: str) -> list[Place]:
    """Every place that can hold ``email``, each with what it holds now."""
    address = normalized(email)
    return [
        Place(
            "customer",
            "customer records (customer)",
            "until deleted",
            "deleted",
            [_row(c) for c in _customers(session, address)],
            ("company", "contact_name", "email", "phone", "city"),
        ),
        Place(
            "offer",
            "offers sent to this address: the customer snapshot (offer)",
            "until the offer is deleted: the quotation sent, a business record",
            "kept (delete the offer to remove it)",
            [_offer(o) for o in _offers(session, address)],
            ("tracking_id", "status", "customer_company", "customer_contact_name"),
            goes=False,
        ),
        Place(
            "order_subscription",
            "order update subscriptions (order_subscription)",
            "until unsubscribed; 7 days if never confirmed",
            "deleted",
            [_row(s) for s in _subscriptions(session, address)],
            ("offer_id", "created_at", "confirmed_at"),
        ),
        Place(
            "customer_question",
            "questions asked on a tracking page (customer_question)",
            "until deleted",
            "deleted",
            [_row(q) for q in _questions(session, address)],
            ("offer_id", "asked_at", "message"),
        ),
        Place(
            "staff_alert",
            "staff alerts naming the address (staff_alert)",
            "until the offer is deleted",
            "deleted",
            [_row(a) for a in _alerts(session, address)],
            ("offer_id", "kind", "summary"),
        ),
        Place(
            "mail_outbox",
            "mails waiting or sent (mail_outbox)",
            f"{settings.mail_retention_days} days after sending",
            "deleted",
            [_mail(m) for m in _mails(session, settings, address)],
            ("category", "subject", "created_at", "sent_at"),
        ),
        Place(
            "mail_file",
            f"mail files ({delivery.mail_directory(settings)}/*.eml, without SMTP)",
            f"{settings.mail_retention_days} days after writing",
            "deleted",
            [{"file": p.name} for p in _files(session, settings, address)],
            ("file",),
        ),
        Place(
            "webhook_outbox",
            "webhook events not yet delivered or delivered lately (webhook_outbox)",
            "30 days after delivery",
            "deleted",
            [_row(w, exclude=("body",)) for w in _webhooks(session, address)],
            ("event_type", "created_at"),
        ),
        Place(
            "audit_log",
            "audit log entries naming the address (audit_log)",
            "indefinitely: who changed what and when",
            "the address is replaced by a reference in each entry",
            [_row(e) for e in _audit_entries(session, address)],
            ("occurred_at", "action", "summary"),
        ),
        Place(
            "note",
            "free text staff wrote that names the address (offer notes, order update notes)",
            "with the offer",
            "kept (business records: edit the note on the offer to remove it)",
            _notes(session, address),
            ("offer_id", "in"),
            goes=False,
        ),
        Place(
            "staff_user",
            "staff accounts (staff_user)",
            "until the account is deleted",
            "kept (a staff account is deleted on the Users page)",
            [{"id": u.id, "email": u.email} for u in _staff(session, address)],
            ("email",),
            goes=False,
        ),
    ]


# An erasure's counts as a person reads them: singular and plural, by the counts' keys.
_COUNTED = {
    "customer": ("customer record", "customer records"),
    "customer_question": ("question", "questions"),
    "order_subscription": ("order update subscription", "order update subscriptions"),
    "staff_alert": ("staff alert", "staff alerts"),
    "mail_outbox": ("mail", "mails"),
    "webhook_outbox": ("webhook event", "webhook events"),
    "audit_log": ("audit entry reworded", "audit entries reworded"),
    "mail_file": ("mail file", "mail files"),
}


@dataclass
class Erased:
    reference: str
    counts: dict[str, int]
    kept_offers: int
    staff_account: bool

    def described(self) -> str:
        """What went, in words: "1 customer record, 3 mails" ("nothing was held")."""
        done = [f"{n} {_COUNTED[k][n != 1]}" for k, n in self.counts.items() if k in _COUNTED]
        return ", ".join(done) or "nothing was held"


# A question or subscription sent from the address while an erasure runs is erased by the
# next pass; one more finds nothing (a form posted after that is a new contact, after the
# erasure).
ERASE_PASSES = 3


def erase_contact(session: Session, settings: Settings, email: str, *, actor: str) -> Erased:
    """Delete every copy of ``email`` but the offers' snapshots, and reword the audit log.

    Customer records and questions go through their own deletion use cases (each commits);
    the rest goes in one transaction; the .eml files after it. Passes repeat while the last
    found something. Running it again finishes a run that stopped halfway and changes
    nothing else."""
    address = normalized(email)
    ref = reference(address, settings)
    counts: Counter[str] = Counter()
    mail_ids: list[int] = []
    for _ in range(ERASE_PASSES):
        found, mails = _erase_pass(session, settings, address, ref, actor)
        counts.update(found)
        mail_ids += mails
        if not any(found.values()):
            break
    audit.record(
        session,
        actor=actor,
        action=ERASED,
        entity_type="contact",
        entity_id=ref,
        summary=f"Erased the personal data held about a contact ({ref})",
        changes={"erased": {k: v for k, v in counts.items() if v}},
    )
    session.commit()
    files = delivery.files_of_mails(settings, mail_ids)
    files += _files(session, settings, address)
    counts["mail_file"] = delivery.remove_mail_files(set(files))
    return Erased(
        reference=ref,
        counts={k: v for k, v in counts.items() if v},
        kept_offers=len(_offers(session, address)),
        staff_account=bool(_staff(session, address)),
    )


def _erase_pass(
    session: Session, settings: Settings, address: str, ref: str, actor: str
) -> tuple[Counter[str], list[int]]:
    counts: Counter[str] = Counter()
    for customer in _customers(session, address):
        assert customer.id is not None
        customers.delete_customer(session, customer.id, actor=actor)
        counts["customer"] += 1
    for question in _questions(session, address):
        questions.delete_question(
            session, question.offer_id, question.id, actor=actor, settings=settings
        )
        counts["customer_question"] += 1
    mail_ids = [m.id for m in _mails(session, settings, address) if m.id is not None]
    counts.update(_delete_rows(session, address, mail_ids))
    counts["audit_log"] += _reword_audit(session, address, ref)
    return counts, mail_ids


def _delete_rows(session: Session, address: str, mail_ids: list[int]) -> dict[str, int]:
    subscriptions = [s.id for s in _subscriptions(session, address)]
    alerts = [a.id for a in _alerts(session, address)]
    webhooks = [w.id for w in _webhooks(session, address)]
    session.execute(delete(OrderSubscription).where(col(OrderSubscription.id).in_(subscriptions)))
    session.execute(delete(StaffAlert).where(col(StaffAlert.id).in_(alerts)))
    session.execute(delete(MailOutbox).where(col(MailOutbox.id).in_(mail_ids)))
    # An event not delivered yet goes undelivered: its receiver must not get the address.
    session.execute(delete(WebhookOutbox).where(col(WebhookOutbox.id).in_(webhooks)))
    return {
        "order_subscription": len(subscriptions),
        "staff_alert": len(alerts),
        "mail_outbox": len(mail_ids),
        "webhook_outbox": len(webhooks),
    }


def _reword_audit(session: Session, address: str, ref: str) -> int:
    """Replace the address by its reference in each entry's wording and changed values: the
    entry still says who did what and when, and the offer's own snapshot stays the record of
    what was sent. An entry's actor (a staff user's address) is left as it is."""
    entries = _audit_entries(session, address)
    for entry in entries:
        entry.summary = _replaced(entry.summary, address, ref)
        if entry.changes is not None:
            entry.changes = _replaced_in(entry.changes, address, ref)
        session.add(entry)
    return len(entries)


def _replaced_in(value: Any, address: str, ref: str) -> Any:
    if isinstance(value, str):
        return _replaced(value, address, ref)
    if isinstance(value, Mapping):
        return {k: _replaced_in(v, address, ref) for k, v in value.items()}
    if isinstance(value, list):
        return [_replaced_in(v, address, ref) for v in value]
    return value


def _replaced(text: str, address: str, ref: str) -> str:
    """``text`` with every spelling of ``address`` (any case) replaced by ``ref``; a longer
    address that merely contains it is left alone."""
    return _naming(address).sub(ref, text)


# Characters that may stand in an address beside the erased one's: one before it (a local
# part's) or after it (a domain's, or a dot and more of one) makes it another address.
_BEFORE = r"(?<![\w.!#$%&'*+/=?^`{|}~-])"
_AFTER = r"(?!\.?[\w-])"


def _naming(address: str) -> re.Pattern[str]:
    """Where a text names ``address`` itself: "bob@example.com" is not named by
    "jbob@example.com" nor by "bob@example.com.au", which SQL's LIKE '%...%' would match."""
    return re.compile(_BEFORE + re.escape(address) + _AFTER, re.IGNORECASE)


def _names(text: str | bytes | None, address: str) -> bool:
    if text is None:
        return False
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return _naming(address).search(text) is not None


def _like(address: str) -> str:
    """A LIKE pattern for texts that may hold ``address``, to be confirmed by ``_names``."""
    escaped = address.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _customers(session: Session, address: str) -> list[Customer]:
    query = select(Customer).where(func.lower(Customer.email) == address)
    return list(session.exec(query.order_by(col(Customer.id))).all())


def _offers(session: Session, address: str) -> list[Offer]:
    query = select(Offer).where(func.lower(Offer.customer_email) == address)
    return list(session.exec(query.order_by(col(Offer.created_at))).all())


def _subscriptions(session: Session, address: str) -> list[OrderSubscription]:
    query = select(OrderSubscription).where(func.lower(OrderSubscription.email) == address)
    return list(session.exec(query.order_by(col(OrderSubscription.id))).all())


def _questions(session: Session, address: str) -> list[CustomerQuestion]:
    query = select(CustomerQuestion).where(func.lower(CustomerQuestion.email) == address)
    return list(session.exec(query.order_by(col(CustomerQuestion.id))).all())


def _alerts(session: Session, address: str) -> list[StaffAlert]:
    """Alerts whose wording names the address. An alert's recipient is a staff user or the
    sales address: the owner's record of what happened to their offer (the dashboard's
    follow-ups read "opened" from it), not a contact's data."""
    query = select(StaffAlert).where(
        func.lower(StaffAlert.summary).like(_like(address), escape="\\")
    )
    rows = session.exec(query.order_by(col(StaffAlert.id))).all()
    return [a for a in rows if _names(a.summary, address)]


def _staff_addresses(session: Session, settings: Settings) -> set[str]:
    """Addresses staff receive alerts at: the accounts' and the company's sales address."""
    accounts = session.exec(select(StaffUser.email)).all()
    company = settings.sales_email or settings.company_email
    return {a.lower() for a in [*accounts, company] if a}


def _staff_mail(mail: MailOutbox, address: str, staff: set[str]) -> bool:
    """A staff alert sent to ``address`` where it is a staff user's: theirs, not a contact's."""
    return (
        address in staff
        and mail.category.startswith("alert.")
        and mail.recipient.lower() == address
    )


def _mails(session: Session, settings: Settings, address: str) -> list[MailOutbox]:
    """Mails to the address, or that carry it (a question's alert has it as Reply-To), but
    for a staff user's own alerts. The outbox keeps days of mail, so reading the messages
    here is reading little."""
    staff = _staff_addresses(session, settings)
    rows = session.exec(select(MailOutbox).order_by(col(MailOutbox.id))).all()
    return [
        m
        for m in rows
        if (m.recipient.lower() == address or _names(m.message, address))
        and not _staff_mail(m, address, staff)
    ]


def _files(session: Session, settings: Settings, address: str) -> list[Path]:
    """The .eml files that name the address, but for the files of a staff user's alerts."""
    kept: set[str] = set()
    if address in _staff_addresses(session, settings):
        directory = delivery.mail_directory(settings)
        alerts = select(MailOutbox.id).where(
            col(MailOutbox.category).startswith("alert."),
            func.lower(MailOutbox.recipient) == address,
        )
        kept = {delivery.mail_file(directory, i).name for i in session.exec(alerts) if i}
    naming = delivery.files_naming(settings, lambda message: _names(message, address))
    return [path for path in naming if path.name not in kept]


def _webhooks(session: Session, address: str) -> list[WebhookOutbox]:
    query = select(WebhookOutbox).where(
        func.lower(WebhookOutbox.body).like(_like(address), escape="\\")
    )
    rows = session.exec(query.order_by(col(WebhookOutbox.id))).all()
    return [w for w in rows if _names(w.body, address)]


def _audit_entries(session: Session, address: str) -> list[AuditLogEntry]:
    pattern = _like(address)
    query = select(AuditLogEntry).where(
        or_(
            func.lower(AuditLogEntry.summary).like(pattern, escape="\\"),
            func.lower(cast(AuditLogEntry.changes, String)).like(pattern, escape="\\"),
        )
    )
    rows = session.exec(query.order_by(col(AuditLogEntry.id))).all()
    return [
        e
        for e in rows
        if _names(e.summary, address)
        or _names(json.dumps(e.changes, ensure_ascii=False, default=str), address)
    ]


def _notes(session: Session, address: str) -> list[dict[str, Any]]:
    """Where staff typed the address into a note: found, shown, left to them to edit."""
    pattern = _like(address)
    offers = session.exec(
        select(Offer.id, Offer.notes).where(func.lower(Offer.notes).like(pattern, escape="\\"))
    ).all()
    updates = session.exec(
        select(
            StageUpdate.id, StageUpdate.offer_id, StageUpdate.public_note, StageUpdate.internal_note
        ).where(
            or_(
                func.lower(StageUpdate.public_note).like(pattern, escape="\\"),
                func.lower(StageUpdate.internal_note).like(pattern, escape="\\"),
            )
        )
    ).all()
    return [
        {"offer_id": offer_id, "in": "offer notes"}
        for offer_id, notes in offers
        if _names(notes, address)
    ] + [
        {"offer_id": offer_id, "in": f"order update {update_id}"}
        for update_id, offer_id, public, internal in updates
        if _names(f"{public}\n{internal}", address)
    ]


def _staff(session: Session, address: str) -> list[StaffUser]:
    return list(session.exec(select(StaffUser).where(func.lower(StaffUser.email) == address)))


def _row(row: Any, *, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(row.model_dump_json(exclude=set(exclude)))
    return data


def _offer(offer: Offer) -> dict[str, Any]:
    fields = {name: getattr(offer, name) for name in _OFFER_FIELDS if getattr(offer, name)}
    return {"id": offer.id, "tracking_id": offer.tracking_id, "status": offer.status} | fields


def _mail(mail: MailOutbox) -> dict[str, Any]:
    return {
        "id": mail.id,
        "category": mail.category,
        "recipient": mail.recipient,
        "subject": mail.subject,
        "created_at": mail.created_at.isoformat(),
        "sent_at": mail.sent_at.isoformat() if mail.sent_at else None,
    }


def _place(place: Place) -> dict[str, Any]:
    return {
        "place": place.name,
        "kept": place.kept,
        "on_erase": place.on_erase,
        "count": len(place.records),
        "records": place.records,
    }
