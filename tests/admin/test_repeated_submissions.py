"""A form sent twice (a double tap on a phone, a resubmit after a slow answer) adds one stage
update and mails the order's subscribers once; the same news sent again later, or different
news, is added and mailed again."""

from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, update
from sqlmodel import Session, col, select

from app.auth.service import create_api_key
from app.auth.staff import Role
from app.config import Settings
from app.db import utcnow
from app.notifications import subscriptions
from app.notifications.models import MailOutbox, OrderSubscription
from app.offers.models import Offer
from app.tracking import service as tracking_service
from app.tracking.models import StageUpdate
from tests.factories import make_offer

pytestmark = pytest.mark.concurrency
NEWS = {"stage": "in_production", "public_note": "Machining started on line 3"}


def _order(db: Session, settings: Settings) -> Offer:
    """An order with one confirmed subscriber, who is mailed each update with news."""
    offer = make_offer(db, settings, issued=True, company="Acme Hellas SA")
    order = tracking_service.activate_offer(db, offer.id, actor="tests", settings=settings)
    db.add(OrderSubscription(offer_id=order.id, email="maria@example.com", confirmed_at=utcnow()))
    db.commit()
    return order


def _added(committed: Engine, order: Offer) -> list[str]:
    """The public notes of the order's updates after the first ("order confirmed")."""
    with Session(committed) as session:
        rows = session.exec(
            select(StageUpdate.public_note)
            .where(StageUpdate.offer_id == order.id, StageUpdate.stage_key != "confirmed")
            .order_by(col(StageUpdate.id))
        )
        return list(rows)


def _mails_queued(committed: Engine, settings: Settings) -> int:
    """The mails to subscribers, once the worker queued one per update with news."""
    while subscriptions.fan_out(committed, settings):
        pass
    with Session(committed) as session:
        return session.exec(select(func.count()).select_from(MailOutbox)).one()


def _age_updates(committed: Engine, seconds: int) -> None:
    """As if the updates so far were sent ``seconds`` ago."""
    with Session(committed) as session:
        earlier = utcnow() - timedelta(seconds=seconds)
        session.execute(update(StageUpdate).values(created_at=earlier, happened_at=earlier))
        session.commit()


def test_a_stage_update_form_sent_twice_adds_one_update_and_one_mail(
    web: TestClient,
    as_role: Callable[[Role], str],
    db: Session,
    settings: Settings,
    committed: Engine,
) -> None:
    order = _order(db, settings)
    form = {"csrf_token": as_role(Role.SALES), **NEWS}
    url = f"/admin/orders/{order.id}/stage-update"

    first = web.post(url, data=form, follow_redirects=False)
    second = web.post(url, data=form, follow_redirects=False)

    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert "Stage update “In production” added" in web.get(second.headers["location"]).text
    assert _added(committed, order) == ["Machining started on line 3"]
    assert _mails_queued(committed, settings) == 1


def test_different_news_or_the_same_a_minute_later_is_added_and_mailed_again(
    web: TestClient,
    as_role: Callable[[Role], str],
    db: Session,
    settings: Settings,
    committed: Engine,
) -> None:
    order = _order(db, settings)
    form = {"csrf_token": as_role(Role.SALES), **NEWS}
    url = f"/admin/orders/{order.id}/stage-update"

    web.post(url, data=form)
    web.post(url, data=form | {"public_note": "Machining started on line 4"})
    _age_updates(committed, 61)
    web.post(url, data=form | {"public_note": "Machining started on line 4"})

    notes = _added(committed, order)
    assert notes == ["Machining started on line 3"] + ["Machining started on line 4"] * 2
    assert _mails_queued(committed, settings) == 3


def test_a_bulk_stage_update_sent_twice_adds_one_update_per_order(
    web: TestClient,
    as_role: Callable[[Role], str],
    db: Session,
    settings: Settings,
    committed: Engine,
) -> None:
    orders = [_order(db, settings), _order(db, settings)]
    form = {"csrf_token": as_role(Role.SALES), **NEWS}
    data = {**form, "pks": [order.id for order in orders]}

    first = web.post("/admin/orders/bulk-stage-update", data=data, follow_redirects=False)
    second = web.post("/admin/orders/bulk-stage-update", data=data, follow_redirects=False)

    assert first.status_code == second.status_code == 303
    assert "Stage update added to 2 orders" in web.get(second.headers["location"]).text
    assert [len(_added(committed, order)) for order in orders] == [1, 1]
    assert _mails_queued(committed, settings) == 2


def test_an_api_retry_gets_the_first_update_back_with_200(
    web: TestClient, db: Session, settings: Settings, committed: Engine
) -> None:
    order = _order(db, settings)
    api = {"Authorization": f"Bearer {create_api_key(db, 'erp', actor='tests')[1]}"}
    url = f"/api/v1/orders/{order.tracking_id}/updates"

    created = web.post(url, json=NEWS, headers=api)
    retried = web.post(url, json=NEWS, headers=api)

    assert (created.status_code, retried.status_code) == (201, 200)
    assert retried.json() == created.json()
    assert _mails_queued(committed, settings) == 1
    other_key = {"Authorization": f"Bearer {create_api_key(db, 'crm', actor='tests')[1]}"}
    assert web.post(url, json=NEWS, headers=other_key).status_code == 201
