"""The routes that bypass FastAPI's dependency injection are the ones ARCHITECTURE.md lists
(app.main.HOT_PATH_ROUTES), and their endpoints take nothing a Depends could fill: Starlette
calls them with the request alone, so a dependency added there would silently never run."""

import inspect
from typing import Annotated, get_args, get_origin

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.params import Depends as DependsParam
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError
from sqlmodel import Session
from starlette.routing import BaseRoute, Mount, Route

from app.config import Settings
from app.main import HOT_PATH_ROUTES
from app.tracking.dependencies import get_scan_log
from app.tracking.scanlog import ScanNotRecorded
from tests.factories import make_offer
from tests.routes import all_routes


def _plain_routes(app: FastAPI) -> list[Route]:
    """Our routes that FastAPI does not serve (its own /openapi.json is one too)."""
    return [
        route
        for route in all_routes(app.router.routes)
        if isinstance(route, Route)
        and not isinstance(route, APIRoute)
        and not route.endpoint.__module__.startswith("fastapi.")
    ]


def _injection_problems(route: BaseRoute) -> list[str]:
    """What in a plain route's endpoint signature expects dependency injection."""
    assert isinstance(route, Route)
    problems = []
    parameters = inspect.signature(route.endpoint).parameters
    for position, (name, parameter) in enumerate(parameters.items()):
        annotation = parameter.annotation
        in_annotation = get_origin(annotation) is Annotated and any(
            isinstance(extra, DependsParam) for extra in get_args(annotation)[1:]
        )
        if in_annotation or isinstance(parameter.default, DependsParam):
            problems.append(f"{route.name}: parameter {name!r} is a Depends that never runs")
        elif position > 0:
            problems.append(f"{route.name}: parameter {name!r} is never passed")
    return problems


def test_only_the_listed_routes_bypass_dependency_injection(app: FastAPI) -> None:
    names = {route.name for route in _plain_routes(app) if not isinstance(route, Mount)}
    assert names == HOT_PATH_ROUTES


def test_hot_path_endpoints_take_only_the_request(app: FastAPI) -> None:
    problems = [p for route in _plain_routes(app) for p in _injection_problems(route)]
    assert problems == []


def test_a_depends_on_a_hot_path_endpoint_is_caught() -> None:
    def settings() -> str:
        return "never called"

    async def endpoint(request: Request, value: Annotated[str, Depends(settings)]) -> None: ...

    async def other(request: Request, value: str = Depends(settings)) -> None: ...

    found = _injection_problems(Route("/x", endpoint, name="x")) + _injection_problems(
        Route("/y", other, name="y")
    )
    assert found == [
        "x: parameter 'value' is a Depends that never runs",
        "y: parameter 'value' is a Depends that never runs",
    ]


class _FailingScanLog:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def record(self, row: dict[str, object], *, hold: bool = False) -> None:
        raise self.error


@pytest.mark.parametrize(
    ("error", "status", "says"),
    [
        (ScanNotRecorded(), 503, "We could not record this visit"),
        (OperationalError("INSERT", {}, Exception("server closed the connection")), 503, ""),
        (RuntimeError("a bug"), 500, "An unexpected error occurred"),
    ],
)
def test_an_error_on_a_hot_path_is_answered_as_anywhere_else(
    app: FastAPI,
    client: TestClient,
    session: Session,
    settings: Settings,
    error: Exception,
    status: int,
    says: str,
) -> None:
    """GET of the busiest routes skips the router and the layers below the security headers
    (app.observability.HotPaths): its errors still get the app's pages, request id and
    security headers."""
    offer = make_offer(session, settings, issued=True)
    app.dependency_overrides[get_scan_log] = lambda: _FailingScanLog(error)
    # The client of the other tests raises what reaches the server-error layer; a visitor
    # gets its page.
    visitor = TestClient(app, base_url=str(client.base_url), raise_server_exceptions=False)
    response = visitor.get(f"/{offer.id}", headers={"X-Request-ID": "req-hot-path-1"})
    assert response.status_code == status
    assert says in response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["x-request-id"] == "req-hot-path-1"
    assert "default-src" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"


def test_a_hot_path_error_goes_to_a_status_or_plain_handler_as_starlette_would_send_it() -> None:
    from starlette.exceptions import HTTPException

    from app.observability import _handler_for

    def by_status() -> None: ...

    def by_class() -> None: ...

    handlers = {404: by_status, HTTPException: by_class, Exception: by_class}
    assert _handler_for(handlers, HTTPException(404)) is by_status
    assert _handler_for(handlers, HTTPException(409)) is by_class
    assert _handler_for(handlers, RuntimeError("a bug")) is None  # the server-error layer's
