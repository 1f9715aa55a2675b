"""Our PDF endpoint against WeasyPrint rendering the same HTML string directly.

OfferTrack runs as it is deployed (`offertrack serve`, one PDF worker) on a scratch SQLite
database. For a 1-page and a 10-page offer it prints medians over several runs:
  first render  = GET /api/v1/offers/{id}/pdf of a freshly issued offer (render, store, serve)
  direct        = WeasyPrint rendering the same html in this process, with the same options
                  (PDF/A-3b, tagged: app.offers.pdf.render_pdf, no pool, no database)
  cached repeat = the same GET again (served from storage)
Targets: first / direct <= 1.2, cached / first <= 0.02.

    .venv/bin/python bench/pdf.py [--runs 9]
"""

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx2 as httpx  # noqa: E402

from bench._servers import offertrack_server, scratch_env  # noqa: E402

LINES_FOR_PAGES = {1: 5, 10: 270}


def _timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _fetch(client: httpx.Client, url: str) -> None:
    client.get(url).raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    env = scratch_env(None) | {"OFFERTRACK_PDF_WORKERS": "1"}
    os.environ.update(env)  # this process reads and writes the same scratch database

    from sqlmodel import Session

    from app.auth.service import create_api_key
    from app.config import get_settings
    from app.db import get_engine
    from app.offers import service
    from app.offers.pdf import quotation_html
    from app.offers.rendering import render_pdf
    from tests.factories import line_data, make_offer

    settings = get_settings()

    def direct(html: str) -> None:
        render_pdf(html)

    def issued_offer_html(session: Session, lines: int) -> tuple[str, str]:
        data = [line_data(description=f"Spare part kit {n}", quantity="2") for n in range(lines)]
        offer = make_offer(session, settings, issued=True, lines=data)
        return offer.id, quotation_html(offer, settings=settings, today=service.today(settings))

    with Session(get_engine(), expire_on_commit=False) as session, offertrack_server(env) as base:
        _, token = create_api_key(session, "bench", actor="cli:bench")
        client = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120
        )
        direct(
            issued_offer_html(session, 1)[1]
        )  # warm this process as the server warmed its worker
        for pages, lines in LINES_FOR_PAGES.items():
            firsts: list[float] = []
            directs: list[float] = []
            cached: list[float] = []
            for run in range(args.runs):
                offer_id, html = issued_offer_html(session, lines)
                fetch = partial(_fetch, client, f"/api/v1/offers/{offer_id}/pdf")
                pair = [(firsts, fetch), (directs, partial(direct, html))]
                for results, call in pair if run % 2 else reversed(pair):  # alternate the order
                    results.append(_timed(call))
                cached.append(statistics.median(_timed(fetch) for _ in range(5)))
            first, plain, repeat = (statistics.median(x) for x in (firsts, directs, cached))
            print(f"\n{pages}-page offer ({lines} lines), median of {args.runs} runs")
            print(f"  direct WeasyPrint     {plain * 1000:8.1f} ms")
            print(
                f"  endpoint first render {first * 1000:8.1f} ms   ratio {first / plain:.2f} (target <= 1.2)"
            )
            print(
                f"  endpoint cached       {repeat * 1000:8.1f} ms   ratio {repeat / first:.4f} (target <= 0.02)"
            )


if __name__ == "__main__":
    main()
