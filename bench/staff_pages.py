"""Every staff page, CSV export and API list on a database of three years (bench/bigdata_seed.py
at --scale 1.0) against the same page on a small one (--scale 0.01), in one process: per page
the big database's median as a ratio to the small one's, and both medians in ms.

    .venv/bin/python bench/bigdata_seed.py --url postgresql://postgres@127.0.0.1:5432/wt_bigdata
    .venv/bin/python bench/bigdata_seed.py --url postgresql://...:5432/wt_bigdata_small --scale 0.01
    .venv/bin/python bench/staff_pages.py --big postgresql://...:5432/wt_bigdata \\
        --small postgresql://...:5432/wt_bigdata_small [--rounds 5]

A page whose work does not grow with its tables reads near 1; one that reads a table whole,
about as many times slower as the table is bigger (100 at these scales). The rounds alternate
between the databases, so whatever else the machine does meanwhile hits both alike: read the
ratios, and the ms only with the load average the script prints.

Both databases are written to: each round hands the leaver's offers to a colleague and back.
"""

import argparse
import gc
import os
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.testclient import TestClient  # noqa: E402

from bench.bigdata_seed import ADMIN, LEAVER, PASSWORD, SALES  # noqa: E402

BASE_URL = "https://bench.example.com"
SUCCESSOR = "successor@example.com"
RETENTION_DAYS = 3650
REDIS_URL = "redis://127.0.0.1:6379/13"


@dataclass
class Ids:
    hot_offer: str
    long_order: str
    campaign: int
    placement: int
    customer_term: str
    tracking_id: str
    leaver: int
    successor: int


@dataclass
class Site:
    """One database with its app, a browser signed in per role, and an API key."""

    url: str
    ids: Ids
    admin: TestClient
    sales: TestClient
    api: TestClient
    engine: Any
    times: dict[str, list[float]] = field(default_factory=dict)
    first_byte: dict[str, list[float]] = field(default_factory=dict)
    peaks: dict[str, list[int]] = field(default_factory=dict)


def use(url: str) -> None:
    """Point the process at ``url``: settings and engine are read once per process, so both
    caches are emptied (the engine of the other database is kept by its Site)."""
    from app.config import get_settings
    from app.db import get_engine

    os.environ["OFFERTRACK_DATABASE_URL"] = url
    get_settings.cache_clear()
    get_engine.cache_clear()


def _ids(engine: Any) -> Ids:
    from sqlalchemy import text

    def one(sql: str) -> Any:
        with engine.begin() as connection:  # SQLite: its write lock goes at the commit
            return connection.execute(text(sql)).scalar_one()

    return Ids(
        hot_offer=one(
            "SELECT offer_id FROM scan_event GROUP BY offer_id ORDER BY count(*) DESC LIMIT 1"
        ),
        long_order=one(
            "SELECT offer_id FROM stage_update GROUP BY offer_id ORDER BY count(*) DESC LIMIT 1"
        ),
        campaign=one("SELECT min(campaign_id) FROM offer WHERE campaign_id IS NOT NULL"),
        placement=one("SELECT min(placement_id) FROM offer WHERE placement_id IS NOT NULL"),
        customer_term="stomer 0004",
        tracking_id=one("SELECT max(tracking_id) FROM offer"),
        leaver=one(f"SELECT id FROM staff_user WHERE email = '{LEAVER}'"),
        successor=one(f"SELECT id FROM staff_user WHERE email = '{SUCCESSOR}'"),
    )


def _prepare(engine: Any) -> str:
    """The successor (a sales user owning nothing), and an API key whose token is returned."""
    from sqlmodel import Session, select

    from app.admin import users
    from app.auth.service import create_api_key
    from app.auth.staff import Role, StaffUser

    with Session(engine) as session:
        if not session.exec(select(StaffUser).where(StaffUser.email == SUCCESSOR)).first():
            users.create_user(session, SUCCESSOR, Role.SALES, PASSWORD, actor="bench")
        _, token = create_api_key(session, f"bench {time.time_ns()}", actor="bench")
        session.commit()
    return token


def open_site(url: str) -> Site:
    from app.auth.staff import Role
    from app.db import get_engine
    from app.main import create_app
    from tests.admin.conftest import StaffLogin, sign_in

    use(url)
    engine = get_engine()
    token = _prepare(engine)
    app = create_app()
    clients: list[TestClient] = []
    for email, role in ((ADMIN, Role.ADMIN), (SALES, Role.SALES)):
        client = TestClient(app, base_url=BASE_URL)
        if not clients:  # the app's lifespan once: its workers, caches and housekeeping
            client.__enter__()
            time.sleep(2)  # housekeeping's first run (a write) before the sign-ins write
        sign_in(client, StaffLogin(email, PASSWORD, role))
        clients.append(client)
    api = TestClient(app, base_url=BASE_URL, headers={"Authorization": f"Bearer {token}"})
    return Site(url, _ids(engine), clients[0], clients[1], api, engine)


def pages(ids: Ids) -> dict[str, tuple[str, str]]:
    """Name -> (who, path): every staff list with its deep page, sorts and filters, the
    dashboards, detail pages of the biggest rows, and the API lists."""
    lists = {
        "offer": ["", "?page=200", "?sortBy=customer_company&sort=asc", "?sortBy=valid_until"]
        + ["?status=issued", "?owner=mine", "?customer=Customer%200004", "?gross_min=100"]
        + ["?created_from=2025-01-01&created_to=2025-02-01", f"?search={ids.customer_term}"]
        + [f"?search={ids.tracking_id}"],
        "order": ["", "?page=200", "?sortBy=customer_company&sort=asc", "?stage=delivered"]
        + [f"?search={ids.customer_term}"],
        "stage-update": ["", "?page=200", f"?search={ids.hot_offer}"],
        "audit-log-entry": ["", "?page=200", "?actor=sales1%40example.com", "?action=offer.issue"]
        + [f"?offer={ids.hot_offer}", "?search=offer.update"],
        "staff-user": [""],
    }
    found: dict[str, tuple[str, str]] = {}
    for identity, queries in lists.items():
        for query in queries:
            who = "admin" if identity in ("audit-log-entry", "staff-user") else "sales"
            label = query.replace(ids.hot_offer, "<offer id>").replace(ids.tracking_id, "<code>")
            found[f"{identity} list{label}"] = (who, f"/admin/{identity}/list{query}")
    found |= {
        "dashboard": ("sales", "/admin/analytics/"),
        "dashboard panels": ("sales", "/admin/analytics/panels"),
        "campaigns": ("sales", "/admin/analytics/campaigns"),
        "campaign": ("sales", f"/admin/analytics/campaigns/{ids.campaign}"),
        "placement": ("sales", f"/admin/analytics/placements/{ids.placement}"),
        "offer with most scans": ("sales", f"/admin/offer/details/{ids.hot_offer}"),
        "order with long history": ("sales", f"/admin/order/details/{ids.long_order}"),
        "customers": ("sales", "/admin/customers"),
        "customers deep": ("sales", "/admin/customers?offset=4000"),
        "customer search": ("sales", f"/admin/customers?q={ids.customer_term}"),
        "user care (leaver)": ("admin", f"/admin/staff-user/details/{ids.leaver}"),
        "handover form": ("admin", f"/admin/users/{ids.leaver}/handover"),
        "alerts": ("sales", "/admin/alerts/"),
        "api offers": ("api", "/api/v1/offers"),
        "api offers deep": ("api", "/api/v1/offers?offset=10000"),
        "api offers customer": ("api", f"/api/v1/offers?customer={ids.customer_term}"),
        "api customers": ("api", "/api/v1/customers"),
        "api campaigns": ("api", "/api/v1/campaigns"),
        "api placements": ("api", f"/api/v1/campaigns/{ids.campaign}/placements"),
        "api order updates": ("api", f"/api/v1/orders/{ids.long_order}/updates"),
        "api scans per day": ("api", f"/api/v1/analytics/scans-per-day?campaign_id={ids.campaign}"),
        "api funnel": ("api", f"/api/v1/analytics/funnel?campaign_id={ids.campaign}"),
    }
    return found


EXPORTS = {
    "offer export": "/admin/offer/export/csv",
    "order export": "/admin/order/export/csv",
    "audit export": "/admin/audit-log-entry/export/csv",
}


def client_of(site: Site, who: str) -> TestClient:
    return {"admin": site.admin, "sales": site.sales, "api": site.api}[who]


def time_page(site: Site, name: str, who: str, path: str) -> None:
    began = time.perf_counter()
    response = client_of(site, who).get(path)  # a page past the end: the last one
    elapsed = time.perf_counter() - began
    if response.status_code != 200:
        raise SystemExit(f"{name}: {path} answered {response.status_code}: {response.text[:300]}")
    site.times.setdefault(name, []).append(elapsed)


def time_export(site: Site, name: str, path: str) -> None:
    gc.collect()
    tracemalloc.reset_peak()
    before, _ = tracemalloc.get_traced_memory()
    began = time.perf_counter()
    first: float | None = None
    with site.admin.stream("GET", path) as response:
        response.raise_for_status()
        for _ in response.iter_bytes():
            first = first or time.perf_counter() - began
    site.times.setdefault(name, []).append(time.perf_counter() - began)
    site.first_byte.setdefault(name, []).append(first or 0.0)
    site.peaks.setdefault(name, []).append(tracemalloc.get_traced_memory()[1] - before)


def time_handover(site: Site) -> None:
    """The leaver's offers to the successor and back, each way timed as one."""
    from sqlmodel import Session

    from app.admin import user_actions

    for name, (source, target) in {
        "handover": (site.ids.leaver, site.ids.successor),
        "handover back": (site.ids.successor, site.ids.leaver),
    }.items():
        with Session(site.engine) as session:
            began = time.perf_counter()
            user_actions.hand_over_offers(session, source, target, actor="bench")
            site.times.setdefault(name, []).append(time.perf_counter() - began)


def one_round(site: Site, only: Callable[[str], bool], exports: bool) -> None:
    use(site.url)
    for name, (who, path) in pages(site.ids).items():
        if only(name):
            time_page(site, name, who, path)
    if exports:
        for name, path in EXPORTS.items():
            if only(name):
                time_export(site, name, path)
    if only("handover"):
        time_handover(site)


def report(big: Site, small: Site) -> None:
    print(f"{'page':<58} {'ratio':>7} {'big ms':>9} {'small ms':>9}")
    for name, times in big.times.items():
        b, s = statistics.median(times) * 1000, statistics.median(small.times[name]) * 1000
        flag = "  SLOW" if b > 300 else ""
        print(f"{name[:58]:<58} {b / s:7.1f} {b:9.1f} {s:9.1f}{flag}", flush=True)
    for name in big.first_byte:
        b = statistics.median(big.first_byte[name]) * 1000
        s = statistics.median(small.first_byte[name]) * 1000
        mb = statistics.median(big.peaks[name]) / 2**20
        ms = statistics.median(small.peaks[name]) / 2**20
        print(f"{name:<24} first byte {b:8.1f} / {s:6.1f} ms, peak {mb:6.1f} / {ms:5.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--big", required=True)
    parser.add_argument("--small", required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", default="", help="time only pages whose name has this")
    parser.add_argument("--no-exports", action="store_true")
    args = parser.parse_args()
    os.environ |= {
        "OFFERTRACK_PUBLIC_BASE_URL": BASE_URL,
        "OFFERTRACK_PDF_WORKERS": "1",
        "OFFERTRACK_WEBHOOK_WORKER": "false",
        "OFFERTRACK_VAR_DIR": "/tmp/offertrack-bench-staff-pages",
        "OFFERTRACK_ENV": "development",
        "OFFERTRACK_REDIS_URL": os.environ.get("OFFERTRACK_BENCH_REDIS_URL", REDIS_URL),
        # Three years of scans kept: the server's housekeeping would roll those past the
        # default 400 days up (and rewrite the seeded database) as the bench starts.
        "OFFERTRACK_SCAN_RETENTION_DAYS": str(RETENTION_DAYS),
    }
    from app.subscribers import wire

    wire()
    small, big = open_site(args.small), open_site(args.big)
    only = (lambda name: args.only in name) if args.only else (lambda _: True)
    tracemalloc.start()
    one_round(small, only, exports=False)  # warm both: templates, pools, caches
    one_round(big, only, exports=False)
    small.times.clear()
    big.times.clear()
    for done in range(1, args.rounds + 1):
        for site in (small, big):
            one_round(site, only, exports=not args.no_exports)
        # After every round: a long run cut short still tells what it measured.
        print(f"{done} rounds; load average {os.getloadavg()}, {os.cpu_count()} CPUs")
        report(big, small)
    tracemalloc.stop()


if __name__ == "__main__":
    main()
