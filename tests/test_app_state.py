"""create_app keeps what it builds on the app (``app.state``), never in module globals: two apps
in one process, with different settings, must not change each other (issue 13: the page cache's
time to live, the scan writer's hooks, the database back-off and the password hasher were once
module state that create_app set)."""

import importlib
import logging
import pkgutil
import types
import weakref
from collections.abc import Iterator
from typing import Any

import app
from app.config import get_settings
from app.main import create_app

# Module state that create_app may change, each for a reason: process-wide registries that hold
# every app's instances weakly, so that a commit anywhere reaches each app's own copy.
REGISTRIES = {
    ("app.tracking.pagecache", "_live_caches"),  # a commit drops changed pages in every cache
    ("app.analytics.codes", "_live_tables"),  # a change of campaign codes reloads every table
}


# Libraries whose objects fill caches of their own as they are used (a table's memoized
# attributes): compared by identity only.
MEMOIZING = ("sqlalchemy", "sqlmodel")


def _app_modules() -> Iterator[types.ModuleType]:
    for info in pkgutil.walk_packages(app.__path__, "app."):
        yield importlib.import_module(info.name)


def _fingerprint(value: Any, depth: int = 3) -> Any:
    """What an in-place change of ``value`` would alter: its identity, its items, its fields,
    and theirs, a few levels down (``templates.env.globals[...] = ...`` is three)."""
    if depth == 0 or type(value).__module__.startswith(MEMOIZING):
        return id(value)
    if isinstance(value, dict):
        return id(value), {repr(k): _fingerprint(v, depth - 1) for k, v in value.items()}
    if isinstance(value, list | set | weakref.WeakSet):
        return id(value), sorted(id(v) for v in value)
    fields = getattr(value, "__dict__", None)
    if isinstance(fields, dict) and not isinstance(value, type | types.ModuleType):
        return id(value), {k: _fingerprint(v, depth - 1) for k, v in fields.items()}
    return id(value)


def _module_state() -> dict[tuple[str, str], Any]:
    return {
        (module.__name__, name): _fingerprint(value)
        for module in _app_modules()
        for name, value in vars(module).items()
        if not name.startswith("__")
        and not isinstance(value, types.ModuleType | types.FunctionType | type | logging.Logger)
    }


def test_create_app_changes_no_module_state() -> None:
    settings = get_settings()
    other = settings.model_copy(
        update={"page_cache_seconds": settings.page_cache_seconds + 7, "miss_limit_per_minute": 3}
    )
    before = _module_state()
    first, second = create_app(settings), create_app(other)
    after = _module_state()
    changed = {key for key in before.keys() & after.keys() if before[key] != after[key]}
    assert changed - REGISTRIES == set()
    assert after.keys() - before.keys() == set()
    assert first.state.page_cache.ttl != second.state.page_cache.ttl
