"""QR artwork: decoded by zxing-cpp after rasterizing, at the size asked, quiet zone kept."""

import io
import re

import pypdfium2
import pytest
import segno
import zxingcpp
from fastapi.testclient import TestClient
from httpx2 import Response
from PIL import Image
from sqlmodel import Session
from weasyprint import HTML

from app.analytics.models import Placement
from tests.factories import make_campaign, make_placement

MM_PER_POINT = 25.4 / 72
URL = "https://track.example.com/c/table-tent-47"


@pytest.fixture
def placement(session: Session) -> Placement:
    campaign = make_campaign(session, name="Artwork")
    assert campaign.id is not None
    return make_placement(session, campaign.id, slug="table-tent-47")


def _decode(image: Image.Image) -> str:
    results = zxingcpp.read_barcodes(image.convert("L"))
    assert len(results) == 1, "expected exactly one readable QR code"
    return results[0].text


def _pdf_page(content: bytes) -> tuple[Image.Image, float]:
    pdf = pypdfium2.PdfDocument(content)
    page = pdf[0]
    width_mm = page.get_width() * MM_PER_POINT
    image = page.render(scale=600 / 72).to_pil()
    return image, width_mm


def _svg_as_pdf(svg: bytes) -> bytes:
    """Rasterizing SVG needs a renderer: WeasyPrint lays it out, pdfium draws it."""
    width = re.search(rb'width="([\d.]+)mm"', svg)
    assert width is not None
    size = width.group(1).decode()
    html = (
        f"<style>@page {{ size: {size}mm {size}mm; margin: 0 }} body {{ margin: 0 }}</style>"
        f'<img style="display:block;width:{size}mm" src="data:image/svg+xml;base64,'
        + __import__("base64").b64encode(svg).decode()
        + '">'
    )
    pdf: bytes = HTML(string=html).write_pdf()
    return pdf


def _get(api: TestClient, placement: Placement, fmt: str, **params: str | float) -> Response:
    return api.get(f"/api/v1/placements/{placement.id}/qr.{fmt}", params=params)


@pytest.mark.parametrize("error", ["L", "M", "Q", "H"])
def test_pdf_artwork_scans_at_the_size_asked(
    api: TestClient, placement: Placement, error: str
) -> None:
    response = _get(api, placement, "pdf", size_mm=25, error=error)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    image, width_mm = _pdf_page(response.content)
    assert width_mm == pytest.approx(25, abs=0.05)
    assert _decode(image) == URL


def test_png_artwork_scans_and_prints_at_size(api: TestClient, placement: Placement) -> None:
    response = _get(api, placement, "png", size_mm=20, error="Q")
    assert response.status_code == 200
    image = Image.open(io.BytesIO(response.content))
    dpi = image.info["dpi"][0]
    assert image.width / dpi * 25.4 == pytest.approx(20, abs=0.1)
    assert _decode(image) == URL
    # The quiet zone is white all round: 4 modules wide.
    modules = segno.make(URL, error="q", boost_error=False).symbol_size(border=4)[0]
    margin = image.width * 4 // modules
    pixels = image.convert("L")
    strips = [
        pixels.crop((0, 0, image.width, margin)),
        pixels.crop((0, 0, margin, image.height)),
        pixels.crop((image.width - margin, 0, image.width, image.height)),
        pixels.crop((0, image.height - margin, image.width, image.height)),
    ]
    assert all(strip.getextrema() == (255, 255) for strip in strips)


def test_svg_artwork_scans(api: TestClient, placement: Placement) -> None:
    response = _get(api, placement, "svg", size_mm=30, error="H")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    width = re.search(rb'width="([\d.]+)mm"', response.content)
    assert width is not None and float(width.group(1)) == pytest.approx(30, abs=0.01)
    image, width_mm = _pdf_page(_svg_as_pdf(response.content))
    assert width_mm == pytest.approx(30, abs=0.1)
    assert _decode(image) == URL


def test_too_dense_is_refused_with_the_smallest_size(api: TestClient, placement: Placement) -> None:
    response = _get(api, placement, "pdf", size_mm=10, error="H")
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["query", "size_mm"]
    smallest = int(re.search(r"is (\d+) mm", detail["msg"]).group(1))  # type: ignore[union-attr]
    assert _get(api, placement, "pdf", size_mm=smallest, error="H").status_code == 200
    assert _get(api, placement, "pdf", size_mm=smallest - 0.5, error="H").status_code == 422


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"size_mm": "big"}, ["query", "size_mm"]),
        ({"size_mm": 20, "error": "X"}, ["query", "error"]),
        ({}, ["query", "size_mm"]),
    ],
)
def test_bad_artwork_parameters(
    api: TestClient, placement: Placement, params: dict[str, str | float], loc: list[str]
) -> None:
    response = _get(api, placement, "png", **params)
    assert response.status_code == 422
    assert loc in [e["loc"] for e in response.json()["detail"]]


def test_unknown_format_or_placement(api: TestClient, placement: Placement) -> None:
    assert _get(api, placement, "gif", size_mm=20).status_code == 422
    assert api.get("/api/v1/placements/999999/qr.png", params={"size_mm": 20}).status_code == 404
