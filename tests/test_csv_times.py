"""Times in the CSV exports are for spreadsheets: local to OFFERTRACK_TIMEZONE, to the second,
as ``YYYY-MM-DD HH:MM:SS`` (LibreOffice Calc and Excel read a date-time), the zone named in the
header. The API's CSV reports are derived from its routes, so a new one is checked too; the
staff site's exports are in tests/admin/test_export_times.py."""

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Table, select
from sqlmodel import Session

from app import csvsafe
from app.analytics.models import Conversion
from app.config import Settings
from app.tracking.models import ScanEvent
from tests.analytics.test_attribution import World, _scan
from tests.csvtimes import local, parsed, spreadsheet_rows
from tests.routes import served_routes

BERLIN = ZoneInfo("Europe/Berlin")

# The query of each API route that can answer CSV; a new one fails until it is named here.
CSV_ROUTES: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
    "analytics:scans_per_day": ({}, {"format": "csv"}),
    "analytics:breakdown": ({}, {"format": "csv", "by": "channel"}),
    "analytics:funnel": ({}, {"format": "csv"}),
    "analytics:attribution": ({}, {"format": "csv", "by": "campaign"}),
    "analytics:time_to_convert": ({}, {"format": "csv"}),
    "analytics:export": ({"kind": "scans"}, {}),
    "analytics:export#conversions": ({"kind": "conversions"}, {}),
}
TIMES_OF = {ScanEvent: "occurred_at", Conversion: "occurred_at"}


@pytest.mark.parametrize(
    ("utc", "written"),
    [
        (datetime(2026, 12, 7, 12, 56, 17, 624829, UTC), "2026-12-07 13:56:17"),  # CET
        (datetime(2026, 7, 1, 10, 0, 0, 999999, UTC), "2026-07-01 12:00:00"),  # CEST, cut
        (datetime(2026, 12, 31, 23, 30, tzinfo=UTC), "2027-01-01 00:30:00"),  # next local year
    ],
)
def test_a_time_is_written_local_to_the_second(utc: datetime, written: str) -> None:
    assert csvsafe.local_time(utc, BERLIN) == written


def test_autumns_repeated_hour_reads_alike_and_the_header_names_the_zone() -> None:
    """02:30 CEST and 02:30 CET (25 October 2026) are one wall-clock time: the header's zone
    is all a spreadsheet's date-time can be told."""
    first = csvsafe.local_time(datetime(2026, 10, 25, 0, 30, tzinfo=UTC), BERLIN)
    second = csvsafe.local_time(datetime(2026, 10, 25, 1, 30, tzinfo=UTC), BERLIN)

    assert first == second == "2026-10-25 02:30:00"
    assert csvsafe.header(["id", "occurred_at"], {"occurred_at"}, BERLIN) == [
        "id",
        "occurred_at (Europe/Berlin)",
    ]


def test_a_time_without_a_zone_is_refused_rather_than_guessed() -> None:
    with pytest.raises(ValueError, match="without a zone"):
        csvsafe.local_time(datetime(2026, 12, 7, 12, 0), BERLIN)


def _csv_routes(app: FastAPI) -> dict[str, str]:
    """The path of every API route that documents a CSV answer, by route name."""
    found = {}
    for path, route in served_routes(app.routes):
        if isinstance(route, APIRoute) and path.startswith("/api/"):
            content = route.responses.get(200, {}).get("content", {})
            if "text/csv" in content:
                found[route.name] = path
    return found


def test_every_api_csv_writes_its_times_for_a_spreadsheet(
    app: FastAPI, api: TestClient, session: Session, settings: Settings
) -> None:
    World(session, settings)
    routes = _csv_routes(app)
    assert set(routes) == {name.split("#")[0] for name in CSV_ROUTES}, "a new CSV: name it here"
    checked = 0
    for name, (params, query) in CSV_ROUTES.items():
        path = app.url_path_for(name.split("#")[0], **params)
        response = api.get(path, params=query)
        assert response.status_code == 200, (name, response.text)

        rows = spreadsheet_rows(response.text, settings.zone)

        checked += sum(1 for row in rows for column in row if column.endswith(")"))
    assert checked > 10  # the event exports' times, each checked above


@pytest.mark.parametrize("model", [ScanEvent, Conversion])
def test_an_event_exports_times_are_the_stored_utc_times_in_the_zone(
    api: TestClient, session: Session, settings: Settings, model: Any
) -> None:
    World(session, settings)
    table: Table = model.__table__
    kind = "scans" if model is ScanEvent else "conversions"
    query = select(table.c.id, table.c[TIMES_OF[model]])
    stored = dict(session.execute(query).all())

    response = api.get(f"/api/v1/analytics/export/{kind}.csv")

    rows = spreadsheet_rows(response.text, settings.zone)
    column = f"occurred_at ({settings.zone.key})"
    assert rows and all(column in row for row in rows)
    for row in rows:
        assert parsed(row[column]) == local(stored[int(row["id"])], settings.zone)


def test_scans_in_autumns_repeated_hour_export_as_the_clock_read_them(
    api: TestClient, session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "timezone", "Europe/Berlin")
    # 02:30 CET stored first, then 02:30 CEST, an hour earlier
    ids = [_scan(session, datetime(2026, 10, 25, h, 30, tzinfo=UTC), f"v{h}") for h in (1, 0)]
    ids.reverse()

    response = api.get(
        "/api/v1/analytics/export/scans.csv", params={"from": "2026-10-25", "to": "2026-10-25"}
    )

    rows = spreadsheet_rows(response.text, BERLIN)
    assert [row["occurred_at (Europe/Berlin)"] for row in rows] == ["2026-10-25 02:30:00"] * 2
    assert [int(row["id"]) for row in rows] == ids  # the summer-time one first, as it happened
