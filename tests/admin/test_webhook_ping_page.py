"""The staff site's "Send test event" on a webhook endpoint's page: admins only, a POST with
the form's token, the result read on the page it redirects to (once)."""

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.analytics import webhooks
from app.auth.staff import Role
from tests.admin.conftest import csrf_from
from tests.analytics.test_webhook_ping import _endpoint, loopback_allowed  # noqa: F401
from tests.analytics.test_webhooks import Receiver

pytestmark = pytest.mark.concurrency
SignIn = Callable[[Role], str]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.mark.usefixtures("loopback_allowed")
def test_an_admin_tests_an_endpoint_and_reads_the_result_after_the_redirect(
    web: TestClient, as_role: SignIn, db: Session, receiver: Receiver
) -> None:
    token = as_role(Role.ADMIN)
    endpoint_id = _endpoint(db, receiver.url, "whsec_page", enabled=False)
    receiver.secret = "whsec_page"
    page = f"/admin/analytics/webhooks/{endpoint_id}"
    assert "Send test event" in web.get(page).text

    answer = web.post(f"{page}/test", data={"csrf_token": token}, follow_redirects=False)
    shown = web.get(answer.headers["location"])
    reloaded = web.get(page)

    assert answer.status_code == 303 and answer.headers["location"].endswith(page)
    assert len(receiver.events) == 1 and receiver.events[0]["type"] == "ping"
    assert "Test event delivered" in shown.text
    assert "The receiver answered HTTP 204 in" in shown.text
    assert "Test event delivered" not in reloaded.text and len(receiver.events) == 1
    assert "No deliveries yet." in reloaded.text  # not in the delivery log


def test_a_refused_test_is_shown_in_words_on_the_page(
    web: TestClient, as_role: SignIn, db: Session
) -> None:
    token = as_role(Role.ADMIN)
    endpoint_id = _endpoint(db, "http://127.0.0.1:9/hook")  # loopback not allowed here

    shown = web.post(f"/admin/analytics/webhooks/{endpoint_id}/test", data={"csrf_token": token})

    assert "Test event not delivered" in shown.text
    assert "Refused: The URL points to an internal address (127.0.0.1)" in shown.text


@pytest.mark.parametrize("role", [Role.VIEWER, Role.SALES])
def test_only_admins_may_send_a_test_event(
    web: TestClient, as_role: SignIn, db: Session, receiver: Receiver, role: Role
) -> None:
    token = as_role(role)
    endpoint_id = _endpoint(db, receiver.url)

    answer = web.post(
        f"/admin/analytics/webhooks/{endpoint_id}/test",
        data={"csrf_token": token},
        follow_redirects=False,
    )

    assert answer.status_code == 403 and receiver.requests == []


@pytest.mark.usefixtures("loopback_allowed")
def test_a_test_event_needs_the_forms_csrf_token(
    web: TestClient, as_role: SignIn, db: Session, receiver: Receiver
) -> None:
    as_role(Role.ADMIN)
    endpoint_id = _endpoint(db, receiver.url)
    page = web.get(f"/admin/analytics/webhooks/{endpoint_id}").text
    assert csrf_from(page)

    answer = web.post(
        f"/admin/analytics/webhooks/{endpoint_id}/test",
        data={"csrf_token": "forged"},
        follow_redirects=False,
    )

    assert answer.status_code == 403 and receiver.requests == []


def test_a_test_event_while_the_server_is_busy_with_others_says_to_try_again(
    web: TestClient, as_role: SignIn, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = as_role(Role.ADMIN)
    endpoint_id = _endpoint(db, "http://127.0.0.1:9/hook")
    monkeypatch.setattr(webhooks, "MAX_TESTS_AT_ONCE", 0)

    answer = web.post(f"/admin/analytics/webhooks/{endpoint_id}/test", data={"csrf_token": token})

    assert answer.status_code == 503 and answer.headers["Retry-After"] == "10"
    assert "test events are being sent already" in answer.text
