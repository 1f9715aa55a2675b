"""sqladmin's CSV export from a staff list: the Export button on a searched, filtered or sorted
list gives the rows that list shows on all its pages, in its order, and nothing else; read from
the database a chunk at a time, so a table of millions of rows does not fill the server's
memory, and given up when the client goes away."""

import csv
import html
import io
import math
import re
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, insert, text
from sqlmodel import Session

from app import audit
from app.admin import export
from app.audit import AuditLogEntry
from app.auth.staff import Role
from app.config import get_settings
from app.csvsafe import BOM
from app.db import utcnow
from app.offers.models import Offer
from tests.admin.conftest import StaffLogin, sign_in
from tests.factories import make_offer

pytestmark = pytest.mark.concurrency
CHUNK = 2


@pytest.fixture(autouse=True)
def _small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every export here reads two rows at a time: a list of three rows or more spans chunks.
    monkeypatch.setattr(export, "CHUNK_ROWS", CHUNK)


@pytest.fixture
def loads() -> Iterator[Callable[[Any], list[Any]]]:
    """Watch a table: the ids of its rows read from the database, in the order they were read."""
    watched: list[tuple[Any, Callable[[Any, Any], None]]] = []

    def watch(model: Any) -> list[Any]:
        loaded: list[Any] = []

        def count(row: Any, _context: Any) -> None:
            loaded.append(row.id)

        event.listen(model, "load", count)
        watched.append((model, count))
        return loaded

    yield watch
    for model, count in watched:
        event.remove(model, "load", count)


def _offers(db: Session, *companies: str, issued: bool = False) -> list[str]:
    return [make_offer(db, get_settings(), company=c, issued=issued).id for c in companies]


def _listed(web: TestClient, path: str, params: dict[str, str]) -> tuple[list[str], str]:
    """The ids a person sees on every page of a list, in order, and its Export link."""
    first = web.get(path, params=params).text
    count = int(re.search(r"of (\d+) items", first).group(1))  # type: ignore[union-attr]
    pages = [first] + [
        web.get(path, params={**params, "page": str(n)}).text
        for n in range(2, math.ceil(count / int(params["pageSize"])) + 1)
    ]
    ids = [pk for page in pages for pk in re.findall(r'name="pks" value="([^"]+)"', page)]
    link = re.search(r'href="([^"]*/export/csv[^"]*)"', first)
    assert link, "no Export link on the list"
    return ids, html.unescape(link.group(1))


def _exported(web: TestClient, link: str) -> list[dict[str, str]]:
    response = web.get(link)
    assert response.status_code == 200, response.text
    return list(csv.DictReader(io.StringIO(response.text.removeprefix(BOM))))


def test_exporting_a_filtered_list_gives_its_rows_from_every_page(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    issued = _offers(db, "Issued 1 SA", "Issued 2 SA", "Issued 3 SA", issued=True)
    drafts = _offers(db, "Draft 1 SA", "Draft 2 SA")
    as_role(Role.VIEWER)

    shown, link = _listed(web, "/admin/offer/list", {"status": "issued", "pageSize": "2"})
    rows = _exported(web, link)

    assert sorted(shown) == sorted(issued)  # three rows over two pages
    assert [row["id"] for row in rows] == shown
    assert {row["status"] for row in rows} == {"issued"}
    assert not set(drafts) & {row["id"] for row in rows}


def test_exporting_a_searched_and_sorted_list_keeps_its_order(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    _offers(db, "Alpha Berg GmbH", "Alpha Crest GmbH", "Alpha Alm GmbH", "Beta AG")
    as_role(Role.VIEWER)
    params = {"search": "alpha", "sortBy": "customer_company", "sort": "desc", "pageSize": "2"}

    shown, link = _listed(web, "/admin/offer/list", params)
    rows = _exported(web, link)

    assert [row["id"] for row in rows] == shown
    companies = [row["customer_company"] for row in rows]
    assert companies == ["Alpha Crest GmbH", "Alpha Berg GmbH", "Alpha Alm GmbH"]


def test_an_unknown_status_exports_no_row_as_the_list_shows_none(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    _offers(db, "Acme Hellas SA", issued=True)
    as_role(Role.VIEWER)

    shown, link = _listed(web, "/admin/offer/list", {"status": "nonsense", "pageSize": "2"})

    assert shown == []
    assert _exported(web, link) == []


def test_an_unknown_sort_column_is_refused_by_the_export_as_by_the_list(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    _offers(db, "Acme Hellas SA")
    as_role(Role.VIEWER)
    params = {"sortBy": "customer_email"}

    listed = web.get("/admin/offer/list", params=params)
    exported = web.get("/admin/offer/export/csv", params=params)

    assert listed.status_code == exported.status_code == 400
    assert "Acme" not in exported.text


def test_an_export_of_a_typed_filter_and_a_lookup_together(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    kept = _offers(db, "Gamma One SA", "Gamma Two SA", "Gamma Three SA", issued=True)
    _offers(db, "Delta SA", issued=True)
    _offers(db, "Gamma Draft SA")
    as_role(Role.VIEWER)
    params = {"customer": "gamma", "status": "issued", "pageSize": "2"}

    shown, link = _listed(web, "/admin/offer/list", params)

    assert sorted(shown) == sorted(kept)
    assert [row["id"] for row in _exported(web, link)] == shown


def test_a_filtered_export_still_neutralises_formulas(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    _offers(db, '=HYPERLINK("https://evil.example","Click")', "Harmless SA")
    as_role(Role.VIEWER)

    shown, link = _listed(web, "/admin/offer/list", {"search": "hyperlink", "pageSize": "2"})
    (row,) = _exported(web, link)

    assert [row["id"]] == shown
    assert row["customer_company"] == '\'=HYPERLINK("https://evil.example","Click")'


@pytest.mark.parametrize("role", [Role.VIEWER, Role.SALES])
def test_a_role_that_may_not_export_a_list_is_still_refused_with_its_filters(
    web: TestClient, as_role: Callable[[Role], str], db: Session, role: Role
) -> None:
    _offers(db, "Acme Hellas SA")
    as_role(role)

    refused = web.get(
        "/admin/audit-log-entry/export/csv",
        params={"action": "offer.create", "search": "Acme", "sortBy": "occurred_at"},
    )

    assert refused.status_code == 403
    assert "Acme" not in refused.text


def test_an_export_of_many_chunks_is_complete_in_the_lists_order(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    kept = _offers(db, *[f"Many {n} SA" for n in range(9)], issued=True)
    _offers(db, "Many Draft SA", "Other SA")
    _offers(db, "Other Issued SA", issued=True)
    as_role(Role.VIEWER)
    params = {"search": "many", "status": "issued", "sortBy": "customer_company", "sort": "desc"}

    shown, link = _listed(web, "/admin/offer/list", {**params, "pageSize": "25"})
    rows = _exported(web, link)

    assert sorted(shown) == sorted(kept)  # nine rows: five chunks of two
    assert [row["id"] for row in rows] == shown
    assert [row["customer_company"] for row in rows] == [f"Many {n} SA" for n in range(8, -1, -1)]


def _until_first_row(pieces: Iterator[str]) -> str:
    """Read a download until the column titles and a first row have come."""
    received = ""
    for piece in pieces:
        received += piece
        if received.count("\n") >= 2:
            return received
    raise AssertionError(f"the download ended before its first row: {received!r}")


def test_an_export_reads_its_rows_a_chunk_at_a_time(
    web: TestClient,
    as_role: Callable[[Role], str],
    db: Session,
    loads: Callable[[Any], list[Any]],
) -> None:
    _offers(db, *[f"Chunked {n} SA" for n in range(10)])
    as_role(Role.VIEWER)
    loaded = loads(Offer)

    with web.stream("GET", "/admin/offer/export/csv") as response:
        pieces = response.iter_text()
        first = _until_first_row(pieces)
        read_when_the_first_rows_arrived = len(loaded)
        rows = list(csv.DictReader(io.StringIO((first + "".join(pieces)).removeprefix(BOM))))

    # The client holds the first chunk; the server has read at most the next one since.
    assert read_when_the_first_rows_arrived <= 2 * CHUNK
    assert len(rows) == 10
    assert sorted(row["id"] for row in rows) == sorted(loaded)  # every row, read once


def _least(reading: Callable[[], int]) -> int:
    """The least of a few readings: the app's background work (the scan feed, every 0.2 s)
    holds a connection for moments only, an export for as long as its download."""
    readings = []
    for _ in range(8):
        readings.append(reading())
        time.sleep(0.05)
    return min(readings)


def _idle_in_transaction(engine: Engine) -> list[str]:
    """The last statement of each connection to this database that waits inside a transaction."""
    with engine.connect() as connection:
        found = connection.execute(
            text(
                "SELECT query FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"
            )
        )
        return list(found.scalars())


def test_a_client_that_leaves_mid_download_ends_the_exports_transaction(
    web: TestClient,
    as_role: Callable[[Role], str],
    db: Session,
    committed: Engine,
    loads: Callable[[Any], list[Any]],
) -> None:
    for n in range(10):
        audit.record(
            db,
            actor="tests:leaving",
            action="offer.create",
            entity_type="offer",
            entity_id=n,
            summary=f"Entry {n}",
        )
    db.commit()
    as_role(Role.ADMIN)
    db.close()
    postgres = committed.dialect.name == "postgresql"
    pool = committed.pool
    checked_out_before = _least(pool.checkedout)  # type: ignore[attr-defined]
    loaded = loads(AuditLogEntry)

    with web.stream("GET", "/admin/audit-log-entry/export/csv?search=leaving") as response:
        pieces = response.iter_text()  # kept: a dropped iterator closes the response
        _until_first_row(pieces)
        checked_out_during = _least(pool.checkedout)  # type: ignore[attr-defined]
        waiting = _idle_in_transaction(committed) if postgres else []

    assert checked_out_during == checked_out_before + 1  # the export's, while it streams
    assert len(loaded) <= 2 * CHUNK  # no row read after the client left
    assert _least(pool.checkedout) == checked_out_before  # type: ignore[attr-defined]
    if postgres:
        # A server-side cursor, read CHUNK rows a time, in a transaction that ends with the
        # download.
        assert any(query.startswith(f"FETCH FORWARD {CHUNK} ") for query in waiting), waiting
        assert _least(lambda: len(_idle_in_transaction(committed))) == 0


def test_an_offer_can_be_saved_while_an_export_downloads(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    _offers(db, *[f"Busy {n} SA" for n in range(10)])
    as_role(Role.VIEWER)

    with web.stream("GET", "/admin/offer/export/csv") as response:
        pieces = response.iter_text()
        first = _until_first_row(pieces)
        # On SQLite a write waits for the one writer's lock: the export must not hold it.
        saved = _offers(db, "Saved Meanwhile SA")
        rows = list(csv.DictReader(io.StringIO((first + "".join(pieces)).removeprefix(BOM))))

    assert len(saved) == 1
    assert len(rows) == 10


def _download(downloads: ExitStack, web: TestClient, path: str) -> tuple[str, Iterator[str]]:
    """Start a download: what came up to its first row, and the rest to come (kept by the
    caller: a dropped iterator closes the response). It lasts until ``downloads`` closes."""
    response = downloads.enter_context(web.stream("GET", path))
    assert response.status_code == 200, response.read()
    pieces = response.iter_text()
    return _until_first_row(pieces), pieces


def test_exports_past_the_limit_are_refused_at_once_until_one_ends(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    _offers(db, *[f"Busy {n} SA" for n in range(5)])
    as_role(Role.VIEWER)
    limit = get_settings().max_concurrent_exports
    path = "/admin/offer/export/csv"

    with ExitStack() as downloads:
        downloading = [_download(downloads, web, path) for _ in range(limit)]
        refused = web.get(path)
        page_meanwhile = web.get("/admin/offer/list")
        ended = [
            csv.DictReader(io.StringIO((first + "".join(rest)).removeprefix(BOM)))
            for first, rest in downloading[1:]
        ]
        after_some_ended = [_download(downloads, web, path) for _ in range(limit - 1)]
        refused_again = web.get(path)  # the first is still downloading
    with ExitStack() as downloads:  # every download above ended or was left midway
        after_all_left = [_download(downloads, web, path) for _ in range(limit)]

    assert refused.status_code == 503
    assert int(refused.headers["retry-after"]) > 0
    assert "Please try again" in refused.text and "Busy 1 SA" not in refused.text
    assert page_meanwhile.status_code == 200
    assert [len(list(rows)) for rows in ended] == [5] * (limit - 1)
    assert len(after_some_ended) == limit - 1
    assert refused_again.status_code == 503
    assert len(after_all_left) == limit


def test_a_head_of_an_export_answers_its_headers_without_reading_the_table(
    web: TestClient,
    as_role: Callable[[Role], str],
    db: Session,
    loads: Callable[[Any], list[Any]],
) -> None:
    _offers(db, *[f"Head {n} SA" for n in range(5)])
    as_role(Role.VIEWER)
    loaded = loads(Offer)

    head = web.head("/admin/offer/export/csv")

    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == "text/csv; charset=utf-8"
    assert head.headers["content-disposition"].startswith("attachment;filename=Offer")
    assert "content-length" not in head.headers  # a GET's length is not known beforehand
    assert loaded == []
    assert web.head("/admin/offer/export/csv?sortBy=customer_email").status_code == 400


# The live server's rows per chunk, read before _small_chunks shrinks this process's.
SERVER_CHUNK_ROWS = export.CHUNK_ROWS


def _entries(db: Session, count: int, *, actor: str) -> None:
    db.execute(
        insert(AuditLogEntry),
        [
            {
                "occurred_at": utcnow(),
                "actor": actor,
                "action": "offer.create",
                "entity_type": "offer",
                "entity_id": str(n),
                "summary": f"Entry {n}",
            }
            for n in range(count)
        ],
    )
    db.commit()


def test_an_export_that_fails_midway_is_not_received_as_a_complete_file(
    db: Session, make_staff: Callable[..., StaffLogin], live_server: str
) -> None:
    # Past the rows read before the response starts, one the database cannot hand over: a time
    # before year 1 (last in the list, which shows the newest first), which neither psycopg nor
    # SQLAlchemy's SQLite dialect can read.
    _entries(db, SERVER_CHUNK_ROWS + 1, actor="tests:broken")
    db.execute(text("UPDATE audit_log SET occurred_at = '-infinity' WHERE entity_id = '0'"))
    db.commit()
    admin = make_staff(Role.ADMIN)

    with httpx.Client(base_url=live_server, timeout=30) as browser:
        sign_in(browser, admin)
        with browser.stream("GET", "/admin/audit-log-entry/export/csv?search=broken") as response:
            assert response.status_code == 200
            received: list[bytes] = []  # what came before the connection broke
            with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
                received.extend(response.iter_bytes())

    assert b"".join(received).count(b"\n") > SERVER_CHUNK_ROWS  # the first chunk, then the break
