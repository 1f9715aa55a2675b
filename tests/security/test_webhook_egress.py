"""Issue 14.2: webhooks never reach internal addresses unless an operator allows the network,
checked when the endpoint is registered and again, after resolving, at every delivery."""

import ipaddress
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, select
from sqlmodel import Session

from app import netguard
from app.analytics import delivery, outbox
from app.analytics.models import WebhookDelivery, WebhookEndpoint, table_of
from app.auth.staff import Role
from app.config import Settings, get_settings
from tests.analytics.test_webhooks import Receiver

INTERNAL_URLS = [
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/",
    "http://127.0.0.1:8080/hook",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://0x7f000001/",
    "http://2130706433/",
    "http://127.1/",
    "http://0177.0.0.1/",
    "http://localhost:5432/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://printer.local/",
    "http://intranet/",
    "http://100.64.0.1/",
    "http://192.168.1.1/",
    "http://[fd00::1]/",
    "http://[fe80::1]/",
    "http://[fec0::1]/",
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
    "http://[64:ff9b:1::a00:1]/",  # local-use NAT64 (RFC 8215) of 10.0.0.1
    "http://[2002:7f00:1::1]/",  # 6to4 of 127.0.0.1
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",  # Teredo, client 127.0.0.1
    "http://[::127.0.0.1]/",  # IPv4-compatible (deprecated) of 127.0.0.1
    "http://[::ffff:169.254.169.254]/",
    "http://224.0.0.1/",
    "http://0.0.0.0/",
    "http://240.0.0.1/",
]


@pytest.mark.parametrize("url", [*INTERNAL_URLS, "https://user:pw@hooks.example.com/x"])
def test_an_internal_or_credentialed_url_is_refused_at_creation(api: TestClient, url: str) -> None:
    response = api.post("/api/v1/webhooks", json={"url": url, "event_types": ["scan.created"]})

    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "url"]
    assert api.get("/api/v1/webhooks").json() == []


def test_an_internal_url_is_refused_when_an_endpoint_is_changed(api: TestClient) -> None:
    made = api.post(
        "/api/v1/webhooks",
        json={"url": "https://hooks.example.com/x", "event_types": ["scan.created"]},
    )
    assert made.status_code == 201

    changed = api.patch(
        f"/api/v1/webhooks/{made.json()['id']}", json={"url": "http://169.254.169.254/"}
    )

    assert changed.status_code == 422
    assert changed.json()["detail"][0]["loc"] == ["body", "url"]


def test_an_allowed_network_lets_an_internal_receiver_in(
    api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    networks = [ipaddress.ip_network("10.20.0.0/16")]
    monkeypatch.setattr(get_settings(), "webhook_allowed_networks", networks)
    body = {"event_types": ["scan.created"]}

    inside = api.post("/api/v1/webhooks", json={**body, "url": "http://10.20.3.4:9000/hook"})
    outside = api.post("/api/v1/webhooks", json={**body, "url": "http://10.21.0.1/hook"})

    assert inside.status_code == 201
    assert outside.status_code == 422


def test_the_setting_reads_a_json_list_of_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OFFERTRACK_WEBHOOK_ALLOWED_NETWORKS", '["127.0.0.0/8", "fd00::/8"]')

    settings = Settings()

    assert [str(n) for n in settings.webhook_allowed_networks] == ["127.0.0.0/8", "fd00::/8"]


def test_only_creation_and_rotation_show_the_secret(api: TestClient) -> None:
    made = api.post(
        "/api/v1/webhooks",
        json={"url": "https://hooks.example.com/x", "event_types": ["scan.created"]},
    ).json()
    url = f"/api/v1/webhooks/{made['id']}"

    read = api.get(url).json()
    listed = api.get("/api/v1/webhooks").json()
    patched = api.patch(url, json={"enabled": False}).json()
    rotated = api.post(f"{url}/rotate-secret").json()

    assert made["secret"].startswith("whsec_")
    assert "secret" not in read and "secret" not in listed[0] and "secret" not in patched
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != made["secret"]


# --- at delivery ----------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


def _stored_endpoint(engine: Engine, url: str, secret: str) -> int:
    """An endpoint written straight to the table, as one registered before the rules were."""
    with engine.begin() as connection:
        return int(
            connection.execute(
                insert(WebhookEndpoint)
                .values(url=url, secret=secret, event_types=["conversion.created"], enabled=True)
                .returning(table_of(WebhookEndpoint).c.id)
            ).scalar_one()
        )


def _emit_and_deliver(engine: Engine, settings: Settings) -> list[WebhookDelivery]:
    with Session(engine) as session:
        outbox.emit(session, "conversion.created", {"n": 1})
        session.commit()
    delivery.deliver_batch(engine, settings)
    with Session(engine) as session:
        return list(session.exec(select(WebhookDelivery)).scalars())  # type: ignore[call-overload]


def _resolving(monkeypatch: pytest.MonkeyPatch, name: str, *addresses: str) -> list[str]:
    """Make ``name`` resolve to ``addresses``; returns the log of lookups made."""
    real = socket.getaddrinfo
    lookups: list[str] = []

    def fake(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != name:
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        family = {4: socket.AF_INET, 6: socket.AF_INET6}
        return [
            (family[ipaddress.ip_address(a).version], socket.SOCK_STREAM, 6, "", (a, port))
            for a in addresses
        ]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return lookups


@pytest.mark.concurrency
def test_a_stored_internal_url_is_refused_at_delivery(
    committed: Engine, receiver: Receiver
) -> None:
    _stored_endpoint(committed, receiver.url, "whsec_x")

    (attempt,) = _emit_and_deliver(committed, get_settings())

    assert receiver.events == [] and not attempt.succeeded
    assert attempt.error.startswith("Refused: The URL points to an internal address (127.0.0.1)")


@pytest.mark.concurrency
@pytest.mark.parametrize("url", [*INTERNAL_URLS, "https://user:pw@hooks.example.com/x"])
def test_every_internal_or_credentialed_url_is_refused_at_delivery(
    committed: Engine, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    _stored_endpoint(committed, url, "whsec_x")
    connections: list[object] = []
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: connections.append(a))

    (attempt,) = _emit_and_deliver(committed, get_settings())

    assert not attempt.succeeded and attempt.error.startswith("Refused: The URL "), attempt.error
    assert connections == []  # not even a connection attempt: no port scanning


class _Server:
    """A receiver that counts every request, of any method, and answers each with
    ``status`` and, given one, a ``location``."""

    def __init__(self, status: int, location: str = "") -> None:
        self.hits = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                server.hits += 1
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.concurrency
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_from_the_receiver_is_not_followed(committed: Engine, status: int) -> None:
    internal = _Server(204)  # where a receiver would send us: the metadata service, say
    redirector = _Server(status, location=internal.url)
    try:
        _stored_endpoint(committed, redirector.url, "whsec_x")
        allowed = get_settings().model_copy(
            update={"webhook_allowed_networks": [ipaddress.ip_network("127.0.0.0/8")]}
        )

        (attempt,) = _emit_and_deliver(committed, allowed)
    finally:
        redirector.close()
        internal.close()

    assert redirector.hits == 1 and internal.hits == 0
    assert not attempt.succeeded and attempt.status_code == status
    assert attempt.error == f"HTTP {status}"


@pytest.mark.concurrency
def test_a_name_resolving_to_any_internal_address_is_refused_at_delivery(
    committed: Engine, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = receiver.server.server_port
    _stored_endpoint(committed, f"http://hooks.example.com:{port}/hook", "whsec_x")
    # One public and one internal address: every address is checked, not only the first.
    _resolving(monkeypatch, "hooks.example.com", "93.184.215.14", "127.0.0.1")

    (attempt,) = _emit_and_deliver(committed, get_settings())

    assert receiver.events == [] and not attempt.succeeded
    assert "127.0.0.1" in attempt.error


@pytest.mark.concurrency
def test_delivery_connects_to_the_checked_address_with_one_lookup(
    committed: Engine, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver.secret = "whsec_pinned"
    port = receiver.server.server_port
    _stored_endpoint(committed, f"http://hooks.example.com:{port}/hook", receiver.secret)
    lookups = _resolving(monkeypatch, "hooks.example.com", "127.0.0.1")
    allowed = get_settings().model_copy(
        update={"webhook_allowed_networks": [ipaddress.ip_network("127.0.0.0/8")]}
    )

    (attempt,) = _emit_and_deliver(committed, allowed)

    assert attempt.succeeded, attempt.error
    assert lookups == ["hooks.example.com"]  # resolved once; the connection used that answer
    ((headers, _),) = receiver.requests
    assert headers["Host"] == f"hooks.example.com:{port}"


def test_unresolvable_hosts_and_bad_urls_are_refused_without_a_request() -> None:
    with pytest.raises(netguard.EgressRefused, match="does not resolve"):
        netguard.resolve("http://no-such-host.invalid/", [])
    with pytest.raises(netguard.EgressRefused, match="user name or password"):
        netguard.resolve("http://a:b@hooks.example.com/", [])


@pytest.mark.concurrency
def test_the_staff_form_refuses_an_internal_url_beside_the_field(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    token = as_role(Role.ADMIN)

    refused = web.post(
        "/admin/analytics/webhooks",
        data={
            "url": "http://169.254.169.254/latest/meta-data/",
            "event_types": "scan.created",
            "csrf_token": token,
        },
    )

    assert refused.status_code == 422
    assert 'id="url-error"' in refused.text and "internal address" in refused.text
    assert db.scalars(select(WebhookEndpoint)).first() is None
