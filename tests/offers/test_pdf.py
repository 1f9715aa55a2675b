"""The quotation PDF as a reader meets it: rasterized pages, decoded QR codes, link annotations."""

import asyncio
import io
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from multiprocessing.process import BaseProcess as Process
from pathlib import Path
from typing import Any, cast

import pypdfium2 as pdfium
import pytest
import zxingcpp
from PIL.ImageFilter import GaussianBlur
from pypdf import PdfReader
from pypdf.generic import ContentStream, TextStringObject

from app.config import ROOT_DIR, STATIC_DIR, Settings
from app.offers.ids import hyphenate_tracking_id, new_offer_ulid
from app.offers.models import Offer, OfferLine, OfferStatus
from app.offers.pdf import (
    PdfRenderer,
    PdfRendererBusy,
    PdfRenderTimeout,
    pdf_etag,
    qr_symbol,
    qr_url,
    quotation_html,
)
from app.offers.rendering import StaticOnlyFetcher, render_pdf
from tests.aio import run_async

BASE = "https://track.example.com"
QR_BASE = "HTTPS://TRACK.EXAMPLE.COM"  # upper case: the URL fits QR alphanumeric mode
MM = 72 / 25.4  # PDF points per millimetre
DPI = 150
BOTTOM_MARGIN_MM = 30  # the @page bottom margin in print.css
SETTINGS = Settings(public_base_url=BASE)
TODAY = date(2026, 11, 22)
EVIL = '<img src="http://attacker.example/x.png"><script>alert(1)</script>'


def make_offer(
    *, lines: int, status: OfferStatus = OfferStatus.ISSUED, company: str = "Acme Hellas SA"
) -> Offer:
    offer_id = new_offer_ulid()
    return Offer(
        id=offer_id,
        tracking_id=offer_id[:10],
        status=status,
        customer_company=company,
        customer_contact_name="Maria P.",
        customer_email="maria@example.com",
        customer_reference="PO-4711",
        currency="EUR",
        valid_until=date(2026, 12, 31),
        notes="Delivery in three weeks.",
        terms="Payment 30 days net.",
        lines=[
            OfferLine(
                offer_id=offer_id,
                position=n,
                description=f"Spare part kit {n}",
                quantity=Decimal(2),
                unit="set",
                unit_price=Decimal("10.00"),
                vat_rate=Decimal(24) if n % 2 else Decimal(13),
            )
            for n in range(1, lines + 1)
        ],
    )


def render(offer: Offer, settings: Settings = SETTINGS) -> bytes:
    return render_pdf(quotation_html(offer, settings=settings, today=TODAY))


@pytest.fixture(scope="module")
def long_offer() -> Offer:
    # A draft: the watermark must not get in the way of the QR code on any page.
    return make_offer(lines=40, status=OfferStatus.DRAFT)


@pytest.fixture(scope="module")
def long_pdf(long_offer: Offer) -> bytes:
    return render(long_offer)


@pytest.fixture(scope="module")
def issued_pdf() -> bytes:
    return render(make_offer(lines=2))


@pytest.fixture(scope="module")
def letter_pdf() -> bytes:
    return render(make_offer(lines=2), Settings(public_base_url=BASE, page_size="Letter"))


def page_texts(pdf: bytes) -> list[str]:
    document = pdfium.PdfDocument(pdf)
    return [document[i].get_textpage().get_text_range() for i in range(len(document))]


def decoded_qr_codes(pdf: bytes) -> list[tuple[list[zxingcpp.Barcode], int, int]]:
    """Per page: the barcodes a reader finds at 150 dpi, and the raster's size in pixels."""
    document = pdfium.PdfDocument(pdf)
    pages = []
    for index in range(len(document)):
        image = document[index].render(scale=DPI / 72).to_pil()
        pages.append((zxingcpp.read_barcodes(image), image.width, image.height))
    return pages


def links(pdf: bytes) -> list[list[Any]]:
    """Per page: its link annotations."""
    reader = PdfReader(io.BytesIO(pdf))
    return [
        [a.get_object() for a in page.get("/Annots", []) if a.get_object()["/Subtype"] == "/Link"]
        for page in reader.pages
    ]


def rect_mm(annotation: Any, page_width: float) -> tuple[float, float, float, float]:
    """The annotation as (width, height, gap to the right edge, gap to the bottom) in mm."""
    x0, x1 = sorted(float(v) for v in annotation["/Rect"][0::2])
    y0, y1 = sorted(float(v) for v in annotation["/Rect"][1::2])
    return (x1 - x0) / MM, (y1 - y0) / MM, (page_width - x1) / MM, y0 / MM


def test_a_40_line_offer_spans_pages_with_the_header_on_each(long_pdf: bytes) -> None:
    texts = page_texts(long_pdf)

    assert len(texts) >= 2
    for number, text in enumerate(texts, start=1):
        assert f"Page {number} of {len(texts)}" in text
    pages_with_lines = [t for t in texts if "Spare part kit" in t]
    assert len(pages_with_lines) >= 2
    for text in pages_with_lines:
        assert "Description" in text and "Unit price" in text and "Disc." in text
    assert "Spare part kit 40" in pages_with_lines[-1]


def test_every_page_has_one_qr_code_of_the_tracking_page_bottom_right(
    long_pdf: bytes, long_offer: Offer
) -> None:
    for number, (codes, width, height) in enumerate(decoded_qr_codes(long_pdf), start=1):
        assert [c.text for c in codes] == [f"{QR_BASE}/{long_offer.id}"], f"page {number}"
        assert codes[0].format == zxingcpp.BarcodeFormat.QRCode  # never a Micro QR
        corner = codes[0].position.top_left
        assert corner.x > width * 0.75 and corner.y > height * 5 / 6, f"page {number}"


def test_every_page_links_to_the_tracking_page_from_a_15mm_square_bottom_right(
    long_pdf: bytes, long_offer: Offer
) -> None:
    reader = PdfReader(io.BytesIO(long_pdf))
    for number, (page, annotations) in enumerate(
        zip(reader.pages, links(long_pdf), strict=True), start=1
    ):
        uris = [link["/A"]["/URI"] for link in annotations if "/A" in link]
        assert uris == [f"{BASE}/{long_offer.id}?src=pdf"], f"page {number}"

        width, height, right, bottom = rect_mm(annotations[0], float(page.mediabox.width))
        assert width == pytest.approx(15, abs=1) and height == pytest.approx(15, abs=1)
        # its lower-right corner near the page's, clear of a printer's unprintable edge
        assert 5 < right < 12 and 5 < bottom < 12, f"page {number}"
        assert bottom + height < BOTTOM_MARGIN_MM  # below the body text, never over it


def test_the_qr_code_fills_the_15mm_link_square_with_its_quiet_zone(
    long_pdf: bytes, long_offer: Offer
) -> None:
    codes, _, image_height = decoded_qr_codes(long_pdf)[0]
    link = links(long_pdf)[0][0]
    x0 = min(float(v) for v in link["/Rect"][0::2])
    y0 = min(float(v) for v in link["/Rect"][1::2])
    px_per_mm = DPI / 25.4
    position = codes[0].position
    qr = qr_symbol(f"{QR_BASE}/{long_offer.id}")
    modules = qr.symbol_size(scale=1, border=0)[0]
    module_mm = 15 / qr.symbol_size(scale=1, border=4)[0]

    symbol_mm = (position.top_right.x - position.top_left.x) / px_per_mm
    quiet_left_mm = position.top_left.x / px_per_mm - x0 / MM
    quiet_bottom_mm = (image_height - position.bottom_left.y) / px_per_mm - y0 / MM
    assert symbol_mm == pytest.approx(modules * module_mm, abs=0.5)
    assert quiet_left_mm == pytest.approx(4 * module_mm, abs=0.5)
    assert quiet_bottom_mm == pytest.approx(4 * module_mm, abs=0.5)


def test_ids_are_printed_the_tracking_id_hyphenated(long_pdf: bytes, long_offer: Offer) -> None:
    texts = page_texts(long_pdf)

    assert long_offer.id in texts[0]
    hyphenated = hyphenate_tracking_id(long_offer.tracking_id)
    assert all(hyphenated in text for text in texts)  # under every page's QR code


def test_customer_details_validity_notes_and_terms(long_pdf: bytes) -> None:
    text = "".join(page_texts(long_pdf))

    for expected in ("Acme Hellas SA", "Maria P.", "maria@example.com", "PO-4711"):
        assert expected in text
    assert "Dec 31, 2026" in text
    assert "Delivery in three weeks." in text and "Payment 30 days net." in text


@pytest.mark.parametrize(
    ("language", "sentence"),
    [
        ("de", "Angenommen am 08.12.2026, 10:15 von Maria P. Bestellnummer: PO-9"),
        ("el", "Έγινε αποδεκτή στις 8 Δεκ 2026, 10:15 από Maria P. Αριθμός παραγγελίας: PO-9"),
        ("en", "Accepted on Dec 8, 2026, 10:15 by Maria P. Purchase order number: PO-9"),
    ],
)
def test_the_acceptance_ends_with_one_full_stop_after_a_signers_initial(
    language: str, sentence: str
) -> None:
    # "von Maria P.. Bestellnummer": the signer's own full stop and the sentence's, both printed.
    offer = make_offer(lines=1, status=OfferStatus.ACCEPTED)
    offer.language = language
    offer.accepted_at = datetime(2026, 12, 8, 9, 15, tzinfo=UTC)
    offer.accepted_by_name = "Maria P."
    offer.accepted_po_number = "PO-9"

    text = " ".join(" ".join(page_texts(render(offer))).split())

    assert sentence in text


def test_totals_with_the_vat_breakdown(long_pdf: bytes) -> None:
    text = "".join(page_texts(long_pdf))

    assert "Net total" in text and "€800.00" in text
    assert "VAT 13% on €400.00" in text and "€52.00" in text
    assert "VAT 24% on €400.00" in text and "€96.00" in text
    assert "€948.00" in text


def test_a_draft_carries_a_watermark_on_every_page(long_pdf: bytes) -> None:
    assert all("DRAFT" in text for text in page_texts(long_pdf))


def test_an_issued_offer_carries_no_watermark(issued_pdf: bytes) -> None:
    assert "DRAFT" not in "".join(page_texts(issued_pdf))


def test_customer_text_is_escaped_printed_literally_and_never_fetched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fetched: list[str] = []
    fetch = StaticOnlyFetcher.fetch

    def recording_fetch(self: StaticOnlyFetcher, url: str, headers: Any = None) -> Any:
        fetched.append(url)
        return fetch(self, url, headers)

    monkeypatch.setattr(StaticOnlyFetcher, "fetch", recording_fetch)
    html = quotation_html(make_offer(lines=1, company=EVIL), settings=SETTINGS, today=TODAY)
    text = page_texts(render_pdf(html))[0]

    assert "&lt;img src=&#34;http://attacker.example/x.png&#34;&gt;&lt;script&gt;" in html
    assert "<script>" not in html and '<img src="http://attacker' not in html
    assert EVIL in text
    assert fetched  # the stylesheet and the QR code went through it
    assert all(url.startswith(("data:", STATIC_DIR.as_uri() + "/")) for url in fetched)


@pytest.mark.parametrize(
    "url",
    [
        "http://attacker.example/x.png",
        "https://attacker.example/x.css",
        "ftp://attacker.example/x",
        "file:///etc/passwd",
        "file://attacker.example" + str(STATIC_DIR / "print.css"),
        (STATIC_DIR / ".." / "pyproject.toml").as_uri(),
        STATIC_DIR.as_uri() + "/%2e%2e/pyproject.toml",
        STATIC_DIR.as_uri() + "/no-such-file.css",
        STATIC_DIR.as_uri(),
    ],
)
def test_the_fetcher_refuses_anything_but_our_static_files(url: str) -> None:
    with pytest.raises(ValueError, match="refused"):
        StaticOnlyFetcher().fetch(url)


def test_a_refused_url_leaves_a_hole_not_a_failed_render() -> None:
    html = '<link rel="stylesheet" href="file:///etc/passwd"><img src="http://x.invalid/a.png">'

    assert render_pdf(html + "<p>still here</p>").startswith(b"%PDF")


def test_the_fetcher_serves_a_static_file() -> None:
    response = StaticOnlyFetcher().fetch((STATIC_DIR / "print.css").as_uri())

    assert b"@page" in response.read()
    assert response.content_type == "text/css"


def test_the_company_logo_is_served_from_static() -> None:
    settings = Settings(public_base_url=BASE, company_logo="favicon.svg")
    html = quotation_html(make_offer(lines=1), settings=settings, today=TODAY)

    assert (STATIC_DIR / "favicon.svg").resolve().as_uri() in html


def test_letter_page_size_keeps_the_qr_link_bottom_right(letter_pdf: bytes) -> None:
    document = pdfium.PdfDocument(letter_pdf)
    [(codes, _, _)] = decoded_qr_codes(letter_pdf)
    [[link]] = links(letter_pdf)

    assert document[0].get_size() == pytest.approx((612, 792), abs=1)
    assert len(codes) == 1
    _, _, right, bottom = rect_mm(link, 612)
    assert 5 < right < 12 and 5 < bottom < 12


def test_a4_is_the_default(issued_pdf: bytes) -> None:
    assert pdfium.PdfDocument(issued_pdf)[0].get_size() == pytest.approx((595.3, 841.9), abs=1)


def test_the_etag_is_the_sha256_of_the_content() -> None:
    assert pdf_etag(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@contextmanager
def running_renderer(workers: int = 1) -> Iterator[tuple[PdfRenderer, set[Process]]]:
    """A started renderer and the worker processes it started."""
    before = set(multiprocessing.active_children())
    renderer = PdfRenderer(Settings(pdf_workers=workers, pdf_timeout_seconds=60))
    try:
        renderer.start()
        yield renderer, set(multiprocessing.active_children()) - before
    finally:
        renderer.shutdown()


def test_no_renderer_process_outlives_shutdown() -> None:
    # A server's process ends only once its children have: one left waiting on its task
    # queue held the server up after SIGTERM until it was killed (seen under granian).
    with running_renderer(workers=2) as (renderer, workers):
        renderer.render_sync("<p>one page</p>")
        renderer.shutdown()
        assert workers and not [worker for worker in workers if worker.is_alive()]


def _ignores_sigint_soon(pid: int, seconds: float = 20) -> bool:
    """Whether the process ignores SIGINT within ``seconds`` (Linux: its SigIgn mask)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = Path(f"/proc/{pid}/status").read_text()
        ignored = int(status.split("SigIgn:", 1)[1].split()[0], 16)
        if ignored & (1 << (signal.SIGINT - 1)):
            return True
        time.sleep(0.05)
    return False


def test_ctrl_c_leaves_the_renderers_to_the_server() -> None:
    # Ctrl+C in `make run`'s terminal reaches every process of the group: each renderer died
    # of a KeyboardInterrupt, printing its traceback, before the server could shut it down.
    with running_renderer(workers=2) as (renderer, workers):
        for worker in workers:
            assert worker.pid is not None
            # A worker that has not run its initializer yet (the other took both warm-up
            # tasks) is still starting: a Ctrl+C then is one at the server's start.
            assert _ignores_sigint_soon(worker.pid), "the renderer takes Ctrl+C itself"
            os.kill(worker.pid, signal.SIGINT)
        time.sleep(0.5)

        assert renderer.render_sync("<p>still here</p>").startswith(b"%PDF")
        assert workers and all(worker.is_alive() for worker in workers)


def test_shutdown_stops_a_render_still_running_past_its_time_limit() -> None:
    # A request cancelled as the server stops leaves its render running (nobody waits for it
    # to kill it at its limit): shutdown must not wait for it longer than the limit.
    before = set(multiprocessing.active_children())
    renderer = PdfRenderer(Settings(pdf_workers=1, pdf_timeout_seconds=1))
    renderer.start()
    workers = set(multiprocessing.active_children()) - before
    renderer._pool.submit(time.sleep, 60)  # a render stuck in its worker
    time.sleep(0.2)

    stopping = threading.Thread(target=renderer.shutdown, daemon=True)
    started = time.monotonic()
    stopping.start()
    stopping.join(timeout=15)

    assert not stopping.is_alive(), "shutdown waits for a stuck render"
    assert time.monotonic() - started < 5
    assert workers and not [worker for worker in workers if worker.is_alive()]


def _assert_killed(pool: ProcessPoolExecutor, workers: set[Process]) -> None:
    """The stuck workers were killed, not left rendering on their own. Their exit codes are
    read once the pool's manager thread has joined them: when two threads read a forkserver
    child's status at once, one of them gets 255 instead."""
    # typeshed types the attribute as the thread's wake-up pipe; it holds the thread.
    manager = cast(threading.Thread | None, pool._executor_manager_thread)
    assert manager is not None
    manager.join(timeout=10)
    for process in workers:
        assert process.exitcode == -signal.SIGKILL


def quick_html() -> str:
    return quotation_html(make_offer(lines=1), settings=SETTINGS, today=TODAY)


def test_start_launches_every_worker() -> None:
    with running_renderer(workers=2) as (_, workers):
        assert len(workers) == 2 and all(p.is_alive() for p in workers)


def test_the_renderer_renders_through_its_pool() -> None:
    with running_renderer() as (renderer, _):
        assert renderer.render_sync(quick_html()).startswith(b"%PDF")


def test_a_render_over_the_time_limit_is_killed_and_the_renderer_recovers() -> None:
    slow = quotation_html(make_offer(lines=300), settings=SETTINGS, today=TODAY)
    with running_renderer() as (renderer, workers):
        stuck = renderer._pool
        renderer.timeout = 0.2
        with pytest.raises(PdfRenderTimeout, match="longer than 0.2 seconds"):
            renderer.render_sync(slow)
        renderer.timeout = 60

        _assert_killed(stuck, workers)
        assert renderer.render_sync(quick_html()).startswith(b"%PDF")


def test_a_worker_that_died_is_replaced_and_the_render_retried() -> None:
    with running_renderer() as (renderer, workers):
        for process in workers:
            assert process.pid is not None
            os.kill(process.pid, signal.SIGKILL)
            process.join(timeout=10)

        assert renderer.render_sync(quick_html()).startswith(b"%PDF")


def test_renders_from_more_threads_than_workers_all_complete() -> None:
    html = quick_html()
    with running_renderer() as (renderer, _), ThreadPoolExecutor(max_workers=3) as threads:
        results = list(threads.map(renderer.render_sync, [html] * 3))

    assert all(result.startswith(b"%PDF") for result in results)


def test_awaited_renders_and_a_thread_s_share_the_workers_and_all_complete() -> None:
    html = quick_html()

    async def render_all(renderer: PdfRenderer) -> list[bytes]:
        from_thread = asyncio.to_thread(renderer.render_sync, html)
        return await asyncio.gather(*[renderer.render(html) for _ in range(3)], from_thread)

    with running_renderer() as (renderer, _):
        results = run_async(lambda: render_all(renderer))

    assert len(results) == 4 and all(result.startswith(b"%PDF") for result in results)


def test_an_awaited_render_over_the_time_limit_is_killed_and_the_renderer_recovers() -> None:
    slow = quotation_html(make_offer(lines=300), settings=SETTINGS, today=TODAY)
    with running_renderer() as (renderer, workers):
        stuck = renderer._pool
        renderer.timeout = 0.2
        with pytest.raises(PdfRenderTimeout, match="longer than 0.2 seconds"):
            run_async(lambda: renderer.render(slow))
        renderer.timeout = 60

        _assert_killed(stuck, workers)
        assert run_async(lambda: renderer.render(quick_html())).startswith(b"%PDF")


def test_a_render_queued_behind_a_busy_worker_for_too_long_answers_busy() -> None:
    slow = quotation_html(make_offer(lines=300), settings=SETTINGS, today=TODAY)

    async def second_waits(renderer: PdfRenderer) -> BaseException | bytes:
        first = asyncio.ensure_future(renderer.render(slow))
        await asyncio.sleep(0.05)  # the first holds the only worker
        renderer.timeout = 0.1  # read by the second's wait, not the running first
        waiting = await asyncio.gather(renderer.render(quick_html()), return_exceptions=True)
        renderer.timeout = 60
        await first
        return waiting[0]

    with running_renderer() as (renderer, _):
        renderer.timeout = 60
        outcome = run_async(lambda: second_waits(renderer))
        assert isinstance(outcome, PdfRendererBusy)
        assert run_async(lambda: renderer.render(quick_html())).startswith(b"%PDF")


SERVER_WITH_A_RENDERER = """
import multiprocessing, sys, time
from app.config import Settings
from app.offers.pdf import PdfRenderer
PdfRenderer(Settings(pdf_workers=2)).start()
deadline = time.monotonic() + 60  # a loaded machine may take a while to start both
while len(multiprocessing.active_children()) < 2 and time.monotonic() < deadline:
    time.sleep(0.05)
print(*[p.pid for p in multiprocessing.active_children()], flush=True)
sys.stdin.read()
"""


def is_running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except (FileNotFoundError, ProcessLookupError):  # gone before the open, or before the read
        return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads process states from /proc")
def test_workers_end_when_the_server_is_killed_without_shutting_down() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", SERVER_WITH_A_RENDERER],
        cwd=ROOT_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # its resource tracker's complaint about the kill
    ) as server:
        assert server.stdout is not None
        workers = [int(pid) for pid in server.stdout.readline().split()]
        server.kill()

    deadline = time.monotonic() + 30
    while any(map(is_running, workers)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(workers) == 2
    assert [pid for pid in workers if is_running(pid)] == []


def _raster_images(obj: object, seen: set[int]) -> int:
    resources = obj.get("/Resources")  # type: ignore[attr-defined]
    if resources is None:
        return 0
    count = 0
    for key in ("/XObject", "/Pattern"):
        for value in (resources.get_object().get(key) or {}).values():
            node = value.get_object()
            if id(node) in seen:
                continue
            seen.add(id(node))
            count += (node.get("/Subtype") == "/Image") + _raster_images(node, seen)
    return count


def test_the_qr_code_is_vector_not_a_picture(long_pdf: bytes) -> None:
    reader = PdfReader(io.BytesIO(long_pdf))

    assert all(_raster_images(page, set()) == 0 for page in reader.pages)


def _line(offer_id: str, position: int, *, quantity: str, unit_price: str) -> OfferLine:
    return OfferLine(
        offer_id=offer_id,
        position=position,
        description=f"Item {position}",
        quantity=Decimal(quantity),
        unit="pc",
        unit_price=Decimal(unit_price),
        vat_rate=Decimal(24),
    )


def test_unit_prices_and_quantities_print_at_the_precision_stored() -> None:
    offer = make_offer(lines=0)
    offer.lines = [
        _line(offer.id, 1, quantity="12345.500", unit_price="1234.5678"),
        _line(offer.id, 2, quantity="1.000", unit_price="0.0040"),
        _line(offer.id, 3, quantity="3.000", unit_price="10.5000"),
    ]
    text = page_texts(render(offer))[0]

    # The line net can be recomputed from the printed figures: 12,345.5 × 1,234.5678.
    assert "12,345.5" in text and "€1,234.5678" in text and "€15,241,356.77" in text
    assert "€0.004" in text and "€0.00 " not in text
    assert "€10.50" in text and "10.5000" not in text


def test_continuation_pages_carry_the_running_header(long_pdf: bytes, long_offer: Offer) -> None:
    texts = page_texts(long_pdf)
    title = f"Quotation {hyphenate_tracking_id(long_offer.tracking_id)}"

    assert title not in texts[0]  # the first page has the letterhead instead
    for number, text in enumerate(texts[1:], start=2):
        assert SETTINGS.company_name in text and title in text, f"page {number}"
        assert text.count(f"Page {number} of {len(texts)}") == 2, f"page {number}"


def _catalog(pdf: bytes) -> Any:
    return PdfReader(io.BytesIO(pdf)).trailer["/Root"]


def test_the_pdf_is_pdf_a_3b_with_xmp_metadata_and_tagged(issued_pdf: bytes) -> None:
    catalog = _catalog(issued_pdf)
    reader = PdfReader(io.BytesIO(issued_pdf))
    xmp = catalog["/Metadata"].get_object().get_data().decode()

    intents = [intent.get_object() for intent in catalog["/OutputIntents"]]
    assert [intent["/S"] for intent in intents] == ["/GTS_PDFA1"]
    assert 'pdfaid:part="3"' in xmp and 'pdfaid:conformance="B"' in xmp
    assert reader.xmp_metadata is not None
    title = reader.xmp_metadata.dc_title
    assert title is not None and title["x-default"].startswith("Quotation ")
    assert reader.xmp_metadata.dc_creator == [SETTINGS.company_name]
    assert reader.xmp_metadata.xmp_creator_tool == "OfferTrack"
    assert "<dc:language><rdf:Bag><rdf:li>en</rdf:li>" in xmp and catalog["/Lang"] == "en"
    assert bool(catalog["/MarkInfo"]["/Marked"]) and "/StructTreeRoot" in catalog


def _notdef_glyphs(pdf: bytes) -> int:
    """Glyph 0 (.notdef, an empty box) shown anywhere. WeasyPrint writes Identity-H fonts,
    whose two-byte codes are glyph ids."""
    reader = PdfReader(io.BytesIO(pdf))
    count = 0
    for page in reader.pages:
        for operands, operator in ContentStream(page.get_contents(), reader).operations:
            if operator not in (b"Tj", b"TJ"):
                continue
            items = operands[0] if operator == b"TJ" else operands
            for item in items:
                if isinstance(item, TextStringObject | bytes):
                    raw = (
                        item.get_original_bytes()
                        if isinstance(item, TextStringObject)
                        else bytes(item)
                    )
                    count += sum(raw[i : i + 2] == b"\0\0" for i in range(0, len(raw), 2))
    return count


SCRIPTS = {
    "latin": "Łukasz Müller-Þórsdóttir",
    "greek": "Γιώργος Παπαδόπουλος",
    "cyrillic": "Дмитрий Иванов",
    "arabic": "مؤسسة النور للتجارة",
    "cjk": "张伟 山田太郎 김민준",
}


@pytest.fixture(scope="module")
def scripts_pdf() -> bytes:
    offer = make_offer(lines=len(SCRIPTS))
    for line, name in zip(offer.lines, SCRIPTS.values(), strict=True):
        line.description = name
    offer.customer_company = SCRIPTS["arabic"]
    return render(offer)


def test_names_in_every_script_render_with_real_glyphs_and_extract(scripts_pdf: bytes) -> None:
    text = PdfReader(io.BytesIO(scripts_pdf)).pages[0].extract_text()

    assert _notdef_glyphs(scripts_pdf) == 0
    for script, name in SCRIPTS.items():
        if script != "arabic":  # extracted in visual order; checked through pdfium below
            assert name in text, script
    assert SCRIPTS["arabic"] in page_texts(scripts_pdf)[0]


def test_arabic_text_is_right_aligned(scripts_pdf: bytes) -> None:
    page = pdfium.PdfDocument(scripts_pdf)[0]
    textpage = page.get_textpage()
    whole = textpage.get_text_range()
    width = page.get_width()
    starts = [i for i in range(len(whole)) if whole.startswith(SCRIPTS["arabic"], i)]
    company, description = (
        min(textpage.get_charbox(start + i)[0] for i in range(len(SCRIPTS["arabic"])))
        for start in starts
    )
    latin = textpage.get_charbox(whole.index(SCRIPTS["latin"]))[0]
    assert company > width / 2  # "Prepared for" reads from the right margin
    assert description > latin + 20  # the line's description ends at its column's right edge


def test_a_german_offer_prints_in_german_with_german_numbers() -> None:
    offer = make_offer(lines=0)
    offer.language = "de"
    offer.lines = [_line(offer.id, 1, quantity="1500", unit_price="1234.5")]
    text = page_texts(render(offer))[0].replace("\xa0", " ")

    assert "Angebot" in text and "Gültig bis" in text and "31.12.2026" in text
    assert "1.500" in text and "1.234,50 €" in text and "1.851.750,00 €" in text
    assert "Seite 1 von 1" in text
    assert _catalog(render(offer))["/Lang"] == "de"


def test_legal_lines_are_printed_on_every_page(long_offer: Offer) -> None:
    settings = Settings(
        public_base_url=BASE,
        company_legal_lines="Bank: Alpha Bank · IBAN GR16 0110 1250 0000 0001 2300 695\n"
        "Registered at GEMI 123456789000 · Managing director: Eleni K.",
    )
    texts = page_texts(render(long_offer, settings))

    assert len(texts) >= 2
    for text in texts:
        assert "IBAN GR16 0110 1250 0000 0001 2300 695" in text
        assert "Managing director: Eleni K." in text


def _blurred_pages(pdf: bytes) -> list[Any]:
    document = pdfium.PdfDocument(pdf)
    return [
        document[i].render(scale=DPI / 72).to_pil().convert("L").filter(GaussianBlur(1))
        for i in range(len(document))
    ]


def test_every_pages_qr_code_decodes_at_150_dpi_after_a_blur(
    long_pdf: bytes, long_offer: Offer
) -> None:
    for number, image in enumerate(_blurred_pages(long_pdf), start=1):
        codes = zxingcpp.read_barcodes(image)
        assert [c.text for c in codes] == [f"{QR_BASE}/{long_offer.id}"], f"page {number}"


@pytest.mark.parametrize(
    "base", ["https://track.tectra.gr", "https://track.example.com", "http://127.0.0.1:8000"]
)
def test_qr_modules_are_at_least_0_40_mm_in_the_15_mm_square(base: str) -> None:
    offer = make_offer(lines=1)
    url = qr_url(offer, Settings(public_base_url=base))
    symbol = qr_symbol(url)

    assert url == f"{base.upper()}/{offer.id}"
    assert symbol.mode == "alphanumeric" and symbol.error in ("M", "Q", "H")
    assert 15 / symbol.symbol_size(scale=1, border=4)[0] >= 0.40


def test_the_page_opens_from_the_upper_case_url_of_the_qr_code() -> None:
    from app.tracking.codes import parse_tracking_code

    offer = make_offer(lines=1)
    path = qr_url(offer, SETTINGS).rsplit("/", 1)[1]
    assert parse_tracking_code(path).value == offer.id
