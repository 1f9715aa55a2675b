"""Two nodes (two ``offertrack serve`` processes, each with its own data directory) behind
HAProxy with deploy/haproxy.cfg, on one PostgreSQL and one Redis: what one node knows, the
other must know within a second (``pytest -m nodes``; the PostgreSQL run of .ci/run)."""

import http.client
import json
import random
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from app.analytics.models import WebhookOutbox
from app.auth.service import create_api_key
from app.config import ROOT_DIR
from tests.analytics.test_webhooks import Receiver
from tests.deploy.processes import clean_environment, free_port, require_tool, running

pytestmark = [pytest.mark.nodes, pytest.mark.concurrency]

SECOND = 1.0


@dataclass
class Cluster:
    balancer: str
    nodes: tuple[str, str]
    env: dict[str, str]


@dataclass
class Answer:
    status: int
    body: str


def request(
    url: str, *, token: str = "", body: object = None, client: str = "", method: str = ""
) -> Answer:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if client:
        headers["X-Forwarded-For"] = client
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=headers, method=method or None)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return Answer(response.status, response.read().decode())
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.read().decode())


def within(seconds: float, condition: Callable[[], bool]) -> float:
    """How long ``condition`` took to hold; fails past ``seconds``."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < seconds, f"not within {seconds} s"
        time.sleep(0.02)
    return time.monotonic() - start


@pytest.fixture(scope="module")
def cluster(
    engine: Engine, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    if engine.dialect.name != "postgresql":
        pytest.skip("several nodes share PostgreSQL: the PostgreSQL run of the suite")
    haproxy = require_tool("haproxy", "haproxy")
    tmp = tmp_path_factory.mktemp("nodes")
    ports = [free_port() for _ in range(3)]
    balancer = f"http://127.0.0.1:{ports[0]}"
    env = clean_environment(
        OFFERTRACK_DATABASE_URL=engine.url.render_as_string(hide_password=False),
        OFFERTRACK_REDIS_URL=redis_url,
        OFFERTRACK_SECRET_KEY="nodes-test-" + uuid.uuid4().hex * 2,
        OFFERTRACK_PUBLIC_BASE_URL=balancer,
        OFFERTRACK_TRUSTED_PROXIES='["127.0.0.1"]',
        # Long enough that only an invalidation explains a page changing within a second.
        OFFERTRACK_PAGE_CACHE_SECONDS="30",
        OFFERTRACK_MISS_LIMIT_PER_MINUTE="6",
        OFFERTRACK_WEBHOOK_POLL_SECONDS="0.1",
        OFFERTRACK_WEBHOOK_WORKER="true",
        OFFERTRACK_WEBHOOK_ALLOWED_NETWORKS='["127.0.0.0/8"]',
        OFFERTRACK_PDF_WORKERS="1",
    )
    nodes = tuple(f"http://127.0.0.1:{port}" for port in ports[1:])
    with (
        _node(env, tmp / "a", ports[1]),
        _node(env, tmp / "b", ports[2]),
        running(
            [haproxy, "-db", "-f", str(ROOT_DIR / "deploy" / "haproxy.cfg")],
            env={
                **env,
                "OFFERTRACK_LB_BIND": f"127.0.0.1:{ports[0]}",
                "OFFERTRACK_NODE_A": f"127.0.0.1:{ports[1]}",
                "OFFERTRACK_NODE_B": f"127.0.0.1:{ports[2]}",
            },
            cwd=tmp,
            log=tmp / "haproxy.log",
            ready_url=balancer + "/readyz",
        ),
    ):
        yield Cluster(balancer, (nodes[0], nodes[1]), env)


def _node(env: dict[str, str], var_dir: Path, port: int) -> AbstractContextManager[Popen[bytes]]:
    var_dir.mkdir()
    command = [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--no-access-log"]
    return running(
        command,
        env={**env, "OFFERTRACK_VAR_DIR": str(var_dir)},
        cwd=var_dir,
        log=var_dir / "serve.log",
        ready_url=f"http://127.0.0.1:{port}/readyz",
    )


@pytest.fixture
def token(committed: Engine) -> str:
    with Session(committed) as session:
        _, token = create_api_key(session, "nodes-test", actor="tests")
    return token


def _order(cluster: Cluster, token: str) -> str:
    """An activated order, made through the balancer; its tracking ID."""
    body = {
        "customer": {"company": "Nodes GmbH", "contact_name": "N. Ode", "email": "n@example.com"},
        "lines": [
            {"description": "Pump", "quantity": "1", "unit_price": "10.00", "vat_rate": "19"}
        ],
    }
    created = request(cluster.balancer + "/api/v1/offers", token=token, body=body)
    assert created.status == 201, created.body
    offer_id = json.loads(created.body)["id"]
    for step in ("issue", "activate"):
        answer = request(
            f"{cluster.balancer}/api/v1/offers/{offer_id}/{step}", token=token, body={}
        )
        assert answer.status == 200, answer.body
    return str(json.loads(answer.body)["tracking_id"])


def test_a_stage_update_on_one_node_shows_on_both_within_a_second(
    cluster: Cluster, token: str
) -> None:
    tracking_id = _order(cluster, token)
    note = f"Left the warehouse {uuid.uuid4().hex[:8]}"
    for node in cluster.nodes:  # both now hold the page in their cache
        page = request(f"{node}/{tracking_id}")
        assert page.status == 200 and note not in page.body
    update = {"stage": "shipped", "public_note": note}
    posted = request(
        f"{cluster.nodes[0]}/api/v1/orders/{tracking_id}/updates", token=token, body=update
    )
    assert posted.status == 201, posted.body
    for node in cluster.nodes:

        def shows_note(node: str = node) -> bool:
            return note in request(f"{node}/{tracking_id}").body

        within(SECOND, shows_note)


def test_a_revoked_key_is_refused_by_both_nodes_within_a_second(
    cluster: Cluster, token: str
) -> None:
    for node in cluster.nodes:  # both have verified the key and keep it in memory
        assert request(f"{node}/api/v1/offers", token=token).status == 200
    revoke = subprocess.run(
        [sys.executable, "-m", "app.cli", "revoke-api-key", "nodes-test"],
        env=cluster.env,
        cwd=ROOT_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert revoke.returncode == 0, revoke.stderr
    for node in cluster.nodes:

        def refuses_key(node: str = node) -> bool:
            return request(f"{node}/api/v1/offers", token=token).status == 401

        within(SECOND, refuses_key)


def test_the_miss_limit_holds_across_nodes(cluster: Cluster) -> None:
    client = f"198.51.100.{uuid.uuid4().int % 250 + 1}"
    for node in (*[cluster.nodes[0]] * 3, *[cluster.nodes[1]] * 3):  # 6 misses, the limit
        assert request(f"{node}/0000000000", client=client).status == 404
    refused = request(f"{cluster.balancer}/0000000000", client=client)
    assert refused.status == 429
    for node in cluster.nodes:
        assert request(f"{node}/0000000000", client=client).status == 429
    assert request(f"{cluster.balancer}/0000000000", client="198.51.100.255").status == 404


def test_a_forged_forwarded_address_does_not_escape_the_miss_limit(cluster: Cluster) -> None:
    """A visitor who sends a fresh X-Forwarded-For with every guess is still one visitor: HAProxy
    adds its own line with the real address after the forged one, and that line counts."""
    visitor = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(1, 254)}"
    host, port = cluster.balancer.removeprefix("http://").split(":")

    def guess(n: int) -> int:
        connection = http.client.HTTPConnection(host, int(port), source_address=(visitor, 0))
        try:
            connection.request("GET", "/0000000000", headers={"X-Forwarded-For": f"203.0.113.{n}"})
            return connection.getresponse().status
        finally:
            connection.close()

    assert [guess(n) for n in range(1, 8)] == [404] * 6 + [429]


def test_the_balancer_keeps_metrics_inside_and_each_node_serves_its_own(cluster: Cluster) -> None:
    assert request(f"{cluster.balancer}/metrics").status == 404
    for node in cluster.nodes:
        answer = request(f"{node}/metrics")
        assert answer.status == 200 and "offertrack_http_requests_total" in answer.body


def _outbox_event_ids(engine: Engine) -> set[str]:
    with Session(engine) as session:
        return set(session.scalars(select(col(WebhookOutbox.event_id))))


def test_each_webhook_event_is_delivered_once_by_the_workers_of_both_nodes(
    cluster: Cluster, token: str, committed: Engine
) -> None:
    receiver = Receiver()
    try:
        endpoint = request(
            cluster.balancer + "/api/v1/webhooks",
            token=token,
            body={"url": receiver.url, "event_types": ["scan.created", "order.stage_changed"]},
        )
        assert endpoint.status == 201, endpoint.body
        receiver.secret = json.loads(endpoint.body)["secret"]
        tracking_id = _order(cluster, token)
        for i in range(40):  # round robin: scans recorded by both nodes
            assert request(f"{cluster.balancer}/{tracking_id}?src=n{i}").status == 200
        request(
            f"{cluster.balancer}/api/v1/orders/{tracking_id}/updates",
            token=token,
            body={"stage": "in_production"},
        )
        # scan.created rows come from each node's scan feed, a moment after the scans commit
        # (longer where an id gap on PostgreSQL makes the feed wait for a transaction).
        within(30, lambda: len(_outbox_event_ids(committed)) >= 41)
        # Compared with the outbox as it ends: an event queued after the first 41 (the day's
        # offer.scanned alert from a later feed round) is delivered too, and must be counted.
        within(60, lambda: receiver.ids() >= _outbox_event_ids(committed))
        time.sleep(1)  # a second delivery would come now, after leases end
        expected = _outbox_event_ids(committed)
    finally:
        receiver.close()
    assert len(receiver.events) == len(receiver.ids()) == len(expected)
    assert receiver.bad_signatures == 0
