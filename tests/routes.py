"""Walking an app's routes as FastAPI serves them."""

from collections.abc import Iterable, Iterator

from fastapi import FastAPI
from starlette.routing import BaseRoute, Mount


def all_routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route, those of included routers too (FastAPI keeps them behind one entry each), and
    those of our mounted FastAPI apps (the staff site; sqladmin's own app is not ours)."""
    for route in routes:
        router = getattr(route, "original_router", None)
        if router is not None:
            yield from all_routes(router.routes)
        elif isinstance(route, Mount) and isinstance(route.app, FastAPI):
            yield from all_routes(route.app.router.routes)
        else:
            yield route
