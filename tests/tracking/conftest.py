"""Fixtures of the tracking page's tests."""

from typing import Any

import pytest

from app.tracking import service


@pytest.fixture
def page_loads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per tracking page loaded from the database (a page cache miss)."""
    loads: list[int] = []
    real = service.tracking_page

    def counted(*args: Any, **kwargs: Any) -> service.TrackingPage:
        loads.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "tracking_page", counted)
    return loads
