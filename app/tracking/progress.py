"""An order's progress kept on its offer row: the position of its furthest stage and its
latest expected delivery date, worked out from its stage history in one place, so the staff
dashboard reads the orders in progress rather than every stage update there ever was, and the
tracking page, the order's staff page and its feeds show the stage and date kept here."""

from collections.abc import Collection

from sqlalchemy import ColumnElement, func, update
from sqlmodel import Session, col, select

from app.offers.models import Offer
from app.tracking import pagecache
from app.tracking.models import OrderStage, StageUpdate


def lock(session: Session, offer_ids: Collection[str]) -> None:
    """Lock these orders' rows, in one order, and read them afresh, before their history grows.

    On PostgreSQL adding a stage update takes a key-share lock on its order (the foreign key),
    which the refresh's lock waits for: two updates that both added theirs first would wait for
    each other (a deadlock). Locked first, the second waits, then reads the progress the first
    left (what its event compares with)."""
    which = col(Offer.id).in_(sorted(offer_ids))
    query = select(Offer).where(which).order_by(col(Offer.id)).with_for_update()
    session.exec(query.execution_options(populate_existing=True)).all()


def refresh(session: Session, offer_ids: Collection[str]) -> None:
    """Work out the stored progress of these orders again from their history."""
    if offer_ids:
        _refresh_where(session, col(Offer.id).in_(sorted(offer_ids)))
        # The tracking pages show the stored progress, and the UPDATE is no change the ORM
        # sees: their cached copies go with the commit.
        pagecache.drop_on_commit(session, offer_ids)


def refresh_all(session: Session) -> None:
    """Every order's stored progress again: a stage moved, and with it what is furthest."""
    _refresh_where(session, col(Offer.stage_position).is_not(None))
    pagecache.drop_all_on_commit(session)  # every order's page, as in refresh()


def _refresh_where(session: Session, which: ColumnElement[bool]) -> None:
    furthest = (
        select(func.max(OrderStage.position))
        .join(StageUpdate, col(StageUpdate.stage_key) == col(OrderStage.key))
        .where(col(StageUpdate.offer_id) == col(Offer.id))
        .scalar_subquery()
    )
    # The latest update by when it happened (then by id) that named a date: the rule of the
    # tracking page and of the stage-updated event.
    latest_expected = (
        select(col(StageUpdate.expected_delivery_date))
        .where(
            col(StageUpdate.offer_id) == col(Offer.id),
            col(StageUpdate.expected_delivery_date).is_not(None),
        )
        .order_by(col(StageUpdate.happened_at).desc(), col(StageUpdate.id).desc())
        .limit(1)
        .scalar_subquery()
    )
    session.flush()  # the history as it stands in this transaction
    # Locked first, in one order: on PostgreSQL the UPDATE below then reads the history with a
    # snapshot taken after any other transaction that changed it has committed, rather than
    # writing over that one's result from a history that lacks its update.
    session.exec(select(Offer.id).where(which).order_by(col(Offer.id)).with_for_update()).all()
    session.execute(
        update(Offer)
        .where(which)
        .values(stage_position=furthest, expected_delivery_date=latest_expected)
        .execution_options(synchronize_session=False)
    )
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Offer):
            session.expire(obj, ["stage_position", "expected_delivery_date"])
