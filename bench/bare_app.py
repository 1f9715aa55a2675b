"""Baselines for bench/tracking.py and bench/analytics.py: bare FastAPI endpoints, no database.

Two of each, as FastAPI lets one write them: ``app`` with ``def`` endpoints (FastAPI runs them
in its thread pool) and ``async_app`` with ``async def`` endpoints (run on the event loop, with
no thread hand-over: three times the requests per second on this machine). The benches report
against both; the ``async def`` one is the stricter baseline.
"""

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse

PAGE = "<!doctype html><html><body>" + "<p>Order progress</p>" * 150 + "</body></html>"
DESTINATION = "https://shop.example.com/spring?utm_source=offertrack"


def _redirect() -> RedirectResponse:
    return RedirectResponse(DESTINATION, status_code=302, headers={"Cache-Control": "no-store"})


app = FastAPI()


@app.get("/{code}", response_class=HTMLResponse)
def page(code: str) -> str:
    return PAGE


@app.get("/c/{slug}")
def redirect(slug: str) -> RedirectResponse:
    """The baseline for the campaign redirect in bench/analytics.py."""
    return _redirect()


async_app = FastAPI()


@async_app.get("/{code}", response_class=HTMLResponse)
async def async_page(code: str) -> str:
    return PAGE


@async_app.get("/c/{slug}")
async def async_redirect(slug: str) -> RedirectResponse:
    return _redirect()
