"""Security headers on every response, in one place.

The public site runs no inline script or style: its Content-Security-Policy allows scripts,
styles, images and fetches from our own origin only (htmx from static/, with its indicator
styles switched off in base.html, so it injects no <style>). Other policies, each for a path
prefix, are listed in ``POLICIES``:

- ``/admin`` (sqladmin): its templates carry an inline script (flash messages) and inline
  styles. Scripts must carry the request's nonce (``request.state.csp_nonce``; an admin
  template override writes ``<script nonce="{{ request.state.csp_nonce }}">``); styles may be
  inline, as they cannot run code.
- ``/docs`` (Swagger UI, served from static/swagger-ui/): FastAPI's page starts it with an
  inline script, which gets the nonce here (see app.main's docs route).

A PDF gets no script policy: Chromium's built-in PDF viewer does not open under
``object-src 'none'``/``default-src 'none'``; it is not HTML and runs no script of ours.
"""

import base64
from dataclasses import dataclass

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import randomness
from app.config import Settings

NONCE = "{nonce}"

PUBLIC_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
ADMIN_POLICY = (
    f"default-src 'self'; script-src 'self' 'nonce-{NONCE}'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
DOCS_POLICY = (
    f"default-src 'self'; script-src 'self' 'nonce-{NONCE}'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
PDF_POLICY = "frame-ancestors 'none'"

# Longest prefix first; the first match wins.
POLICIES: tuple[tuple[str, str], ...] = (
    ("/admin", ADMIN_POLICY),
    ("/docs", DOCS_POLICY),
)

HSTS = "max-age=31536000"


@dataclass(frozen=True)
class HeaderSet:
    common: tuple[tuple[str, str], ...]

    @classmethod
    def for_settings(cls, settings: Settings) -> "HeaderSet":
        common = [
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"),
            ("Cross-Origin-Opener-Policy", "same-origin"),
            ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()"),
        ]
        if settings.public_base_url.startswith("https://"):
            common.append(("Strict-Transport-Security", HSTS))
        return cls(tuple(common))


def policy_for(path: str, content_type: str, nonce: str) -> str:
    if content_type.startswith("application/pdf"):
        return PDF_POLICY
    for prefix, policy in POLICIES:
        if path == prefix or path.startswith(prefix + "/"):
            return policy.replace(NONCE, nonce)
    return PUBLIC_POLICY


def referrer_policy_for(path: str) -> str:
    # A tracking page's URL holds the customer's key (the full ULID): no page of the public
    # site tells another site where the visitor came from. The staff site keeps its referrer
    # within itself, because with "no-referrer" browsers send "Origin: null" on its own form
    # posts, and its CSRF check rightly refuses those.
    if path == "/admin" or path.startswith("/admin/"):
        return "same-origin"
    return "no-referrer"


def new_nonce() -> str:
    return base64.b64encode(randomness.token_bytes(16)).decode()


def apply_headers(headers: MutableHeaders, headers_set: HeaderSet, path: str, nonce: str) -> None:
    """Add our headers; a header the response set itself (a stricter policy) is kept."""
    for name, value in headers_set.common:
        headers.setdefault(name, value)
    headers.setdefault("Referrer-Policy", referrer_policy_for(path))
    policy = policy_for(path, headers.get("content-type", ""), nonce)
    headers.setdefault("Content-Security-Policy", policy)


def secure_response(request: Request, response: Response, settings: Settings) -> None:
    """For responses sent outside the middleware (the last-resort 500 handler)."""
    nonce = request.scope.get("state", {}).get("csp_nonce", "")
    apply_headers(response.headers, HeaderSet.for_settings(settings), request.url.path, nonce)


def _needs_nonce(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix, _ in POLICIES)


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.headers = HeaderSet.for_settings(settings)
        # The public site's usual answer (an HTML page, no header of these set by the view),
        # encoded once: the tracking page and the campaign redirect are most of our traffic.
        self._public = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in (
                *self.headers.common,
                ("Referrer-Policy", "no-referrer"),
                ("Content-Security-Policy", PUBLIC_POLICY),
            )
        ]
        self._public_names = frozenset(name for name, _ in self._public)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        # Only the policies of the staff site and the API docs name a nonce.
        nonce = new_nonce() if _needs_nonce(path) else ""
        scope.setdefault("state", {})["csp_nonce"] = nonce

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._apply(message, path, nonce)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _apply(self, message: Message, path: str, nonce: str) -> None:
        raw: list[tuple[bytes, bytes]] = list(message.get("headers", []))
        message["headers"] = raw
        present = {name.lower() for name, _ in raw}
        content_type = next((v for n, v in raw if n.lower() == b"content-type"), b"")
        public_page = not nonce and referrer_policy_for(path) == "no-referrer"
        if public_page and not content_type.startswith(b"application/pdf"):
            if present.isdisjoint(self._public_names):
                raw.extend(self._public)
            else:
                raw.extend(h for h in self._public if h[0] not in present)
            return
        apply_headers(MutableHeaders(raw=raw), self.headers, path, nonce)


def body_too_large_detail(limit: int) -> str:
    return f"The request body is larger than the limit of {limit} bytes."


class BodyLimitMiddleware:
    """Refuse request bodies over ``limit`` bytes with a 413.

    A declared Content-Length over the limit is refused before the application runs. A body
    without one (chunked) is counted as it arrives; past the limit, reading it raises a 413
    HTTPException, which the application's handler turns into JSON (API) or a page.
    """

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await self._refuse(scope, receive, send)
            return
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise HTTPException(413, body_too_large_detail(self.limit))
            return message

        await self.app(scope, receive_within_limit, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = body_too_large_detail(self.limit)
        response: Response
        if scope["path"].startswith("/api/"):
            response = JSONResponse({"detail": detail}, status_code=413)
        else:
            response = PlainTextResponse(detail, status_code=413)
        # The client may still be sending: close the connection rather than read it all.
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
