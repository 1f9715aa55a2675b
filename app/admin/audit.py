"""The audit log: every change made from the admin, the API and the CLI, by whom and when.

Services call ``record`` before they commit, so an entry is written in the same transaction as
the change it describes: there is never a change without its entry, or an entry without its
change. Actors are written ``kind:name``: ``staff:ana@example.com``, ``api:erp``, ``cli``,
``customer``.
"""

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlmodel import Session, col, select

from app.admin.models import AuditLogEntry
from app.db import utcnow

MAX_SUMMARY = 500


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
        occurred_at=utcnow(),
        actor=actor[:200],
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id),
        offer_id=offer_id,
        summary=summary[:MAX_SUMMARY],
        changes=_jsonable(dict(changes)) if changes is not None else None,
    )
    session.add(entry)
    return entry


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


def offer_history(session: Session, offer_id: str) -> Sequence[AuditLogEntry]:
    """Everything that happened to an offer and its order, newest first."""
    return session.exec(
        select(AuditLogEntry)
        .where(AuditLogEntry.offer_id == offer_id)
        .order_by(col(AuditLogEntry.occurred_at).desc(), col(AuditLogEntry.id).desc())
    ).all()
