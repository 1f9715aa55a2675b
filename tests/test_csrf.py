"""One CSRF check (app.csrf) with two policies: the public site's signed cookie and the staff
session's token. The same request passes only the policy whose token it carries."""

from urllib.parse import urlencode

from starlette.requests import Request

from app import csrf
from app.admin.csrf import StaffSessionPolicy
from app.config import get_settings
from app.web import CSRF_COOKIE, SignedCookiePolicy, csrf_token
from tests.aio import run_async


def _post(form: dict[str, str], cookie: str = "", session: dict | None = None, header: str = ""):
    body = urlencode(form).encode()
    headers = [(b"content-type", b"application/x-www-form-urlencoded")]
    if cookie:
        headers.append((b"cookie", f"{CSRF_COOKIE}={cookie}".encode()))
    if header:
        headers.append((b"x-csrf-token", header.encode()))
    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers, "query_string": b""}
    scope["session"] = session if session is not None else {}
    scope["state"] = {}

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)


def _passes(request: Request, policy: csrf.CsrfPolicy) -> bool:
    return run_async(lambda: csrf.passes(request, policy))


def _public_token() -> str:
    return csrf_token(_post({}), get_settings())  # a fresh signed token, as a page would set


def test_the_public_policy_wants_its_signed_cookie_echoed() -> None:
    settings = get_settings()
    token = _public_token()
    policy = SignedCookiePolicy(settings)

    assert _passes(_post({"csrf_token": token}, cookie=token), policy)
    assert _passes(_post({}, cookie=token, header=token), policy)
    assert not _passes(_post({"csrf_token": token}), policy)  # no cookie
    forged = token.split(".")[0] + ".AAAA"  # a cookie the attacker made up, echoed
    assert not _passes(_post({"csrf_token": forged}, cookie=forged), policy)


def test_the_staff_policy_wants_the_session_token() -> None:
    session = {"csrf": "staff-token-0123456789"}
    policy = StaffSessionPolicy()

    assert _passes(_post({"csrf_token": "staff-token-0123456789"}, session=session), policy)
    assert not _passes(_post({"csrf_token": "other"}, session=session), policy)
    assert not _passes(_post({"csrf_token": ""}, session={}), policy)


def test_a_token_of_one_site_does_not_pass_the_other() -> None:
    token = _public_token()
    public, staff = SignedCookiePolicy(get_settings()), StaffSessionPolicy()
    staff_session = {"csrf": "staff-token-0123456789"}

    assert not _passes(_post({"csrf_token": token}, cookie=token), staff)
    request = _post({"csrf_token": "staff-token-0123456789"}, session=staff_session)
    assert not _passes(request, public)
