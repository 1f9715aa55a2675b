"""The staff site while its database cannot be reached: every page answers 503 with
Retry-After and the staff site's own page, as the public pages do, never a 500."""

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from app.auth.staff import Role
from tests.admin.conftest import StaffLogin, sign_in


@pytest.mark.parametrize(
    "path",
    [
        "/admin/",  # the dashboard, our page
        "/admin/offer/list",  # a sqladmin list
        "/admin/stage-update/list",
        "/admin/offers/new",  # the offer editor
        "/admin/analytics/",
    ],
)
def test_a_staff_page_answers_503_while_the_database_is_away(
    web: TestClient,
    make_staff: Callable[..., StaffLogin],
    request: pytest.FixtureRequest,
    path: str,
) -> None:
    sign_in(web, make_staff(Role.ADMIN))
    request.getfixturevalue("database_away")

    response = web.get(path, follow_redirects=False)

    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert "Temporarily unavailable" in response.text
    assert "try again in a minute" in response.text
    assert "<title>" in response.text and "OfferTrack staff" in response.text  # our page


def test_a_staff_form_sent_while_the_database_is_away_answers_503(
    web: TestClient, make_staff: Callable[..., StaffLogin], request: pytest.FixtureRequest
) -> None:
    token = sign_in(web, make_staff(Role.ADMIN))
    request.getfixturevalue("database_away")

    response = web.post("/admin/offers/new", data={"csrf_token": token, "customer_company": "Acme"})

    assert response.status_code == 503
    assert "Temporarily unavailable" in response.text
