"""A database as three years of use leave it, for bench/staff_pages.py: 40 sales staff, 60,000
offers of about 10 lines each, 15,000 orders with their stage histories, 3 million scan
events, 200 campaigns, 50,000 audit entries and 5,000 customers at ``--scale 1.0``.

    .venv/bin/python bench/bigdata_seed.py --url postgresql://postgres@127.0.0.1:5432/wt_bigdata
    .venv/bin/python bench/bigdata_seed.py --url sqlite:////tmp/bigdata.db --scale 0.2

The schema comes from the migrations (the database's public schema, or the SQLite file, is
made anew). The small tables go in with one executemany each; the two big ones (offer lines,
scan events) with one INSERT ... SELECT over a counter: generate_series on PostgreSQL, a
recursive CTE on SQLite. Never the ORM a row at a time.

Two rows stand out for the pages that show one thing: HOT_OFFER has a twentieth of all scans,
LONG_ORDER a history of LONG_HISTORY stage updates. ``leaver@example.com`` (sales) owns
LEAVER_SHARE of the offers, for the handover.
"""

import argparse
import os
import random
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._servers import scratch_env  # noqa: E402

PASSWORD = "correct horse battery"
ADMIN = "admin@example.com"
SALES = "sales@example.com"
LEAVER = "leaver@example.com"
LEAVER_SHARE = 1 / 12  # 5,000 of 60,000 offers
LONG_HISTORY = 400
START = datetime(2023, 12, 1, tzinfo=UTC)
DAYS = 3 * 365


@dataclass(frozen=True)
class Size:
    sales: int
    offers: int
    orders: int
    scans: int
    campaigns: int
    audit: int
    customers: int
    lines_per_offer: int = 10

    @classmethod
    def at(cls, scale: float) -> "Size":
        def n(full: int, least: int) -> int:
            return max(least, round(full * scale))

        return cls(
            sales=n(40, 3),
            offers=n(60_000, 60),
            orders=n(15_000, 15),
            scans=n(3_000_000, 300),
            campaigns=n(200, 2),
            audit=n(50_000, 50),
            customers=n(5_000, 5),
        )


def _moment(rng: random.Random) -> datetime:
    return START + timedelta(seconds=rng.randrange(DAYS * 86_400))


def _ulids(count: int, rng: random.Random) -> list[str]:
    """Offer ids as the app makes them (ULIDs, one millisecond each), oldest first."""
    from ulid import ULID

    first = int(START.timestamp() * 1000)
    span = DAYS * 86_400_000
    millis = sorted(rng.sample(range(first, first + span, 7), count))
    return [str(ULID.from_bytes(ms.to_bytes(6, "big") + rng.randbytes(10))) for ms in millis]


def _insert(connection: Any, table: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 10_000):
        connection.execute(table.insert(), rows[start : start + 10_000])


def _staff(connection: Any, size: Size) -> list[int]:
    from sqlalchemy import text
    from sqlmodel import Session

    from app.admin import users
    from app.auth.staff import Role, StaffUser

    with Session(bind=connection) as session:
        for email, role in ((ADMIN, Role.ADMIN), (SALES, Role.SALES), (LEAVER, Role.SALES)):
            users.create_user(session, email, role, PASSWORD, actor="bench")
    hashed = connection.execute(text("SELECT password_hash FROM staff_user")).scalar()
    now = datetime.now(UTC)
    rows = [
        {
            "email": f"sales{n}@example.com",
            "full_name": f"Sales Person {n}",
            "phone": "",
            "role": "sales",
            "password_hash": hashed,
            "is_active": True,
            "created_at": now,
            "updated_at": now,
            "decimal_mark": "point",
            "must_change_password": False,
        }
        for n in range(size.sales - 2)
    ]
    _insert(connection, StaffUser.__table__, rows)  # type: ignore[attr-defined]
    return list(connection.execute(text("SELECT id FROM staff_user ORDER BY id")).scalars())


def _customers(connection: Any, size: Size, rng: random.Random) -> None:
    from app.customers.models import Customer

    cities = ["Athens", "Berlin", "Thessaloniki", "Munich", "Patras", "Hamburg"]
    rows = []
    for n in range(size.customers):
        at = _moment(rng)
        rows.append(
            {
                "company": f"Customer {n:05d} {rng.choice(['GmbH', 'SA', 'AE', 'Ltd'])}",
                "contact_name": f"Contact {n}",
                "email": f"buyer{n}@customer{n}.example.com",
                "phone": "",
                "address_lines": f"Street {n}",
                "postcode": f"{10000 + n}",
                "city": rng.choice(cities),
                "country": "GR",
                "vat_id": "",
                "language": "en",
                "notes": "",
                "created_at": at,
                "updated_at": at,
            }
        )
    _insert(connection, Customer.__table__, rows)  # type: ignore[attr-defined]


def _campaigns(connection: Any, size: Size) -> tuple[list[int], list[tuple[int, int]]]:
    from sqlalchemy import text

    from app.analytics.models import Campaign, Placement

    now = datetime.now(UTC)
    rows = [
        {
            "name": f"Campaign {n:03d}",
            "starts_on": (START + timedelta(days=n * 5)).date(),
            "ends_on": None,
            "utm_source": "offertrack",
            "utm_medium": "qr",
            "utm_campaign": f"campaign-{n}",
            "created_at": now,
            "updated_at": now,
        }
        for n in range(size.campaigns)
    ]
    _insert(connection, Campaign.__table__, rows)  # type: ignore[attr-defined]
    campaigns = list(connection.execute(text("SELECT id FROM campaign ORDER BY id")).scalars())
    places = [
        {
            "campaign_id": campaign,
            "name": f"Store {p}",
            "slug": f"c{campaign}p{p}",
            "fallback_url": "https://www.example.com/",
            "split_mode": "weighted",
            "rules": [],
            "created_at": now,
            "updated_at": now,
        }
        for campaign in campaigns
        for p in range(5)
    ]
    _insert(connection, Placement.__table__, places)  # type: ignore[attr-defined]
    placements = connection.execute(text("SELECT id, campaign_id FROM placement ORDER BY id"))
    return campaigns, [(row[0], row[1]) for row in placements]


def _offers(
    connection: Any,
    size: Size,
    staff: list[int],
    placements: list[tuple[int, int]],
    rng: random.Random,
) -> tuple[list[str], list[str]]:
    """The offers (a quarter of them orders); returns all ids and the orders' ids."""
    from app.offers.models import Offer

    ids = _ulids(size.offers, rng)
    order_every = max(1, size.offers // size.orders)
    leaver = staff[2]
    salespeople = [staff[1], *staff[3:]]
    rows: list[dict[str, Any]] = []
    orders: list[str] = []
    for n, offer_id in enumerate(ids):
        created = START + timedelta(days=n * DAYS / size.offers)
        is_order = n % order_every == 0 and len(orders) < size.orders
        status = "ordered" if is_order else rng.choice(["draft", "issued", "issued", "declined"])
        issued = None if status == "draft" else created + timedelta(hours=2)
        placement = rng.choice(placements) if n % 3 == 0 else None
        owner = leaver if rng.random() < LEAVER_SHARE else rng.choice(salespeople)
        customer = rng.randrange(1, size.customers + 1)
        rows.append(
            {
                **_blank_offer(),
                "id": offer_id,
                "tracking_id": offer_id[:10],
                "status": status,
                "customer_company": f"Customer {customer - 1:05d}",
                "customer_email": f"buyer{customer}@example.com",
                "customer_id": customer,
                "currency": "EUR",
                "valid_until": (created + timedelta(days=30)).date(),
                "campaign_id": placement[1] if placement else None,
                "placement_id": placement[0] if placement else None,
                "created_at": created,
                "updated_at": created,
                "issued_at": issued,
                "accepted_at": created + timedelta(days=3) if is_order else None,
                "ordered_at": created + timedelta(days=4) if is_order else None,
                "declined_at": created + timedelta(days=5) if status == "declined" else None,
                "owner_id": owner,
                "stage_position": None,
            }
        )
        if is_order:
            orders.append(offer_id)
    _insert(connection, Offer.__table__, rows)  # type: ignore[attr-defined]
    return ids, orders


def _blank_offer() -> dict[str, Any]:
    text_columns = (
        "customer_contact_name customer_phone customer_reference customer_address_lines"
        " customer_postcode customer_city customer_country customer_vat_id notes terms"
        " accepted_by_name accepted_po_number declined_reason activated_by"
    ).split()
    return {
        **dict.fromkeys(text_columns, ""),
        "language": "en",
        "supersedes_id": None,
        "creative_id": None,
        "superseded_at": None,
        "expected_delivery_date": None,
    }


def _counter(connection: Any, count: int) -> str:
    """A FROM clause giving ``n`` = 1 .. count on either database."""
    if connection.dialect.name == "postgresql":
        return f"generate_series(1::bigint, {count}) AS c(n)"
    return (
        f"(WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < {count})"
        " SELECT n FROM c) AS c"
    )


def _lines(connection: Any, size: Size) -> None:
    from sqlalchemy import Numeric, bindparam, text

    connection.execute(
        text(
            "INSERT INTO offer_line (offer_id, position, description, quantity, unit,"
            " unit_price, discount_percent, vat_rate)"
            " SELECT o.id, c.n, 'Item ' || c.n, 1 + c.n, 'pcs', 10 * c.n + 0.5, 0, 24"
            f" FROM offer AS o CROSS JOIN {_counter(connection, size.lines_per_offer)}"
        )
    )
    # The stored gross total as the offers service writes it: every offer has the same lines.
    gross = bindparam("gross", _gross(size), type_=Numeric(20, 2))
    connection.execute(text("UPDATE offer SET gross_amount = :gross").bindparams(gross))


def _gross(size: Size) -> Decimal:
    from types import SimpleNamespace

    from app.offers.pricing import compute_totals

    lines = [
        SimpleNamespace(
            quantity=Decimal(1 + n),
            unit_price=Decimal(10 * n) + Decimal("0.5"),
            discount_percent=Decimal(0),
            vat_rate=Decimal(24),
        )
        for n in range(1, size.lines_per_offer + 1)
    ]
    return compute_totals(lines, "EUR").gross


def _stage_history(connection: Any, orders: list[str], rng: random.Random) -> None:
    from sqlalchemy import text

    from app.tracking.models import StageUpdate

    stages = list(connection.execute(text("SELECT key FROM order_stage ORDER BY position")))
    keys = [row[0] for row in stages]
    rows = []
    for n, offer_id in enumerate(orders):
        length = LONG_HISTORY if n == 0 else rng.randint(1, len(keys))
        at = _moment(rng)
        for step in range(length):
            at += timedelta(hours=rng.randint(1, 48))
            rows.append(_update(offer_id, keys[min(step, len(keys) - 1)], at, step))
    _insert(connection, StageUpdate.__table__, rows)  # type: ignore[attr-defined]
    # The progress columns as app/tracking/progress.py keeps them: the furthest stage reached.
    connection.execute(
        text(
            "UPDATE offer SET stage_position = (SELECT max(s.position) FROM stage_update AS u"
            " JOIN order_stage AS s ON s.key = u.stage_key WHERE u.offer_id = offer.id)"
            " WHERE status = 'ordered'"
        )
    )


def _update(offer_id: str, key: str, at: datetime, step: int) -> dict[str, Any]:
    return {
        "offer_id": offer_id,
        "stage_key": key,
        "happened_at": at,
        "public_note": f"Step {step}",
        "internal_note": "",
        "expected_delivery_date": None,
        "carrier": "",
        "tracking_number": "",
        "tracking_link": "",
        "created_by": "staff:sales@example.com",
        "created_at": at,
    }


def _scans(connection: Any, size: Size, hot: str) -> None:
    """Scans spread over the three years and over the offers, a twentieth on ``hot``."""
    from sqlalchemy import text

    from app.tracking import partitions

    count = connection.execute(text("SELECT count(*) FROM offer")).scalar_one()
    seconds = DAYS * 86_400
    if connection.dialect.name == "postgresql":
        month = partitions.Month.of(START)
        while month.start < START + timedelta(days=DAYS + 1):
            partitions.add_month(connection, month)
            month = month.next()
        at = f"timestamptz '{START.isoformat()}' + (c.n * 7919 % {seconds}) * interval '1 second'"
        pick = "(SELECT array_agg(id ORDER BY id) FROM offer)"
        offer = f"CASE WHEN c.n % 20 = 0 THEN :hot ELSE ({pick})[1 + c.n % {count}] END"
        source = f"{_counter(connection, size.scans)}"
    else:
        at = (
            f"strftime('%Y-%m-%d %H:%M:%S', '{START:%Y-%m-%d %H:%M:%S}',"
            f" '+' || (c.n * 7919 % {seconds}) || ' seconds') || '.000000'"
        )
        offer = "CASE WHEN c.n % 20 = 0 THEN :hot ELSE o.id END"
        source = (
            f"{_counter(connection, size.scans)}"
            " JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM offer) AS o"
            f" ON o.k = c.n % {count}"
        )
    connection.execute(
        text(
            "INSERT INTO scan_event (offer_id, occurred_at, code_form, channel, device_class,"
            " os_family, browser_family, referrer_host, is_bot, visitor_hash, campaign_id,"
            " placement_id, creative_id)"
            f" SELECT {offer}, {at}, 'full', 'qr', 'mobile', 'Android', 'Chrome', '',"
            " c.n % 50 = 0, 'v' || (c.n % 100000), NULL, NULL, NULL"
            f" FROM {source}"
        ),
        {"hot": hot},
    )
    # The campaign dimensions as the scan writer records them, from the offer's placement.
    connection.execute(
        text(
            "UPDATE scan_event SET campaign_id = (SELECT campaign_id FROM offer"
            " WHERE offer.id = scan_event.offer_id), placement_id = (SELECT placement_id"
            " FROM offer WHERE offer.id = scan_event.offer_id)"
            " WHERE offer_id IN (SELECT id FROM offer WHERE placement_id IS NOT NULL)"
        )
    )


def caught_up(engine: Any) -> None:
    """The scan feed's mark past every seeded scan and the dashboard's rollup counted from
    them, as a server that ran all along leaves them (a server started on the seeded database
    would otherwise spend its first hour deriving three years of scans)."""
    from sqlalchemy import text

    from app.analytics import scanfeed
    from app.config import get_settings

    with engine.begin() as connection:
        newest = connection.execute(text("SELECT max(id) FROM scan_event")).scalar_one()
        connection.execute(text("DELETE FROM scan_feed_mark"))
        connection.execute(
            text("INSERT INTO scan_feed_mark (name, last_scan_id) VALUES (:name, :id)"),
            {"name": scanfeed.FEED, "id": newest},
        )
    scanfeed.rebuild(engine, get_settings().zone)


def _audit(connection: Any, size: Size, offers: list[str], rng: random.Random) -> None:
    from app.audit import AuditLogEntry

    actions = ["offer.create", "offer.update", "offer.issue", "customer.update", "order.stage"]
    rows = []
    for _ in range(size.audit):
        offer_id = rng.choice(offers)
        action = rng.choice(actions)
        rows.append(
            {
                "occurred_at": _moment(rng),
                "actor": f"staff:sales{rng.randrange(size.sales)}@example.com",
                "action": action,
                "entity_type": "offer",
                "entity_id": offer_id,
                "offer_id": offer_id,
                "summary": f"{action} on {offer_id}",
                "changes": {"field": "value"},
            }
        )
    _insert(connection, AuditLogEntry.__table__, rows)  # type: ignore[attr-defined]


def seed(url: str, scale: float) -> None:
    """Make the database at ``url`` anew and fill it at ``scale``."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
    env = scratch_env(url)
    os.environ.update({k: env[k] for k in ("OFFERTRACK_DATABASE_URL", "OFFERTRACK_VAR_DIR")})
    from sqlalchemy import text

    from app.db import get_engine
    from app.subscribers import wire

    wire()
    size, rng = Size.at(scale), random.Random(20261207)
    steps: list[tuple[str, Any]] = []
    with get_engine().begin() as connection:
        staff = _timed(steps, "staff", lambda: _staff(connection, size))
        _timed(steps, "customers", lambda: _customers(connection, size, rng))
        _, placements = _timed(steps, "campaigns", lambda: _campaigns(connection, size))
        offers, orders = _timed(
            steps, "offers", lambda: _offers(connection, size, staff, placements, rng)
        )
        _timed(steps, "offer lines", lambda: _lines(connection, size))
        _timed(steps, "stage history", lambda: _stage_history(connection, orders, rng))
        _timed(steps, "scans", lambda: _scans(connection, size, offers[len(offers) // 2]))
        _timed(steps, "audit", lambda: _audit(connection, size, offers, rng))
    _timed(steps, "scan feed", lambda: caught_up(get_engine()))
    with get_engine().connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(
                text("VACUUM ANALYZE")
            )
        else:
            connection.execute(text("ANALYZE"))
    print(f"seeded {url} at scale {scale}: {size}")


def _timed(steps: list[tuple[str, Any]], name: str, step: Any) -> Any:
    began = time.perf_counter()
    result = step()
    print(f"  {name:<14} {time.perf_counter() - began:7.1f} s", flush=True)
    steps.append((name, result))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="postgresql://... or sqlite:////path.db")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument(
        "--only-scan-feed", action="store_true", help="just catch the scan feed up (see caught_up)"
    )
    args = parser.parse_args()
    if args.only_scan_feed:
        os.environ["OFFERTRACK_DATABASE_URL"] = args.url
        from app.db import get_engine

        caught_up(get_engine())
    else:
        seed(args.url, args.scale)


if __name__ == "__main__":
    main()
