"""The staff lists' gross amount filter alone, on a database of bench/bigdata_seed.py: the
offer list's two queries (its count and its first page, newest first) with the filter's
conditions as app.admin.listfilters builds them, each timed as the median of a few runs.

    .venv/bin/python bench/gross_filter.py --url postgresql://...:5432/wt_bigdata [--runs 7]

Run from a checkout, it times that checkout's filter against the database as it stands.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

FILTERS = {
    "from 100": b"gross_min=100",
    "100 to 2000": b"gross_min=100&gross_max=2000",
    "from 50000 (few)": b"gross_min=50000",
}


def queries(query_string: bytes) -> dict[str, Any]:
    from sqlalchemy import func
    from sqlmodel import col, select
    from starlette.requests import Request

    from app.admin.listfilters import offer_conditions
    from app.formats import DecimalMark
    from app.offers.models import Offer

    request = Request({"type": "http", "query_string": query_string})
    conditions = offer_conditions(request, None, DecimalMark.POINT)
    return {
        "count": select(func.count()).select_from(Offer).where(*conditions),
        "page": select(col(Offer.id))
        .where(*conditions)
        .order_by(col(Offer.created_at).desc())
        .limit(25),
    }


def median_ms(connection: Any, query: Any, runs: int) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        connection.execute(query).all()
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    os.environ["OFFERTRACK_DATABASE_URL"] = args.url
    from app.db import get_engine

    with get_engine().connect() as connection:
        for name, query_string in FILTERS.items():
            for kind, query in queries(query_string).items():
                ms = median_ms(connection, query, args.runs)
                print(f"{name:<18} {kind:<6} {ms:9.1f} ms", flush=True)
        print(f"load average {os.getloadavg()}, {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
