"""CSRF protection for every state-changing request of the staff site, sqladmin's included.

sqladmin has none of its own, so this middleware sits in front of it: a POST, PUT, PATCH or
DELETE passes only with the session's token (app.csrf's one check, with the staff session as
its policy) and, when the browser names one, an Origin of this very site.
"""

from urllib.parse import urlsplit

from sqladmin.flash import Flash
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from app import csrf
from app.admin.access import carries_a_session, expected_csrf_token, sign_in_again
from app.config import get_settings
from app.requestguard import read_body, replay

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_BODY_BYTES = 2 * 1024 * 1024

REFUSED_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Request refused · OfferTrack staff</title></head><body>
<h1>This form could not be verified</h1>
<p>{reason} Nothing was changed. Go back, reload the page and try again.</p>
<p><a href="{home}">Back to the staff dashboard</a></p></body></html>"""


class CsrfMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        body = await read_body(receive, MAX_BODY_BYTES)
        if body is None:
            await _refuse(scope, receive, send, "The request is too large.", 413)
            return
        request = Request(scope, replay(body, receive))
        reason = await _problem(request)
        if reason:
            ended = _without_session(request)
            if ended is not None:
                await ended(scope, receive, send)
                return
            await _refuse(scope, receive, send, reason, 403)
            return
        await self.app(scope, replay(body, receive), send)


def _cross_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return False
    # Behind a TLS-terminating proxy the request arrives as http://, while the browser names
    # the public https:// origin: both are ours.
    public = urlsplit(get_settings().public_base_url)
    own = {(request.url.scheme, request.url.netloc), (public.scheme, public.netloc)}
    try:
        parts = urlsplit(origin)
    except ValueError:  # no origin a browser sends ("http://[x"): not ours
        return True
    return origin == "null" or (parts.scheme, parts.netloc) not in own


class StaffSessionPolicy:
    """The staff site's CSRF policy (see app.csrf): the token kept in the staff session."""

    def expected(self, request: Request) -> str | None:
        return expected_csrf_token(request.session)


async def _problem(request: Request) -> str | None:
    if _cross_origin(request):
        return "It was sent from another site."
    if not await csrf.passes(request, StaffSessionPolicy()):
        return (
            "Its security token is missing or out of date (the page may be old, or it was "
            "sent from another site)."
        )
    return None


def _without_session(request: Request) -> Response | None:
    """A form of our own sent after its session ended: the cookie expired with the idle time,
    or sign-out in another tab emptied it. There is no session to forge a request in, so the
    person is sent to sign in again (told that nothing was saved, or that they are signed
    out), not shown a refused form that speaks of other sites."""
    if _cross_origin(request) or carries_a_session(request.session):
        return None
    path = request.url.path.removeprefix(request.scope.get("root_path", ""))
    if path.startswith("/login"):  # a sign-in needs the page's own token: refused as before
        return None
    if path == "/logout":
        Flash.info(request, "You are signed out.")
        return RedirectResponse(request.scope.get("root_path", "") + "/login", 303)
    return sign_in_again(request)


async def _refuse(scope: Scope, receive: Receive, send: Send, reason: str, status: int) -> None:
    home = scope.get("root_path", "") + "/"
    response: Response = HTMLResponse(REFUSED_PAGE.format(reason=reason, home=home), status)
    await response(scope, receive, send)
