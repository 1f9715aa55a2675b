"""The audit log: every change made from the admin, the API and the CLI, by whom and when.

Services call ``record`` before they commit, so an entry is written in the same transaction as
the change it describes: there is never a change without its entry, or an entry without its
change. Actors are written ``kind:name``: ``staff:ana@example.com``, ``api:erp``, ``cli``,
``customer``.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, String, func, insert, update
from sqlmodel import Field, Session, SQLModel, col, select

from app.db import UTCDateTime, utcnow

MAX_SUMMARY = 500


class AuditLogEntry(SQLModel, table=True):
    """One change, by whom and when. Rows are only ever added: no code path deletes them or
    changes what they record (``rewrite_summaries`` only takes a deleted person's name out of
    their wording), and ``offer_id`` has no foreign key so history outlives what it
    describes."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_offer_id_occurred_at", "offer_id", "occurred_at"),)

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    )
    occurred_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    actor: str = Field(sa_type=String(200))
    action: str = Field(sa_type=String(50), index=True)
    entity_type: str = Field(sa_type=String(30))
    entity_id: str = Field(sa_type=String(64))
    offer_id: str | None = Field(default=None, sa_type=String(26))
    summary: str = Field(sa_type=String(500))
    changes: dict[str, Any] | None = Field(default=None, sa_type=JSON)

    @property
    def actor_kind(self) -> str:
        return self.actor.partition(":")[0]


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str | int,
    summary: str,
    offer_id: str | None = None,
    changes: Mapping[str, Any] | None = None,
) -> AuditLogEntry:
    """Add an entry to the caller's transaction; the caller's commit writes it."""
    entry = AuditLogEntry(
        **_columns(actor, action, entity_type, entity_id, summary, offer_id, changes)
    )
    session.add(entry)
    return entry


@dataclass(frozen=True)
class OfferChange:
    """One offer's entry of ``record_offers``."""

    offer_id: str
    summary: str
    changes: Mapping[str, Any] | None = None


def record_offers(
    session: Session, *, actor: str, action: str, entries: Sequence[OfferChange]
) -> None:
    """An entry per offer, written at once in one statement (a handover of thousands of
    offers; ``record`` adds a row object each, which SQLite inserts one at a time). Flushed
    into the caller's transaction; the caller's commit keeps them."""
    if entries:
        rows = [
            _columns(actor, action, "offer", e.offer_id, e.summary, e.offer_id, e.changes)
            for e in entries
        ]
        session.execute(insert(AuditLogEntry), rows)


def _columns(
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str | int,
    summary: str,
    offer_id: str | None,
    changes: Mapping[str, Any] | None,
) -> dict[str, Any]:
    return {
        "occurred_at": utcnow(),
        "actor": actor[:200],
        "action": action,
        "entity_type": entity_type,
        "entity_id": str(entity_id),
        "offer_id": offer_id,
        "summary": summary[:MAX_SUMMARY],
        "changes": _jsonable(dict(changes)) if changes is not None else None,
    }


def rewrite_summaries(
    session: Session, *, entity_type: str, entity_id: str | int, summaries: Mapping[str, str]
) -> None:
    """Reword one row's entries, per action, in the caller's transaction: the deletion path
    of a record whose entries once named a person. Who, what and when stay as they were."""
    for action, summary in summaries.items():
        session.execute(
            update(AuditLogEntry)
            .where(
                col(AuditLogEntry.entity_type) == entity_type,
                col(AuditLogEntry.entity_id) == str(entity_id),
                col(AuditLogEntry.action) == action,
            )
            .values(summary=summary[:MAX_SUMMARY])
        )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal | date | datetime):
        return str(value) if isinstance(value, Decimal) else value.isoformat()
    return value


HISTORY_PAGE = 50


@dataclass(frozen=True)
class History:
    """A page of an offer's history, newest first: ``older`` entries lie past it."""

    entries: Sequence[AuditLogEntry]
    page: int
    older: int


def offer_history(session: Session, offer_id: str, *, page: int = 1) -> History:
    """What happened to an offer and its order, newest first, HISTORY_PAGE entries a page (a
    page past the last is the last): an offer's history has no end, its page must."""
    of_offer = col(AuditLogEntry.offer_id) == offer_id
    total = session.exec(select(func.count()).select_from(AuditLogEntry).where(of_offer)).one()
    page = max(1, min(page, -(-total // HISTORY_PAGE)))
    entries = session.exec(
        select(AuditLogEntry)
        .where(of_offer)
        .order_by(col(AuditLogEntry.occurred_at).desc(), col(AuditLogEntry.id).desc())
        .offset((page - 1) * HISTORY_PAGE)
        .limit(HISTORY_PAGE)
    ).all()
    return History(entries, page, max(0, total - page * HISTORY_PAGE))


def last_change(session: Session, entity_type: str, entity_id: str) -> AuditLogEntry | None:
    """The latest entry about one row: who changed it last, and when."""
    # Newest first along the occurred_at index: the entry sought is recent, so the walk is short.
    return session.exec(
        select(AuditLogEntry)
        .where(AuditLogEntry.entity_type == entity_type, AuditLogEntry.entity_id == entity_id)
        .order_by(col(AuditLogEntry.occurred_at).desc(), col(AuditLogEntry.id).desc())
        .limit(1)
    ).first()


def actor_name(actor: str) -> str:
    """An actor as a person reads it: ``staff:ana@example.com`` is ana@example.com."""
    kind, _, name = actor.partition(":")
    if kind == "staff" and name:
        return name
    if kind == "api" and name:
        return f"the API key “{name}”"
    return {"cli": "the command line", "customer": "the customer"}.get(actor, actor)
