"""Visitor keys rotate daily and go after 48 hours; proxies are believed only if trusted."""

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import Session, select
from starlette.requests import Request

from app.config import Settings
from app.tracking import scans
from app.tracking.models import VisitorKey
from app.web import client_address


def test_a_new_days_key_deletes_keys_older_than_48_hours(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    day_one = datetime(2026, 11, 20, 8, tzinfo=UTC)
    for offset in range(4):  # four consecutive days, each making its own key
        monkeypatch.setattr(scans, "utcnow", lambda offset=offset: day_one + timedelta(days=offset))
        scans.visitor_keys.forget()
        scans.visitor_keys.today(session)

    kept = sorted(key.day.isoformat() for key in session.exec(select(VisitorKey)).all())
    assert kept == ["2026-11-22", "2026-11-23"]


def test_purge_deletes_old_keys_on_days_without_scans(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    session.add(VisitorKey(day=date(2026, 11, 1), secret="00" * 32, created_at=datetime.now(UTC)))
    session.commit()
    monkeypatch.setattr(scans, "utcnow", lambda: datetime(2026, 11, 3, 0, 30, tzinfo=UTC))

    scans.purge_visitor_keys(session)

    assert session.exec(select(VisitorKey)).all() == []


def test_todays_key_is_reused_within_the_day(session: Session) -> None:
    scans.visitor_keys.forget()
    first = scans.visitor_keys.today(session)
    scans.visitor_keys.forget()

    assert scans.visitor_keys.today(session) == first


def _request(peer: str, forwarded: str | None) -> Request:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return Request({"type": "http", "headers": headers, "client": (peer, 1234)})


def test_forwarded_address_is_believed_only_from_a_trusted_proxy() -> None:
    settings = Settings(trusted_proxies=["10.0.0.0/8"])

    assert client_address(_request("10.1.2.3", "203.0.113.9"), settings) == "203.0.113.9"
    assert client_address(_request("198.51.100.4", "203.0.113.9"), settings) == "198.51.100.4"
    # a client cannot hide behind a forged first hop: the nearest untrusted hop wins
    assert client_address(_request("10.1.2.3", "1.1.1.1, 203.0.113.9"), settings) == "203.0.113.9"
    assert client_address(_request("10.1.2.3", None), settings) == "10.1.2.3"


def test_without_trusted_proxies_the_header_is_ignored() -> None:
    assert client_address(_request("198.51.100.4", "203.0.113.9"), Settings()) == "198.51.100.4"
