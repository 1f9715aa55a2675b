"""The quotation PDF use case: render a draft fresh, an issued offer once and then from storage."""

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from anyio import to_thread
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app import i18n
from app.config import Settings
from app.db import read_only
from app.offers import service
from app.offers.contact import offer_contact
from app.offers.ids import ULID_LENGTH, hyphenate_tracking_id, tracking_id_of
from app.offers.models import Offer, OfferPdf, OfferStatus
from app.offers.pdf import pdf_etag, quotation_html


@dataclass(frozen=True)
class PdfDocument:
    content: bytes
    filename: str
    etag: str | None  # None for a draft, which changes and is never cached


class _StoredPdfs:
    """Recently served stored PDFs, in memory. A stored PDF never changes (its offer was issued),
    so a copy can be served without asking the database; a bounded LRU keeps memory flat."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, PdfDocument] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, offer_id: str) -> PdfDocument | None:
        with self._lock:
            entry = self._entries.get(offer_id)
            if entry is not None:
                self._entries.move_to_end(offer_id)
            return entry

    def put(self, offer_id: str, document: PdfDocument) -> None:
        with self._lock:
            if offer_id in self._entries or len(document.content) > self.max_bytes:
                return
            self._entries[offer_id] = document
            self._size += len(document.content)
            while self._size > self.max_bytes:
                _, old = self._entries.popitem(last=False)
                self._size -= len(old.content)


stored_pdfs = _StoredPdfs(max_bytes=64 * 1024 * 1024)


class Renderer(Protocol):
    def render_sync(self, html: str) -> bytes: ...


class AsyncRenderer(Protocol):
    async def render(self, html: str) -> bytes: ...


@dataclass(frozen=True)
class _ToRender:
    """What a PDF still to be rendered needs once its reads are done."""

    key: str  # as asked for: the memory copy is found by it
    offer_id: str
    filename: str
    html: str
    draft: bool
    final: bool


def offer_pdf(
    session: Session, offer_id: str, *, renderer: Renderer, settings: Settings
) -> PdfDocument:
    """The offer's quotation PDF; an issued offer's is rendered once and stored.

    The render (a second or more for a long offer) runs with no transaction open: the offer is
    read first, and an issued offer's PDF is stored afterwards in a short write transaction of
    its own. On SQLite a transaction held across the render would keep every other writer
    waiting for it.
    """
    found = _read(session, offer_id, settings)
    if isinstance(found, PdfDocument):
        return found
    return _keep(session, found, renderer.render_sync(found.html))


async def offer_pdf_async(
    session: Session, offer_id: str, *, renderer: AsyncRenderer, settings: Settings
) -> PdfDocument:
    """offer_pdf for async endpoints: the reads and the store run in worker threads, briefly;
    the render is awaited and holds no thread, however long it queues for a renderer."""
    cached = stored_pdfs.get(offer_id.upper())
    if cached is not None:
        return cached
    found = await to_thread.run_sync(_read, session, offer_id, settings)
    if isinstance(found, PdfDocument):
        return found
    content = await renderer.render(found.html)
    return await to_thread.run_sync(_keep, session, found, content)


def pdf_filename(language: str, tracking_id: str) -> str:
    """The PDF's name as the customer saves it, in the PDF's own language, whether it comes
    from the offer page's link or a mail's attachment: Angebot-01H0W-ARY2W.pdf."""
    word = i18n.translate(language, "Offer")  # English for a language we do not print in
    return f"{word}-{hyphenate_tracking_id(tracking_id)}.pdf"


def _read(session: Session, offer_id: str, settings: Settings) -> PdfDocument | _ToRender:
    """The PDF when it is kept (in memory or stored), else the HTML to render it from."""
    offer_id = offer_id.upper()
    cached = stored_pdfs.get(offer_id)
    if cached is not None:
        return cached
    with read_only(session):
        # Only issued offers have a stored PDF, so the common path is this one lookup.
        stored = session.get(OfferPdf, offer_id) if len(offer_id) == ULID_LENGTH else None
        if stored is not None:
            return _serve_stored_of(session, offer_id, stored)
        offer = service.get_offer(session, offer_id)
        filename = pdf_filename(offer.language, offer.tracking_id)
        contact = offer_contact(session, offer, settings)
        today = service.today(settings)
        html = quotation_html(offer, settings=settings, today=today, contact=contact)
    draft = offer.status == OfferStatus.DRAFT
    final = offer.status != OfferStatus.ISSUED
    return _ToRender(offer_id, offer.id, filename, html, draft, final)


def _keep(session: Session, rendered: _ToRender, content: bytes) -> PdfDocument:
    """A rendered PDF as served: a draft's as it is, any other stored first."""
    if rendered.draft:
        return PdfDocument(content, rendered.filename, None)
    stored = _store(session, rendered.offer_id, content)
    return _serve_stored(rendered.key, stored, rendered.filename, final=rendered.final)


def _serve_stored(key: str, stored: OfferPdf, filename: str, *, final: bool) -> PdfDocument:
    document = PdfDocument(stored.content, filename, stored.etag)
    if final:
        stored_pdfs.put(key, document)
    return document


def _serve_stored_of(session: Session, offer_id: str, stored: OfferPdf) -> PdfDocument:
    """A stored PDF, named by its offer's language, kept in memory once it is final."""
    status, language = session.exec(
        select(Offer.status, Offer.language).where(Offer.id == offer_id)
    ).one()
    # An issued offer's PDF is printed again once it is accepted (with the acceptance), so
    # only the database copy, which the acceptance deletes, may serve it: a copy in this
    # process's memory would outlive an acceptance taken by another process.
    final = status != OfferStatus.ISSUED
    filename = pdf_filename(language, tracking_id_of(offer_id))
    return _serve_stored(offer_id, stored, filename, final=final)


def _store(session: Session, offer_id: str, content: bytes) -> OfferPdf:
    stored = OfferPdf(offer_id=offer_id, etag=pdf_etag(content), content=content)
    try:
        with session.begin_nested():
            session.add(stored)
        session.commit()
    except IntegrityError:
        # A concurrent request stored it first; serve that copy so every client sees one ETag.
        session.rollback()
        with read_only(session):
            existing = session.get(OfferPdf, offer_id)
        assert existing is not None
        return existing
    return stored
