"""Walking an app's routes as FastAPI serves them."""

from collections.abc import Iterable, Iterator

from fastapi import FastAPI
from starlette.routing import BaseRoute, Mount


def all_routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route, those of included routers too (FastAPI keeps them behind one entry each), and
    those of our mounted FastAPI apps (the staff site; sqladmin's own app is not ours)."""
    for _, route in served_routes(routes):
        yield route


def served_routes(routes: Iterable[BaseRoute], prefix: str = "") -> Iterator[tuple[str, BaseRoute]]:
    """Each route of ``all_routes`` with the path it answers at: a route inside an included
    router or a mounted app knows only its own part of that path."""
    for route in routes:
        router = getattr(route, "original_router", None)
        if router is not None:
            yield from served_routes(router.routes, prefix + route.include_context.prefix)  # type: ignore[attr-defined]
        elif isinstance(route, Mount) and isinstance(route.app, FastAPI):
            yield from served_routes(route.app.router.routes, prefix + route.path)
        else:
            yield prefix + getattr(route, "path", ""), route
