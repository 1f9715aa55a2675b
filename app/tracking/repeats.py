"""The same stage update sent twice: a double tap on a phone, or a form sent again after a slow
answer. Saved twice it would show twice on the order page and mail every subscriber twice. The
rule is app.repeats's, the one every repeated form follows."""

from datetime import datetime

from sqlmodel import Session, col, select

from app.repeats import REPEAT_WINDOW, is_repeat
from app.tracking.models import OrderStage, StageUpdate
from app.tracking.schemas import StageUpdateCreate


def repeated_update(
    session: Session,
    offer_id: str,
    stage: OrderStage,
    data: StageUpdateCreate,
    *,
    actor: str,
    now: datetime,
) -> StageUpdate | None:
    """The order's latest update if ``data`` repeats it: same actor, within the window, every
    field the same. Call it with the order locked, so two concurrent sends see each other."""
    # The latest row of the window is the latest of all: a later one would lie in it too.
    query = (
        select(StageUpdate)
        .where(StageUpdate.offer_id == offer_id, StageUpdate.created_at >= now - REPEAT_WINDOW)
        .order_by(col(StageUpdate.id).desc())
        .limit(1)
    )
    latest = session.exec(query).first()
    if latest is None:
        return None
    sent = {"created_by": actor, "stage_key": stage.key, **data.model_dump(exclude={"stage"})}
    # Without a time of its own an update happened "now": only a given time must match.
    if data.happened_at is None:
        del sent["happened_at"]
    return latest if is_repeat(latest.created_at, now, latest, sent) else None
