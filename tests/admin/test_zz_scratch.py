import logging
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.admin.views.orders import StageUpdateAdmin
from app.auth.staff import Role
from tests.admin.conftest import StaffLogin, sign_in


def test_scratch(app: FastAPI, web: TestClient, make_staff: Callable[..., StaffLogin], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    sign_in(web, make_staff(Role.ADMIN))
    visitor = TestClient(app, base_url=str(web.base_url), raise_server_exceptions=False)
    visitor.cookies = web.cookies
    async def boom(self, *a, **k):
        raise RuntimeError("secret detail xyz")
    for cls in StageUpdateAdmin.__subclasses__() + [StageUpdateAdmin]:
        monkeypatch.setattr(cls, "list", boom, raising=False)
    with caplog.at_level(logging.INFO):
        r = visitor.get("/admin/stage-update/list")
    print(r.status_code, r.headers.get("content-type"), r.text[:300])
    print("secret" in r.text, "OfferTrack staff" in r.text)
    for rec in caplog.records:
        print("LOG", rec.name, rec.levelname, rec.getMessage()[:100])
