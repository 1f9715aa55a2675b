"""Request helpers shared by the public site and the admin: client address and CSRF tokens.

CSRF uses the signed double-submit pattern: a random token, signed with the secret key, sits in
an HttpOnly SameSite=Lax cookie and in a hidden form field. A forged cross-site POST can send
the cookie but cannot read it, so it cannot put the matching token in the form.
"""

import base64
import hashlib
import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Annotated, Any, TypeVar, cast

from fastapi import Depends, Request
from starlette.applications import Starlette
from starlette.responses import Response

from app import csrf, randomness
from app.config import Settings, SettingsDep
from app.db import DB_UNREACHABLE, is_outage
from app.errors import AppError, DatabaseUnavailable
from app.observability import private_path

log = logging.getLogger(__name__)
T = TypeVar("T")
CSRF_COOKIE = "ot_csrf"
CSRF_COOKIE_SECONDS = 7 * 24 * 3600
CSRF_FIELD = csrf.CSRF_FIELD


class CsrfFailed(AppError):
    status_code = 403
    title = "This form has expired"

    def __init__(self) -> None:
        super().__init__(
            "The form could not be verified (it may be old, or was sent from another site). "
            "Please reload the page and try again."
        )


def client_address(request: Request, settings: Settings) -> str:
    """The visitor's address; X-Forwarded-For is believed only from configured proxies."""
    peer = request.client.host if request.client else ""
    if not settings.trusted_proxies or not _is_trusted(peer, settings):
        return peer
    # Every X-Forwarded-For line, in order: HAProxy's `option forwardfor` adds its own line
    # after the visitor's, so the first line alone is whatever the visitor chose to send.
    forwarded = [
        hop.strip()
        for line in request.headers.getlist("x-forwarded-for")
        for hop in line.split(",")
        if hop.strip()
    ]
    # Walk from the nearest hop outwards and take the first address that is not our proxy.
    for hop in reversed(forwarded):
        if not _is_trusted(hop, settings):
            return hop
    return forwarded[0] if forwarded else peer


def rate_limit_key(address: str) -> str:
    """Whom a rate limit counts: the address, or for IPv6 its /64, which one subscriber or
    host usually holds whole (counting each of its 2^64 addresses apart would be no limit)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip.ipv4_mapped or ip) if isinstance(ip, ipaddress.IPv6Address) else str(ip)


def client_key(request: Request, settings: Settings) -> str:
    """The client as rate limits count it (see ``rate_limit_key``)."""
    return rate_limit_key(client_address(request, settings))


def _is_trusted(address: str, settings: Settings) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net, strict=False) for net in settings.trusted_proxies)


def _signature(nonce: str, settings: Settings) -> str:
    mac = _csrf_mac(settings.resolved_secret_key()).copy()
    mac.update(nonce.encode())
    return base64.urlsafe_b64encode(mac.digest()[:24]).decode()


@lru_cache(maxsize=4)
def _csrf_mac(secret_key: str) -> "hmac.HMAC":
    """The keyed HMAC, to copy for each token: a copy costs less than keying anew."""
    return hmac.new(("offertrack-csrf:" + secret_key).encode(), digestmod=hashlib.sha256)


def csrf_token(request: Request, settings: Settings) -> str:
    """The token for forms on this page: the visitor's existing one, or a new one."""
    existing = request.cookies.get(CSRF_COOKIE)
    if existing and _valid(existing, settings):
        return existing
    nonce = randomness.token_urlsafe(18)
    token = f"{nonce}.{_signature(nonce, settings)}"
    request.state.new_csrf_token = token
    return token


def set_csrf_cookie(request: Request, response: Response, settings: Settings) -> None:
    token = getattr(request.state, "new_csrf_token", None)
    if token:
        # What Response.set_cookie writes, without http.cookies' Morsel on every first view
        # (a token is letters, digits, "-", "_" and ".": nothing to quote).
        secure = "; Secure" if settings.uses_tls else ""
        # Kept a week, not only until the browser closes: a phone that drops its session
        # cookies restores the offer's tab with what was typed in its forms, and sending them
        # then met "This form has expired" and lost the text. A random nonce, stored nowhere.
        cookie = (
            f"{CSRF_COOKIE}={token}; HttpOnly; Path=/; Max-Age={CSRF_COOKIE_SECONDS};"
            f" SameSite=lax{secure}"
        )
        response.raw_headers.append((b"set-cookie", cookie.encode("latin-1")))


def _valid(token: str, settings: Settings) -> bool:
    nonce, _, signature = token.partition(".")
    return bool(nonce) and csrf.same(signature, _signature(nonce, settings))


class SignedCookiePolicy:
    """The public site's CSRF policy (see app.csrf): the visitor's signed cookie."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def expected(self, request: Request) -> str | None:
        cookie = request.cookies.get(CSRF_COOKIE)
        return cookie if cookie and _valid(cookie, self.settings) else None


async def verify_csrf(request: Request, settings: SettingsDep) -> None:
    """Dependency for every state-changing form POST of the public site."""
    if not await csrf.passes(request, SignedCookiePolicy(settings)):
        raise CsrfFailed()


CsrfChecked = Annotated[None, Depends(verify_csrf)]


def overridable(request: Request, dependency: Callable[..., Any], default: T) -> T:
    """``default``, or what a test put in ``app.dependency_overrides`` for ``dependency``: for
    plain Starlette routes, which FastAPI's dependency injection does not serve."""
    override = request.app.dependency_overrides.get(dependency)
    return cast(T, override()) if override is not None else default


class ForwardedSchemeMiddleware:
    """Behind a TLS proxy the app is spoken to in plain http: take the scheme from the
    proxy's ``X-Forwarded-Proto`` (only from OFFERTRACK_TRUSTED_PROXIES), so that the URLs a
    page links to (scripts, styles, forms) are https, not blocked as mixed content.

    Uvicorn's proxy-headers middleware would do this and also rewrite the client address, which
    ``client_address`` already works out under our own rules; so this sets the scheme only.
    """

    def __init__(self, app: Any, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("client"):
            proto = _header(scope, b"x-forwarded-proto")
            if proto in (b"https", b"http") and _is_trusted(scope["client"][0], self.settings):
                scope = {**scope, "scheme": proto.decode()}
        await self.app(scope, receive, send)


def _header(scope: Any, name: bytes) -> bytes | None:
    """The nearest proxy's word: the last value of the header's last line (a proxy that adds
    a line of its own puts it after whatever the visitor sent)."""
    found = None
    for key, value in scope["headers"]:
        if key == name:
            found = bytes(value).split(b",")[-1].strip().lower()
    return found


def answer_database_outages(
    app: Starlette, answer: Callable[[Request, AppError], Awaitable[Response]]
) -> None:
    """Answer an unreachable database (app.db.DB_UNREACHABLE) on ``app``'s routes as
    DatabaseUnavailable, a 503 with Retry-After, through ``answer``: the app's own page for its
    errors. Each app that catches errors itself needs this (the public app, the staff site and
    sqladmin's app inside it): left to its catch-all, an outage was a 500. An error of the
    same classes that is no outage (app.db.is_outage) goes on to that catch-all."""

    async def unreachable(request: Request, exc: Exception) -> Response:
        if not is_outage(exc):
            # SQL the database cannot run (SQLite's "no such column" is an OperationalError
            # too): a bug, which the app's catch-all logs and answers as a 500, not "try again".
            raise exc
        log.warning(
            "database unreachable on %s %s: %s",
            request.method,
            private_path(request.url.path),  # a path may hold the customer's key
            exc,
        )
        return await answer(request, DatabaseUnavailable())

    for error in DB_UNREACHABLE:
        app.add_exception_handler(error, unreachable)
