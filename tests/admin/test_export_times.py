"""The staff site's CSV exports write times for spreadsheets (tests/csvtimes.py): every list's
export (derived from the registered views) and every analytics download, on demo data."""

from typing import Any, get_args

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, inspect, select
from sqlmodel import Session

from app.admin.analytics.dashboard import CsvTable
from app.auth.staff import Role
from app.config import get_settings
from tests.admin.conftest import StaffLogin, sign_in
from tests.admin.staffroutes import PASSWORD, demo_data, staff_app
from tests.csvtimes import local, parsed, spreadsheet_rows

pytestmark = pytest.mark.concurrency


def _stored(engine: Engine, model: Any, name: str) -> dict[str, Any]:
    """A column's stored values by primary key (as the export writes it)."""
    (pk,) = inspect(model).primary_key
    with Session(engine) as session:
        values = session.execute(select(pk, getattr(model, name)))
        return {str(key): value for key, value in values}


def _check_view(web: TestClient, view: Any, engine: Engine) -> int:
    """Export a view's list; check its time columns against the stored times. The count
    checked."""
    zone = get_settings().zone
    rows = spreadsheet_rows(web.get(f"/admin/{view.identity}/export/csv").text, zone)
    (pk,) = inspect(view.model).primary_key
    checked = 0
    for name in [n for n in view._export_prop_names if n.endswith("_at")]:  # STYLE.md's times
        stored = _stored(engine, view.model, name)
        written = [(row.get(pk.key), row[f"{name} ({zone.key})"]) for row in rows]
        for key, cell in written:
            if key is not None:  # the export carries the row's key: this very row's time
                moment = stored[key]
                expected = "" if moment is None else local(moment, zone)
                assert (parsed(cell) if cell else "") == expected, (view.identity, name, key)
            elif cell:  # else one of the column's stored times
                assert parsed(cell) in {local(m, zone) for m in stored.values() if m}
            checked += bool(cell)
    return checked


def test_every_staff_export_writes_local_times_under_a_header_naming_the_zone(
    app: FastAPI, web: TestClient, committed: Engine
) -> None:
    demo_data(committed)
    sign_in(web, StaffLogin("admin@example.com", PASSWORD, Role.ADMIN))
    views = [v for v in staff_app(app).state.admin.views if "csv" in v.export_types]

    checked = {view.identity: _check_view(web, view, committed) for view in views}

    assert all(checked[name] for name in ("offer", "order", "audit-log-entry", "staff-user"))
    for table in get_args(CsvTable):
        query = "?by=channel" if table == "breakdown" else ""
        answer = web.get(f"/admin/analytics/csv/{table}{query}")
        assert answer.status_code == 200, table
        spreadsheet_rows(answer.text, get_settings().zone)
