"""One CSRF check (app.csrf) with two policies: the public site's signed cookie and the staff
session's token. The same request passes only the policy whose token it carries."""

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.types import Message, Scope

from app import csrf
from app.admin.csrf import StaffSessionPolicy
from app.auth.dependencies import require_api_key
from app.config import get_settings
from app.web import CSRF_COOKIE, SignedCookiePolicy, csrf_token, verify_csrf
from tests.aio import run_async
from tests.routes import all_routes

# State-changing public routes that carry their own proof instead: the one-click unsubscribe
# (RFC 8058) is posted by mail programs, which have no cookie; its signed token is in the URL.
OWN_PROOF = {"notifications:unsubscribe"}


def _post(
    form: dict[str, str],
    cookie: str = "",
    session: dict[str, Any] | None = None,
    header: str = "",
) -> Request:
    body = urlencode(form).encode()
    headers = [(b"content-type", b"application/x-www-form-urlencoded")]
    if cookie:
        headers.append((b"cookie", f"{CSRF_COOKIE}={cookie}".encode()))
    if header:
        headers.append((b"x-csrf-token", header.encode()))
    scope: Scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": headers,
        "query_string": b"",
    }
    scope["session"] = session if session is not None else {}
    scope["state"] = {}

    async def receive() -> Message:
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


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def test_every_public_change_is_checked_by_the_public_policy(app: FastAPI) -> None:
    """Every state-changing route of the public app (the staff site, mounted, has its middleware)
    takes the signed-cookie check, or an API key (no cookies there), or is named above."""
    unchecked = [
        route.name
        for route in all_routes(app.router.routes)
        if isinstance(route, APIRoute)
        and (route.methods or set()) - {"GET", "HEAD", "OPTIONS"}
        and route.endpoint.__module__.split(".")[1] != "admin"
        and not {verify_csrf, require_api_key} & set(_calls(route.dependant))
    ]
    assert unchecked == sorted(OWN_PROOF)
