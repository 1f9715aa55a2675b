"""Rendered pages are reused for a moment, yet every change shows at once and every view counts."""

import asyncio
import re
import time
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, col

from app.config import Settings
from app.db import get_engine
from app.offers import service as offers_service
from app.offers.models import Offer, OfferStatus
from app.templating import format_date
from app.tracking import progress, service
from app.tracking.models import CodeForm
from app.tracking.pagecache import MAX_CHARACTERS, CachedPage, CacheKey, PageCache
from app.tracking.schemas import StageUpdateCreate
from tests.aio import run_async
from tests.factories import make_offer
from tests.tracking.test_pages import IPHONE, csrf_of, make_order, scans

# A key of the shape the router builds: code, htmx fragment?, base URL, switcher language,
# the visitor's languages.
KEY: CacheKey = ("01H0WARY2WHGGRF3K72D299T3T", False, "https://x/", None, ("en",))


def test_repeated_views_reuse_the_page_and_each_is_recorded(
    client: TestClient, session: Session, settings: Settings, page_loads: list[int]
) -> None:
    order = make_order(session, settings)

    pages = [client.get(f"/{order.tracking_id}", headers={"user-agent": IPHONE}) for _ in range(5)]

    assert all(p.status_code == 200 for p in pages)
    assert len({p.text for p in pages}) == 1
    assert len(page_loads) == 1  # read and rendered once
    assert len(scans(session, order)) == 5  # yet every view is a scan


def test_a_stage_update_shows_on_the_next_view(
    client: TestClient, session: Session, settings: Settings
) -> None:
    order = make_order(session, settings)
    assert "Handed to DHL" not in client.get(f"/{order.tracking_id}").text

    service.add_stage_update(
        session,
        order.tracking_id,
        StageUpdateCreate(stage="shipped", public_note="Handed to DHL"),
        actor="tests",
        settings=settings,
    )

    assert "Handed to DHL" in client.get(f"/{order.tracking_id}").text
    assert "Handed to DHL" in client.get(f"/{order.id}", headers={"HX-Request": "true"}).text


def _progress_shown(page: str) -> tuple[str | None, str | None]:
    stage = re.search(r"Current stage: <strong>([^<]*)</strong>", page)
    expected = re.search(r"Expected delivery: <strong>([^<]*)</strong>", page)
    return (stage and stage.group(1), expected and expected.group(1))


def test_the_page_shows_the_progress_the_order_keeps_and_a_new_one_at_once(
    client: TestClient, session: Session, settings: Settings, page_loads: list[int]
) -> None:
    """An order's current stage and expected delivery follow one rule, app.tracking.progress's:
    the page shows what it keeps on the order's row (set apart from the history here, as a
    change of that rule would), and a refresh of it on the next view, though no stage update
    or stage changed with it."""
    order = make_order(session, settings)
    expected = offers_service.today(settings) + timedelta(days=2)
    service.add_stage_update(
        session,
        order.id,
        StageUpdateCreate(stage="shipped", expected_delivery_date=expected),
        actor="tests",
        settings=settings,
    )
    kept = update(Offer).where(col(Offer.id) == order.id)
    session.execute(kept.values(stage_position=4, expected_delivery_date=expected + timedelta(1)))
    session.commit()
    session.expire_all()

    first = client.get(f"/{order.tracking_id}").text
    assert _progress_shown(first) == ("Ready for dispatch", format_date(expected + timedelta(1)))
    assert client.get(f"/{order.tracking_id}").text == first  # kept in the cache

    progress.refresh(session, [order.id])
    session.commit()

    shown = _progress_shown(client.get(f"/{order.tracking_id}").text)
    assert shown == ("Shipped", format_date(expected))
    assert len(page_loads) == 2


def test_accepting_changes_the_page_at_once(
    client: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True)
    token = csrf_of(client.get(f"/{offer.id}").text)

    client.post(
        f"/{offer.id}/accept",
        data={"signer_name": "Maria P.", "csrf_token": token, "accept_terms": "yes"},
    )
    page = client.get(f"/{offer.id}").text

    assert "Accept this offer" not in page
    assert "by Maria P." in page


def test_each_visitor_gets_their_own_csrf_token_from_a_reused_page(
    client: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True)
    first = client.get(f"/{offer.id}")
    first_token = csrf_of(first.text)
    client.cookies.clear()  # a second visitor
    second = client.get(f"/{offer.id}")
    second_token = csrf_of(second.text)

    assert first_token != second_token
    assert second.cookies["ot_csrf"] == second_token
    accepted = client.post(
        f"/{offer.id}/accept",
        data={"signer_name": "Second Visitor", "csrf_token": second_token, "accept_terms": "yes"},
        follow_redirects=False,
    )
    assert accepted.status_code == 303
    session.refresh(offer)
    assert offer.status == OfferStatus.ACCEPTED


def test_links_follow_the_host_the_visitor_used(
    client: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True)

    via_public = client.get(f"https://track.example.com/{offer.id}").text
    via_internal = client.get(f"http://internal.example:8000/{offer.id}").text

    assert f"https://track.example.com/{offer.id}/pdf" in via_public
    assert f"http://internal.example:8000/{offer.id}/pdf" in via_internal


def test_pages_for_many_hosts_stay_within_the_cache_size(
    client: TestClient,
    app: FastAPI,
    session: Session,
    settings: Settings,
    page_loads: list[int],
) -> None:
    """Each Host header gets a page of its own, its links built on it: long made-up hosts must
    not pile up pages beyond the cache's size, and the cache must keep working."""
    offer = make_offer(session, settings, issued=True)
    cache: PageCache = app.state.page_cache
    hosts = [f"h{n}.{'x' * 60_000}.example" for n in range(40)]  # pages of ~0.5 M characters

    assert {client.get(f"/{offer.id}", headers={"host": h}).status_code for h in hosts} == {200}

    held = sum(len(page.html) for page in cache._pages.values())
    assert held <= MAX_CHARACTERS and cache.characters == held
    client.get(f"/{offer.id}", headers={"host": hosts[-1]})
    assert len(page_loads) == len(hosts)  # the latest host's page came from the cache
    cache.invalidate([offer.id])
    assert cache.characters == 0  # a change drops the offer's pages, and their size with them


def test_a_page_rendered_before_a_change_is_not_kept() -> None:
    cache = PageCache(ttl_seconds=60)
    epoch = cache.epoch()  # a view starts reading...
    cache.invalidate(["01H0WARY2WHGGRF3K72D299T3T"])  # ...a change commits meanwhile
    page = CachedPage("01H0WARY2WHGGRF3K72D299T3T", CodeForm.FULL, "old", False, cache.expiry())
    cache.put(KEY, page, epoch)

    assert cache.get(KEY) is None


def test_pages_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = PageCache(ttl_seconds=2)
    key = KEY
    cache.put(key, CachedPage(key[0], CodeForm.FULL, "page", False, cache.expiry()), cache.epoch())
    assert cache.get(key) is not None

    later = time.monotonic() + 3
    monkeypatch.setattr(time, "monotonic", lambda: later)  # the clock pagecache reads
    assert cache.get(key) is None


def test_the_cache_is_on_in_the_app(app: FastAPI, settings: Settings) -> None:
    cache = app.state.page_cache
    assert settings.page_cache_seconds > 0 and cache.ttl == settings.page_cache_seconds


def test_each_app_has_its_own_cache_and_a_commit_drops_pages_in_each(settings: Settings) -> None:
    from app.main import create_app

    other = settings.model_copy(update={"page_cache_seconds": 30})
    first, second = create_app(settings), create_app(other)
    caches = [first.state.page_cache, second.state.page_cache]
    assert [c.ttl for c in caches] == [settings.page_cache_seconds, 30]
    key = KEY
    for cache in caches:
        cache.put(key, CachedPage(key[0], CodeForm.FULL, "page", False, cache.expiry()), 0)
    assert all(cache.get(key) for cache in caches)
    # A commit of any session in the process that changed the offer drops its page in each.
    with Session(get_engine()) as session, session.begin():
        session.info["offertrack_changed_pages"] = {key[0]}
    assert [cache.get(key) for cache in caches] == [None, None]


def test_concurrent_misses_share_one_load() -> None:
    cache = PageCache(ttl_seconds=60)
    key = KEY
    loads: list[int] = []

    def load() -> CachedPage:
        loads.append(1)
        time.sleep(0.05)  # a slow read: everyone else arrives meanwhile
        page = CachedPage(key[0], CodeForm.FULL, "page", False, cache.expiry())
        cache.put(key, page, cache.epoch())
        return page

    async def burst() -> list[CachedPage]:
        return await asyncio.gather(*(cache.get_or_load(key, load) for _ in range(20)))

    pages = run_async(burst)

    assert len(loads) == 1
    assert {p.html for p in pages} == {"page"}


def test_a_failed_load_fails_its_waiters_and_the_next_view_tries_again() -> None:
    cache = PageCache(ttl_seconds=60)
    key = KEY

    def broken() -> CachedPage:
        time.sleep(0.02)
        raise LookupError("database hiccup")

    async def burst() -> list[object]:
        return await asyncio.gather(
            *(cache.get_or_load(key, broken) for _ in range(5)), return_exceptions=True
        )

    results = run_async(burst)
    assert all(isinstance(r, LookupError) for r in results)

    def working() -> CachedPage:
        return CachedPage(key[0], CodeForm.FULL, "fresh", False, cache.expiry())

    assert run_async(lambda: cache.get_or_load(key, working)).html == "fresh"
