"""Route helpers of the offers package, for its own routes and the pages of higher packages
(tracking's PDF link, the staff site's), which never import another package's router."""

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request, Response, status

from app.config import Settings
from app.offers import service
from app.offers.documents import PdfDocument
from app.offers.models import Offer
from app.offers.pdf import PdfRenderer
from app.offers.schemas import OfferRead


async def get_renderer(request: Request) -> PdfRenderer:
    renderer: PdfRenderer = request.app.state.pdf_renderer
    return renderer


RendererDep = Annotated[PdfRenderer, Depends(get_renderer)]


def content_disposition(filename: str) -> str:
    """An inline file's name in a header, which is Latin-1: a name in Greek goes as RFC 5987's
    UTF-8 filename*, which every current browser prefers, after an ASCII one (the
    code alone) for the rest."""
    fallback = filename.encode("ascii", "ignore").decode().lstrip("-")
    if fallback == filename:
        return f'inline; filename="{filename}"'
    return f"inline; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"


def pdf_response(document: PdfDocument, if_none_match: str | None) -> Response:
    """The PDF, or 304 when the client holds this exact version already."""
    headers = {"Content-Disposition": content_disposition(document.filename)}
    if document.etag is None:
        headers["Cache-Control"] = "no-store"
        return Response(document.content, media_type="application/pdf", headers=headers)
    etag = f'"{document.etag}"'
    headers |= {"ETag": etag, "Cache-Control": "private, no-cache"}
    if if_none_match and etag in (tag.strip() for tag in if_none_match.split(",")):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(document.content, media_type="application/pdf", headers=headers)


def offer_read(
    request: Request, offer: Offer, settings: Settings, superseded_by_id: str | None
) -> OfferRead:
    """An offer as the API shows it, with its status today and the links to it."""
    return OfferRead.from_offer(
        offer,
        status=offer.effective_status(service.today(settings)),
        base_url=settings.public_base_url,
        pdf_url=settings.public_base_url
        + request.app.url_path_for("offers:pdf", offer_id=offer.id),
        superseded_by_id=superseded_by_id,
    )
