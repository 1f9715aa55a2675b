"""Quotation PDFs: HTML from a Jinja template, rendered by WeasyPrint in a bounded process pool.

Every page carries, bottom right, a 15 mm vector QR code of ``{PUBLIC_BASE_URL}/{ULID}`` inside
a link annotation. WeasyPrint repeats ``position: fixed`` boxes on every page, links included.
"""

import hashlib
import logging
import mimetypes
import multiprocessing
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from datetime import date
from pathlib import Path
from threading import Lock
from typing import Any
from urllib.parse import unquote, urlsplit

import segno
from weasyprint import HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

from app.config import STATIC_DIR, Settings
from app.errors import ServiceUnavailable
from app.offers.ids import hyphenate_tracking_id
from app.offers.models import Offer, OfferStatus
from app.offers.pricing import compute_totals
from app.templating import templates

log = logging.getLogger(__name__)
QR_SIZE_MM = 15
PAGE_SIZES = {"A4": "A4", "Letter": "letter"}
PDF_LINK_MARKER = "pdf"


class PdfRenderTimeout(ServiceUnavailable):
    title = "The PDF took too long"

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"Rendering this PDF took longer than {seconds:g} seconds and was stopped. "
            "Please try again later; if it keeps happening, the offer may be too large."
        )


class PdfRendererUnavailable(ServiceUnavailable):
    title = "PDF rendering failed"

    def __init__(self) -> None:
        super().__init__("The PDF renderer stopped unexpectedly; it has been restarted. Try again.")


def qr_url(offer: Offer, settings: Settings) -> str:
    """What the QR code encodes: the bare URL, since phone scanners strip parameters anyway."""
    return f"{settings.public_base_url}/{offer.id}"


def pdf_link_url(offer: Offer, settings: Settings) -> str:
    """The PDF's clickable link: the same page, marked so a click is told apart from a scan."""
    return f"{qr_url(offer, settings)}?src={PDF_LINK_MARKER}"


def qr_svg_data_uri(url: str) -> str:
    # make_qr never produces a Micro QR; the 4-module quiet zone is part of the 15 mm square.
    qr = segno.make_qr(url, error="m", boost_error=False)
    return str(qr.svg_data_uri(scale=1, border=4, dark="#000", light="#fff", xmldecl=False))


def quotation_html(offer: Offer, *, settings: Settings, today: date) -> str:
    """The quotation as HTML for WeasyPrint; customer text is autoescaped by Jinja."""
    template = templates.env.get_template("offers/quotation.html")
    return template.render(
        offer=offer,
        settings=settings,
        totals=compute_totals(offer.lines, offer.currency),
        is_draft=offer.status == OfferStatus.DRAFT,
        tracking_id=hyphenate_tracking_id(offer.tracking_id),
        qr_src=qr_svg_data_uri(qr_url(offer, settings)),
        link_url=pdf_link_url(offer, settings),
        page_size=PAGE_SIZES[settings.page_size],
        logo_url=_logo_url(settings),
        issued_on=(offer.issued_at.date() if offer.issued_at else today),
    )


def _logo_url(settings: Settings) -> str | None:
    if settings.company_logo is None:
        return None
    return (STATIC_DIR / settings.company_logo).resolve().as_uri()


class StaticOnlyFetcher(URLFetcher):  # type: ignore[misc]
    """Serves our static files and data: URIs; refuses the network and every other file."""

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        if url.startswith("data:"):
            return super().fetch(url, headers)
        path = _static_path(url)
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(url, path.read_bytes(), {"Content-Type": media_type})


def _static_path(url: str) -> Path:
    parts = urlsplit(url)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
        raise ValueError(f"refused to fetch {url!r}: only our own static files are served")
    path = Path(unquote(parts.path)).resolve()
    if not path.is_relative_to(STATIC_DIR.resolve()) or not path.is_file():
        raise ValueError(f"refused to fetch {url!r}: not a file in static/")
    return path


def render_pdf(html: str) -> bytes:
    """HTML to PDF bytes. Runs in a worker process; module-level so it pickles."""
    document = HTML(
        string=html, base_url=STATIC_DIR.as_uri() + "/", url_fetcher=StaticOnlyFetcher()
    )
    pdf: bytes = document.write_pdf()
    return pdf


def pdf_etag(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


_WARM_UP_HTML = "<p>warm-up</p>"


class PdfRenderer:
    """A bounded pool of renderer processes with a time limit per PDF.

    A render that overruns its limit would keep its worker busy for as long as it likes, so
    the pool is torn down (its processes killed) and replaced, and the caller gets a 503.
    """

    def __init__(self, settings: Settings) -> None:
        self.workers = settings.pdf_workers
        self.timeout = settings.pdf_timeout_seconds
        self._lock = Lock()
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        # forkserver: forking the threaded server process itself is unsafe.
        context = multiprocessing.get_context("forkserver")
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=context)

    def start(self) -> None:
        """Start the workers and load WeasyPrint in each, so the first customer does not wait."""
        futures = [self._pool.submit(render_pdf, _WARM_UP_HTML) for _ in range(self.workers)]
        for future in futures:
            future.result(timeout=120)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def render_sync(self, html: str) -> bytes:
        """Render in a worker, blocking the calling thread (never the event loop)."""
        future = self._submit(html)
        return self._result(future)

    def _submit(self, html: str) -> "Future[bytes]":
        with self._lock:
            try:
                return self._pool.submit(render_pdf, html)
            except BrokenProcessPool:
                self._replace_pool()
                return self._pool.submit(render_pdf, html)

    def _result(self, future: "Future[bytes]") -> bytes:
        started = time.monotonic()
        try:
            return future.result(timeout=self.timeout)
        except FutureTimeout:
            log.warning("PDF render exceeded %.1f s; restarting the renderer", self.timeout)
            with self._lock:
                self._replace_pool()
            raise PdfRenderTimeout(self.timeout) from None
        except BrokenProcessPool:
            log.error("PDF renderer crashed after %.1f s", time.monotonic() - started)
            with self._lock:
                self._replace_pool()
            raise PdfRendererUnavailable() from None

    def _replace_pool(self) -> None:
        old = self._pool
        # ProcessPoolExecutor has no public way to stop a running task before Python 3.14
        # (terminate_workers); killing its processes is the only way to end a stuck render.
        for process in list(getattr(old, "_processes", {}).values()):
            process.kill()
        old.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()
