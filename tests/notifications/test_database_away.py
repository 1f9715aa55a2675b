"""The customer's pages while the database cannot be reached: a form sent, a PDF asked for or
a feed read answers 503 with Retry-After on the public error page, never a 500
(tests/tracking/test_degraded.py covers the tracking page itself, the staff site
tests/admin/test_database_away.py)."""

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from app.config import Settings
from app.tracking import service as tracking_service
from tests.factories import make_offer

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def test_the_customers_actions_answer_503_while_the_database_is_away(
    web: TestClient, committed: Engine, settings: Settings, request: pytest.FixtureRequest
) -> None:
    with Session(committed, expire_on_commit=False) as session:
        offer = make_offer(session, settings, issued=True)
        ordered = make_offer(session, settings, issued=True)
        order = tracking_service.activate_offer(session, ordered.id, actor="t", settings=settings)
    match = CSRF.search(web.get(f"/{offer.id}").text)
    assert match
    token = match.group(1)
    request.getfixturevalue("database_away")

    answers = {
        "accept": web.post(
            f"/{offer.id}/accept",
            data={"signer_name": "M. P.", "accept_terms": "yes", "csrf_token": token},
        ),
        "decline": web.post(f"/{offer.id}/decline", data={"reason": "", "csrf_token": token}),
        "question": web.post(
            f"/{offer.id}/question",
            data={"email": "a@example.com", "message": "When?", "csrf_token": token},
        ),
        "subscribe": web.post(
            f"/{order.tracking_id}/subscribe", data={"email": "a@example.com", "csrf_token": token}
        ),
        "pdf": web.get(f"/{offer.id}/pdf"),
        "feed": web.get(f"/{order.tracking_id}/feed.atom"),
    }

    for action, response in answers.items():
        assert response.status_code == 503, (action, response.status_code, response.text[:300])
        assert response.headers["Retry-After"], action
        assert "try again" in response.text, action
