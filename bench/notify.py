"""Order updates to 1,000 subscribers: the API answers at once, the worker sends the mails.

Serves OfferTrack (uvicorn, one process, its mail worker running) on a scratch database with
an order that has 1,000 confirmed e-mail subscribers and another with none, and an SMTP server
(aiosmtpd) in this process. The mail worker runs as `offertrack worker` beside the server (as
a deployment with `--no-worker` runs it), or with --in-process-worker as a thread of the server
(`serve`'s default), where it shares the server's interpreter lock. Posts stage updates with a public note through the API to both,
alternately, and times each answer; then waits until every mail has reached the SMTP server.

Targets: the median answer for the order with 1,000 subscribers within 100 ms (its ratio to
the order without subscribers near 1: the fan-out happens in the worker, not the request), and
all 1,000 mails of each update delivered, each once.

    .venv/bin/python bench/notify.py [--updates 5] [--subscribers 1000] [--database-url URL]

Without --database-url the scratch database is SQLite; a PostgreSQL URL's public schema is
emptied.
"""

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiosmtpd.controller import Controller  # noqa: E402
from sqlalchemy import insert  # noqa: E402
from sqlmodel import Session  # noqa: E402

from bench._servers import free_port, scratch_env, server  # noqa: E402


class CountingInbox:
    """The SMTP server's handler: counts each (recipient, Message-ID) it accepts."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[tuple[str, str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message_id = ""
        for line in envelope.content.split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                message_id = line.split(b":", 1)[1].strip().decode()
                break
        with self.lock:
            self.received.extend((rcpt, message_id) for rcpt in envelope.rcpt_tos)
        return "250 OK"


def prepare(env: dict[str, str], subscribers: int) -> tuple[str, str, str]:
    """An API token, an order with ``subscribers`` confirmed subscribers and one with none."""
    import os

    os.environ.update(env)
    from app.auth.service import create_api_key
    from app.config import get_settings
    from app.db import get_engine, utcnow
    from app.notifications.models import OrderSubscription
    from app.offers import service as offers_service
    from app.offers.schemas import OfferCreate
    from app.subscribers import wire
    from app.tracking import service as tracking_service

    wire()
    settings = get_settings()
    data = {
        "customer": {"company": "Acme Hellas SA", "contact_name": "Maria P."},
        "currency": "EUR",
        "valid_until": "2999-12-31",
        "lines": [{"description": "Pump", "quantity": "1", "unit_price": "10", "vat_rate": "24"}],
    }
    with Session(get_engine(), expire_on_commit=False) as session:
        _, token = create_api_key(session, "bench", actor="bench")
        orders = []
        for _ in range(2):
            offer = offers_service.create_offer(
                session, OfferCreate.model_validate(data), actor="bench", settings=settings
            )
            offers_service.issue_offer(session, offer.id, actor="bench", settings=settings)
            orders.append(
                tracking_service.activate_offer(session, offer.id, actor="bench", settings=settings)
            )
        now = utcnow()
        rows = [
            {
                "offer_id": orders[0].id,
                "email": f"buyer{n:04d}@example.com",
                "created_at": now,
                "confirmed_at": now,
            }
            for n in range(subscribers)
        ]
        session.execute(insert(OrderSubscription), rows)
        session.commit()
    return token, orders[0].tracking_id, orders[1].tracking_id


@contextmanager
def worker_process(env: dict[str, str], skip: bool) -> Iterator[None]:
    """`offertrack worker` (webhooks and mails), as a deployment runs it beside the server."""
    if skip:
        yield
        return
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        process.terminate()
        process.wait(timeout=20)


def post_update(base: str, token: str, code: str, note: str) -> float:
    body = json.dumps({"stage": "In production", "public_note": note}).encode()
    request = urllib.request.Request(
        f"{base}/api/v1/orders/{code}/updates",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
        assert response.status == 201, response.status
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--updates", type=int, default=5)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument(
        "--in-process-worker",
        action="store_true",
        help="the mail worker as a thread of the server (default: `offertrack worker` beside it)",
    )
    args = parser.parse_args()

    inbox = CountingInbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    try:
        env = scratch_env(args.database_url)
        env.update(
            OFFERTRACK_SMTP_URL=f"smtp://127.0.0.1:{smtp.port}",
            OFFERTRACK_WEBHOOK_WORKER="true",
            OFFERTRACK_MAIL_RETRY_BASE_SECONDS="1",
        )
        token, crowded, empty = prepare(env, args.subscribers)
        print(
            f"database: {env['OFFERTRACK_DATABASE_URL'].split('://')[0]}, "
            f"{args.subscribers} confirmed subscribers, {args.updates} updates each"
        )
        port = free_port()
        env["OFFERTRACK_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--no-access-log"]
        if not args.in_process_worker:
            command.append("--no-worker")
        print("mail worker:", "thread of the server" if args.in_process_worker else "own process")
        with server(command, env, port) as base, worker_process(env, args.in_process_worker):
            post_update(base, token, empty, "warm-up")  # first request: imports, connections
            crowded_ms: list[float] = []
            empty_ms: list[float] = []
            started = time.monotonic()
            for n in range(args.updates):
                # Alternately first: neither order always meets the worker busiest.
                pair = [(crowded, crowded_ms), (empty, empty_ms)]
                for code, times in pair if n % 2 == 0 else reversed(pair):
                    times.append(post_update(base, token, code, f"Batch {n} machined"))
                time.sleep(0.5)
            expected = args.updates * args.subscribers
            while len(inbox.received) < expected and time.monotonic() - started < args.timeout:
                time.sleep(0.2)
            drained = time.monotonic() - started
            time.sleep(2)  # anything sent twice would arrive now
        report(inbox, crowded_ms, empty_ms, expected, drained)
    finally:
        smtp.stop()


def report(
    inbox: CountingInbox, crowded: list[float], empty: list[float], expected: int, drained: float
) -> None:
    median_crowded, median_empty = statistics.median(crowded), statistics.median(empty)
    received = len(inbox.received)
    unique = len(set(inbox.received))
    print(
        f"stage update, order with subscribers: median {median_crowded:.1f} ms "
        f"(max {max(crowded):.1f} ms)  target < 100 ms: "
        f"{'PASS' if median_crowded < 100 else 'FAIL'}"
    )
    print(
        f"stage update, order without:          median {median_empty:.1f} ms "
        f"(max {max(empty):.1f} ms)"
    )
    print(f"ratio with/without subscribers: {median_crowded / median_empty:.2f}")
    print(
        f"mails received {received} of {expected}, distinct {unique}, "
        f"in {drained:.1f} s ({received / drained:.0f} mails/s): "
        f"{'PASS' if received == unique == expected else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
