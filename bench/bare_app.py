"""The baseline for bench/tracking.py: a bare FastAPI HTML endpoint, no database."""

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse

app = FastAPI()
PAGE = "<!doctype html><html><body>" + "<p>Order progress</p>" * 150 + "</body></html>"


@app.get("/{code}", response_class=HTMLResponse)
def page(code: str) -> str:
    return PAGE


@app.get("/c/{slug}")
def redirect(slug: str) -> RedirectResponse:
    """The baseline for the campaign redirect in bench/analytics.py."""
    return RedirectResponse(
        "https://shop.example.com/spring?utm_source=offertrack",
        status_code=302,
        headers={"Cache-Control": "no-store"},
    )
