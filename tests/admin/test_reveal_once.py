"""A new secret (webhook signing secret, API key token) is shown once after the redirect, and
a copy of the session cookie that the redirect set shows it no more, in any browser or
process: what was shown is recorded in the database, not in the cookie."""

import re
import threading
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from app.admin import reveal
from app.admin.access import SESSION_COOKIE
from app.auth.staff import Role
from app.db import WriterBusy

pytestmark = pytest.mark.concurrency
SignIn = Callable[[Role], str]
FORMS = {
    "webhook secret": (
        "/admin/analytics/webhooks",
        {"url": "https://w.example.com/in", "event_types": "scan.created"},
    ),
    "API key": ("/admin/api-key/create", {"name": "crm"}),
}


def _secret_on(html: str) -> str | None:
    found = re.search(r'id="secret-value">([^<]*)</textarea>', html)
    return found.group(1) if found else None


def _created(web: TestClient, token: str, form: str) -> tuple[str, str]:
    """Send the form; the page it redirects to, and the session cookie the redirect set."""
    path, data = FORMS[form]
    answer = web.post(path, data={**data, "csrf_token": token}, follow_redirects=False)
    assert answer.status_code in (302, 303), answer.text
    copied = web.cookies.get(SESSION_COOKIE)
    assert copied
    return answer.headers["location"], copied


def _with_cookie(browser: TestClient, location: str, cookie: str) -> str:
    answer = browser.get(location, headers={"Cookie": f"{SESSION_COOKIE}={cookie}"})
    assert answer.status_code == 200 and "Sign in" not in answer.text  # still signed in
    return answer.text


@pytest.mark.parametrize("form", list(FORMS))
def test_a_replayed_copy_of_the_redirects_cookie_shows_the_secret_no_more(
    web: TestClient, second_browser: TestClient, as_role: SignIn, form: str
) -> None:
    location, copied = _created(web, as_role(Role.ADMIN), form)

    shown = _secret_on(web.get(location).text)
    replayed_here = _with_cookie(web, location, copied)
    replayed_elsewhere = _with_cookie(second_browser, location, copied)

    assert shown and len(shown) > 20
    assert _secret_on(replayed_here) is None and shown not in replayed_here
    assert _secret_on(replayed_elsewhere) is None and shown not in replayed_elsewhere


def test_whichever_copy_comes_first_shows_it_and_only_that_one(
    web: TestClient, second_browser: TestClient, as_role: SignIn
) -> None:
    location, copied = _created(web, as_role(Role.ADMIN), "webhook secret")

    stolen = _secret_on(_with_cookie(second_browser, location, copied))
    own = web.get(location).text

    assert stolen is not None and _secret_on(own) is None and stolen not in own


def test_one_seal_claimed_from_two_threads_at_once_is_shown_once(db: Session) -> None:
    sealed, results = "gAAAAAB-the-same-seal", []
    start = threading.Barrier(2)

    def claim() -> None:
        start.wait()
        results.append(reveal._claim(sealed))

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [False, True]
    assert db.exec(select(func.count()).select_from(reveal.RevealShown)).one() == 1


def test_a_database_busy_while_revealing_keeps_the_secret_for_a_reload(
    web: TestClient, as_role: SignIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    location, _ = _created(web, as_role(Role.ADMIN), "API key")
    real_claim = reveal._claim

    def busy(sealed: str) -> bool:
        raise WriterBusy(5.0)

    monkeypatch.setattr(reveal, "_claim", busy)
    failed = web.get(location)
    monkeypatch.setattr(reveal, "_claim", real_claim)
    reloaded = web.get(location)

    assert failed.status_code == 503 and _secret_on(failed.text) is None
    assert (_secret_on(reloaded.text) or "").startswith("ot_")
