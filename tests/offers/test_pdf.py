"""The quotation PDF as a reader meets it: rasterized pages, decoded QR codes, link annotations."""

import io
from datetime import date
from decimal import Decimal

import pypdfium2 as pdfium
import pytest
import zxingcpp
from pypdf import PdfReader

from app.config import Settings
from app.offers.ids import hyphenate_tracking_id, new_offer_ulid
from app.offers.models import Offer, OfferLine, OfferStatus
from app.offers.pdf import (
    PdfRenderer,
    PdfRenderTimeout,
    StaticOnlyFetcher,
    quotation_html,
    render_pdf,
)

BASE = "https://track.example.com"
MM = 72 / 25.4  # PDF points per millimetre
SETTINGS = Settings(public_base_url=BASE)


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
        currency="EUR",
        valid_until=date(2026, 12, 31),
        terms="Payment 30 days net.",
        lines=[
            OfferLine(
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
    return render_pdf(quotation_html(offer, settings=settings, today=date(2026, 11, 22)))


@pytest.fixture(scope="module")
def long_offer() -> Offer:
    return make_offer(lines=40)


@pytest.fixture(scope="module")
def long_pdf(long_offer: Offer) -> bytes:
    return render(long_offer)


def page_texts(pdf: bytes) -> list[str]:
    document = pdfium.PdfDocument(pdf)
    return [document[i].get_textpage().get_text_range() for i in range(len(document))]


def test_a_40_line_offer_spans_pages_with_the_header_on_each(long_pdf: bytes) -> None:
    texts = page_texts(long_pdf)

    assert len(texts) >= 2
    for number, text in enumerate(texts, start=1):
        assert "Description" in text and "Unit price" in text
        assert f"Page {number} of {len(texts)}" in text
    assert "Spare part kit 40" in texts[-1]


def test_every_page_has_the_qr_code_of_the_tracking_page(
    long_pdf: bytes, long_offer: Offer
) -> None:
    document = pdfium.PdfDocument(long_pdf)
    for index in range(len(document)):
        page = document[index]
        image = page.render(scale=150 / 72).to_pil()
        codes = zxingcpp.read_barcodes(image)

        assert [c.text for c in codes] == [f"{BASE}/{long_offer.id}"], f"page {index + 1}"
        assert codes[0].format == zxingcpp.BarcodeFormat.QRCode
        # bottom-right: the symbol lies in the right quarter and the bottom sixth of the page
        corner = codes[0].position.top_left
        assert corner.x > image.width * 0.75 and corner.y > image.height * 5 / 6


def test_every_page_links_to_the_tracking_page_inside_the_bottom_right_15mm_square(
    long_pdf: bytes, long_offer: Offer
) -> None:
    reader = PdfReader(io.BytesIO(long_pdf))
    for number, page in enumerate(reader.pages, start=1):
        width = float(page.mediabox.width)
        links = [
            a.get_object() for a in page.get("/Annots", []) if a.get_object()["/Subtype"] == "/Link"
        ]
        uris = [link["/A"]["/URI"] for link in links if "/A" in link]

        assert uris == [f"{BASE}/{long_offer.id}?src=pdf"], f"page {number}"
        x0, x1 = sorted(float(v) for v in links[0]["/Rect"][0::2])
        y0, y1 = sorted(float(v) for v in links[0]["/Rect"][1::2])
        assert x1 - x0 == pytest.approx(15 * MM, abs=0.5 * MM)
        assert y1 - y0 == pytest.approx(15 * MM, abs=0.5 * MM)
        assert width - x1 < 15 * MM and y0 < 30 * MM  # the bottom-right corner of the page


def test_the_link_is_exactly_where_the_qr_code_is(long_pdf: bytes) -> None:
    document = pdfium.PdfDocument(long_pdf)
    reader = PdfReader(io.BytesIO(long_pdf))
    page = document[0]
    scale = 150 / 72
    image = page.render(scale=scale).to_pil()
    position = zxingcpp.read_barcodes(image)[0].position
    link = next(
        a.get_object() for a in reader.pages[0]["/Annots"] if a.get_object()["/Subtype"] == "/Link"
    )
    x0 = min(float(v) for v in link["/Rect"][0::2])
    y0 = min(float(v) for v in link["/Rect"][1::2])
    height = page.get_height()

    qr_left = position.top_left.x / scale
    qr_bottom = height - position.bottom_left.y / scale
    # the symbol sits inside the link square, within its 4-module quiet zone (< 2.5 mm)
    assert x0 < qr_left < x0 + 2.5 * MM
    assert y0 < qr_bottom < y0 + 2.5 * MM


def test_ids_are_printed_the_tracking_id_hyphenated(long_pdf: bytes, long_offer: Offer) -> None:
    first = page_texts(long_pdf)[0]

    assert long_offer.id in first
    assert hyphenate_tracking_id(long_offer.tracking_id) in first


def test_totals_with_the_vat_breakdown(long_pdf: bytes) -> None:
    last = page_texts(long_pdf)[-1]

    assert "Net total" in last and "800.00 EUR" in last
    assert "VAT 13% on 400.00 EUR" in last and "52.00 EUR" in last
    assert "VAT 24% on 400.00 EUR" in last and "96.00 EUR" in last
    assert "948.00 EUR" in last


def test_a_draft_carries_a_watermark_an_issued_offer_does_not() -> None:
    draft = page_texts(render(make_offer(lines=2, status=OfferStatus.DRAFT)))
    issued = page_texts(render(make_offer(lines=2)))

    assert "DRAFT" in draft[0]
    assert "DRAFT" not in issued[0]


def test_customer_text_is_escaped_and_never_fetched() -> None:
    company = '<img src="http://attacker.example/x.png"><script>alert(1)</script>'
    offer = make_offer(lines=1, company=company)

    html = quotation_html(offer, settings=SETTINGS, today=date(2026, 11, 22))
    text = page_texts(render_pdf(html))[0]

    assert "<img src=&#34;http" in html or "&lt;img" in html
    assert "<script>" not in html
    assert '<img src="http://attacker.example' in text  # printed literally, as text


@pytest.mark.parametrize(
    "url",
    [
        "http://attacker.example/x.png",
        "https://attacker.example/x.css",
        "file:///etc/passwd",
        "ftp://attacker.example/x",
        "file:///work/../etc/passwd",
    ],
)
def test_the_fetcher_refuses_anything_but_our_static_files(url: str) -> None:
    with pytest.raises(ValueError, match="refused"):
        StaticOnlyFetcher().fetch(url)


def test_the_fetcher_refuses_a_path_out_of_static() -> None:
    from app.config import STATIC_DIR

    escape = (STATIC_DIR / ".." / "pyproject.toml").as_uri()
    with pytest.raises(ValueError, match="refused"):
        StaticOnlyFetcher().fetch(escape)


def test_the_fetcher_serves_a_static_file() -> None:
    from app.config import STATIC_DIR

    response = StaticOnlyFetcher().fetch((STATIC_DIR / "print.css").as_uri())

    assert b"@page" in response.read()
    assert response.content_type == "text/css"


def test_letter_page_size() -> None:
    settings = Settings(public_base_url=BASE, page_size="Letter")

    document = pdfium.PdfDocument(render(make_offer(lines=2), settings))

    assert document[0].get_size() == pytest.approx((612, 792), abs=1)


def test_the_renderer_pool_renders_and_survives_a_timeout() -> None:
    renderer = PdfRenderer(Settings(pdf_workers=1, pdf_timeout_seconds=0.001))
    try:
        html = quotation_html(make_offer(lines=1), settings=SETTINGS, today=date(2026, 11, 22))
        with pytest.raises(PdfRenderTimeout):
            renderer.render_sync(html)
        renderer.timeout = 60
        assert renderer.render_sync(html).startswith(b"%PDF")
    finally:
        renderer.shutdown()


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
