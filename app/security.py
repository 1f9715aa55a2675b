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
from functools import cached_property

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import randomness
from app.config import Settings
from app.requestguard import relative_locations

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

    @cached_property
    def encoded(self) -> tuple[tuple[bytes, bytes], ...]:
        """As ASGI sends them (lower-case names), encoded once, not on every response."""
        return tuple((n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in self.common)

    @classmethod
    def for_settings(cls, settings: Settings) -> "HeaderSet":
        common = [
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"),
            ("Cross-Origin-Opener-Policy", "same-origin"),
            ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()"),
        ]
        if settings.uses_tls:
            common.append(("Strict-Transport-Security", HSTS))
        return cls(tuple(common))


def _policy_template(path: str, content_type: str) -> str:
    if content_type.startswith("application/pdf"):
        return PDF_POLICY
    for prefix, policy in POLICIES:
        if path == prefix or path.startswith(prefix + "/"):
            return policy
    return PUBLIC_POLICY


def policy_for(path: str, content_type: str, nonce: str) -> str:
    return _policy_template(path, content_type).replace(NONCE, nonce)


def needs_nonce(path: str) -> bool:
    """Whether an HTML page at ``path`` has a policy that names a nonce (staff site, docs)."""
    return NONCE in _policy_template(path, "text/html")


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


def apply_headers(
    raw: list[tuple[bytes, bytes]], headers_set: HeaderSet, path: str, nonce: str
) -> None:
    """Add our headers to a response's raw header list; a header the response set itself (a
    stricter policy) is kept."""
    present = {name.lower() for name, _ in raw}
    content_type = next((v for n, v in raw if n.lower() == b"content-type"), b"")
    policy = policy_for(path, content_type.decode("latin-1"), nonce)
    ours = (
        *headers_set.encoded,
        (b"referrer-policy", referrer_policy_for(path).encode("latin-1")),
        (b"content-security-policy", policy.encode("latin-1")),
    )
    raw.extend(header for header in ours if header[0] not in present)
    if is_staff_content(path):
        # Customer data must not stay in the browser's cache after sign-out: every staff page
        # and download is no-store, whatever its route asked for (a PDF's ETag caching).
        raw[:] = [(n, v) for n, v in raw if n.lower() != b"cache-control"]
        raw.append((b"cache-control", b"no-store"))


def is_staff_content(path: str) -> bool:
    """A staff page or download: everything under /admin except sqladmin's static files."""
    return (path == "/admin" or path.startswith("/admin/")) and not path.startswith(
        "/admin/statics/"
    )


def secure_response(request: Request, response: Response, settings: Settings) -> None:
    """For responses sent outside the middleware (the last-resort 500 handler)."""
    nonce = request.scope.get("state", {}).get("csp_nonce", "")
    headers_set = HeaderSet.for_settings(settings)
    apply_headers(response.raw_headers, headers_set, request.url.path, nonce)


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.headers = HeaderSet.for_settings(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        nonce = new_nonce() if needs_nonce(path) else ""
        scope.setdefault("state", {})["csp_nonce"] = nonce

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = list(message.get("headers", []))
                apply_headers(raw, self.headers, path, nonce)
                relative_locations(raw, scope)
                message["headers"] = raw
            await send(message)

        await self.app(scope, receive, send_with_headers)


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
