"""The staff lists' gross amount filter reads the total stored on the offer: a boundary equal to
the total the list shows matches it, a saved change of lines is found by its new total, and
the filter's query reads an index instead of summing every offer's lines."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlmodel import Session, col, select
from starlette.requests import Request

from app.admin.listfilters import offer_conditions
from app.auth.staff import Role
from app.config import get_settings
from app.formats import DecimalMark
from app.offers import service as offers_service
from app.offers.models import Offer
from app.offers.schemas import OfferUpdate
from app.tracking import service as tracking_service
from tests.admin.conftest import StaffLogin, sign_in
from tests.factories import line_data, make_offer
from tests.plans import analyze, bulk_offers


def _listed(web: TestClient, low: str, high: str, listed: str = "offer") -> str:
    return web.get(f"/admin/{listed}/list", params={"gross_min": low, "gross_max": high}).text


def test_a_boundary_equal_to_the_shown_total_matches_it(
    web: TestClient, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    """3 x 0.3333 nets 1.00 once rounded to cents, 1.24 with VAT: the total shown. Summed
    before rounding (1.239876) the offer fell outside "from 1.24"."""
    lines = [line_data(quantity="3", unit_price="0.3333", vat_rate="24")]
    make_offer(db, get_settings(), company="Cent Rounding SA", lines=lines)
    sign_in(web, make_staff(Role.SALES))

    page = _listed(web, "1.24", "1.24")

    assert "Cent Rounding SA" in page and "€1.24" in page
    assert "Cent Rounding SA" not in _listed(web, "1.25", "")
    assert "Cent Rounding SA" not in _listed(web, "", "1.23")


def test_an_offer_whose_lines_change_is_found_by_its_new_total(
    web: TestClient, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    settings = get_settings()
    lines = [line_data(quantity="1", unit_price="100", vat_rate="24")]
    offer = make_offer(db, settings, company="Repriced GmbH", lines=lines)  # 124.00
    new_lines = [line_data(quantity="2", unit_price="100", vat_rate="24")]  # 248.00
    update = OfferUpdate.model_validate({"lines": new_lines})
    offers_service.update_offer(db, offer.id, update, actor="test", settings=settings)
    copy = offers_service.duplicate_offer(
        db, offer.id, actor="test", settings=settings, owner_id=None
    )
    sign_in(web, make_staff(Role.SALES))

    assert "Repriced GmbH" not in _listed(web, "124", "124")
    found = _listed(web, "248", "248")
    assert offer.id in found and copy.id in found and "€248.00" in found


def test_an_order_is_found_by_its_shown_total_in_the_orders_list(
    web: TestClient, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    lines = [line_data(quantity="3", unit_price="0.3333", vat_rate="24")]
    offer = make_offer(db, get_settings(), company="Ordered Cents AE", lines=lines, issued=True)
    tracking_service.activate_offer(db, offer.id, actor="test", settings=get_settings())
    sign_in(web, make_staff(Role.SALES))

    assert "Ordered Cents AE" in _listed(web, "1.24", "1.24", listed="order")


def _plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(node for child in plan.get("Plans", []) for node in _plan_nodes(child))]


def test_the_filter_reads_the_stored_total_by_its_index(committed: Engine) -> None:
    """20,000 offers: the filter's condition names no offer lines on either database, and on
    PostgreSQL, with statistics, its plan finds the few offers in range by the index."""
    request = Request({"type": "http", "query_string": b"gross_min=19990&gross_max=19995"})
    conditions = offer_conditions(request, None, DecimalMark.POINT)
    query = select(col(Offer.id)).where(*conditions)
    with committed.connect() as connection:
        at = datetime(2026, 1, 1, tzinfo=UTC)
        bulk_offers(connection, 20_000, "G", at=at, valid_until=at.date(), gross_amount="n")
        sql = str(query.compile(connection, compile_kwargs={"literal_binds": True}))
        assert "offer_line" not in sql
        assert len(connection.execute(query).all()) == 6
        if connection.dialect.name == "postgresql":
            analyze(connection, "offer")
            plan: list[dict[str, Any]] = connection.execute(
                text(f"EXPLAIN (FORMAT JSON) {sql}")
            ).scalar_one()
            nodes = _plan_nodes(plan[0]["Plan"])
            assert "ix_offer_gross_amount" in {node.get("Index Name") for node in nodes}, plan
            assert "offer_line" not in {node.get("Relation Name") for node in nodes}, plan
        connection.rollback()
