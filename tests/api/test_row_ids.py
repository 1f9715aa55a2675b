"""A row id no row can have is a clear 422, not a database error (found by schemathesis)."""

import pytest
from fastapi.testclient import TestClient


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/placements/1560931461949276651815698432/qr.svg?size_mm=30",
        "/api/v1/campaigns/2147483648",
        "/api/v1/webhooks/0",
    ],
)
def test_an_impossible_id_is_refused_with_its_place(api: TestClient, path: str) -> None:
    response = api.get(path)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "path"


def test_an_impossible_campaign_on_an_offer_is_refused(api: TestClient) -> None:
    from tests.factories import offer_data

    response = api.post("/api/v1/offers", json=offer_data(campaign_id=2**40))

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "campaign_id"]
