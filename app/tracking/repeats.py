"""The same stage update sent twice: a double tap on a phone, or a form sent again after a slow
answer. Saved twice it would show twice on the order page and mail every subscriber twice."""

from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from app.tracking.models import OrderStage, StageUpdate
from app.tracking.schemas import StageUpdateCreate

# Long enough for a resubmit after a slow answer on a bad network; short enough that posting
# the same news again on purpose (a minute later) still goes through.
REPEAT_WINDOW = timedelta(seconds=60)


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
    if latest is None or latest.created_by != actor or latest.stage_key != stage.key:
        return None
    # Without a time of its own an update happened "now": only a given time must match.
    if data.happened_at is not None and latest.happened_at != data.happened_at:
        return None
    fields = data.model_dump(exclude={"stage", "happened_at"})
    return latest if all(getattr(latest, k) == v for k, v in fields.items()) else None
