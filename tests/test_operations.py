"""What an operator relies on: probes, metrics, request ids and JSON logs."""

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine
from sqlmodel import Session

from app.config import get_settings
from app.health import Readiness, ReadinessCheck
from app.observability import JsonFormatter, request_id_var
from tests.factories import make_offer

ULIDS = ["01H0WARY2WHGGRF3K72D299T3T", "01H0WARY2WHGGRF3K72D299T3V", "01J0000000000000000000000Z"]


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def test_healthz_answers_without_the_database(client: TestClient) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ok_when_the_database_is_at_head(client: TestClient) -> None:
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.fixture
def readiness(app: FastAPI, client: TestClient) -> Iterator[ReadinessCheck]:
    original = app.state.readiness
    yield original
    app.state.readiness = original


def test_readyz_is_503_when_migrations_are_not_at_head(
    app: FastAPI, client: TestClient, readiness: ReadinessCheck, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readiness, "_heads", frozenset({"ffffffffffff"}))

    response = client.get("/readyz")

    assert response.status_code == 503
    assert "ffffffffffff" in response.json()["detail"]
    assert "offertrack migrate" in response.json()["detail"]
    assert response.headers["retry-after"]


def test_readyz_is_503_when_the_database_is_unreachable(app: FastAPI, client: TestClient) -> None:
    settings = get_settings().model_copy(
        update={"database_url": "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"}
    )
    original = app.state.readiness
    app.state.readiness = ReadinessCheck(settings)
    try:
        started = time.monotonic()
        response = client.get("/readyz")
        elapsed = time.monotonic() - started
    finally:
        app.state.readiness.close()
        app.state.readiness = original

    assert response.status_code == 503
    assert "not reachable" in response.json()["detail"]
    assert "127.0.0.1" not in response.text  # no connection details for whoever asks
    assert elapsed < settings.readiness_timeout_seconds + 1


def test_a_hanging_database_gets_a_503_within_the_timeout_and_probes_do_not_pile_up(
    client: TestClient, readiness: ReadinessCheck, monkeypatch: pytest.MonkeyPatch
) -> None:
    def hang() -> Readiness:
        time.sleep(2)
        return Readiness(True, "ok")

    monkeypatch.setattr(readiness, "_probe", hang)
    monkeypatch.setattr(readiness, "timeout", 0.3)

    started = time.monotonic()
    first = client.get("/readyz")
    first_took = time.monotonic() - started
    second = client.get("/readyz")

    assert first.status_code == 503 and "within 0.3 s" in first.json()["detail"]
    assert first_took < 1.5
    assert second.status_code == 503 and "not finished" in second.json()["detail"]
    time.sleep(2)  # let the hanging probe end before the next test uses the check


def test_requests_are_counted_by_route_template_not_by_path(client: TestClient) -> None:
    for ulid in ULIDS:
        client.get(f"/{ulid}")

    text = client.get("/metrics").text

    assert not any(ulid in text for ulid in ULIDS)
    page_views = [
        (labels, value)
        for labels, value in samples(text, "offertrack_http_requests_total")
        if labels["route"] == "/{code}" and labels["method"] == "GET"
    ]
    assert sum(value for _, value in page_views) >= len(ULIDS)
    latency = samples(text, "offertrack_http_request_duration_seconds_count")
    assert any(labels["route"] == "/{code}" for labels, _ in latency)


def test_campaign_redirects_are_counted_by_their_template(client: TestClient) -> None:
    for slug in ("spring-table-tent", "no-such-code"):
        client.get(f"/c/{slug}", follow_redirects=False)

    text = client.get("/metrics").text

    assert "no-such-code" not in text
    routes = {labels["route"] for labels, _ in samples(text, "offertrack_http_requests_total")}
    assert "/c/{slug}" in routes


def test_static_files_and_unknown_methods_keep_a_bounded_label(client: TestClient) -> None:
    client.get("/static/app.css")
    client.request("PROPFIND", "/static/app.css")
    client.get("/static/nothing-here.css")

    labels = [
        labels
        for labels, _ in samples(client.get("/metrics").text, "offertrack_http_requests_total")
    ]

    assert {"route": "/static", "method": "GET", "status": "200"} in labels
    assert {"route": "/static", "method": "GET", "status": "404"} in labels
    assert {"route": "/static", "method": "other", "status": "405"} in labels
    assert not any("app.css" in label["route"] for label in labels)


def test_the_pdf_metrics_count_renders_and_their_duration(
    api: TestClient, session: Session
) -> None:
    before = samples(api.get("/metrics").text, "offertrack_pdf_renders_total")
    offer = make_offer(session, get_settings())

    assert api.get(f"/api/v1/offers/{offer.id}/pdf").status_code == 200

    text = api.get("/metrics").text
    ok_before = sum(v for labels, v in before if labels["outcome"] == "ok")
    ok_after = sum(
        v
        for labels, v in samples(text, "offertrack_pdf_renders_total")
        if labels["outcome"] == "ok"
    )
    assert ok_after == ok_before + 1
    assert samples(text, "offertrack_pdf_render_duration_seconds_count")[0][1] >= 1


@pytest.mark.concurrency
def test_scans_committed_by_the_scan_writer_are_counted(
    committed: Engine, live_server: str
) -> None:
    with Session(committed, expire_on_commit=False) as session:
        offer = make_offer(session, get_settings(), issued=True)

    def recorded() -> float:
        text = httpx.get(f"{live_server}/metrics").text
        return samples(text, "offertrack_scans_recorded_total")[0][1]

    before = recorded()
    for _ in range(3):
        assert httpx.get(f"{live_server}/{offer.id}").status_code == 200

    assert recorded() == before + 3
    assert samples(httpx.get(f"{live_server}/metrics").text, "offertrack_scans_spooled_total")


def test_every_response_carries_a_request_id(client: TestClient) -> None:
    first = client.get("/").headers["x-request-id"]
    second = client.get("/nope-nope").headers["x-request-id"]

    assert len(first) >= 16 and first != second


def test_a_sane_incoming_request_id_is_echoed(client: TestClient) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a9c2e-0001"})

    assert response.headers["x-request-id"] == "lb-7f3a9c2e-0001"


@pytest.mark.parametrize("sent", ["x", "a b c d e f g h", "<script>alert(1)</script>", "z" * 300])
def test_an_insane_incoming_request_id_is_replaced(client: TestClient, sent: str) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": sent})

    assert response.headers["x-request-id"] != sent
    assert len(response.headers["x-request-id"]) == 32


def test_json_log_lines_carry_the_request_id_and_extra_fields() -> None:
    record = logging.LogRecord("offertrack.access", logging.INFO, "", 0, "GET %s", ("/",), None)
    record.route = "/{code}"
    token = request_id_var.set("req-12345678")
    try:
        line = JsonFormatter().format(record)
    finally:
        request_id_var.reset(token)

    entry = json.loads(line)
    assert entry["message"] == "GET /"
    assert entry["request_id"] == "req-12345678"
    assert entry["route"] == "/{code}"
    assert entry["level"] == "INFO" and entry["time"].endswith("Z")


def test_json_logs_of_a_starting_server_are_plain_json_without_terminal_colours() -> None:
    """What `serve` logs as it starts, in JSON: uvicorn's lines without their terminal-colour
    twin (ANSI escapes in a log store), and without alembic's plugin chatter from reading the
    migrations' head (seven INFO lines per worker at every start)."""
    script = (
        "import logging, logging.config\n"
        "from app.observability import uvicorn_log_config\n"
        "from app.health import migration_heads\n"
        "logging.config.dictConfig(uvicorn_log_config('INFO'))\n"
        "logging.getLogger('uvicorn.error').info('Started server process [%d]', 42,\n"
        "    extra={'color_message': 'Started server process [\\x1b[36m%d\\x1b[0m]'})\n"
        "migration_heads()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )

    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["message"] for line in lines] == ["Started server process [42]"]
    assert "\x1b" not in done.stdout and "color_message" not in lines[0]


def test_json_logs_include_exceptions() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, "", 0, "failed", (), sys.exc_info())
    entry = json.loads(JsonFormatter().format(record))

    assert "ValueError: boom" in entry["exception"]
    assert "request_id" not in entry


@pytest.mark.concurrency
def test_metrics_add_up_over_the_workers_of_serve_workers_2(engine: Engine, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from tests.conftest import _free_port, _wait_until_up

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "OFFERTRACK_VAR_DIR": str(tmp_path), "OFFERTRACK_PUBLIC_BASE_URL": base}
    args = [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", "2"]
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_until_up(base, process, log_path)
            with httpx.Client(base_url=base) as http:
                for _ in range(40):  # new connections: both workers get some of them
                    assert httpx.get(f"{base}/healthz").status_code == 200
                scrapes = [http.get("/metrics").text for _ in range(4)]
        finally:
            process.terminate()
            process.wait(timeout=30)

    for text in scrapes:  # whichever worker answers, it reports the sum of both
        counted = [
            value
            for labels, value in samples(text, "offertrack_http_requests_total")
            if labels["route"] == "/healthz"
        ]
        assert counted == [40.0]


@pytest.mark.concurrency
def test_serve_workers_2_keeps_answering_with_its_data_disk_full(
    engine: Engine, small_disk: Path
) -> None:
    """The workers' metric files are written through memory maps: on a full data disk such a
    write killed each worker with SIGBUS, and every worker started in its place, so the node
    answered nothing while one process on the same disk served on (the spool fills that disk
    when the database is away)."""
    from tests.conftest import _free_port, fill, serving

    port = _free_port()
    env = {
        **os.environ,
        "OFFERTRACK_VAR_DIR": str(small_disk / "var"),
        "OFFERTRACK_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "OFFERTRACK_SECRET_KEY": "a-key-from-the-environment-as-in-production-0123456789",
    }
    (small_disk / "var").mkdir()
    fill(small_disk)

    with serving(env, port, small_disk.parent / "server.log", "--workers", "2") as base:
        with httpx.Client(base_url=base) as http:
            answers = [http.get("/healthz").status_code for _ in range(20)]
            answers += [http.get(f"/{ULIDS[0]}").status_code for _ in range(20)]
            scrape = http.get("/metrics").text

    assert set(answers[:20]) == {200} and set(answers[20:]) == {404}
    assert [
        v
        for labels, v in samples(scrape, "offertrack_http_requests_total")
        if labels["route"] == "/healthz"
    ] == [20.0]


def test_json_mode_logs_one_access_line_per_request_without_the_path(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    from app.main import create_app

    settings = get_settings().model_copy(update={"log_format": "json"})
    caplog.set_level(logging.INFO, logger="offertrack.access")
    with TestClient(create_app(settings), base_url="https://track.example.com") as client:
        response = client.get(f"/{ULIDS[0]}", headers={"X-Request-ID": "req-abcdefgh"})

    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records]
    access = [line for line in lines if line["logger"] == "offertrack.access"]
    assert response.status_code == 404
    assert len(access) == 1
    assert access[0]["route"] == "/{code}" and access[0]["status"] == 404
    assert ULIDS[0] not in json.dumps(access[0])  # the customer's key stays out of the logs
    assert access[0]["duration_ms"] >= 0


@pytest.mark.concurrency
def test_text_mode_access_lines_name_neither_the_client_nor_a_customers_key(
    engine: Engine, tmp_path: Path
) -> None:
    # uvicorn's text access line (on by default) wrote the visitor's address and the whole
    # path: the full ULID that opens an offer, an unsubscribe or delete-my-question token.
    from tests.conftest import _free_port, serving

    port = _free_port()
    env = {**os.environ, "OFFERTRACK_VAR_DIR": str(tmp_path / "var")}
    token = "eyJhbGciOiJIUzI1NiJ9.IjEyMyI.c2lnbmF0dXJlLXBhcnQ"
    log_path = tmp_path / "server.log"
    with serving(env, port, log_path) as base, httpx.Client(base_url=base) as http:
        http.get(f"/{ULIDS[0]}?src=mail&email=maria@example.com")
        http.get(f"/updates/unsubscribe/{token}")

    log = log_path.read_text()
    access = [line for line in log.splitlines() if '"GET /' in line]
    assert len(access) >= 2, log
    assert ULIDS[0] not in log and token not in log and "maria@example.com" not in log
    assert "127.0.0.1:" not in " ".join(access)
    assert any(f'"GET /{ULIDS[0][:4]}… HTTP/1.1" 404' in line for line in access), access


def test_serve_passes_json_logging_to_uvicorn() -> None:
    from app.cli import _log_options

    options = _log_options("json", "INFO")

    assert options["access_log"] is False
    formatter = options["log_config"]["formatters"]["json"]["()"]
    assert formatter == "app.observability.JsonFormatter"


@pytest.mark.concurrency
def test_the_outbox_depth_gauge_shows_events_waiting(
    committed: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ipaddress

    from app.analytics import outbox, webhooks
    from app.analytics.models import WebhookEndpoint
    from app.analytics.schemas import WebhookEndpointCreate
    from app.db import utcnow
    from app.main import create_app

    # A loopback endpoint, allowed as an operator would allow it (webhook egress rules).
    loopback = [ipaddress.ip_network("127.0.0.0/8")]
    monkeypatch.setattr(get_settings(), "webhook_allowed_networks", loopback)
    with Session(committed, expire_on_commit=False) as session:
        data = {"url": "http://127.0.0.1:9/hook", "event_types": ["conversion.created"]}
        endpoint = webhooks.create_endpoint(
            session, WebhookEndpointCreate.model_validate(data), actor="test"
        )
        # Disabled after failures: its events are queued and wait for it, unsent.
        disabled = session.get(WebhookEndpoint, endpoint.id)
        assert disabled is not None
        disabled.enabled, disabled.disabled_at = False, utcnow()
        session.add(disabled)
        session.commit()
        for n in range(3):
            outbox.emit(session, "conversion.created", {"n": n})
        session.commit()

    settings = get_settings().model_copy(
        update={"webhook_worker": True, "webhook_poll_seconds": 0.05}
    )
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 20
        while True:
            depth = samples(client.get("/metrics").text, "offertrack_webhook_outbox_depth")
            if depth == [({}, 3.0)]:
                break
            assert time.monotonic() < deadline, f"the gauge says {depth}"
            time.sleep(0.05)


def test_a_scan_spooled_while_the_database_is_down_is_counted(
    client: TestClient, session: Session, tmp_path: Path
) -> None:
    from app.db import make_engine
    from app.tracking.dependencies import get_scan_log
    from app.tracking.scanlog import ScanWriter
    from app.tracking.spool import ScanSpool

    offer = make_offer(session, get_settings(), issued=True)

    def spooled() -> float:
        return samples(client.get("/metrics").text, "offertrack_scans_spooled_total")[0][1]

    # Nothing listens on port 9: the scan writer's commit fails, so the row goes to the spool.
    engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:9/offertrack")
    scan_log = ScanWriter(engine, spool=ScanSpool(tmp_path / "spool"))
    client.app.dependency_overrides[get_scan_log] = lambda: scan_log  # type: ignore[attr-defined]
    before = spooled()
    try:
        response = client.get(f"/{offer.id}")
        after = spooled()
    finally:
        scan_log.close()
        engine.dispose()

    assert response.status_code == 200
    assert after == before + 1
    depth = samples(client.get("/metrics").text, "offertrack_scan_spool_bytes")
    assert depth and depth[0][1] > 0  # the spool's depth: the line waits for the database
    (spool_file,) = (tmp_path / "spool").glob("*.jsonl")
    assert offer.id in spool_file.read_text()


@pytest.mark.concurrency
def test_the_scan_writer_spools_to_the_configured_directory_and_times_its_commits(
    committed: Engine, tmp_path: Path
) -> None:
    from app.main import create_app

    with Session(committed, expire_on_commit=False) as session:
        offer = make_offer(session, get_settings(), issued=True)
    settings = get_settings().model_copy(update={"spool_dir": tmp_path / "other-disk"})

    def commits(client: TestClient) -> float:
        text = client.get("/metrics").text
        return samples(text, "offertrack_scan_commit_duration_seconds_count")[0][1]

    with TestClient(create_app(settings)) as client:
        assert client.app.state.scan_log._spool.directory == tmp_path / "other-disk"  # type: ignore[attr-defined]
        before = commits(client)
        assert client.get(f"/{offer.id}").status_code == 200
        assert commits(client) == before + 1
