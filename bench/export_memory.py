"""Memory of a staff CSV export against the size of the table: the peak of Python's allocations
(tracemalloc, every thread) while the staff site exports the audit log's N rows, against the
same export of a tenth of them, in one process (the app in-process, driven like a browser that
downloads the file and keeps none of it).

A streamed export reads a chunk of rows at a time: its peak does not grow with the table, ratio
near 1. An export that loads every row before it writes one: ratio near 10.

    .venv/bin/python bench/export_memory.py [--rows 20000] [--rounds 3] [--postgres]

SQLite by default; --postgres: OFFERTRACK_BENCH_POSTGRES_URL (its public schema is emptied).
"""

import argparse
import gc
import os
import statistics
import sys
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.testclient import TestClient  # noqa: E402

from bench._servers import PG_URL, scratch_env  # noqa: E402

BASE_URL = "https://bench.example.com"
EXPORT = "/admin/audit-log-entry/export/csv"
PASSWORD = "a bench password of some length"
FEW, ALL = "bench-few", "bench-"  # the tenth's actor, and a search that finds every row


def seed(rows: int) -> None:
    """``rows`` audit entries in bulk, a tenth of them by the actor FEW."""
    from sqlalchemy import insert
    from sqlmodel import Session

    from app.audit import AuditLogEntry
    from app.db import get_engine

    start = datetime(2026, 1, 1, tzinfo=UTC)
    entries = [
        {
            "occurred_at": start + timedelta(seconds=n),
            "actor": FEW if n % 10 == 0 else "bench-many",
            "action": "offer.issue",
            "entity_type": "offer",
            "entity_id": f"{n:026d}",
            "offer_id": f"{n:026d}",
            "summary": f"Offer {n:026d} issued to Bench GmbH, valid until 2026-12-31",
            "changes": {"status": ["draft", "issued"], "valid_until": [None, "2026-12-31"]},
        }
        for n in range(rows)
    ]
    with Session(get_engine()) as session:
        for first in range(0, rows, 10_000):
            session.execute(insert(AuditLogEntry), entries[first : first + 10_000])
        session.commit()


def signed_in_admin(client: TestClient) -> None:
    from sqlmodel import Session

    from app.admin import users
    from app.auth.staff import Role
    from app.db import get_engine
    from tests.admin.conftest import StaffLogin, sign_in

    with Session(get_engine()) as session:
        users.create_user(session, "bench@example.com", Role.ADMIN, PASSWORD, actor="bench")
    sign_in(client, StaffLogin("bench@example.com", PASSWORD, Role.ADMIN))


def export_peak(client: TestClient, search: str) -> tuple[int, int]:
    """Bytes allocated at the peak of one export above what was allocated before it, and the
    rows it gave."""
    gc.collect()
    tracemalloc.reset_peak()
    before, _ = tracemalloc.get_traced_memory()
    lines = 0
    with client.stream("GET", EXPORT, params={"search": search}) as response:
        response.raise_for_status()
        for piece in response.iter_bytes():
            lines += piece.count(b"\n")
    _, peak = tracemalloc.get_traced_memory()
    return peak - before, lines - 1  # less the column titles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    env = scratch_env(PG_URL if args.postgres else None)
    os.environ.update(
        env
        | {
            "OFFERTRACK_PUBLIC_BASE_URL": BASE_URL,
            "OFFERTRACK_PDF_WORKERS": "1",
            "OFFERTRACK_WEBHOOK_WORKER": "false",
        }
    )

    from app.main import create_app

    seed(args.rows)
    peaks: dict[str, list[int]] = {FEW: [], ALL: []}
    with TestClient(create_app(), base_url=BASE_URL) as client:
        signed_in_admin(client)
        tracemalloc.start()
        for _ in range(args.rounds):  # interleaved, so whatever else the process does hits both
            for search, expected in ((FEW, args.rows // 10), (ALL, args.rows)):
                peak, rows = export_peak(client, search)
                assert rows == expected, (search, rows, expected)
                peaks[search].append(peak)
        tracemalloc.stop()
    few, every = (statistics.median(peaks[s]) for s in (FEW, ALL))
    database = "PostgreSQL" if args.postgres else "SQLite"
    print(f"audit log CSV export on {database}, peak allocation, median of {args.rounds} rounds")
    print(f"  {args.rows // 10:>10,} rows  {few / 2**20:8.2f} MiB")
    print(f"  {args.rows:>10,} rows  {every / 2**20:8.2f} MiB")
    print(f"  ratio {every / few:.2f} (flat memory: near 1; every row held at once: near 10)")


if __name__ == "__main__":
    main()
