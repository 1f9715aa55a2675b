"""Issue 14.12: spellings people produce from other keyboards, PDFs and mails are understood."""

from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.config import Settings
from app.tracking.codes import InvalidCode, parse_tracking_code
from app.tracking.models import CodeForm
from tests.factories import make_offer


@pytest.mark.parametrize(
    "spelling",
    [
        "０１Ｈ０Ｗ－ＡＲＹ２Ｗ",  # full-width, as an East Asian keyboard types it
        "０１ｈ０ｗａｒｙ２ｗ",
        "01H0W\u200bARY2W",  # zero-width space
        "01H0W\u00adARY2W",  # soft hyphen
        "\ufeff01H0WARY2W",  # byte-order mark
        "01H0W\u2060ARY2W\u200d",  # word joiner, zero-width joiner
    ],
)
def test_full_width_and_invisible_characters_are_understood(spelling: str) -> None:
    code = parse_tracking_code(spelling)

    assert code.value == "01H0WARY2W"
    assert code.form == CodeForm.SHORT


def test_folding_does_not_let_other_characters_through() -> None:
    with pytest.raises(InvalidCode, match="'U'"):
        parse_tracking_code("０１Ｈ０ＷＡＲＹＵＷ")


def test_the_page_opens_for_a_full_width_code_with_a_soft_hyphen(
    client: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True)
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in offer.id)
    typed = full_width[:5] + "\u00ad" + full_width[5:]

    page = client.get("/lookup", params={"code": typed}, follow_redirects=False)

    assert page.status_code == 303
    assert page.headers["location"].startswith(f"/{offer.id}")


def test_the_page_opens_at_a_path_with_full_width_digits_and_a_zero_width_space(
    client: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True)
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in offer.id)
    typed = full_width[:4] + "\u200b" + full_width[4:]

    page = client.get(f"/{quote(typed)}", follow_redirects=False)

    assert page.status_code == 200
    assert offer.id in page.text or offer.tracking_id in page.text
