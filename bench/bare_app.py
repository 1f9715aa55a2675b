"""The baseline for bench/tracking.py: a bare FastAPI HTML endpoint, no database."""

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

app = FastAPI()
PAGE = "<!doctype html><html><body>" + "<p>Order progress</p>" * 150 + "</body></html>"


@app.get("/{code}", response_class=HTMLResponse)
def page(code: str) -> str:
    return PAGE
