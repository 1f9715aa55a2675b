"""ULIDs: a unique tracking ID per offer, fresh random bits for every one."""

import multiprocessing
import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, select
from ulid import ULID

from app.config import get_settings
from app.db import make_engine
from app.offers import ids
from app.offers.models import Offer
from tests.factories import make_offer


def test_ids_made_in_one_millisecond_get_distinct_milliseconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frozen = 1_700_000_000_000 * 1_000_000
    monkeypatch.setattr(time, "time_ns", lambda: frozen)  # the clock ids reads

    made = [ids.new_offer_ulid() for _ in range(50)]

    assert len({ulid[:10] for ulid in made}) == 50


def test_random_part_is_fresh_never_an_increment(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[bytes] = []
    real_urandom = os.urandom

    def urandom(n: int) -> bytes:
        drawn.append(real_urandom(n))
        return drawn[-1]

    monkeypatch.setattr(os, "urandom", urandom)
    made = [ULID.from_str(ids.new_offer_ulid()) for _ in range(20)]

    assert [ulid.bytes[6:] for ulid in made] == drawn
    randomness = [int.from_bytes(ulid.bytes[6:]) for ulid in made]
    assert all(abs(b - a) > 1 for a, b in zip(randomness, randomness[1:], strict=False))


def test_hyphenated_tracking_id() -> None:
    assert ids.hyphenate_tracking_id("01H0WARY2W") == "01H0W-ARY2W"


def _count_distinct(engine: Engine) -> tuple[int, int]:
    with Session(engine) as session:
        total = session.exec(select(func.count()).select_from(Offer)).one()
        distinct = session.exec(select(func.count(func.distinct(Offer.tracking_id)))).one()
    return total, distinct


@pytest.mark.concurrency
def test_1000_offers_from_8_threads_have_distinct_tracking_ids(committed: Engine) -> None:
    settings = get_settings()

    def create(_: int) -> str:
        with Session(committed, expire_on_commit=False) as session:
            return make_offer(session, settings).tracking_id

    with ThreadPoolExecutor(max_workers=8) as pool:
        tracking_ids = list(pool.map(create, range(1000)))

    assert len(set(tracking_ids)) == 1000
    assert _count_distinct(committed) == (1000, 1000)


def _create_in_process(url: str, count: int, start: "multiprocessing.synchronize.Event") -> None:
    from app.subscribers import wire

    wire()  # a process of its own: an entry point like any other
    engine = make_engine(url)
    settings = get_settings()
    start.wait()
    with Session(engine, expire_on_commit=False) as session:
        for _ in range(count):
            make_offer(session, settings)
    engine.dispose()


@pytest.mark.concurrency
def test_offers_from_2_processes_have_distinct_tracking_ids(committed: Engine) -> None:
    # Each process has its own millisecond clock, so clashes are real and the unique constraint
    # with its retry is what keeps the tracking IDs apart.
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    url = committed.url.render_as_string(hide_password=False)
    workers = [context.Process(target=_create_in_process, args=(url, 300, start)) for _ in range(2)]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=300)

    assert [worker.exitcode for worker in workers] == [0, 0]
    assert _count_distinct(committed) == (600, 600)
