"""Rules every request and response obeys, whichever route or sub-application handles it.

- HEAD is answered as GET without a body, and the application only ever sees GET: a handler
  that takes anything but GET for a submission (sqladmin's create and edit forms do) can never
  be driven by a HEAD, and the CSRF check needs no list of methods it trusts. A HEAD is not a
  visit either: ``is_head`` lets the tracking page and the campaign redirect leave it out of
  the scan log.
- A ``Location`` that points back at this site is sent relative (``/admin/login``), never
  built from the Host header the client chose: ``Host: evil.example`` cannot turn our
  redirects into links to another site. Locations to other sites (a campaign's destination)
  pass as they are.
- JSON text holding a lone UTF-16 surrogate or a NUL is refused with a 422 naming the field;
  a form's and a query string's encoded NUL characters are dropped.
"""

import json
import re
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEAD_FLAG = "head_request"


def is_head(request: Request) -> bool:
    """Whether this GET is really a HEAD (answered without a body): not a page view."""
    return bool(request.scope.get("state", {}).get(HEAD_FLAG))


class RequestGuardMiddleware:
    """The request-side rules, in one layer: a plain GET (every tracking page view) passes
    straight through it. The response-side rule (relative Locations) runs in the security
    headers' pass over the response's header list (app.security)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if b"%00" in scope["query_string"]:  # a list's filter is text PostgreSQL refuses too
            scope = {**scope, "query_string": scope["query_string"].replace(b"%00", b"")}
        if scope["method"] == "HEAD":
            await self._head_as_get(scope, receive, send)
        elif _is_urlencoded_form(scope):
            await self.app(scope, _without_nul(receive), send)
        elif _is_json(scope):
            await self._json_without_surrogates(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _head_as_get(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A copy: the server keeps reading the original scope, where the request stays a HEAD
        # (uvicorn sends no body for it, and expects none).
        scope = {**scope, "method": "GET", "state": {**scope.get("state", {}), HEAD_FLAG: True}}
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

    async def _json_without_surrogates(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A JSON body whose text holds a lone surrogate gets a 422 naming the field, before any
        route sees it: such text can be neither stored nor echoed back in an error (the 422
        would itself fail to encode). Form bodies need no check: Starlette decodes them with
        replacement characters."""
        try:
            body = await read_body(receive) or b""
        except HTTPException as exc:  # the body limit, counted while the body arrives
            response = JSONResponse({"detail": exc.detail}, exc.status_code)
            response.headers["Connection"] = "close"
            await response(scope, receive, send)
            return
        loc = _surrogate_location(body) if _UNSTORABLE_ESCAPE.search(body) else None
        if loc is not None:
            error = {"type": "string_unicode", "loc": ["body", *loc], "msg": SURROGATE_MESSAGE}
            await JSONResponse({"detail": [error]}, 422)(scope, receive, send)
            return
        await self.app(scope, replay(body, receive), send)


def relative_locations(raw: list[tuple[bytes, bytes]], scope: Scope) -> None:
    """Make a Location that points back at this site relative, in a response's raw header
    list. Most responses carry none: they cost one scan of their header names."""
    if any(name.lower() == b"location" for name, _ in raw):
        own = _own_origins(scope)
        raw[:] = [
            (name, _relative_location(value, own) if name.lower() == b"location" else value)
            for name, value in raw
        ]


def _own_origins(scope: Scope) -> frozenset[str]:
    """The host names a URL of ours may carry in this request: the Host header and the
    server's own address, as Starlette builds absolute URLs from them."""
    hosts = {value.decode("latin-1").lower() for name, value in scope["headers"] if name == b"host"}
    server = scope.get("server")
    if server:
        hosts.add(f"{server[0]}:{server[1]}".lower())
    return frozenset(hosts)


# Only keys of a URL's usual length are cached: a redirect to our own pages is built on the
# Host header the client sent (and, for a trailing slash, its query string), text of any length
# (uvicorn with httptools takes megabytes), and ``own`` holds that Host header too, so 4096
# entries could hold any amount of memory. A longer one is worked out each time.
CACHED_KEY_LENGTH = 2048


def _relative_location(location: bytes, own: frozenset[str]) -> bytes:
    if len(location) + sum(map(len, own)) > CACHED_KEY_LENGTH:
        return _relative.__wrapped__(location, own)
    return _relative(location, own)


# A campaign code's few destinations, seen through a site's few names: parsing each redirect's
# URL anew cost the busiest redirect a few microseconds.
@lru_cache(maxsize=4096)
def _relative(location: bytes, own: frozenset[str]) -> bytes:
    try:
        parts = urlsplit(location.decode("latin-1"))
    except ValueError:
        return location
    if parts.scheme not in ("http", "https") or parts.netloc.lower() not in own:
        return location
    # One leading slash only: "//evil.example/x" would be a link to another site.
    relative = "/" + parts.path.lstrip("/")
    if parts.query:
        relative += "?" + parts.query
    if parts.fragment:
        relative += "#" + parts.fragment
    return relative.encode("latin-1")


# A JSON escape of a UTF-16 surrogate (\ud800-\udfff) or of NUL (\u0000). Raw bytes cannot
# carry either (a surrogate is no UTF-8, a raw control character no JSON), so a body without
# this pattern needs no closer look.
_UNSTORABLE_ESCAPE = re.compile(rb"\\u(?:[dD][89a-fA-F]|0000)")
SURROGATE_MESSAGE = (
    "Text must not contain a NUL character (\\u0000) or a lone UTF-16 surrogate "
    "(\\ud800-\\udfff): neither can be stored."
)


def _is_urlencoded_form(scope: Scope) -> bool:
    return any(
        name == b"content-type" and value.startswith(b"application/x-www-form-urlencoded")
        for name, value in scope["headers"]
    )


def _without_nul(receive: Receive) -> Receive:
    """A form's encoded NUL characters (%00) dropped: PostgreSQL cannot store one, and no
    person types one. (Starlette already replaces what is not UTF-8.) An escape split
    across two chunks of the body is rare enough to be left to the database."""

    async def receive_without_nul() -> Message:
        message = await receive()
        if message["type"] == "http.request" and b"%00" in message.get("body", b""):
            message = {**message, "body": message["body"].replace(b"%00", b"")}
        return message

    return receive_without_nul


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            media: bytes = value.split(b";")[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return False


async def read_body(receive: Receive, limit: int | None = None) -> bytes | None:
    """The whole request body, for a middleware that must look at it before the app does
    (``replay`` hands it on); None once it grows past ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit is not None and size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` once, then whatever comes next (a disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


def _surrogate_location(body: bytes) -> list[str | int] | None:
    """The path of the first key or string holding a lone surrogate; None when there is none
    (or the body is no JSON: the route's own parsing answers that)."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return _find(document, [])


def _find(value: Any, path: list[str | int]) -> list[str | int] | None:
    # Iterative: a deeply nested document must not exhaust the stack here.
    stack: list[tuple[Any, list[str | int]]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if not _encodable(item):
                return where
        elif isinstance(item, dict):
            for key, child in reversed(item.items()):
                if not _encodable(key):
                    return [*where, key.encode("utf-8", "backslashreplace").decode()]
                stack.append((child, [*where, key]))
        elif isinstance(item, list):
            stack.extend((child, [*where, i]) for i, child in reversed(list(enumerate(item))))
    return None


def _encodable(text: str) -> bool:
    if "\x00" in text:  # PostgreSQL's text refuses NUL
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
