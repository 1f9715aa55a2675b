"""An active API key's name is unique (the audit log and revoke-api-key know a key by it), in
the database too: two admins creating "erp" at the same moment both pass the check before
either commits."""

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from app.auth import service
from app.auth.models import ApiKey


def test_two_keys_of_one_name_created_at_the_same_moment_leave_one(
    committed: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Session(committed) as session:
        service.create_api_key(session, "erp", actor="staff:ana@example.com")
    # The second admin's check ran before the first one's commit: it found no "erp".
    monkeypatch.setattr(service, "name_in_use", lambda *_: None)

    with Session(committed) as session, pytest.raises(service.KeyNameTaken):
        service.create_api_key(session, "erp", actor="staff:ben@example.com")

    with Session(committed) as session:
        names = session.exec(select(ApiKey.name).where(col(ApiKey.revoked_at).is_(None))).all()
        revoked = session.exec(select(ApiKey).where(ApiKey.name == "erp")).one()
        service.revoke_api_key(session, revoked.id or 0, actor="tests")
    assert names == ["erp"]
    with Session(committed) as session:  # once revoked, the name is free again
        service.create_api_key(session, "erp", actor="staff:ben@example.com")


def test_a_name_that_differs_only_by_capitals_is_taken(
    committed: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Session(committed) as session:
        service.create_api_key(session, "CRM", actor="staff:ana@example.com")

    with Session(committed) as session, pytest.raises(service.KeyNameTaken, match="'CRM'"):
        service.create_api_key(session, "crm", actor="staff:ben@example.com")
    # Held by the database too, for two admins who both found the name free.
    monkeypatch.setattr(service, "name_in_use", lambda *_: None)
    with Session(committed) as session, pytest.raises(service.KeyNameTaken):
        service.create_api_key(session, " Crm ", actor="staff:ben@example.com")

    with Session(committed) as session:
        found = service.find_active_key(session, "crm")
        names = session.exec(select(ApiKey.name).where(col(ApiKey.revoked_at).is_(None))).all()
    assert found.name == "CRM" and names == ["CRM"]
