"""Campaign code routing through GET /c/{slug}: first-match-wins across rule kinds, A/B splits
sticky for the day and drawn afresh the next, and Thompson sampling fed by the conversions in
the database, with the routing table's cache of arm statistics."""

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from app.analytics import codes, conversions
from app.analytics.models import Campaign, Placement
from app.analytics.routing import ArmStats
from app.analytics.schemas import ConversionCreate
from app.db import utcnow
from app.tracking import scans as tracking_scans
from app.tracking.models import ScanEvent
from tests.analytics.test_attribution import _scan
from tests.analytics.test_codes import ANDROID, IPHONE, _base, _go
from tests.conftest import TEST_DATABASE_URL
from tests.factories import make_campaign, make_creative, make_placement
from tests.plans import analyze, assert_reads_at_most, bulk_insert, captured
from tests.scanlogs import ScanOrigin

# Monday 23 Nov 2026, 08:00 UTC: 09:00 in Berlin, the configured zone.
MONDAY_MORNING = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
RULE_OF_KIND: dict[str, dict[str, Any]] = {
    "os": {"when": {"os": ["ios"]}, "destinations": [{"url": "https://x.example/os"}]},
    "language": {"when": {"languages": ["de"]}, "destinations": [{"url": "https://x.example/de"}]},
    "time": {
        "when": {"time_from": "08:00", "time_to": "12:00", "weekdays": [1]},
        "destinations": [{"url": "https://x.example/time"}],
    },
    "date": {
        "when": {"date_from": "2026-11-20", "date_to": "2026-11-30"},
        "destinations": [{"url": "https://x.example/date"}],
    },
    "split": {
        "destinations": [{"url": "https://x.example/split-a"}, {"url": "https://x.example/split-b"}]
    },
}
KINDS = list(RULE_OF_KIND)


@pytest.fixture
def campaign(session: Session) -> Campaign:
    return make_campaign(session, name="Winter Fair 2026", utm_source="print")


def _place(session: Session, campaign: Campaign, **data: Any) -> Placement:
    assert campaign.id is not None
    return make_placement(session, campaign.id, **data)


class Clock:
    """The wall clock of routing and of the visitor keys, set by the test."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, now: datetime) -> None:
        self.now = now
        monkeypatch.setattr(codes, "utcnow", lambda: self.now)
        monkeypatch.setattr(tracking_scans, "utcnow", lambda: self.now)


def _targets(kind: str) -> set[str]:
    return {d["url"] for d in RULE_OF_KIND[kind]["destinations"]}


def _visit(client: TestClient, slug: str, failing: str | None = None) -> str:
    """A visitor every rule matches, or one that fails only the rule of kind ``failing``."""
    ua = ANDROID if failing == "os" else IPHONE
    language = "fr" if failing == "language" else "de-DE, en;q=0.5"
    return _base(_go(client, slug, ua, **{"Accept-Language": language}))


@pytest.mark.parametrize("first", range(len(KINDS)))
def test_the_first_matching_rule_wins_in_the_configured_order(
    api: TestClient,
    session: Session,
    campaign: Campaign,
    monkeypatch: pytest.MonkeyPatch,
    first: int,
) -> None:
    order = KINDS[first:] + KINDS[:first]  # every kind takes its turn at the top
    clock = Clock(monkeypatch, MONDAY_MORNING)
    placement = _place(session, campaign, rules=[RULE_OF_KIND[k] for k in KINDS])
    response = api.patch(
        f"/api/v1/placements/{placement.id}", json={"rules": [RULE_OF_KIND[k] for k in order]}
    )
    assert response.status_code == 200, response.text
    # All five rules match this visitor: the first one in the new order decides.
    assert _visit(api, placement.slug) in _targets(order[0])
    # A visitor the first rule does not match gets the next rule's destination.
    if order[0] == "split":
        return  # no conditions: the split always matches
    if order[0] == "time":
        clock.now = MONDAY_MORNING + timedelta(hours=4)  # 13:00 in Berlin
    if order[0] == "date":
        clock.now = MONDAY_MORNING + timedelta(days=14)  # Monday 7 Dec
    assert _visit(api, placement.slug, failing=order[0]) in _targets(order[1])


def test_reordering_the_rules_changes_where_a_visitor_goes(
    api: TestClient, session: Session, campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    Clock(monkeypatch, MONDAY_MORNING)
    os_rule, language_rule = RULE_OF_KIND["os"], RULE_OF_KIND["language"]
    placement = _place(session, campaign, rules=[os_rule, language_rule])
    assert _visit(api, placement.slug) == "https://x.example/os"
    api.patch(f"/api/v1/placements/{placement.id}", json={"rules": [language_rule, os_rule]})
    assert _visit(api, placement.slug) == "https://x.example/de"


def _even_split(session: Session, campaign: Campaign) -> Placement:
    rule = {"destinations": [{"url": "https://x.example/a"}, {"url": "https://x.example/b"}]}
    return _place(session, campaign, rules=[rule])


def test_a_split_is_sticky_all_day_and_drawn_afresh_the_next(
    client: TestClient, session: Session, campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    placement = _even_split(session, campaign)
    clock = Clock(monkeypatch, datetime(2026, 11, 23, 0, 5, tzinfo=UTC))
    destinations = []
    for day in range(30):
        start = datetime(2026, 11, 23, 0, 5, tzinfo=UTC) + timedelta(days=day)
        seen = set()
        for minutes in (0, 1, 60 * 12, 60 * 23 + 50):  # from 00:05 to 23:55 UTC
            clock.now = start + timedelta(minutes=minutes)
            seen.add(_base(_go(client, placement.slug, IPHONE)))
        assert len(seen) == 1, (day, seen)  # the same destination all day
        destinations.append(seen.pop())
    # A fresh draw each day: with a 50/50 split, 30 days on one side has odds of 2 in 10^9.
    assert set(destinations) == {"https://x.example/a", "https://x.example/b"}
    hashes = session.scalars(
        select(col(ScanEvent.visitor_hash)).where(col(ScanEvent.placement_id) == placement.id)
    )
    assert len(set(hashes)) == 30  # one visitor hash per day: the key rotated daily


def _thompson(session: Session, campaign: Campaign) -> tuple[Placement, int, int]:
    assert campaign.id is not None
    good = make_creative(session, campaign.id, name="Good").id
    bad = make_creative(session, campaign.id, name="Bad").id
    assert good is not None and bad is not None
    rule = {
        "destinations": [
            {"url": "https://x.example/bad", "creative_id": bad},
            {"url": "https://x.example/good", "creative_id": good},
        ]
    }
    placement = _place(session, campaign, split_mode="thompson", rules=[rule])
    return placement, good, bad


def _seen_and_converted(
    session: Session,
    placement: Placement,
    creative: int,
    *,
    visitors: int,
    converted: int,
    who: str = "seen",
) -> None:
    """Scans by ``visitors`` people at the placement with this creative; ``converted`` of
    them bought something (an external conversion naming their scan)."""
    dims: ScanOrigin = {
        "campaign_id": placement.campaign_id,
        "placement_id": placement.id,
        "creative_id": creative,
    }
    for i in range(visitors):
        scan_id = _scan(session, utcnow(), f"{who}-{creative}-{i}", **dims)
        if i < converted:
            data = ConversionCreate(
                external_key=f"{who}-{creative}-{i}",
                scan_id=scan_id,
                type="purchase",
                value=Decimal("20.00"),
                currency="EUR",
            )
            conversions.record_external(session, data)


def _traffic(client: TestClient, slug: str, visitors: range) -> Counter[str]:
    return Counter(_base(_go(client, slug, f"{IPHONE} visitor/{i}")) for i in visitors)


def test_thompson_sampling_sends_most_visitors_to_the_better_converter(
    client: TestClient, session: Session, campaign: Campaign
) -> None:
    placement, good, bad = _thompson(session, campaign)
    _seen_and_converted(session, placement, good, visitors=60, converted=24)
    _seen_and_converted(session, placement, bad, visitors=60, converted=1)
    arms = codes.load_arm_stats(session, [placement.id or 0])
    assert arms[placement.id or 0] == {
        good: ArmStats(conversions=24, visitors=60),
        bad: ArmStats(conversions=1, visitors=60),
    }
    seen = _traffic(client, placement.slug, range(200))
    assert seen["https://x.example/good"] >= 190, seen


def test_arm_statistics_are_reloaded_once_their_cache_expires(
    client: TestClient, session: Session, campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks = SimpleNamespace(now=1000.0)
    monkeypatch.setattr(codes, "time", SimpleNamespace(monotonic=lambda: ticks.now))
    placement, good, bad = _thompson(session, campaign)
    _seen_and_converted(session, placement, good, visitors=40, converted=0)
    _seen_and_converted(session, placement, bad, visitors=40, converted=0)
    before = _traffic(client, placement.slug, range(0, 200))
    assert 60 < before["https://x.example/good"] < 140, before  # no conversions: about even
    # Good's visitors start buying.
    _seen_and_converted(session, placement, good, visitors=16, converted=16, who="buyer")
    # Rules are reloaded after RULES_TTL_SECONDS, the arm statistics only after
    # STATS_TTL_SECONDS: until then the split stays as it was.
    ticks.now += codes.RULES_TTL_SECONDS + 1
    cached = _traffic(client, placement.slug, range(200, 400))
    assert 60 < cached["https://x.example/good"] < 140, cached
    ticks.now += codes.STATS_TTL_SECONDS
    after = _traffic(client, placement.slug, range(400, 600))
    assert after["https://x.example/good"] >= 180, after


@pytest.mark.skipif(not TEST_DATABASE_URL.startswith("postgresql"), reason="PostgreSQL's planner")
def test_the_arm_statistics_read_the_last_30_days_not_every_day_and_conversion(
    session: Session, campaign: Campaign
) -> None:
    """Every process reloads a Thompson code's statistics every minute. With a lower bound
    alone and no statistics for a table, PostgreSQL read every daily total and every
    conversion there ever was."""
    placement, good, _ = _thompson(session, campaign)
    connection = session.connection()
    now, long_ago = utcnow(), utcnow() - timedelta(days=700)
    day_total = {
        "campaign_id": ":campaign",
        "placement_id": ":placement",
        "channel": "'qr'",
        "device_class": "'mobile'",
        "scans": "1",
    }
    dims = {"campaign": campaign.id, "placement": placement.id}
    old = {"day": ":day", "creative_id": "n", "visitors": "1"}  # one row per creative id
    bulk_insert(
        connection, "campaign_day_total", 20_000, day_total | old, day=long_ago.date(), **dims
    )
    recent = {"day": ":day", "creative_id": ":creative", "visitors": "7"}
    bulk_insert(
        connection,
        "campaign_day_total",
        1,
        day_total | recent,
        day=now.date(),
        creative=good,
        **dims,
    )
    conversion = {
        "external_key": ":prefix || n",
        "body_hash": "''",
        "type": "'purchase'",
        "value": "20",
        "currency": "'EUR'",
        "channel": "''",
        "occurred_at": ":at",
        "created_at": ":at",
        "last_placement_id": ":placement",
        "last_creative_id": ":creative",
    }
    bulk_insert(
        connection,
        "conversion",
        20_000,
        conversion,
        prefix="old",
        at=long_ago,
        placement=placement.id,
        creative=good,
    )
    bulk_insert(
        connection,
        "conversion",
        2,
        conversion,
        prefix="new",
        at=now,
        placement=placement.id,
        creative=good,
    )

    with captured(connection.engine) as statements:
        arms = codes.load_arm_stats(session, [placement.id or 0])

    assert arms[placement.id or 0] == {good: ArmStats(conversions=2, visitors=7)}
    for table in ("campaign_day_total", "conversion"):
        assert_reads_at_most(connection, statements, table, 1_000)  # 20,001 and 20,002 before
        analyze(connection, table)
        assert_reads_at_most(connection, statements, table, 1_000)
