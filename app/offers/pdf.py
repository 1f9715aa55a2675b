"""Quotation PDFs: HTML from a Jinja template, rendered by WeasyPrint in a bounded process pool.

Every page carries, bottom right, a 15 mm vector QR code of ``{PUBLIC_BASE_URL}/{ULID}`` inside
a link annotation. WeasyPrint repeats ``position: fixed`` boxes on every page, links included.
"""

import asyncio
import hashlib
import logging
import multiprocessing
import re
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from datetime import date
from threading import Event, Lock, Thread
from typing import Any
from urllib.parse import urlsplit

import segno
from markupsafe import Markup

from app import i18n
from app.config import Settings
from app.errors import ServiceUnavailable
from app.metrics import PDF_RENDER_SECONDS, PDF_RENDERS
from app.offers.contact import Contact
from app.offers.ids import hyphenate_tracking_id
from app.offers.models import Offer, OfferStatus
from app.offers.pricing import compute_totals
from app.templating import css_string, templates

log = logging.getLogger(__name__)


PAGE_SIZES = {"A4": "A4", "Letter": "letter"}
PDF_LINK_MARKER = "pdf"
RETRY_AFTER_SECONDS = 5
STARTUP_SECONDS = 120  # the renderer processes' start, on a slow machine


class PdfRenderTimeout(ServiceUnavailable):
    title = "The PDF took too long"

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"Rendering this PDF took longer than {seconds:g} seconds and was stopped. "
            "Please try again later; if it keeps happening, the offer may be too large."
        )


class PdfRendererBusy(ServiceUnavailable):
    title = "PDF rendering is busy"

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"Every PDF renderer stayed busy for {seconds:g} seconds. Please try again shortly."
        )

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(RETRY_AFTER_SECONDS)}


class PdfRendererUnavailable(ServiceUnavailable):
    title = "PDF rendering failed"

    def __init__(self) -> None:
        super().__init__("The PDF renderer stopped unexpectedly; it has been restarted. Try again.")

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(RETRY_AFTER_SECONDS)}


_OUTCOMES: dict[type[Exception], str] = {
    PdfRenderTimeout: "timeout",
    PdfRendererBusy: "busy",
    PdfRendererUnavailable: "failed",
}


def qr_url(offer: Offer, settings: Settings) -> str:
    """What the QR code encodes: the bare URL, since phone scanners strip parameters anyway.

    Scheme and host in upper case (both are case-insensitive), like the ULID: the whole URL
    then fits QR's alphanumeric mode, a smaller symbol whose modules print larger (0.405 mm
    instead of 0.364 mm for ``https://track.tectra.gr/...``), which a worn copy still scans.
    """
    parts = urlsplit(settings.public_base_url)
    base = f"{parts.scheme.upper()}://{parts.netloc.upper()}{parts.path}"
    return f"{base}/{offer.id}"


def pdf_link_url(offer: Offer, settings: Settings) -> str:
    """The PDF's clickable link: the same page, marked so a click is told apart from a scan."""
    return f"{settings.public_base_url}/{offer.id}?src={PDF_LINK_MARKER}"


def qr_symbol(url: str) -> Any:
    """The smallest QR symbol for ``url`` (never a Micro QR), with the strongest error
    correction that fits that size: at least M for our URLs, as before."""
    return segno.make_qr(url, error="l", boost_error=True)


def qr_svg_data_uri(url: str) -> str:
    # The 4-module quiet zone is part of the 15 mm square.
    return str(
        qr_symbol(url).svg_data_uri(scale=1, border=4, dark="#000", light="#fff", xmldecl=False)
    )


def page_label(language: str) -> str:
    """ "Page 2 of 5" as CSS content, in ``language``, from the page counters."""
    text = i18n.translate(language, "Page {page} of {pages}")
    parts = re.split(r"(\{page\}|\{pages\})", text)
    counters = {"{page}": "counter(page)", "{pages}": "counter(pages)"}
    return " ".join(counters.get(part) or css_string(part) for part in parts if part)


def quotation_html(
    offer: Offer, *, settings: Settings, today: date, contact: Contact | None = None
) -> str:
    """The quotation as HTML for WeasyPrint; customer text is autoescaped by Jinja."""
    template = templates.env.get_template("offers/quotation.html")
    language = offer.language if i18n.is_supported(offer.language) else i18n.DEFAULT_LANGUAGE
    tracking_id = hyphenate_tracking_id(offer.tracking_id)
    return template.render(
        lang=language,
        offer=offer,
        settings=settings,
        totals=compute_totals(offer.lines, offer.currency),
        is_draft=offer.effective_status(today) == OfferStatus.DRAFT,
        tracking_id=tracking_id,
        running_title=f"{i18n.translate(language, 'Quotation')} {tracking_id}",
        page_label=Markup(page_label(language)),
        qr_src=qr_svg_data_uri(qr_url(offer, settings)),
        link_url=pdf_link_url(offer, settings),
        public_url=f"{settings.public_base_url}/{offer.id}",
        page_size=PAGE_SIZES[settings.page_size],
        logo_url=_logo_url(settings),
        issued_on=_issued_on(offer, settings, today),
        legal_lines=settings.legal_lines,
        contact=contact,
    )


def _issued_on(offer: Offer, settings: Settings, today: date) -> date:
    if offer.issued_at is None:
        return today
    return offer.issued_at.astimezone(settings.zone).date()


def _logo_url(settings: Settings) -> str | None:
    logo = settings.logo_file
    return logo.as_uri() if logo is not None else None


def pdf_etag(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _render_in_worker(html: str) -> bytes:
    # Runs in a renderer process, where the forkserver has imported WeasyPrint already; the
    # server process itself never imports it (seconds of its start-up).
    from app.offers.rendering import render_pdf

    return render_pdf(html)


def _init_worker() -> None:
    from app.offers.rendering import init_worker

    init_worker()


def _worker_ready() -> None:
    """A no-op task: submitting one makes the pool start a worker."""


class _Slots:
    """A counting semaphore whose waiters are futures, served in arrival order: a thread waits
    on its future, a coroutine awaits it and holds no thread meanwhile (a burst of PDF
    requests must not take the thread pool that every write needs)."""

    def __init__(self, free: int) -> None:
        self._free = free
        self._waiters: deque[Future[None]] = deque()
        self._lock = Lock()

    def claim(self) -> "Future[None]":
        """A future that is done once the caller holds a slot."""
        claim: Future[None] = Future()
        with self._lock:
            if self._free and not self._waiters:
                self._free -= 1
                claim.set_result(None)
            else:
                self._waiters.append(claim)
        return claim

    @staticmethod
    def withdraw(claim: "Future[None]") -> bool:
        """Give up a claim still waiting; False when the slot was handed over meanwhile (the
        caller holds it then, and must release it)."""
        return claim.cancel()

    def release(self) -> None:
        with self._lock:
            while self._waiters:
                claim = self._waiters.popleft()
                if claim.set_running_or_notify_cancel():  # False: withdrawn, skip it
                    claim.set_result(None)
                    return
            self._free += 1


class PdfRenderer:
    """A bounded pool of renderer processes with a time limit per PDF.

    A render that overruns its limit would keep its worker busy for as long as it likes, so
    the pool's processes are killed, a fresh pool takes over, and the caller gets a 503.
    """

    def __init__(self, settings: Settings) -> None:
        self.workers = settings.pdf_workers
        self.timeout = settings.pdf_timeout_seconds
        # One render per worker at a time: the time limit then measures a render, never the
        # queue in front of it, so a busy pool is not mistaken for a stuck one and killed.
        # No slot is free before start() has started the workers.
        self._slots = _Slots(0)
        self._lock = Lock()
        self._ready = Event()
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        # forkserver, not fork: forking the threaded server process itself is unsafe. Workers
        # fork from a server that has imported WeasyPrint once, so a replaced pool starts fast.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["app.offers.rendering"])
        return ProcessPoolExecutor(
            max_workers=self.workers, mp_context=context, initializer=_init_worker
        )

    def _start_workers(self) -> "list[Future[None]]":
        return [self._pool.submit(_worker_ready) for _ in range(self.workers)]

    def start(self) -> None:
        """Start and warm up every worker now, so the first customer does not wait for it."""
        try:
            for future in self._start_workers():
                future.result(timeout=STARTUP_SECONDS)
        finally:
            self._open_slots()

    def _open_slots(self) -> None:
        # Also after a failed start: the first render then tries on a fresh pool.
        with self._lock:
            if self._ready.is_set():
                return
            self._ready.set()
        for _ in range(self.workers):
            self._slots.release()

    def start_in_background(self) -> None:
        """Start the workers while the server already answers (their start, WeasyPrint's
        import and a warm-up render, took seconds of the server's start-up). A PDF asked for
        meanwhile waits for them before its own time limit starts."""
        Thread(target=self._start_logging_failure, name="pdf-renderer-start", daemon=True).start()

    def _start_logging_failure(self) -> None:
        try:
            self.start()
        except Exception:  # the first render tries again on a fresh pool
            log.warning("the PDF renderer processes did not start", exc_info=True)

    def shutdown(self) -> None:
        """Stop the workers and return once they have exited: a server process that ended
        before the pool told them to stop waited forever for them (under granian)."""
        pool = self._pool
        workers = list((pool._processes or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        # A render under way may finish within its time limit; one past it is stuck, and
        # nobody waits to kill it any more (its request was cancelled as the server stopped).
        deadline = time.monotonic() + self.timeout
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
            if worker.is_alive():
                worker.kill()
                worker.join()
        pool.shutdown(wait=True)

    def render_sync(self, html: str) -> bytes:
        """Render in a worker, blocking the calling thread (never the event loop)."""
        started = time.perf_counter()
        try:
            content = self._render_in_slot(html)
        except Exception as exc:
            _count_failure(exc)
            raise
        _count_success(started)
        return content

    async def render(self, html: str) -> bytes:
        """Render in a worker; the awaiting request holds no thread while it queues for a
        worker or its PDF is rendered."""
        started = time.perf_counter()
        try:
            content = await self._render_in_slot_async(html)
        except Exception as exc:
            _count_failure(exc)
            raise
        _count_success(started)
        return content

    def _slot_wait(self) -> float:
        # Before the workers are up, a request also waits for their start.
        return self.timeout if self._ready.is_set() else STARTUP_SECONDS + self.timeout

    def _render_in_slot(self, html: str) -> bytes:
        claim = self._slots.claim()
        try:
            claim.result(timeout=self._slot_wait())
        except FutureTimeout:
            if self._slots.withdraw(claim):
                raise PdfRendererBusy(self.timeout) from None
        try:
            return self._render_in_pool(html)
        finally:
            self._slots.release()

    async def _render_in_slot_async(self, html: str) -> bytes:
        await self._claim_slot_async()
        renders: list[Future[bytes]] = []
        try:
            return await self._render_in_pool_async(html, renders)
        finally:
            unfinished = renders[-1] if renders and not renders[-1].done() else None
            if unfinished is None:
                self._slots.release()
            else:
                # Cancelled (the server stopping): the worker renders on regardless, and its
                # slot stays taken until it is done, as a thread's would.
                unfinished.add_done_callback(lambda _: self._slots.release())

    async def _claim_slot_async(self) -> None:
        claim = self._slots.claim()
        try:
            done, _ = await asyncio.wait({asyncio.wrap_future(claim)}, timeout=self._slot_wait())
        except BaseException:  # cancelled while queueing
            if not self._slots.withdraw(claim):
                self._slots.release()
            raise
        if not done and self._slots.withdraw(claim):
            raise PdfRendererBusy(self.timeout)

    async def _render_in_pool_async(self, html: str, renders: "list[Future[bytes]]") -> bytes:
        # As _render_in_pool, awaiting the worker's future instead of blocking on it.
        for _ in range(2):
            pool = self._pool
            try:
                renders.append(pool.submit(_render_in_worker, html))
                return await asyncio.wait_for(asyncio.wrap_future(renders[-1]), self.timeout)
            except TimeoutError:
                log.warning("PDF render exceeded %g s; restarting the renderer", self.timeout)
                await asyncio.to_thread(self._replace_pool, pool)
                raise PdfRenderTimeout(self.timeout) from None
            except BrokenProcessPool:
                log.warning("A PDF worker died; restarting the renderer")
                await asyncio.to_thread(self._replace_pool, pool)
        raise PdfRendererUnavailable()

    def _render_in_pool(self, html: str) -> bytes:
        # Twice at most: a render killed along with another render's stuck worker, or on a
        # worker that died, deserves a second try on the fresh pool.
        for _ in range(2):
            pool = self._pool
            try:
                return pool.submit(_render_in_worker, html).result(timeout=self.timeout)
            except FutureTimeout:
                log.warning("PDF render exceeded %g s; restarting the renderer", self.timeout)
                self._replace_pool(pool)
                raise PdfRenderTimeout(self.timeout) from None
            except BrokenProcessPool:
                log.warning("A PDF worker died; restarting the renderer")
                self._replace_pool(pool)
        raise PdfRendererUnavailable()

    def _replace_pool(self, old: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is not old:
                return  # another thread has replaced it already
            self._pool = self._new_pool()
        _kill_workers(old)
        self._start_workers()


def _count_failure(exc: Exception) -> None:
    PDF_RENDERS.labels(_OUTCOMES.get(type(exc), "failed")).inc()


def _count_success(started: float) -> None:
    PDF_RENDERS.labels("ok").inc()
    PDF_RENDER_SECONDS.observe(time.perf_counter() - started)


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    # ProcessPoolExecutor has no public way to stop a running task before Python 3.14
    # (kill_workers), so we reach into _processes. The pool then sees its workers die, fails
    # their futures with BrokenProcessPool and refuses new ones. No shutdown(): a thread
    # still holding this pool would get a RuntimeError from submit(), not BrokenProcessPool.
    for process in list((pool._processes or {}).values()):
        process.kill()
