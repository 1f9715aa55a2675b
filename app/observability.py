"""Request ids, request metrics and (optionally) JSON logs.

Every response carries ``X-Request-ID``: the caller's own id when it sent a sane one (a proxy's
or a load balancer's), otherwise a new one. Log lines written while the request is handled
carry the same id, so a customer's complaint, the proxy's log and ours can be matched up.
"""

import copy
import inspect
import itertools
import json
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import randomness
from app.metrics import HTTP_LATENCY, HTTP_REQUESTS

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_RAW = REQUEST_ID_HEADER.lower().encode("latin-1")
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{8,128}")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"

request_id_var: ContextVar[str] = ContextVar("request_id", default="")
access_log = logging.getLogger("offertrack.access")
errors_log = logging.getLogger("offertrack.errors")
# Set on an exception once its traceback is logged.
_LOGGED = "_offertrack_logged"


def request_id_of(scope: Scope) -> str:
    """The id from the caller when it looks like one, else a fresh one."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _SANE_REQUEST_ID.fullmatch(candidate):
                return str(candidate)
            break
    return f"{_REQUEST_ID_PREFIX}{next(_request_numbers):016x}"


# Our own ids (32 hex digits): unique, not secret (echoed in responses and logs), so a random
# prefix per process and a counter, where a fresh token cost every request a hash. A forked child
# draws its own prefix.
_request_numbers = itertools.count(1)
_REQUEST_ID_PREFIX = ""


def _new_request_id_prefix() -> None:
    global _REQUEST_ID_PREFIX
    _REQUEST_ID_PREFIX = randomness.token_hex(8)


_new_request_id_prefix()
os.register_at_fork(after_in_child=_new_request_id_prefix)


def route_label(scope: Scope) -> str:
    """The matched route's template ("/{code}", not "/01H0..."): bounded label values."""
    # A mounted app (static files, the admin) leaves its prefix in root_path.
    prefix: str = scope.get("root_path", "")[len(scope.get("app_root_path", "")) :]
    route = scope.get("route")
    if route is None or isinstance(route, Mount):
        return prefix or UNMATCHED
    return prefix + str(getattr(route, "path", UNMATCHED))


class LabelledRoute(Route):
    """A plain Starlette route (for the busiest paths) that names itself in the scope as
    FastAPI's routes do, so that its requests are counted under its template too.

    Its endpoint takes the request and returns the response, and is called without Starlette's
    per-route exception wrapper: the app's ExceptionMiddleware, which every route sits under,
    maps the same exceptions with the same handlers (the wrapper cost each view a frame and a
    wrapped ``send`` for nothing)."""

    def __init__(
        self, path: str, endpoint: Callable[[Request], Awaitable[Response]], **options: Any
    ) -> None:
        super().__init__(path, endpoint, **options)

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            response = await endpoint(Request(scope, receive, send))
            await response(scope, receive, send)

        self.app = app

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self
        return match, child_scope


class HotPaths:
    """GET of the busiest routes (``HOT_PATH_ROUTES``: a tracking page as the QR code spells
    it, a campaign code), dispatched from here, below the request context and the security
    headers, which they get as every response does, and above the layers that have nothing to
    do for them: the body limit and the request guard (a GET without a body), FastAPI's exit
    stack (no dependencies) and the router's walk. Those cost a view about as much as the
    page itself (a cached page and its scan's commit).

    An exception goes to the app's own handler for it, as Starlette's ExceptionMiddleware
    would send it; one without a handler goes up to the server-error layer, as anywhere.
    Other methods (HEAD is answered as GET by the request guard) take the usual way.
    """

    def __init__(self, app: ASGIApp, *, routes: Sequence["LabelledRoute"]) -> None:
        self.app = app
        self.routes = tuple(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            for route in self.routes:
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    scope.update(child_scope)
                    await self._serve(route, scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _serve(
        self, route: "LabelledRoute", scope: Scope, receive: Receive, send: Send
    ) -> None:
        request = Request(scope, receive, send)
        try:
            response = await route.endpoint(request)
        except Exception as exc:
            handler = _handler_for(scope["app"].exception_handlers, exc)
            if handler is None:
                raise
            if inspect.iscoroutinefunction(handler):
                response = await handler(request, exc)
            else:
                response = await run_in_threadpool(handler, request, exc)
        await response(scope, receive, send)


def _handler_for(handlers: dict[Any, Any], exc: Exception) -> Any:
    """The app's handler for ``exc``, as Starlette looks it up: by status code for an
    HTTPException, else by its class or its nearest base. The catch-all one for ``Exception``
    belongs to the server-error layer, above us."""
    if isinstance(exc, HTTPException) and exc.status_code in handlers:
        return handlers[exc.status_code]
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        if cls in handlers:
            return handlers[cls]
    return None


class RequestContextMiddleware:
    """Request id in and out, requests and latency by route, one access log line in JSON mode."""

    def __init__(self, app: ASGIApp, *, log_requests: bool = False) -> None:
        self.app = app
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        raw_id = request_id.encode("latin-1")
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # Appended to the raw list: no response of ours sets the header itself.
                message["headers"] = [*message.get("headers", ()), (_REQUEST_ID_RAW, raw_id)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._observe(scope, status, time.perf_counter() - started)
            request_id_var.reset(token)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        route = route_label(scope)
        method = scope["method"] if scope["method"] in _METHODS else "other"
        counter, histogram = _children(route, method, status)
        counter.inc()
        histogram.observe(seconds)
        if self.log_requests:
            # The route template, not the path: a path holds the customer's full ULID.
            access_log.info(
                "%s %s %d",
                method,
                route,
                status,
                extra={"route": route, "status": status, "duration_ms": round(seconds * 1e3, 1)},
            )


@lru_cache(maxsize=4096)  # route templates, methods and statuses: a bounded set
def _children(route: str, method: str, status: int) -> tuple[Any, Any]:
    """The metrics' children for these labels (``labels()`` takes a lock and builds a key)."""
    return HTTP_REQUESTS.labels(route, method, str(status)), HTTP_LATENCY.labels(route, method)


# ``color_message`` is uvicorn's copy of its message with terminal colours, for its own
# text formatter: in a JSON line it is the message again, with ANSI escapes.
_STANDARD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if request_id := request_id_var.get():
            entry["request_id"] = request_id
        entry |= {k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)

    converter = time.gmtime  # type: ignore[assignment]


def log_unexpected(request: Request, exc: BaseException) -> None:
    """Log an unhandled error with its traceback, once. Starlette's error layer answers it
    and raises it again, so it passes the handler of every app it is mounted in (sqladmin's,
    the staff site's, ours) and then uvicorn's log: four tracebacks of one error."""
    if getattr(exc, _LOGGED, False):
        return
    errors_log.error(
        "unhandled error on %s %s",
        request.method,
        private_path(request.url.path),  # a path may hold the customer's key
        exc_info=exc,
    )
    try:
        setattr(exc, _LOGGED, True)
    except AttributeError:  # an exception with __slots__: logged again upstream, rare
        pass


class LoggedOnce(logging.Filter):
    """Drops a record of an exception ``log_unexpected`` has logged (uvicorn's own)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not getattr(exc, _LOGGED, False)


# A path segment that is a key: a full ULID (the customer's key to an offer) or a signed
# token (confirm, unsubscribe, delete my question). A tracking ID or a word is shorter.
_KEY_SEGMENT = re.compile(r"(?<=/)[A-Za-z0-9_.~-]{20,}(?=/|$)")
_EMAIL = re.compile(r"[^\s<>\"'(),;:]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


def private_path(path: str) -> str:
    """A request path fit for a log: keys masked, the query (tokens, addresses) dropped."""
    return _KEY_SEGMENT.sub(_masked_key, path.partition("?")[0])


def _masked_key(match: re.Match[str]) -> str:
    return match.group(0)[:4] + "…"


def without_addresses(text: str) -> str:
    """``text`` with every e-mail address replaced (an SMTP reply names its recipient)."""
    return _EMAIL.sub("<address>", text)


class PrivateAccessLine(logging.Filter):
    """uvicorn's text access line without the client's address, keys or query string."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5:
            _client, method, path, version, status = args
            record.args = ("-", method, private_path(str(path)), version, status)
        return True


def uvicorn_text_log_config() -> dict[str, Any]:
    """uvicorn's own text logging, but for the traceback of an error already logged, and an
    access line that names neither the client nor the customer's key."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {
        "logged_once": {"()": "app.observability.LoggedOnce"},
        "private_access": {"()": "app.observability.PrivateAccessLine"},
    }
    config["loggers"]["uvicorn.error"] = {
        **config["loggers"].get("uvicorn.error", {}),
        "filters": ["logged_once"],
    }
    config["loggers"]["uvicorn.access"] = {
        **config["loggers"].get("uvicorn.access", {}),
        "filters": ["private_access"],
    }
    return config


def uvicorn_log_config(level: str = "INFO") -> dict[str, Any]:
    """uvicorn's ``log_config`` for JSON logs: every logger, ours and uvicorn's, one format."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "app.observability.JsonFormatter"}},
        "filters": {"logged_once": {"()": "app.observability.LoggedOnce"}},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stdout",
            }
        },
        "root": {"handlers": ["stdout"], "level": level},
        "loggers": {
            "uvicorn": {"level": level},
            "uvicorn.error": {"level": level, "filters": ["logged_once"]},
            # Ours replaces uvicorn's access log: it has the request id and no client address.
            "uvicorn.access": {"level": "WARNING", "propagate": False},
            # Reading the migrations' head (readiness) logs alembic's plugin set-up at INFO.
            "alembic": {"level": "WARNING"},
        },
    }
