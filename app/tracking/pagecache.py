"""Rendered tracking pages, kept for a moment so that a burst of scans renders a page once.

A printed offer is scanned in bursts (a meeting, a trade fair, a warehouse), and its page is the
same for every visitor until someone changes the offer or its order. So a rendered page is kept
for ``page_cache_seconds`` (2 s by default). Every view still records its own scan event.

Each app keeps its cache on ``app.state.page_cache`` (made by ``create_app`` with the setting).
Changes committed through any ORM session of this process (services, the admin) drop the
affected pages of every cache at once, and are announced to the other processes and nodes
(app.invalidation), which drop theirs as soon as the message arrives; without a channel
(SQLite, no Redis) another process serves what it rendered for at most the time to live.

The CSRF token is stamped into the cached HTML per visitor, so forms keep working.
"""

import asyncio
import secrets
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from itertools import chain
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, UOWTransaction
from starlette.concurrency import run_in_threadpool

from app import invalidation
from app.offers.models import Offer, OfferLine
from app.tracking.models import CodeForm, OrderStage, StageUpdate

# Stands in for the visitor's CSRF token in cached HTML: random, so no content can forge it.
CSRF_PLACEHOLDER = "csrf-" + secrets.token_hex(16)
MAX_ENTRIES = 20_000
# Pages are bounded by their size too: a page's links are built on the Host header the visitor
# sent, any text of any length (uvicorn with httptools takes a header of megabytes), and each
# host is a page of its own, so MAX_ENTRIES pages alone could hold any amount of memory. A kept
# page holds its text about three times over (text, bytes, the bytes split at the CSRF token):
# some 50 MB at most for Latin text. A page is some 10 kB: a burst of over a thousand distinct
# pages within the time to live still fits.
MAX_CHARACTERS = 16 * 1024 * 1024


@dataclass(frozen=True)
class CachedPage:
    offer_id: str
    form: CodeForm
    html: str
    has_forms: bool
    expires_at: float
    # The offer's campaign, placement and creative, carried into each scan row so that
    # attribution needs no join with the offer table.
    campaign: dict[str, int | None] = field(default_factory=dict)

    def body_for(self, csrf_token: str) -> bytes:
        """The page as sent, with the visitor's token in its forms: joined from parts encoded
        once, where replacing the token in the whole page and encoding it cost every view
        some 15 us."""
        return csrf_token.encode().join(self._body_parts) if self.has_forms else self._body

    @cached_property
    def _body(self) -> bytes:
        return self.html.encode()

    @cached_property
    def _body_parts(self) -> list[bytes]:
        return self._body.split(CSRF_PLACEHOLDER.encode())


# (code, htmx fragment?, base URL the links were built on, the switcher's language, the
# visitor's languages of ours by preference): every input the rendered page depends on.
CacheKey = tuple[str, bool, str, str | None, tuple[str, ...]]


class PageCache:
    """An LRU of rendered pages, bounded in number and in size, with a time to live;
    thread-safe.

    It also remembers when the database last failed a page load (``unavailable_until``):
    until then, a page it does not hold gets its 503 at once instead of waiting for a
    connection attempt to time out.
    """

    def __init__(
        self,
        ttl_seconds: float,
        max_entries: int = MAX_ENTRIES,
        max_characters: int = MAX_CHARACTERS,
    ) -> None:
        self.ttl = ttl_seconds
        self.unavailable_until = 0.0
        self._max = max_entries
        self._max_characters = max_characters
        self.characters = 0  # of the pages held
        self._pages: OrderedDict[CacheKey, CachedPage] = OrderedDict()
        self._lock = threading.Lock()
        self._epoch = 0  # bumped by every invalidation
        self._loading: dict[CacheKey, asyncio.Future[CachedPage]] = {}  # event loop only
        _live_caches.add(self)

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    def epoch(self) -> int:
        """Read before loading a page; ``put`` refuses it if anything changed meanwhile."""
        return self._epoch

    def get(self, key: CacheKey) -> CachedPage | None:
        with self._lock:
            page = self._pages.get(key)
            if page is None:
                return None
            if page.expires_at <= time.monotonic():
                self._drop(key)
                return None
            self._pages.move_to_end(key)
            return page

    def put(self, key: CacheKey, page: CachedPage, epoch: int) -> None:
        if not self.enabled:
            return
        with self._lock:
            if epoch != self._epoch or len(page.html) > self._max_characters:
                return  # rendered from data that may predate a change, or too big to keep
            self._drop(key)
            self._pages[key] = page
            self.characters += len(page.html)
            while len(self._pages) > self._max or self.characters > self._max_characters:
                self._drop(next(iter(self._pages)))  # the least recently used

    def _drop(self, key: CacheKey) -> None:
        """Under the lock."""
        page = self._pages.pop(key, None)
        if page is not None:
            self.characters -= len(page.html)

    async def get_or_load(self, key: CacheKey, load: Callable[[], CachedPage]) -> CachedPage:
        """The cached page, or ``load()`` run in a thread; concurrent misses of one key share
        one load, so a page that expires under a burst of scans is read once, not by all."""
        page = self.get(key)
        if page is not None:
            return page
        loading = self._loading.get(key)
        if loading is None:
            # A task of its own: it finishes for the others even if this request goes away.
            loading = asyncio.ensure_future(run_in_threadpool(load))
            self._loading[key] = loading
            loading.add_done_callback(lambda task: self._loaded(key, task))
        return await asyncio.shield(loading)

    def _loaded(self, key: CacheKey, task: "asyncio.Future[CachedPage]") -> None:
        self._loading.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved here, so a failure nobody awaits is not "lost"

    def expiry(self) -> float:
        return time.monotonic() + self.ttl

    def invalidate(self, offer_ids: Iterable[str]) -> None:
        wanted = set(offer_ids)
        with self._lock:
            self._epoch += 1
            for key in [k for k, page in self._pages.items() if page.offer_id in wanted]:
                self._drop(key)

    def clear(self) -> None:
        with self._lock:
            self._epoch += 1
            self._pages.clear()
            self.characters = 0


# Every cache of this process, so a commit anywhere drops the pages it changed in each; weak,
# so an app that goes away takes its cache along.
_live_caches: "weakref.WeakSet[PageCache]" = weakref.WeakSet()
_ALL = "*"


def drop_on_commit(session: Session, offer_ids: Iterable[str]) -> None:
    """Drop these offers' pages when ``session`` commits: for a change the ORM does not see
    (an UPDATE statement, such as app.tracking.progress writes)."""
    changed: set[str] = session.info.setdefault("offertrack_changed_pages", set())
    changed.update(offer_ids)


def drop_all_on_commit(session: Session) -> None:
    """Drop every page when ``session`` commits."""
    drop_on_commit(session, (_ALL,))


@event.listens_for(Session, "after_flush")
def _note_changes(session: Session, flush_context: UOWTransaction) -> None:
    for obj in chain(session.new, session.dirty, session.deleted):
        drop_on_commit(session, _affected_offers(obj))


def _affected_offers(obj: Any) -> Iterable[str]:
    if isinstance(obj, Offer):
        return (obj.id, obj.supersedes_id) if obj.supersedes_id else (obj.id,)
    if isinstance(obj, OfferLine | StageUpdate):
        return (obj.offer_id,)
    if isinstance(obj, OrderStage):
        return (_ALL,)  # the stage list is on every order's page
    return ()


@event.listens_for(Session, "after_commit")
def _drop_changed_pages(session: Session) -> None:
    changed = session.info.pop("offertrack_changed_pages", None)
    if not changed:
        return
    payload = _ALL if _ALL in changed else ",".join(sorted(changed))
    _drop_pages(payload)
    invalidation.publish(PAGES_TOPIC, payload)


PAGES_TOPIC = "pages"


def _drop_pages(payload: str) -> None:
    """``payload``: offer ids separated by commas, or ``*`` for every page; in every cache."""
    for cache in list(_live_caches):
        if payload == _ALL:
            cache.clear()
        else:
            cache.invalidate(payload.split(","))


invalidation.subscribe(PAGES_TOPIC, _drop_pages)


@event.listens_for(Session, "after_soft_rollback")
def _forget_changes(session: Session, previous_transaction: Any) -> None:
    if previous_transaction.parent is None:  # the outermost transaction rolled back
        session.info.pop("offertrack_changed_pages", None)
