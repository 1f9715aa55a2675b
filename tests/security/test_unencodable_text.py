"""Issue 14.6: text that cannot be encoded (a lone UTF-16 surrogate) gets a 422 naming the
field, in every JSON field of the API, never a 500."""

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session

from app.config import Settings
from app.tracking import service as tracking_service
from tests.factories import make_campaign, make_offer, make_placement, offer_data

Path = tuple[str | int, ...]
# Any text, lone surrogates included (hypothesis leaves them out unless asked), and the
# spellings that broke the API before, so every run tries them.
TEXT = st.one_of(
    st.sampled_from(["\ud800", "Acme \udfff GmbH", "\udbff\udbff"]),
    st.text(st.characters(exclude_categories=()), max_size=30),
)


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    schema: str


OPERATIONS = [
    Operation("POST", "/api/v1/offers", "OfferCreate"),
    Operation("PATCH", "/api/v1/offers/{draft}", "OfferUpdate"),
    Operation("POST", "/api/v1/orders/{order}/updates", "StageUpdateCreate"),
    Operation("POST", "/api/v1/campaigns", "CampaignCreate"),
    Operation("PATCH", "/api/v1/campaigns/{campaign}", "CampaignUpdate"),
    Operation("POST", "/api/v1/campaigns/{campaign}/creatives", "CreativeCreate"),
    Operation("POST", "/api/v1/campaigns/{campaign}/placements", "PlacementCreate"),
    Operation("PATCH", "/api/v1/placements/{placement}", "PlacementUpdate"),
    Operation("POST", "/api/v1/conversions", "ConversionCreate"),
    Operation("POST", "/api/v1/webhooks", "WebhookEndpointCreate"),
    Operation("PATCH", "/api/v1/webhooks/{webhook}", "WebhookEndpointUpdate"),
]


def _schemas(app: FastAPI) -> dict[str, Any]:
    return dict(app.openapi()["components"]["schemas"])


def _field_paths(schema: dict[str, Any], schemas: dict[str, Any], path: Path = ()) -> list[Path]:
    """Every field of a request body, nested objects and the first item of lists included."""
    if "$ref" in schema:
        return _field_paths(schemas[schema["$ref"].rsplit("/", 1)[1]], schemas, path)
    for alternative in schema.get("anyOf", []):
        if alternative.get("type") != "null":
            found = _field_paths(alternative, schemas, path)
            if found != [path]:
                return found
    if schema.get("type") == "array" and "items" in schema:
        return _field_paths(schema["items"], schemas, (*path, 0))
    if "properties" in schema:
        return [
            field
            for name, child in schema["properties"].items()
            for field in _field_paths(child, schemas, (*path, name))
        ]
    return [path]


def _all_fields() -> list[tuple[Operation, Path]]:
    from app.main import create_app

    schemas = _schemas(create_app())
    return [
        (operation, field)
        for operation in OPERATIONS
        for field in _field_paths(schemas[operation.schema], schemas)
    ]


FIELDS = _all_fields()


def _with(body: Any, path: Path, value: str) -> Any:
    """``body`` with ``value`` at ``path``, creating what is missing on the way."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(head, int):
        items = list(body) if isinstance(body, list) and body else [{}]
        items[0] = _with(items[0], rest, value)
        return items
    copy = dict(body) if isinstance(body, dict) else {}
    copy[head] = _with(copy.get(head, {}), rest, value)
    return copy


@pytest.fixture
def world(session: Session, settings: Settings, api: TestClient) -> dict[str, Any]:
    draft = make_offer(session, settings)
    issued = make_offer(session, settings, issued=True)
    order = tracking_service.activate_offer(session, issued.id, actor="tests", settings=settings)
    campaign = make_campaign(session)
    assert campaign.id is not None
    placement = make_placement(session, campaign.id)
    hook = api.post(
        "/api/v1/webhooks",
        json={"url": "https://hooks.example.com/x", "event_types": ["scan.created"]},
    ).json()
    ids = {
        "draft": draft.id,
        "order": order.id,
        "campaign": campaign.id,
        "placement": placement.id,
        "webhook": hook["id"],
    }
    bodies = {
        "OfferCreate": offer_data(),
        "StageUpdateCreate": {"stage": "confirmed"},
        "CampaignCreate": {"name": "Autumn"},
        "CreativeCreate": {"name": "Red poster"},
        "PlacementCreate": {"name": "Hall 2", "fallback_url": "https://shop.example.com/a"},
        "ConversionCreate": {
            "external_key": "k-1",
            "type": "order",
            "currency": "EUR",
            "code": issued.id,
        },
        "WebhookEndpointCreate": {
            "url": "https://hooks.example.com/y",
            "event_types": ["scan.created"],
        },
    }
    return {"ids": ids, "bodies": bodies}


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@pytest.mark.parametrize(
    ("operation", "field"),
    FIELDS,
    ids=[f"{o.method} {o.schema} {'.'.join(map(str, f))}" for o, f in FIELDS],
)
@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=TEXT)
def test_any_text_in_any_json_field_is_never_a_server_error(
    api: TestClient, world: dict[str, Any], operation: Operation, field: Path, text: str
) -> None:
    body = _with(world["bodies"].get(operation.schema, {}), field, text)
    url = operation.path.format(**world["ids"])
    # json.dumps escapes what UTF-8 cannot carry (\ud800), as a client's JSON library would.
    response = api.request(
        operation.method,
        url,
        content=json.dumps(body),
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code < 500, response.text
    if not _encodable(text):
        assert response.status_code == 422
        locations = [error["loc"] for error in response.json()["detail"]]
        assert ["body", *field] in locations


def test_the_reported_body_gets_a_422_naming_the_field(api: TestClient) -> None:
    body = offer_data(company="\ud800")

    response = api.post(
        "/api/v1/offers", content=json.dumps(body), headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "customer", "company"]
    assert "surrogate" in response.json()["detail"][0]["msg"]


def test_a_surrogate_in_a_key_is_named_too(api: TestClient) -> None:
    response = api.post(
        "/api/v1/campaigns",
        content='{"name": "x", "\\ud800": 1}',
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "\\ud800"]


@pytest.mark.parametrize("raw", ["%ED%A0%80", "%FF%FE", "%C3"])
def test_undecodable_form_fields_are_never_a_server_error(
    client: TestClient, session: Session, settings: Settings, raw: str
) -> None:
    offer = make_offer(session, settings, issued=True)
    page = client.get(f"/{offer.id}")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert page.status_code == 200 and token
    form = {"Content-Type": "application/x-www-form-urlencoded"}

    declined = client.post(
        f"/{offer.id}/decline", content=f"csrf_token={token[1]}&reason={raw}", headers=form
    )
    login = client.post("/admin/login", content=f"email={raw}&password={raw}", headers=form)

    assert declined.status_code < 500 and login.status_code < 500


def test_a_nul_in_json_text_is_a_422_naming_the_field(api: TestClient) -> None:
    # PostgreSQL's text cannot hold NUL: stored, it was a 500 there.
    response = api.post(
        "/api/v1/campaigns",
        content='{"name": "Autumn\\u0000"}',
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "name"]


def test_a_nul_typed_into_a_form_is_dropped(
    client: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True)
    page = client.get(f"/{offer.id}")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token

    declined = client.post(
        f"/{offer.id}/decline",
        content=f"csrf_token={token[1]}&reason=too%00expensive",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )

    assert declined.status_code == 303
    session.refresh(offer)
    assert offer.declined_reason == "tooexpensive"
