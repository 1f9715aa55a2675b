"""Production behind TLS as the README's deployment guide sets it up: Caddy with
deploy/Caddyfile (``tls internal`` on loopback) in front of ``offertrack serve`` in production
mode (``pytest -m tls``)."""

import http.client
import re
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message

import pytest

from app.config import ROOT_DIR
from tests.deploy.processes import clean_environment, free_port, require_tool, running

pytestmark = pytest.mark.tls


@dataclass
class Site:
    host: str
    port: int
    context: ssl.SSLContext
    issued_offer_path: str


@dataclass
class Answer:
    status: int
    headers: Message
    body: str


def get(site: Site, path: str, *, visitor: str = "127.0.0.1", **headers: str) -> Answer:
    """GET over https, verified against Caddy's own CA, from the loopback address ``visitor``."""
    connection = http.client.HTTPSConnection(
        site.host, site.port, context=site.context, source_address=(visitor, 0), timeout=30
    )
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read().decode())
    finally:
        connection.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    caddy = require_tool("caddy", "caddy")
    tmp = tmp_path_factory.mktemp("tls")
    app_port, tls_port = free_port(), free_port()
    env = clean_environment(
        OFFERTRACK_ENV="production",
        OFFERTRACK_SECRET_KEY=uuid.uuid4().hex * 2,
        OFFERTRACK_VAR_DIR=str(tmp / "var"),
        OFFERTRACK_PUBLIC_BASE_URL=f"https://localhost:{tls_port}",
        OFFERTRACK_TRUSTED_PROXIES='["127.0.0.1"]',
        OFFERTRACK_BEHIND_TLS_PROXY="true",
        OFFERTRACK_MISS_LIMIT_PER_MINUTE="3",
        OFFERTRACK_PDF_WORKERS="1",
    )
    offertrack = [sys.executable, "-m", "app.cli"]
    subprocess.run([*offertrack, "migrate"], env=env, cwd=tmp, check=True, capture_output=True)
    demo = subprocess.run(
        [*offertrack, "demo"], env=env, cwd=tmp, check=True, capture_output=True, text=True
    ).stdout
    issued = re.search(r"issued\s+https://localhost:\d+(/\S+)", demo)
    assert issued, demo
    caddy_env = {
        **env,
        "HOME": str(tmp),
        "XDG_DATA_HOME": str(tmp / "caddy-data"),  # its CA and certificates
        "XDG_CONFIG_HOME": str(tmp / "caddy-config"),
        "OFFERTRACK_SITE": f"localhost:{tls_port}",
        "OFFERTRACK_TLS": "internal",
        "OFFERTRACK_UPSTREAM": f"127.0.0.1:{app_port}",
        "OFFERTRACK_CADDY_ADMIN": "off",
        "OFFERTRACK_CADDY_OPTIONS": "skip_install_trust\nauto_https disable_redirects",
    }
    serve = [*offertrack, "serve", "--port", str(app_port)]
    caddy_run = [caddy, "run", "--config", str(ROOT_DIR / "deploy" / "Caddyfile")]
    with (
        running(
            serve,
            env=env,
            cwd=tmp,
            log=tmp / "serve.log",
            ready_url=f"http://127.0.0.1:{app_port}/healthz",
        ),
        running(
            caddy_run,
            env=caddy_env,
            cwd=tmp,
            log=tmp / "caddy.log",
            ready_url=f"https://localhost:{tls_port}/healthz",
            tls=True,
        ),
    ):
        root = tmp / "caddy-data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
        context = ssl.create_default_context(cafile=str(root))
        site = Site("localhost", tls_port, context, issued.group(1))
        _warm_up(site)
        yield site


def _warm_up(site: Site) -> None:
    """A cold process's first page (templates compiled, first queries) may take longer than
    the page deadline on a loaded machine and answer 503, as it is meant to: the tests are
    about TLS, so they start once the page has answered."""
    deadline = time.monotonic() + 30
    while get(site, site.issued_offer_path).status == 503 and time.monotonic() < deadline:
        time.sleep(0.5)


def test_pages_come_over_verified_tls_with_hsts_and_secure_cookies(site: Site) -> None:
    page = get(site, site.issued_offer_path)
    assert page.status == 200
    assert "max-age=" in page.headers["Strict-Transport-Security"]
    cookies = page.headers.get_all("Set-Cookie") or []
    assert cookies, "an issued offer's page sets the CSRF cookie of its forms"
    assert all("Secure" in cookie for cookie in cookies)
    # Its scripts, styles and forms are https too (a browser blocks mixed content).
    assert f"http://localhost:{site.port}" not in page.body
    assert f'src="https://localhost:{site.port}/static/htmx.min.js"' in page.body


def test_each_visitor_is_told_apart_by_the_address_caddy_forwards(site: Site) -> None:
    for _ in range(3):  # the miss limit (3 here) counts per visitor address
        assert get(site, "/0000000000", visitor="127.0.0.2").status == 404
    assert get(site, "/0000000000", visitor="127.0.0.2").status == 429
    # Another visitor is not limited, not even when it claims to be the first: Caddy replaces
    # the X-Forwarded-For a visitor sends, and OfferTrack believes only Caddy's.
    assert get(site, "/0000000000", visitor="127.0.0.3").status == 404
    spoofed = get(site, "/0000000000", visitor="127.0.0.4", **{"X-Forwarded-For": "127.0.0.2"})
    assert spoofed.status == 404


def test_caddy_refuses_request_headers_of_over_64_kb(site: Site) -> None:
    """OfferTrack's server reads headers of any size, and what parses them keeps the last
    few (a Referer of megabytes held memory after its request): the proxy sets the bound."""
    page = site.issued_offer_path
    assert get(site, page, Referer="https://example.com/" + "a" * 30_000).status == 200
    assert get(site, page, Referer="https://example.com/" + "a" * 100_000).status == 431


def test_metrics_stay_inside(site: Site) -> None:
    assert get(site, "/metrics").status == 404


def test_the_guide_in_the_readme_is_the_one_tested() -> None:
    readme = (ROOT_DIR / "README.md").read_text(encoding="utf-8")
    for piece in (
        "deploy/Caddyfile",
        "deploy/offertrack.service",
        "OFFERTRACK_TRUSTED_PROXIES",
        "offertrack check-config",
    ):
        assert piece in readme, piece
    unit = (ROOT_DIR / "deploy" / "offertrack.service").read_text(encoding="utf-8")
    assert "ExecStartPre=" in unit and "check-config" in unit and "serve" in unit
