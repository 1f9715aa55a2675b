"""An unexpected error is logged once, with its traceback: each Starlette app it passes
(sqladmin's, the staff site's, the public one) answers it and raises it again for the next."""

import logging
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.admin.views.orders import OfferAdmin
from app.auth.staff import Role
from app.observability import LoggedOnce
from tests.admin.browserforms import form_fields
from tests.admin.conftest import StaffLogin, sign_in


class Bug(Exception):
    pass


def _tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], Bug)]


@pytest.mark.parametrize(
    "path",
    ["/admin/offer/list", "/admin/alerts/"],  # a sqladmin page, a page of the staff site's own
)
def test_an_error_on_a_staff_page_is_logged_once(
    app: FastAPI,
    web: TestClient,
    make_staff: Callable[..., StaffLogin],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    path: str,
) -> None:
    sign_in(web, make_staff(Role.ADMIN))

    async def broken(*args: object, **kwargs: object) -> None:
        raise Bug("a bug")

    def broken_too(*args: object, **kwargs: object) -> None:
        raise Bug("a bug")

    monkeypatch.setattr(OfferAdmin, "list", broken)
    monkeypatch.setattr("app.notifications.alerts.preferences", broken_too)
    browser = TestClient(app, base_url=str(web.base_url), raise_server_exceptions=False)
    browser.cookies.update(web.cookies)

    with caplog.at_level(logging.ERROR):
        response = browser.get(path)

    assert response.status_code == 500
    assert "Something went wrong" in response.text
    assert len(_tracebacks(caplog)) == 1
    # uvicorn's own log of it, last, is dropped as well
    record = _tracebacks(caplog)[0]
    assert not LoggedOnce().filter(record)


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_uvicorn_s_error_log_leaves_out_what_was_logged(log_format: str) -> None:
    from app.cli import _log_options

    config = _log_options(log_format, "INFO")["log_config"]

    assert "logged_once" in config["loggers"]["uvicorn.error"]["filters"]
    fresh = Bug("never logged")
    record = logging.LogRecord("uvicorn.error", logging.ERROR, "", 0, "x", (), (Bug, fresh, None))
    assert LoggedOnce().filter(record)  # an error nobody logged still reaches the log


@pytest.mark.usefixtures("restored_stage_list")  # the first admin's rename is saved
def test_a_refused_save_is_not_logged_as_an_error(
    web: TestClient,
    second_browser: TestClient,
    make_staff: Callable[..., StaffLogin],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Two admins on one stage's form: the second save is refused (shown to its author), and
    # another stage's position is taken (a clash): neither is the server's error.
    sign_in(web, make_staff(Role.ADMIN, "ana@example.com"))
    sign_in(second_browser, make_staff(Role.ADMIN, "ben@example.com"))
    url = "/admin/order-stage/edit/in_production"
    anas = form_fields(web.get(url).text, url)
    bens = form_fields(second_browser.get(url).text, url)
    assert web.post(url, data=anas | {"label": "Being made"}, follow_redirects=False).is_redirect

    with caplog.at_level(logging.INFO):
        stale = second_browser.post(url, data=bens | {"position": "9"})
        fresh = form_fields(second_browser.get(url).text, url)
        clash = second_browser.post(url, data=fresh | {"position": "1"})

    assert stale.status_code == clash.status_code == 400
    assert "since you opened it" in stale.text and "already" in clash.text
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
