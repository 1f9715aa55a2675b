"""Our PDF endpoint against WeasyPrint rendering the same HTML string directly.

For a 1-page and a 10-page offer it prints, as medians over several runs in this one process:
  first render  = GET /api/v1/offers/{id}/pdf of a freshly issued offer (render, store, serve)
  direct        = weasyprint.HTML(string=the same html).write_pdf() in this process
  cached repeat = the same GET again (served from storage)
Targets: first / direct <= 1.2, cached / first <= 0.02.

    .venv/bin/python bench/pdf.py [--runs 5]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

_tmp = tempfile.mkdtemp(prefix="offertrack-bench-pdf-")
os.environ.update(
    OFFERTRACK_DATABASE_URL=f"sqlite:///{_tmp}/bench.db",
    OFFERTRACK_VAR_DIR=f"{_tmp}/var",
    OFFERTRACK_PDF_WORKERS="1",
)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.testclient import TestClient  # noqa: E402
from sqlmodel import Session  # noqa: E402
from weasyprint import HTML  # noqa: E402

from app.auth.service import create_api_key  # noqa: E402
from app.cli import alembic_config  # noqa: E402
from app.config import STATIC_DIR, get_settings  # noqa: E402
from app.db import get_engine  # noqa: E402
from app.main import create_app  # noqa: E402
from app.offers import service  # noqa: E402
from app.offers.pdf import StaticOnlyFetcher, quotation_html  # noqa: E402
from tests.factories import line_data, make_offer  # noqa: E402

LINES_FOR_PAGES = {1: 5, 10: 270}


def _migrate() -> None:
    from alembic import command

    command.upgrade(alembic_config(), "head")


def _issued_offer(session: Session, lines: int) -> str:
    data = [line_data(description=f"Spare part kit {n}", quantity="2") for n in range(lines)]
    return make_offer(session, get_settings(), issued=True, lines=data).id


def _direct(html: str) -> bytes:
    document = HTML(
        string=html, base_url=STATIC_DIR.as_uri() + "/", url_fetcher=StaticOnlyFetcher()
    )
    pdf: bytes = document.write_pdf()
    return pdf


def _fetch(client: TestClient, url: str) -> None:
    client.get(url).raise_for_status()


def _timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _pages(pdf: bytes) -> int:
    import pypdfium2

    return len(pypdfium2.PdfDocument(pdf))


def bench(client: TestClient, session: Session, pages: int, runs: int) -> None:
    firsts, directs, cached = [], [], []
    for _ in range(runs):
        offer_id = _issued_offer(session, LINES_FOR_PAGES[pages])
        url = f"/api/v1/offers/{offer_id}/pdf"
        html = quotation_html(
            service.get_offer(session, offer_id),
            settings=get_settings(),
            today=service.today(get_settings()),
        )
        fetch = partial(_fetch, client, url)
        directs.append(_timed(partial(_direct, html)))
        firsts.append(_timed(fetch))
        cached.append(statistics.median(_timed(fetch) for _ in range(5)))
    actual_pages = _pages(client.get(url).content)
    first, direct, repeat = (statistics.median(x) for x in (firsts, directs, cached))
    print(f"\n{actual_pages}-page offer ({LINES_FOR_PAGES[pages]} lines), median of {runs} runs")
    print(f"  direct WeasyPrint     {direct * 1000:8.1f} ms")
    print(
        f"  endpoint first render {first * 1000:8.1f} ms   ratio {first / direct:.2f} (target <= 1.2)"
    )
    print(
        f"  endpoint cached       {repeat * 1000:8.1f} ms   ratio {repeat / first:.4f} (target <= 0.02)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    _migrate()
    with (
        Session(get_engine(), expire_on_commit=False) as session,
        TestClient(create_app()) as client,
    ):
        _, token = create_api_key(session, "bench")
        client.headers["Authorization"] = f"Bearer {token}"
        _direct(
            quotation_html(
                service.get_offer(session, _issued_offer(session, 1)),
                settings=get_settings(),
                today=service.today(get_settings()),
            )
        )
        for pages in (1, 10):
            bench(client, session, pages, args.runs)


if __name__ == "__main__":
    main()
