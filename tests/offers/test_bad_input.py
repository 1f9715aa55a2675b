"""Hostile or absurd requests get a clear 4xx, never a 500 and never a half-written offer."""

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import Session, select

from app.config import get_settings
from app.offers.models import Offer
from app.offers.schemas import MAX_LINES
from tests.factories import line_data, make_offer, offer_data

LIMIT = get_settings().max_request_bytes


def offers_count(session: Session) -> int:
    return session.exec(select(func.count()).select_from(Offer)).one()


def test_a_declared_oversized_body_is_refused_before_it_is_read(api: TestClient) -> None:
    response = api.post(
        "/api/v1/offers", content=b" " * (LIMIT + 1), headers={"content-type": "application/json"}
    )

    assert response.status_code == 413
    assert response.json() == {
        "detail": f"The request body is larger than the limit of {LIMIT} bytes."
    }


def test_a_streamed_oversized_body_is_refused_too(api: TestClient, session: Session) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        yield b'{"customer": {"company": "x"}, "notes": "'
        for _ in range(LIMIT // 1024 + 1):
            yield b"x" * 1024
        yield b'"}'

    response = api.post(
        "/api/v1/offers", content=chunks(), headers={"content-type": "application/json"}
    )

    assert response.status_code == 413
    assert "limit" in response.json()["detail"]
    assert offers_count(session) == 0


def test_an_oversized_form_on_the_web_gets_a_page_not_json(client: TestClient) -> None:
    response = client.post(
        "/01H0WARY2WHGGRF3K72D299T3T/decline",
        content=b"reason=" + b"x" * LIMIT,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code == 413
    assert "larger than the limit" in response.text
    assert not response.headers["content-type"].startswith("application/json")


def test_json_nested_too_deeply_to_parse_is_a_400_that_says_so(api: TestClient) -> None:
    body = '{"customer": {"company": "x"}, "notes": ' + "[" * 100_000 + "]" * 100_000 + "}"

    response = api.post(
        "/api/v1/offers", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 400
    assert response.json() == {"detail": "The JSON body is nested too deeply to be read."}


def test_deep_json_where_a_string_belongs_is_a_422_on_that_field(api: TestClient) -> None:
    body = '{"customer": {"company": "x"}, "notes": ' + "[" * 500 + "]" * 500 + "}"

    response = api.post(
        "/api/v1/offers", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "notes"]


def test_more_lines_than_an_offer_may_have(api: TestClient, session: Session) -> None:
    response = api.post("/api/v1/offers", json=offer_data(lines=[line_data()] * (MAX_LINES + 1)))

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "lines"]
    assert offers_count(session) == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("quantity", "1e20"),
        ("quantity", "NaN"),
        ("quantity", "Infinity"),
        ("quantity", "0"),
        ("quantity", "0.0001"),
        ("unit_price", "1e30"),
        ("unit_price", "-1"),
        ("unit_price", "sNaN"),
        ("vat_rate", "101"),
        ("discount_percent", "-5"),
    ],
)
def test_absurd_numbers_are_refused_on_their_field(
    api: TestClient, session: Session, field: str, value: str
) -> None:
    response = api.post("/api/v1/offers", json=offer_data(lines=[line_data(**{field: value})]))

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "lines", 0, field]
    assert offers_count(session) == 0


def test_a_line_worth_a_trillion_is_refused(api: TestClient) -> None:
    line = line_data(quantity="999999999.999", unit_price="9999999999.9999")

    response = api.post("/api/v1/offers", json=offer_data(lines=[line]))

    assert response.status_code == 422
    error = response.json()["detail"][0]
    assert error["loc"] == ["body", "lines", 0]
    assert "below 1,000,000,000,000" in error["msg"]


def test_an_offer_totalling_a_trillion_is_refused(api: TestClient, session: Session) -> None:
    line = line_data(quantity="1000", unit_price="9000000", vat_rate="20")  # 10.8 bn gross each
    offer = make_offer(session, get_settings())

    created = api.post("/api/v1/offers", json=offer_data(lines=[line] * 100))
    updated = api.patch(f"/api/v1/offers/{offer.id}", json={"lines": [line] * 100})

    for response in (created, updated):
        assert response.status_code == 422
        assert "offer's total must stay below" in response.json()["detail"][0]["msg"]
    assert api.post("/api/v1/offers", json=offer_data(lines=[line] * 90)).status_code == 201


def test_a_pathological_pdf_hits_its_time_limit_and_the_server_carries_on(
    api: TestClient, session: Session, app: FastAPI
) -> None:
    long_text = "Ä" * 490 + " wrap"
    lines = [line_data(description=long_text, unit="pcs") for _ in range(MAX_LINES)]
    huge = make_offer(session, get_settings(), lines=lines, notes="N " * 9000)
    small = make_offer(session, get_settings())
    renderer = app.state.pdf_renderer
    original, renderer.timeout = renderer.timeout, 0.3
    try:
        response = api.get(f"/api/v1/offers/{huge.id}/pdf")
    finally:
        renderer.timeout = original

    assert response.status_code == 503
    assert "longer than 0.3 seconds" in response.json()["detail"]
    assert api.get("/healthz").status_code == 200
    after = api.get(f"/api/v1/offers/{small.id}/pdf")  # on the renderer's fresh pool
    assert after.status_code == 200 and after.content.startswith(b"%PDF")


def test_a_repeated_query_parameter_is_refused_not_guessed(api: TestClient) -> None:
    response = api.get("/api/v1/offers?status=draft&status=issued")

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "status"]
    assert "more than once" in response.json()["detail"][0]["msg"]


@pytest.mark.parametrize("value", ["0.5", "1700000000", "7.8e-241", "yesterday"])
def test_a_number_is_not_taken_for_a_date(api: TestClient, value: str) -> None:
    response = api.get("/api/v1/offers", params={"created_from": value})

    assert response.status_code == 422
    assert "ISO 8601" in response.json()["detail"][0]["msg"]


def test_a_date_without_a_zone_filters_in_utc(api: TestClient, session: Session) -> None:
    make_offer(session, get_settings())

    since = api.get("/api/v1/offers", params={"created_from": "2000-01-01T00:00:00"})
    until = api.get("/api/v1/offers", params={"created_to": "2000-01-01"})

    assert since.status_code == 200 and since.json()["total"] == 1
    assert until.status_code == 200 and until.json()["total"] == 0


def test_options_on_an_api_path_lists_every_method_it_has(api: TestClient) -> None:
    response = api.options("/api/v1/offers")

    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"


def test_limits_hold_for_text_as_sent_and_spaces_are_trimmed_after(api: TestClient) -> None:
    too_long = api.post("/api/v1/offers", json=offer_data(company=" " + "A" * 200))
    blank = api.post("/api/v1/offers", json=offer_data(company="   "))
    padded = api.post("/api/v1/offers", json=offer_data(company="  Acme SA \n", currency="eur"))

    assert too_long.status_code == 422
    assert too_long.json()["detail"][0]["loc"] == ["body", "customer", "company"]
    assert blank.status_code == 422
    assert padded.status_code == 201
    assert padded.json()["customer"]["company"] == "Acme SA"
    assert padded.json()["currency"] == "EUR"


@pytest.mark.parametrize("email", ["maria", "maria@example", "a b@example.com"])
def test_an_email_that_is_none_is_refused(api: TestClient, email: str) -> None:
    data = offer_data()
    data["customer"]["email"] = email

    response = api.post("/api/v1/offers", json=data)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "customer", "email"]
