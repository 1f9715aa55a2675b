"""Attribution figures on a known data set, Bayesian estimates, and the reports API."""

import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from math import exp, lgamma
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select
from sqlmodel import Session, col

from app.analytics import attribution, conversions, rollup, scanfeed
from app.analytics.attribution import Period
from app.analytics.schemas import ConversionCreate
from app.analytics.stats import Posterior, beta_cdf, probability_best
from app.config import Settings, get_settings
from app.db import utcnow
from app.offers import service as offers_service
from app.tracking import service as tracking_service
from app.tracking.models import ScanEvent
from tests.factories import make_campaign, make_creative, make_offer, make_placement
from tests.scanlogs import ScanOrigin


def _scan(
    session: Session, at: datetime, visitor: str | None, *, bot: bool = False, **dims: Any
) -> int:
    row = {
        "occurred_at": at,
        "code_form": "campaign",
        "channel": "qr",
        "device_class": "bot" if bot else "mobile",
        "os_family": "iOS",
        "browser_family": "",
        "referrer_host": "",
        "is_bot": bot,
        "visitor_hash": visitor,
        **dims,
    }
    connection = session.connection()
    inserted = insert(ScanEvent).values(**row).returning(col(ScanEvent.id))
    scan_id = connection.execute(inserted).scalar_one()
    assert scan_id is not None
    scanfeed.derive(session, get_settings().zone)  # what the server's scan feed does
    return scan_id


class World:
    """Two placements and two creatives of one campaign, with scans and conversions:

    P1: 7 human scans by 5 visitors (one without a hash), 5 bot scans, one scan too old.
    P2: 4 human scans by 4 visitors.
    Outside the campaign: one human scan (PDF link, desktop) of an offer nobody accepted.
    Devices and channels: all mobile QR scans except h4 (tablet) and h6 (desktop, web link).
    Conversions: A (P1/K1, 100 EUR, 1 h after its scan), B (P2/K1, 50 EUR, 1 day after), and
    an offer first scanned at P1 (K2), last at P2 (K1), worth 3100 EUR, accepted and then
    activated as an order: two conversions of 3100 EUR, 2 h after its first scan.
    Funnel: 4 offers issued (the ordered one, the one scanned by a person, one scanned by a
    bot only, one never scanned), 2 scanned, 1 accepted, 1 ordered; a draft is not counted.
    """

    def __init__(self, session: Session, settings: Settings) -> None:
        campaign = make_campaign(session, name="Known")
        assert campaign.id is not None
        self.campaign = campaign.id
        self.k1 = make_creative(session, campaign.id, name="K1").id
        self.k2 = make_creative(session, campaign.id, name="K2").id
        self.p1 = make_placement(session, campaign.id, name="P1").id
        self.p2 = make_placement(session, campaign.id, name="P2").id
        p1k1: ScanOrigin = {
            "campaign_id": self.campaign,
            "placement_id": self.p1,
            "creative_id": self.k1,
        }
        p1k2: ScanOrigin = {**p1k1, "creative_id": self.k2}
        p2k1: ScanOrigin = {**p1k1, "placement_id": self.p2}
        now = utcnow()  # the offer is accepted "now": its scans are timed from the same clock
        zone = settings.zone
        # 10:00 local three days ago: the campaign's scans (and five minutes later) fall on
        # one local day, whatever the hour the tests run.
        self.day = now.astimezone(zone).date() - timedelta(days=3)
        day = datetime.combine(self.day, time(10), zone).astimezone(UTC)
        self.recent_days = [(now - timedelta(hours=h)).astimezone(zone).date() for h in (2, 1)]
        scan_a = _scan(session, day, "h1", **p1k1)
        for visitor in ("h1", "h2", "h3"):
            _scan(session, day + timedelta(minutes=5), visitor, **p1k1)
        _scan(session, day, "h4", device_class="tablet", **p1k2)
        _scan(session, day, None, **p1k2)
        for _ in range(5):
            _scan(session, day, f"bot{_}", bot=True, **p1k1)
        _scan(session, now - timedelta(days=400), "old", **p1k1)
        scan_b = _scan(session, day, "h5", **p2k1)
        _scan(session, day, "h6", channel="web", device_class="desktop", **p2k1)
        _scan(session, day, "h7", **p2k1)
        offer = make_offer(session, settings, issued=True)
        self.offer = offer.id
        _scan(session, now - timedelta(hours=2), "h8", offer_id=offer.id, **p1k2)
        _scan(session, now - timedelta(hours=1), "h9", offer_id=offer.id, **p2k1)
        self._external(session, "A", scan_a, "100.00", day + timedelta(hours=1))
        self._external(session, "B", scan_b, "50.00", day + timedelta(days=1))
        offers_service.accept_offer(
            session, offer.id, signer_name="X", po_number="", settings=settings
        )
        tracking_service.activate_offer(session, offer.id, actor="tests", settings=settings)
        self._offers_outside_the_campaign(session, settings, day)

    def _offers_outside_the_campaign(
        self, session: Session, settings: Settings, day: datetime
    ) -> None:
        looked_at = make_offer(session, settings, issued=True)
        _scan(session, day, "h10", offer_id=looked_at.id, channel="pdf", device_class="desktop")
        crawled = make_offer(session, settings, issued=True)
        _scan(session, day, "bot-x", bot=True, offer_id=crawled.id)
        make_offer(session, settings, issued=True)  # never scanned
        make_offer(session, settings)  # a draft: not in the funnel

    def _external(self, session: Session, key: str, scan: int, value: str, at: datetime) -> None:
        data = ConversionCreate(
            external_key=key,
            scan_id=scan,
            type="purchase",
            value=Decimal(value),
            currency="EUR",
            occurred_at=at,
        )
        conversions.record_external(session, data)


@pytest.fixture
def world(session: Session, settings: Settings) -> World:
    return World(session, settings)


def _period(settings: Settings, days: int = 30) -> Period:
    today = offers_service.today(settings)
    return Period(today - timedelta(days=days - 1), today, settings.zone)


def _by_id(rows: list[attribution.AttributionRow]) -> dict[Any, attribution.AttributionRow]:
    return {row.id: row for row in rows}


def test_first_and_last_touch_by_placement(
    session: Session, settings: Settings, world: World
) -> None:
    period = _period(settings)
    first = _by_id(attribution.attribution(session, period, "placement", "first_touch"))
    last = _by_id(attribution.attribution(session, period, "placement", "last_touch"))
    p1, p2 = first[world.p1], first[world.p2]
    # First touch at P1: A, and the offer's acceptance and order (first scanned at P1).
    assert (p1.label, p1.scans, p1.visitors, p1.conversions) == ("P1", 7, 5, 3)
    assert p1.revenue == {"EUR": Decimal("6300.00")}
    assert p1.conversion_rate == pytest.approx(3 / 5)
    assert (p2.scans, p2.visitors, p2.conversions, p2.revenue) == (
        4,
        4,
        1,
        {"EUR": Decimal("50.00")},
    )
    assert (last[world.p1].conversions, last[world.p1].revenue) == (1, {"EUR": Decimal("100.00")})
    assert (last[world.p2].conversions, last[world.p2].revenue) == (3, {"EUR": Decimal("6250.00")})


def test_time_to_convert_and_its_distribution(
    session: Session, settings: Settings, world: World
) -> None:
    period = _period(settings)
    first = _by_id(attribution.attribution(session, period, "placement", "first_touch"))
    # P1's first touches: A converted after 1 h, the offer (accepted, ordered) 2 h after its
    # first scan.
    assert first[world.p1].mean_seconds_to_convert == pytest.approx(6000, abs=5)
    assert first[world.p2].median_seconds_to_convert == pytest.approx(86_400, abs=5)
    buckets = dict(attribution.time_to_convert(session, period))
    assert buckets == {
        "under 1 hour": 0,
        "1 to 24 hours": 3,
        "1 to 7 days": 1,
        "7 to 30 days": 0,
        "over 30 days": 0,
    }


def test_by_creative_and_campaign(session: Session, settings: Settings, world: World) -> None:
    period = _period(settings)
    creatives = _by_id(attribution.attribution(session, period, "creative", "last_touch"))
    assert (creatives[world.k1].scans, creatives[world.k1].conversions) == (8, 4)
    assert (creatives[world.k2].scans, creatives[world.k2].conversions) == (3, 0)
    campaigns = _by_id(attribution.attribution(session, period, "campaign", "first_touch"))
    assert campaigns[world.campaign].revenue == {"EUR": Decimal("6350.00")}
    assert campaigns[world.campaign].visitors == 9


def test_bayesian_estimates_per_creative(
    session: Session, settings: Settings, world: World
) -> None:
    rows = _by_id(attribution.attribution(session, _period(settings), "creative", "last_touch"))
    k1, k2 = rows[world.k1], rows[world.k2]
    # K1: 4 conversions among 7 visitors -> Beta(5, 4); K2: 0 among 2 -> Beta(1, 3).
    assert k1.posterior_mean == pytest.approx(5 / 9)
    assert k2.posterior_mean == pytest.approx(1 / 4)
    assert k1.interval_low is not None and k1.interval_high is not None
    assert k1.interval_low < 5 / 9 < k1.interval_high
    assert k1.probability_best is not None and k2.probability_best is not None
    assert k1.probability_best + k2.probability_best == pytest.approx(1.0)
    assert k1.probability_best == pytest.approx(_p_greater(5, 4, 1, 3), abs=0.015)


def _p_greater(a1: int, b1: int, a2: int, b2: int) -> float:
    """P(X > Y) for X ~ Beta(a1, b1), Y ~ Beta(a2, b2), exact for integer a1 (Evan Miller)."""

    def lbeta(a: float, b: float) -> float:
        return lgamma(a) + lgamma(b) - lgamma(a + b)

    return sum(
        exp(lbeta(a2 + i, b2 + b1) - lbeta(1 + i, b1) - lbeta(a2, b2)) / (b1 + i) for i in range(a1)
    )


@pytest.mark.parametrize(("conversions", "visitors"), [(0, 10), (3, 7), (40, 1000), (900, 1000)])
def test_credible_interval_holds_90_percent(conversions: int, visitors: int) -> None:
    posterior = Posterior.of(conversions, visitors)
    low, high = posterior.interval()
    assert _integrated_cdf(low, posterior) == pytest.approx(0.05, abs=1e-4)
    assert _integrated_cdf(high, posterior) == pytest.approx(0.95, abs=1e-4)
    assert beta_cdf(high, posterior.alpha, posterior.beta) == pytest.approx(0.95, abs=1e-9)


def _integrated_cdf(x: float, p: Posterior, steps: int = 20_000) -> float:
    """The Beta CDF by Simpson's rule over the density: independent of the code under test."""
    norm = lgamma(p.alpha + p.beta) - lgamma(p.alpha) - lgamma(p.beta)

    def pdf(t: float) -> float:
        if t <= 0 or t >= 1:
            return 0.0 if (t <= 0 and p.alpha > 1) or (t >= 1 and p.beta > 1) else exp(norm)
        return exp(norm + (p.alpha - 1) * _log(t) + (p.beta - 1) * _log(1 - t))

    h = x / steps
    total = pdf(0) + pdf(x) + sum((4 if i % 2 else 2) * pdf(i * h) for i in range(1, steps))
    return total * h / 3


def _log(value: float) -> float:
    from math import log

    return log(value)


def test_probability_best_is_reproducible_and_ranks_arms() -> None:
    arms = [Posterior.of(10, 100), Posterior.of(20, 100), Posterior.of(12, 100)]
    first, again = probability_best(arms), probability_best(arms)
    assert first == again
    assert first[1] > 0.9 and sum(first) == pytest.approx(1.0)


def test_scans_per_day_uses_local_days_across_a_dst_change(
    session: Session, settings: Settings
) -> None:
    # Berlin leaves summer time on 25 Oct 2026 at 01:00 UTC.
    _scan(session, datetime(2026, 10, 24, 22, 30, tzinfo=UTC), "a")  # 00:30 CEST, 25 Oct
    _scan(session, datetime(2026, 10, 25, 22, 30, tzinfo=UTC), "b")  # 23:30 CET, 25 Oct
    _scan(session, datetime(2026, 10, 25, 23, 30, tzinfo=UTC), "b")  # 00:30 CET, 26 Oct
    _scan(session, datetime(2026, 10, 25, 23, 40, tzinfo=UTC), "c", bot=True)
    period = Period(date(2026, 10, 24), date(2026, 10, 26), settings.zone)
    rows = attribution.scans_per_day(session, period)
    # Visitor "b" (one hash, one UTC day) counts once: on the local day of its first scan.
    assert [(r.day.day, r.scans, r.visitors) for r in rows] == [(24, 0, 0), (25, 2, 2), (26, 1, 0)]


def test_funnel_counts_each_step(session: Session, settings: Settings, world: World) -> None:
    funnel = attribution.funnel(session, _period(settings))
    assert funnel == attribution.Funnel(issued=4, scanned=2, accepted=1, ordered=1)


# Scans and unique visitors of the known data set by each breakdown, in the order shown
# (most scans first): (key, label, scans, visitors).
BREAKDOWNS: dict[str, list[tuple[str, str, int, int]]] = {
    "channel": [("qr", "qr", 10, 8), ("pdf", "pdf", 1, 1), ("web", "web", 1, 1)],
    "device": [
        ("mobile", "mobile", 9, 7),
        ("desktop", "desktop", 2, 2),
        ("tablet", "tablet", 1, 1),
    ],
    "placement": [("P1", "P1", 7, 5), ("P2", "P2", 4, 4), ("", "(none)", 1, 1)],
    "creative": [("K1", "K1", 8, 7), ("K2", "K2", 3, 2), ("", "(none)", 1, 1)],
    "campaign": [("Known", "Known", 11, 9), ("", "(none)", 1, 1)],
}


def _ids(world: World) -> dict[str, str]:
    return {
        "P1": str(world.p1),
        "P2": str(world.p2),
        "K1": str(world.k1),
        "K2": str(world.k2),
        "Known": str(world.campaign),
    }


@pytest.mark.parametrize("by", list(BREAKDOWNS))
def test_breakdown_figures_in_json_and_csv(api: TestClient, world: World, by: str) -> None:
    ids = _ids(world)
    expected = [
        {"key": ids.get(key, key), "label": label, "scans": n, "visitors": v}
        for key, label, n, v in BREAKDOWNS[by]
    ]
    answer = api.get("/api/v1/analytics/breakdown", params={"by": by})
    assert answer.status_code == 200, answer.text
    assert answer.json() == expected
    exported = api.get("/api/v1/analytics/breakdown", params={"by": by, "format": "csv"})
    table = list(csv.reader(io.StringIO(exported.text)))
    assert table[0] == [by, "label", "scans", "unique_visitors"]
    assert table[1:] == [
        [r["key"], r["label"], str(r["scans"]), str(r["visitors"])] for r in expected
    ]


def test_scans_per_day_figures_in_json_and_csv(
    api: TestClient, settings: Settings, world: World
) -> None:
    expected = {world.day: [10, 8]}  # the campaign's scans and h10's, three days ago
    for day in world.recent_days:  # the accepted offer's two scans by h8 and h9
        figures = expected.setdefault(day, [0, 0])
        figures[0], figures[1] = figures[0] + 1, figures[1] + 1
    period = _period(settings)
    rows: list[dict[str, Any]] = [
        {
            "day": d.isoformat(),
            "scans": expected.get(d, [0, 0])[0],
            "visitors": expected.get(d, [0, 0])[1],
        }
        for d in period.days()
    ]
    answer = api.get("/api/v1/analytics/scans-per-day")
    assert answer.status_code == 200, answer.text
    assert answer.json() == rows
    assert sum(r["scans"] for r in rows) == 12 and sum(r["visitors"] for r in rows) == 10
    exported = api.get("/api/v1/analytics/scans-per-day", params={"format": "csv"})
    table = list(csv.reader(io.StringIO(exported.text)))
    assert table[0] == ["day", "scans", "unique_visitors"]
    assert table[1:] == [[r["day"], str(r["scans"]), str(r["visitors"])] for r in rows]


def test_funnel_figures_in_json_and_csv(api: TestClient, world: World) -> None:
    answer = api.get("/api/v1/analytics/funnel")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"issued": 4, "scanned": 2, "accepted": 1, "ordered": 1}
    exported = api.get("/api/v1/analytics/funnel", params={"format": "csv"})
    assert list(csv.reader(io.StringIO(exported.text))) == [
        ["step", "offers"],
        ["issued", "4"],
        ["scanned", "2"],
        ["accepted", "1"],
        ["ordered", "1"],
    ]


def test_time_to_convert_figures_in_json_and_csv(api: TestClient, world: World) -> None:
    # A after 1 h, the offer's acceptance and order 2 h after its first scan, B after a day.
    expected = [
        ("under 1 hour", 0),
        ("1 to 24 hours", 3),
        ("1 to 7 days", 1),
        ("7 to 30 days", 0),
        ("over 30 days", 0),
    ]
    answer = api.get("/api/v1/analytics/time-to-convert")
    assert answer.status_code == 200, answer.text
    assert answer.json() == [{"bucket": b, "conversions": n} for b, n in expected]
    exported = api.get("/api/v1/analytics/time-to-convert", params={"format": "csv"})
    table = list(csv.reader(io.StringIO(exported.text)))
    assert table == [["time_from_first_scan", "conversions"]] + [[b, str(n)] for b, n in expected]


def test_a_range_without_the_data_set_has_zeros(api: TestClient, world: World) -> None:
    params = {"from": "2020-01-01", "to": "2020-01-03"}
    days = api.get("/api/v1/analytics/scans-per-day", params=params).json()
    assert [(d["day"], d["scans"]) for d in days] == [
        ("2020-01-01", 0),
        ("2020-01-02", 0),
        ("2020-01-03", 0),
    ]
    funnel = api.get("/api/v1/analytics/funnel", params=params).json()
    assert funnel == {"issued": 0, "scanned": 0, "accepted": 0, "ordered": 0}


def test_reports_api_json_and_csv(api: TestClient, settings: Settings, world: World) -> None:
    response = api.get(
        "/api/v1/analytics/attribution", params={"by": "placement", "model": "first_touch"}
    )
    assert response.status_code == 200, response.text
    rows = {row["label"]: row for row in response.json()}
    assert rows["P1"]["conversions"] == 3 and rows["P1"]["revenue"] == {"EUR": "6300.00"}

    exported = api.get(
        "/api/v1/analytics/attribution",
        params={"by": "placement", "model": "first_touch", "format": "csv"},
    )
    assert exported.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(exported.text)))
    assert {r["label"]: r["revenue"] for r in table} == {"P1": "EUR 6300.00", "P2": "EUR 50.00"}


def test_event_export_has_no_visitor_hash(api: TestClient, world: World) -> None:
    scans = api.get("/api/v1/analytics/export/scans.csv")
    assert scans.status_code == 200
    table = list(csv.DictReader(io.StringIO(scans.text)))
    assert "visitor_hash" not in table[0]
    assert len(table) == 18  # bots included (flagged), the 400-day-old scan not
    assert sum(r["is_bot"] == "True" for r in table) == 6
    conversions_csv = api.get("/api/v1/analytics/export/conversions.csv")
    assert len(list(csv.DictReader(io.StringIO(conversions_csv.text)))) == 4


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"from": "2026-05-02", "to": "2026-05-01"}, ["query", "from"]),
        ({"from": "2024-01-01", "to": "2026-01-01"}, ["query", "to"]),
        ({"from": "yesterday"}, ["query", "from"]),
        ({"by": "shoe"}, ["query", "by"]),
        ({"model": "linear"}, ["query", "model"]),
    ],
)
def test_bad_ranges_are_422_with_field_paths(
    api: TestClient, params: dict[str, str], loc: list[str]
) -> None:
    response = api.get("/api/v1/analytics/attribution", params={"by": "campaign", **params})
    assert response.status_code == 422
    assert loc in [e["loc"] for e in response.json()["detail"]]


def test_analytics_need_an_api_key(client: TestClient) -> None:
    assert client.get("/api/v1/analytics/funnel").status_code == 401


@pytest.mark.concurrency
def test_rebuild_reproduces_the_rollup_the_writer_kept(committed: Any, settings: Settings) -> None:
    from sqlalchemy import select as sa_select

    from app.analytics.models import CampaignDayTotal

    with Session(committed) as session:
        World(session, settings)
        session.commit()

    def snapshot() -> list[tuple[Any, ...]]:
        with Session(committed) as session:
            rows = session.scalars(sa_select(CampaignDayTotal))
            return sorted(
                (
                    r.day,
                    r.campaign_id,
                    r.placement_id,
                    r.creative_id,
                    r.channel,
                    r.scans,
                    r.visitors,
                )
                for r in rows
            )

    kept = snapshot()
    assert sum(row[5] for row in kept) == 13  # the 400-day-old scan too
    scanfeed.rebuild(committed, settings.zone)
    assert snapshot() == kept


def test_visitor_sightings_are_forgotten_after_48_hours(session: Session) -> None:
    from sqlalchemy import update

    from app.analytics.models import VisitorSeen

    connection = session.connection()
    connection.execute(
        insert(VisitorSeen),
        [{"visitor_hash": h, "seen_at": utcnow()} for h in ("old", "new", "other")],
    )
    connection.execute(
        update(VisitorSeen)
        .where(col(VisitorSeen.visitor_hash) == "old")
        .values(seen_at=utcnow() - timedelta(hours=49))
    )
    rollup.forget_old_sightings(connection)
    remaining = set(session.scalars(select(col(VisitorSeen.visitor_hash))))
    assert remaining == {"new", "other"}
