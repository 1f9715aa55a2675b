"""QR artwork for a campaign code: SVG, PNG or PDF at a size in millimetres.

The size is the whole artwork, quiet zone included: the 4-module white margin the standard
requires is always part of it, never trimmed to fit. A module (one black or white square)
must be at least MIN_MODULE_MM wide; a code too dense for the size asked is refused with the
smallest size that works. 0.33 mm is the smallest module that phone cameras read reliably
from print at a normal distance (about 4 dots at 300 dpi); the offer PDFs' 15 mm codes use
about 0.37 mm.
"""

import io
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from math import ceil
from typing import Literal

import segno

from app.errors import Unprocessable

MIN_MODULE_MM = 0.33
QUIET_ZONE = 4
MM_PER_INCH = 25.4
PNG_MIN_DPI = 600
ErrorLevel = Literal["L", "M", "Q", "H"]
ArtworkFormat = Literal["svg", "png", "pdf"]
MEDIA_TYPES = {"svg": "image/svg+xml", "png": "image/png", "pdf": "application/pdf"}


class CodeTooDense(Unprocessable):
    def __init__(self, size_mm: float, smallest_mm: int, error: str) -> None:
        super().__init__(
            f"At {size_mm:g} mm this code's modules would be smaller than {MIN_MODULE_MM} mm "
            f"and may not scan. The smallest size that works at error level {error} is "
            f"{smallest_mm} mm (or choose a lower error level).",
            loc=("query", "size_mm"),
        )
        self.smallest_mm = smallest_mm


@dataclass(frozen=True)
class Artwork:
    content: bytes
    media_type: str
    filename: str
    module_mm: float


def smallest_size_mm(modules_with_quiet_zone: int) -> int:
    exact = Decimal(str(MIN_MODULE_MM)) * modules_with_quiet_zone
    return int(exact.to_integral_value(rounding=ROUND_CEILING))


def render(
    url: str, *, size_mm: float, error: ErrorLevel, fmt: ArtworkFormat, name: str
) -> Artwork:
    """The code for ``url`` as artwork ``size_mm`` wide, quiet zone included."""
    qr = segno.make(url, error=error.lower(), micro=False, boost_error=False)
    modules = int(qr.symbol_size(border=QUIET_ZONE)[0])
    module_mm = size_mm / modules
    if module_mm < MIN_MODULE_MM:
        raise CodeTooDense(size_mm, smallest_size_mm(modules), error)
    out = io.BytesIO()
    if fmt == "svg":
        qr.save(
            out,
            kind="svg",
            scale=module_mm,
            unit="mm",
            border=QUIET_ZONE,
            light="#fff",
            xmldecl=True,
        )
    elif fmt == "pdf":
        points = module_mm / MM_PER_INCH * 72
        qr.save(out, kind="pdf", scale=points, border=QUIET_ZONE, light="#fff")
    else:
        # Whole pixels per module keep edges sharp; the DPI written makes it print at size.
        pixels = ceil(PNG_MIN_DPI * module_mm / MM_PER_INCH)
        dpi = round(pixels * modules * MM_PER_INCH / size_mm)
        qr.save(out, kind="png", scale=pixels, border=QUIET_ZONE, dpi=dpi)
    filename = f"{name}-{size_mm:g}mm-{error}.{fmt}"
    return Artwork(out.getvalue(), MEDIA_TYPES[fmt], filename, module_mm)


def preview_svg(url: str, *, error: ErrorLevel = "M") -> str:
    """The code for ``url`` as SVG to show on a page (sized by its container): the same
    symbol ``render`` prints at this error level, quiet zone included."""
    qr = segno.make(url, error=error.lower(), micro=False, boost_error=False)
    # A viewBox without a size: the symbol scales to its box. With a fixed 148 px size it sat
    # in the top-left corner of a wider box and left the rest of it blank.
    return str(
        qr.svg_inline(
            scale=4, border=QUIET_ZONE, light="#fff", svgclass="qr-preview", omitsize=True
        )
    )
