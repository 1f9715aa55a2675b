"""The configurable stage list. Stages are renamed and reordered, never deleted: the history
of every order refers to them."""

import re

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app import audit
from app.errors import Conflict, NotFound, Unprocessable
from app.tracking import progress
from app.tracking.models import OrderStage
from app.versions import Expected, next_stamp, require_version

KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def _check(session: Session, label: str, position: int, key: str | None) -> str:
    label = label.strip()
    if not 1 <= len(label) <= 100:
        raise Unprocessable("A stage needs a label of 1 to 100 characters.", loc=("label",))
    if not 1 <= position <= 1000:
        raise Unprocessable("The position is a number from 1 to 1000.", loc=("position",))
    for column, value, what in (
        (OrderStage.label, label, f"label {label!r}"),
        (OrderStage.position, position, f"position {position}"),
    ):
        clash = session.exec(select(OrderStage).where(col(column) == value)).first()
        if clash is not None and clash.key != key:
            raise Conflict(f"The stage {clash.label!r} has the {what} already.")
    return label


def create_stage(
    session: Session, key: str, label: str, position: int | None, *, actor: str
) -> OrderStage:
    """Add a stage; without a position it goes last."""
    key = key.strip().lower()
    if not KEY_PATTERN.match(key):
        raise Unprocessable(
            "A key is 1 to 40 lower-case letters, digits or underscores, starting with a "
            "letter (e.g. ready_for_pickup).",
            loc=("key",),
        )
    if session.get(OrderStage, key) is not None:
        raise Conflict(f"A stage with the key {key!r} exists already.")
    if position is None:
        position = (session.exec(select(func.max(OrderStage.position))).one() or 0) + 1
    stage = OrderStage(key=key, label=_check(session, label, position, None), position=position)
    session.add(stage)
    _flush_unless_taken(session)
    _audit(session, stage, actor, "create", f"Added stage {stage.label!r} at {position}")
    session.commit()
    return stage


def update_stage(
    session: Session,
    key: str,
    label: str,
    position: int,
    *,
    actor: str,
    expected: Expected | None = None,
) -> OrderStage:
    """Rename or move a stage, unless it changed since ``expected`` (the version its form was
    opened at): the form saves label and position together, and would undo another's change."""
    stage = session.get(OrderStage, key, with_for_update=True, populate_existing=True)
    if stage is None:
        raise NotFound(f"No stage {key!r}.")
    require_version(session, expected, stage.updated_at, noun="stage", entity=("order_stage", key))
    label = _check(session, label, position, key)
    before = {"label": stage.label, "position": stage.position}
    stage.label, stage.position = label, position
    stage.updated_at = next_stamp(stage.updated_at)
    session.add(stage)
    _flush_unless_taken(session)
    if position != before["position"]:
        # Which stage of an order's history is furthest may change with it.
        progress.refresh_all(session)
    summary = (
        f"Changed stage {key!r}: {before['label']!r}/{before['position']} → {label!r}/{position}"
    )
    _audit(session, stage, actor, "update", summary, before)
    session.commit()
    return stage


def _flush_unless_taken(session: Session) -> None:
    """``_check`` looked for a clash before; another admin's save may have taken the key,
    label or position since (PostgreSQL: both checks pass, the unique index refuses one)."""
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(
            "Another admin just gave a stage this key, label or position. Nothing was saved:"
            " open the stage list again and choose another."
        ) from exc


def _audit(
    session: Session,
    stage: OrderStage,
    actor: str,
    action: str,
    summary: str,
    before: dict[str, object] | None = None,
) -> None:
    changes: dict[str, object] = {"label": stage.label, "position": stage.position}
    if before is not None:
        changes["before"] = before
    audit.record(
        session,
        actor=actor,
        action=f"stage.{action}",
        entity_type="order_stage",
        entity_id=stage.key,
        summary=summary,
        changes=changes,
    )
