"""A double tap on a phone sends a staff form once: the stage update reaches the customer (and
their subscribers' inboxes) one time."""

import pytest
from playwright.sync_api import Page, Request, expect
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from app.admin import users
from app.auth.staff import Role
from app.config import get_settings
from app.tracking import service as tracking_service
from app.tracking.models import StageUpdate
from tests.factories import make_offer

pytestmark = [pytest.mark.browser, pytest.mark.concurrency]
PASSWORD = "correct horse battery"


def test_a_double_tap_on_add_stage_update_adds_one_update(
    committed: Engine, live_server: str, phone: Page
) -> None:
    settings = get_settings()
    with Session(committed, expire_on_commit=False) as session:
        offer = make_offer(session, settings, issued=True, company="Acme Hellas SA")
        tracking_service.activate_offer(session, offer.id, actor="tests", settings=settings)
        users.create_user(session, "sales@example.com", Role.SALES, PASSWORD, actor="tests")
    phone.goto(f"{live_server}/admin/")
    phone.get_by_label("E-mail").fill("sales@example.com")
    phone.get_by_label("Password").fill(PASSWORD)
    phone.get_by_role("button", name="Sign in").click()
    expect(phone.get_by_role("heading", name="Orders per stage")).to_be_visible()
    posted: list[Request] = []
    phone.on("request", lambda r: posted.append(r) if r.method == "POST" else None)

    phone.goto(f"{live_server}/admin/orders/{offer.id}/stage-update")
    phone.get_by_label("Stage", exact=True).select_option(label="In production")
    phone.get_by_label("Public note").fill("Machining started on line 3")
    phone.get_by_role("button", name="Add stage update").dblclick()

    expect(phone.get_by_text("Stage update “In production” added")).to_be_visible()
    assert len(posted) == 1
    with Session(committed) as session:
        added = session.exec(
            select(func.count()).where(
                StageUpdate.offer_id == offer.id, StageUpdate.stage_key != "confirmed"
            )
        ).one()
    assert added == 1
