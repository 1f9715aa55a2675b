"""The PDF endpoints: drafts fresh, issued offers rendered once and served with an ETag."""

from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlmodel import Session, select

from app.config import Settings
from app.offers.models import OfferPdf, OfferStatus
from tests.factories import make_offer


def test_a_draft_renders_fresh_and_is_never_cached(
    api: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings)

    response = api.get(f"/api/v1/offers/{offer.id}/pdf")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert response.headers["Cache-Control"] == "no-store"
    assert "ETag" not in response.headers
    assert session.exec(select(OfferPdf)).all() == []


def test_an_issued_offer_is_rendered_once_then_served_with_its_etag(
    api: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True)

    first = api.get(f"/api/v1/offers/{offer.id}/pdf")
    second = api.get(f"/api/v1/offers/{offer.id}/pdf")
    not_modified = api.get(
        f"/api/v1/offers/{offer.id}/pdf", headers={"If-None-Match": first.headers["ETag"]}
    )

    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert first.headers["ETag"] == second.headers["ETag"]
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    stored = session.exec(select(OfferPdf)).one()
    assert stored.offer_id == offer.id and f'"{stored.etag}"' == first.headers["ETag"]
    assert (
        f'filename="Offer-{offer.tracking_id[:5]}-{offer.tracking_id[5:]}.pdf"'
        in first.headers["Content-Disposition"]
    )


def test_the_public_pdf_needs_the_full_ulid_of_an_issued_offer(
    client: TestClient, session: Session, settings: Settings
) -> None:
    draft = make_offer(session, settings)
    issued = make_offer(session, settings, issued=True)

    assert client.get(f"/{issued.id}/pdf").content.startswith(b"%PDF")
    assert client.get(f"/{draft.id}/pdf").status_code == 404
    assert client.get(f"/{issued.tracking_id}/pdf").status_code == 404
    assert client.get("/01H0WARY2WHGGRF3K72D299T3T/pdf").status_code == 404


@pytest.mark.parametrize(
    ("language", "expected"),
    [("de", "Angebot-{code}.pdf"), ("el", "Προσφορά-{code}.pdf"), ("en", "Offer-{code}.pdf")],
)
def test_the_offer_pages_download_saves_the_pdf_under_the_name_its_mail_attaches(
    client: TestClient, session: Session, settings: Settings, language: str, expected: str
) -> None:
    # A German buyer's "Download PDF" saved offer-01M98-ZARS9.pdf beside the mail's
    # Angebot-01M98-ZARS9.pdf: the same offer under two names, whatever the page's language.
    offer = make_offer(session, settings, issued=True, language=language)
    code = f"{offer.tracking_id[:5]}-{offer.tracking_id[5:]}"

    # Rendered and stored, then from the database, then from this process's memory.
    names = [_saved_name(client.get(f"/{offer.id}/pdf?lang=en")) for _ in range(2)]
    offer.status = OfferStatus.ACCEPTED
    session.add(offer)
    session.commit()
    names += [_saved_name(client.get(f"/{offer.id}/pdf")) for _ in range(2)]

    assert names == [expected.format(code=code)] * 4


def _saved_name(response: Response) -> str:
    """The file name a browser saves the response under (RFC 6266: filename* wins)."""
    assert response.status_code == 200
    disposition = response.headers["Content-Disposition"]
    if "filename*=UTF-8''" in disposition:
        return unquote(disposition.split("filename*=UTF-8''")[1])
    return disposition.split('filename="')[1].rstrip('"')


def test_pdf_of_an_unknown_offer_is_404(api: TestClient) -> None:
    assert api.get("/api/v1/offers/01H0WARY2WHGGRF3K72D299T3T/pdf").status_code == 404


def test_the_memory_of_stored_pdfs_stays_within_its_bound() -> None:
    from app.offers.documents import PdfDocument, _StoredPdfs

    cache = _StoredPdfs(max_bytes=100)
    for n in range(5):
        cache.put(f"offer-{n}", PdfDocument(b"x" * 40, f"{n}.pdf", f"etag-{n}"))

    assert cache.get("offer-0") is None and cache.get("offer-2") is None
    assert cache.get("offer-3") == PdfDocument(b"x" * 40, "3.pdf", "etag-3")
    assert cache.get("offer-4") == PdfDocument(b"x" * 40, "4.pdf", "etag-4")


def test_after_acceptance_the_pdf_is_printed_again_with_it(
    client: TestClient, session: Session, settings: Settings
) -> None:
    import io

    from pypdf import PdfReader

    from app.offers import service

    offer = make_offer(session, settings, issued=True)
    before = client.get(f"/{offer.id}/pdf")
    service.accept_offer(
        session, offer.id, signer_name="Maria Papadopoulou", po_number="PO-77", settings=settings
    )

    after = client.get(f"/{offer.id}/pdf")
    again = client.get(f"/{offer.id}/pdf")

    text = PdfReader(io.BytesIO(after.content)).pages[0].extract_text()
    assert "Accepted" not in PdfReader(io.BytesIO(before.content)).pages[0].extract_text()
    assert "by Maria Papadopoulou" in text and "Purchase order number: PO-77" in text
    # The paper on the buyer's desk no longer asks them to accept what they accepted.
    assert "accept it online" in PdfReader(io.BytesIO(before.content)).pages[0].extract_text()
    assert "accept it online" not in text and "track your order." in text
    assert after.headers["ETag"] != before.headers["ETag"]
    assert again.content == after.content  # stored again, once
