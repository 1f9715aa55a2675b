"""A burst of writes against a freshly started `offertrack serve`: N clients at once, each
creating an offer (POST /api/v1/offers), issuing it and fetching its PDF (rendered and stored
on first request), as a sales tool syncing a batch of quotations would.

Every answer must be 2xx (a 503 counts as a failure here: the point is that short write
transactions let them all through). Prints p50/p99 of each step and of the whole flow, and
the total time. On SQLite and on PostgreSQL (when reachable; OFFERTRACK_BENCH_POSTGRES_URL,
whose public schema is emptied).

    .venv/bin/python bench/writes.py [--clients 200] [--sqlite-only]
"""

import argparse
import http.client
import json
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._servers import PG_URL, ROOT, offertrack_server, postgres_available, scratch_env  # noqa: E402

TARGET_SECONDS = 30.0
STEPS = ("create", "issue", "pdf")


def offer_body(client: int) -> bytes:
    offer = {
        "customer": {"company": f"Burst Client {client} GmbH", "email": "buyer@example.com"},
        "currency": "EUR",
        "valid_until": "2999-12-31",
        "lines": [
            {"description": f"Item {n}", "quantity": "2", "unit_price": "19.90", "vat_rate": "19"}
            for n in range(5)
        ],
    }
    return json.dumps(offer).encode()


@dataclass
class Flow:
    statuses: list[int] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    total: float = 0.0
    error: str = ""

    @property
    def ok(self) -> bool:
        return (
            not self.error
            and len(self.statuses) == 3
            and all(200 <= s < 300 for s in self.statuses)
        )


def _call(
    base: str, method: str, path: str, token: str, body: bytes | None = None
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(base.removeprefix("http://"), timeout=120)
    headers = {"Authorization": f"Bearer {token}"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def one_flow(base: str, token: str, client: int, start: threading.Barrier) -> Flow:
    """Create, issue, PDF: what one client does, timed step by step."""
    flow = Flow()
    start.wait()
    began = time.perf_counter()
    try:
        offer_id = ""
        for step in STEPS:
            t0 = time.perf_counter()
            if step == "create":
                status, body = _call(base, "POST", "/api/v1/offers", token, offer_body(client))
                offer_id = json.loads(body).get("id", "") if status == 201 else ""
            elif step == "issue":
                status, body = _call(base, "POST", f"/api/v1/offers/{offer_id}/issue", token)
            else:
                status, body = _call(base, "GET", f"/api/v1/offers/{offer_id}/pdf", token)
                if status == 200 and not body.startswith(b"%PDF"):
                    status = 0
            flow.seconds[step] = time.perf_counter() - t0
            flow.statuses.append(status)
            if not 200 <= status < 300:
                flow.error = f"{step}: {body[:300]!r}"  # what the server said, to tell why
                break
    except OSError as exc:
        flow.error = f"{type(exc).__name__}: {exc}"
    flow.total = time.perf_counter() - began
    return flow


def burst(base: str, token: str, clients: int) -> tuple[list[Flow], float]:
    """``clients`` flows started at the same moment; the flows and the wall time."""
    start = threading.Barrier(clients + 1)
    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(one_flow, base, token, n, start) for n in range(clients)]
        start.wait()
        began = time.perf_counter()
        flows = [future.result() for future in futures]
    return flows, time.perf_counter() - began


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] if ordered else 0.0


def api_token(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "create-api-key", "bench-writes"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def report(label: str, flows: list[Flow], wall: float) -> bool:
    ok = sum(flow.ok for flow in flows)
    print(f"\n{label}: {len(flows)} clients, create + issue + PDF each")
    print(f"  all 2xx: {ok}/{len(flows)}   total {wall:.1f} s (target {TARGET_SECONDS:g} s)")
    failures = Counter(
        flow.error or f"{STEPS[len(flow.statuses) - 1]} {flow.statuses[-1]}"
        for flow in flows
        if not flow.ok
    )
    for failure, count in failures.most_common(5):
        print(f"  failed: {count} x {failure}")
    for step in (*STEPS, "flow"):
        times = [
            f.total if step == "flow" else f.seconds[step]
            for f in flows
            if step == "flow" or step in f.seconds
        ]
        print(
            f"  {step:<7} p50 {percentile(times, 50):6.2f} s   p99 {percentile(times, 99):6.2f} s"
        )
    return ok == len(flows) and wall <= TARGET_SECONDS


def run(label: str, database_url: str | None, clients: int) -> bool:
    env = scratch_env(database_url)
    token = api_token(env)
    with offertrack_server(env) as base:  # freshly started: nothing warm but what start-up warms
        flows, wall = burst(base, token, clients)
        return report(label, flows, wall)  # before the server is stopped, which may be slow


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--postgres-only", action="store_true")
    args = parser.parse_args()
    results = [] if args.postgres_only else [run("SQLite", None, args.clients)]
    if not args.sqlite_only:
        if postgres_available():
            results.append(run("PostgreSQL", PG_URL, args.clients))
        else:
            print(f"\nPostgreSQL at {PG_URL} is not reachable: skipped")
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
