"""sqladmin's CSV export from a staff list: the Export button on a searched, filtered or sorted
list gives the rows that list shows on all its pages, in its order, and nothing else."""

import csv
import html
import io
import math
import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.auth.staff import Role
from app.config import get_settings
from tests.factories import make_offer

pytestmark = pytest.mark.concurrency


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
    return list(csv.DictReader(io.StringIO(response.text)))


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
