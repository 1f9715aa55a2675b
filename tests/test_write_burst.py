"""A burst of concurrent writes against a freshly started server: every client's offer is
created, issued and its PDF rendered, and every answer is 2xx (bench/writes.py does 200)."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, func, select

from app.auth.service import create_api_key
from app.offers.models import Offer, OfferPdf, OfferStatus
from bench.writes import burst
from tests.conftest import _free_port, _tmp, serving

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = 40


@pytest.fixture
def fresh_server(committed: Engine) -> Iterator[str]:
    """`offertrack serve` just started on the test database. Renders may queue for longer than
    the default 30 s on a loaded machine: the burst is about the database, not the CPU."""
    port = _free_port()
    env = {
        **os.environ,
        "OFFERTRACK_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "OFFERTRACK_PDF_WORKERS": "2",
        "OFFERTRACK_PDF_TIMEOUT_SECONDS": "300",
    }
    with serving(env, port, _tmp / f"burst-{port}.log", "--no-access-log") as base_url:
        yield base_url


@pytest.mark.concurrency
def test_concurrent_offers_issued_and_rendered_all_answer_2xx(
    fresh_server: str, committed: Engine
) -> None:
    with Session(committed) as session:
        _, token = create_api_key(session, "burst", actor="tests")

    flows, _ = burst(fresh_server, token, CLIENTS)

    failed = [(flow.statuses, flow.error) for flow in flows if not flow.ok]
    assert failed == []
    with Session(committed) as session:
        issued = select(func.count()).select_from(Offer).where(Offer.status == OfferStatus.ISSUED)
        assert session.exec(issued).one() == CLIENTS
        assert session.exec(select(func.count()).select_from(OfferPdf)).one() == CLIENTS
