"""Two rules every response obeys, whichever route or sub-application made it.

- HEAD is answered as GET without a body, and the application only ever sees GET: a handler
  that takes anything but GET for a submission (sqladmin's create and edit forms do) can never
  be driven by a HEAD, and the CSRF check needs no list of methods it trusts. A HEAD is not a
  visit either: ``is_head`` lets the tracking page leave it out of the scan log.
- A ``Location`` that points back at this site is sent relative (``/admin/login``), never
  built from the Host header the client chose: ``Host: evil.example`` cannot turn our
  redirects into links to another site. Locations to other sites (a campaign's destination)
  pass as they are.
"""

from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEAD_FLAG = "head_request"


def is_head(request: Request) -> bool:
    """Whether this GET is really a HEAD (answered without a body): not a page view."""
    return bool(request.scope.get("state", {}).get(HEAD_FLAG))


class HeadAsGetMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        scope["method"] = "GET"
        scope.setdefault("state", {})[HEAD_FLAG] = True
        body_given = False

        async def no_body() -> Message:
            # Whatever a HEAD carries is ignored, as a GET's would be: never form data.
            nonlocal body_given
            if not body_given:
                body_given = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return await receive()

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app(scope, no_body, send_headers_only)


class RelativeLocationMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        own = _own_origins(scope)

        async def send_relative(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    (name, _relative(value, own) if name.lower() == b"location" else value)
                    for name, value in message.get("headers", [])
                ]
            await send(message)

        await self.app(scope, receive, send_relative)


def _own_origins(scope: Scope) -> set[str]:
    """The host names a URL of ours may carry in this request: the Host header and the
    server's own address, as Starlette builds absolute URLs from them."""
    hosts = {value.decode("latin-1").lower() for name, value in scope["headers"] if name == b"host"}
    server = scope.get("server")
    if server:
        hosts.add(f"{server[0]}:{server[1]}".lower())
    return hosts


def _relative(location: bytes, own: set[str]) -> bytes:
    try:
        parts = urlsplit(location.decode("latin-1"))
    except ValueError:
        return location
    if parts.scheme not in ("http", "https") or parts.netloc.lower() not in own:
        return location
    relative = parts.path or "/"
    if parts.query:
        relative += "?" + parts.query
    if parts.fragment:
        relative += "#" + parts.fragment
    return relative.encode("latin-1")
