"""Dynamic campaign codes: each routing rule, their order, UTM merging, sticky A/B splits,
scan events, and redirects that keep working while the database is down."""

from collections import Counter
from contextlib import nullcontext
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select
from sqlmodel import Session, col

from app.analytics import codes, scanfeed
from app.analytics.models import Campaign, Placement
from app.analytics.router import session_scope
from app.analytics.routing import Target, with_utm
from app.config import Settings, get_settings
from app.tracking.dependencies import get_scan_log
from app.tracking.models import ScanEvent
from tests.factories import make_campaign, make_creative, make_placement
from tests.scanlogs import SessionScanLog

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Mobile Safari/537.36"
)
DESKTOP = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Safari/537.36"
)


@pytest.fixture
def campaign(session: Session) -> Campaign:
    return make_campaign(session, name="Spring Fair 2026", utm_source="print")


def _code(
    session: Session, campaign: Campaign, rules: list[dict[str, Any]], **extra: Any
) -> Placement:
    assert campaign.id is not None
    return make_placement(session, campaign.id, rules=rules, **extra)


def _go(client: TestClient, slug: str, ua: str = IPHONE, **headers: str) -> str:
    response = client.get(
        f"/c/{slug}", headers={"User-Agent": ua, **headers}, follow_redirects=False
    )
    assert response.status_code == 302, response.text
    return response.headers["location"]


def _base(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _at(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    monkeypatch.setattr(codes, "utcnow", lambda: moment)


def test_fallback_redirects_with_utm_and_no_store(
    client: TestClient, session: Session, campaign: Campaign
) -> None:
    placement = _code(session, campaign, [])
    response = client.get(f"/c/{placement.slug}", follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["cache-control"] == "no-store"
    location = urlsplit(response.headers["location"])
    assert location.netloc == "shop.example.com" and location.path == "/spring"
    assert parse_qs(location.query) == {
        "utm_source": ["print"],
        "utm_medium": ["qr"],
        "utm_campaign": ["spring-fair-2026"],
    }


def test_utm_merge_keeps_the_destinations_own_parameters(
    client: TestClient, session: Session, campaign: Campaign
) -> None:
    assert campaign.id is not None
    creative = make_creative(session, campaign.id, name="Red Banner")
    placement = _code(
        session,
        campaign,
        [],
        fallback_url="https://shop.example.com/p?utm_source=newsletter&ref=a%2Bb&empty=#top",
        fallback_creative_id=creative.id,
    )
    location = _go(client, placement.slug)
    assert location.startswith("https://shop.example.com/p?utm_source=newsletter&ref=a%2Bb&empty=&")
    assert location.endswith("#top")
    query = parse_qs(urlsplit(location).query, keep_blank_values=True)
    assert query["utm_source"] == ["newsletter"]  # not clobbered
    assert query["utm_content"] == ["red-banner"]
    assert query["utm_campaign"] == ["spring-fair-2026"]


def test_with_utm_adds_nothing_when_all_are_present() -> None:
    url = "https://x.example/?utm_source=a&utm_medium=b"
    assert with_utm(url, {"utm_source": "s", "utm_medium": "m"}) == url


def test_device_os_rules(client: TestClient, session: Session, campaign: Campaign) -> None:
    placement = _code(
        session,
        campaign,
        [
            {"when": {"os": ["ios"]}, "destinations": [{"url": "https://apps.apple.com/app/1"}]},
            {"when": {"os": ["android"]}, "destinations": [{"url": "https://play.google.com/x"}]},
            {"when": {"os": ["desktop"]}, "destinations": [{"url": "https://shop.example.com/d"}]},
        ],
    )
    assert _base(_go(client, placement.slug, IPHONE)) == "https://apps.apple.com/app/1"
    assert _base(_go(client, placement.slug, ANDROID)) == "https://play.google.com/x"
    assert _base(_go(client, placement.slug, DESKTOP)) == "https://shop.example.com/d"
    assert _base(_go(client, placement.slug, "curl/8.0")) == "https://shop.example.com/spring"


def test_language_rule_uses_the_preferred_language(
    client: TestClient, session: Session, campaign: Campaign
) -> None:
    placement = _code(
        session,
        campaign,
        [
            {"when": {"languages": ["fr"]}, "destinations": [{"url": "https://x.example/fr"}]},
            {"when": {"languages": ["pt-br"]}, "destinations": [{"url": "https://x.example/br"}]},
        ],
    )
    assert _base(_go(client, placement.slug, **{"Accept-Language": "fr-CH, de;q=0.9"})) == (
        "https://x.example/fr"
    )
    # German is preferred over French here, and no rule names German.
    assert _base(_go(client, placement.slug, **{"Accept-Language": "fr;q=0.5, de"})) == (
        "https://shop.example.com/spring"
    )
    assert (
        _base(_go(client, placement.slug, **{"Accept-Language": "pt-BR"})) == "https://x.example/br"
    )
    assert _base(_go(client, placement.slug, **{"Accept-Language": "pt-PT"})) == (
        "https://shop.example.com/spring"
    )


def test_time_window_and_weekdays_in_the_configured_zone(
    client: TestClient,
    session: Session,
    campaign: Campaign,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert settings.timezone == "Europe/Berlin"
    placement = _code(
        session,
        campaign,
        [
            {
                "when": {"time_from": "08:00", "time_to": "12:00", "weekdays": [1, 2, 3, 4, 5]},
                "destinations": [{"url": "https://x.example/morning"}],
            },
            {
                "when": {"time_from": "22:00", "time_to": "06:00"},
                "destinations": [{"url": "https://x.example/night"}],
            },
        ],
    )
    # Monday 23 Nov 2026, 07:30 UTC is 08:30 in Berlin: inside the morning window.
    _at(monkeypatch, datetime(2026, 11, 23, 7, 30, tzinfo=UTC))
    assert _base(_go(client, placement.slug)) == "https://x.example/morning"
    # 06:59 UTC is 07:59 in Berlin: before it.
    _at(monkeypatch, datetime(2026, 11, 23, 6, 59, tzinfo=UTC))
    assert _base(_go(client, placement.slug)) == "https://shop.example.com/spring"
    # Saturday morning: the weekday condition fails.
    _at(monkeypatch, datetime(2026, 11, 28, 8, 0, tzinfo=UTC))
    assert _base(_go(client, placement.slug)) == "https://shop.example.com/spring"
    # 23:30 UTC is 00:30 in Berlin: the window across midnight.
    _at(monkeypatch, datetime(2026, 11, 28, 23, 30, tzinfo=UTC))
    assert _base(_go(client, placement.slug)) == "https://x.example/night"


def test_date_range_rule_and_rule_order(
    client: TestClient, session: Session, campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    placement = _code(
        session,
        campaign,
        [
            {
                "name": "fair days",
                "when": {"date_from": "2026-12-01", "date_to": "2026-12-03"},
                "destinations": [{"url": "https://x.example/fair"}],
            },
            {"when": {"os": ["ios"]}, "destinations": [{"url": "https://x.example/ios"}]},
        ],
    )
    # 1 Dec 00:30 in Berlin is still 30 Nov in UTC: the local date counts.
    _at(monkeypatch, datetime(2026, 11, 30, 23, 30, tzinfo=UTC))
    assert _base(_go(client, placement.slug, IPHONE)) == "https://x.example/fair"  # first wins
    _at(monkeypatch, datetime(2026, 12, 3, 22, 59, tzinfo=UTC))
    assert _base(_go(client, placement.slug, IPHONE)) == "https://x.example/fair"
    _at(monkeypatch, datetime(2026, 12, 3, 23, 0, tzinfo=UTC))  # 4 Dec in Berlin
    assert _base(_go(client, placement.slug, IPHONE)) == "https://x.example/ios"


def _split(session: Session, campaign: Campaign, **extra: Any) -> Placement:
    return _code(
        session,
        campaign,
        [
            {
                "destinations": [
                    {"url": "https://x.example/a", "weight": 3},
                    {"url": "https://x.example/b", "weight": 1},
                ]
            }
        ],
        **extra,
    )


def test_weighted_split_is_sticky_for_a_visitor_and_follows_the_weights(
    client: TestClient, session: Session, campaign: Campaign
) -> None:
    placement = _split(session, campaign)
    first = _go(client, placement.slug, IPHONE)
    assert all(_go(client, placement.slug, IPHONE) == first for _ in range(15))
    seen = Counter(_base(_go(client, placement.slug, f"{IPHONE} visitor/{i}")) for i in range(300))
    share_a = seen["https://x.example/a"] / 300
    assert 0.65 < share_a < 0.85, seen


def test_dnt_visitors_get_no_hash_and_no_stickiness(
    client: TestClient, session: Session, campaign: Campaign
) -> None:
    placement = _split(session, campaign)
    seen = {_base(_go(client, placement.slug, IPHONE, DNT="1")) for _ in range(40)}
    assert seen == {"https://x.example/a", "https://x.example/b"}
    hashes = session.scalars(
        select(col(ScanEvent.visitor_hash)).where(col(ScanEvent.placement_id) == placement.id)
    )
    assert set(hashes) == {None}


def test_each_scan_is_recorded_with_campaign_placement_and_creative(
    client: TestClient, session: Session, campaign: Campaign
) -> None:
    assert campaign.id is not None
    creative = make_creative(session, campaign.id)
    placement = _code(
        session,
        campaign,
        [
            {
                "when": {"os": ["ios"]},
                "destinations": [{"url": "https://x.example/i", "creative_id": creative.id}],
            }
        ],
    )
    _go(client, placement.slug, IPHONE)
    _go(client, placement.slug, "Googlebot/2.1 (+http://www.google.com/bot.html)")
    rows = session.scalars(
        select(ScanEvent)
        .where(col(ScanEvent.placement_id) == placement.id)
        .order_by(col(ScanEvent.id))
    ).all()
    assert [(r.campaign_id, r.creative_id, r.code_form, r.is_bot) for r in rows] == [
        (campaign.id, creative.id, "campaign", False),
        (campaign.id, None, "campaign", True),
    ]
    assert rows[0].offer_id is None and rows[0].channel == "qr" and rows[0].visitor_hash


def test_unknown_code_is_404(client: TestClient) -> None:
    assert client.get("/c/nosuchcode", follow_redirects=False).status_code == 404


def test_changed_rules_apply_at_once(api: TestClient, session: Session, campaign: Campaign) -> None:
    placement = _code(session, campaign, [])
    assert _base(_go(api, placement.slug)) == "https://shop.example.com/spring"
    rules = [{"destinations": [{"url": "https://x.example/new"}]}]
    response = api.patch(f"/api/v1/placements/{placement.id}", json={"rules": rules})
    assert response.status_code == 200, response.text
    assert _base(_go(api, placement.slug)) == "https://x.example/new"


def test_redirects_keep_working_from_the_last_rules_while_the_database_is_down(
    client: TestClient,
    session: Session,
    campaign: Campaign,
    caplog: pytest.LogCaptureFixture,
) -> None:
    placement = _code(
        session,
        campaign,
        [{"when": {"os": ["ios"]}, "destinations": [{"url": "https://x.example/i"}]}],
    )
    assert _base(_go(client, placement.slug)) == "https://x.example/i"  # loads the table
    dead = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", pool_pre_ping=False)
    client.app.state.routing_table.invalidate()  # type: ignore[attr-defined]
    dead_session = Session(dead)
    overrides = client.app.dependency_overrides  # type: ignore[attr-defined]
    overrides[session_scope] = lambda: lambda: nullcontext(dead_session)
    overrides[get_scan_log] = lambda: SessionScanLog(dead_session)  # its commit fails
    assert _base(_go(client, placement.slug)) == "https://x.example/i"
    assert _base(_go(client, placement.slug, DESKTOP)) == "https://shop.example.com/spring"
    messages = [record.getMessage() for record in caplog.records]
    assert any("routing with the rules last loaded" in m for m in messages)
    assert any("not recorded" in m for m in messages)


def test_thompson_sampling_favours_the_better_converter() -> None:
    from app.analytics.models import SplitMode
    from app.analytics.routing import ArmStats, CompiledCode, Rule, Visitor, choose
    from app.analytics.schemas import Conditions

    good, bad = Target("https://x.example/good", 1), Target("https://x.example/bad", 2)
    code = CompiledCode(
        slug="t",
        campaign_id=1,
        placement_id=1,
        utm={},
        rules=(Rule(Conditions(), (bad, good)),),
        fallback=Target("https://x.example/f"),
        split_mode=SplitMode.THOMPSON,
        arms={1: ArmStats(conversions=30, visitors=100), 2: ArmStats(conversions=5, visitors=100)},
    )
    now = datetime(2026, 11, 23, tzinfo=UTC)
    picks = Counter(
        choose(code, Visitor("ios", "", now, f"visitor-{i}")).target.url for i in range(400)
    )
    assert picks["https://x.example/good"] > 390, picks
    same = {choose(code, Visitor("ios", "", now, "v")).target.url for _ in range(20)}
    assert len(same) == 1  # sticky for a visitor
    fresh = CompiledCode(**{**code.__dict__, "arms": {}})
    even = Counter(choose(fresh, Visitor("ios", "", now, f"v{i}")).target.url for i in range(400))
    assert 120 < even["https://x.example/good"] < 280, even  # no data yet: about even


def test_invalid_rules_are_refused_with_field_paths(api: TestClient, campaign: Campaign) -> None:
    response = api.post(
        f"/api/v1/campaigns/{campaign.id}/placements",
        json={
            "name": "Bad",
            "fallback_url": "https://x.example/",
            "rules": [{"when": {"time_from": "08:00"}, "destinations": [{"url": "ftp://x"}]}],
        },
    )
    assert response.status_code == 422
    locs = {tuple(e["loc"]) for e in response.json()["detail"]}
    assert ("body", "rules", 0, "when") in locs
    assert ("body", "rules", 0, "destinations", 0, "url") in locs


def test_campaign_dates_in_the_wrong_order_are_refused_on_ends_on(
    api: TestClient, session: Session
) -> None:
    dates = {"starts_on": "2026-12-20", "ends_on": "2026-12-01"}
    response = api.post("/api/v1/campaigns", json={"name": "Backwards", **dates})
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "ends_on"]]
    assert session.execute(select(Campaign)).first() is None


def test_scans_feed_the_dashboard_rollup(
    api: TestClient, session: Session, campaign: Campaign
) -> None:
    placement = _code(session, campaign, [])
    for _ in range(3):
        _go(api, placement.slug, IPHONE)
    _go(api, placement.slug, ANDROID)
    _go(api, placement.slug, "Googlebot/2.1 (+http://www.google.com/bot.html)")
    scanfeed.derive(session, get_settings().zone)  # the server's feed, after the commits
    response = api.get("/api/v1/analytics/breakdown", params={"by": "placement"})
    assert response.status_code == 200, response.text
    rows = {row["label"]: row for row in response.json()}
    assert (rows[placement.name]["scans"], rows[placement.name]["visitors"]) == (4, 2)
