"""GET /{ULID} with its scan logging against a bare FastAPI HTML endpoint, served the same way
(uvicorn, one process) and loaded the same way (wrk, 32 connections).

Prints requests per second and p50/p99 latency for both, and the ratio, on SQLite and on
PostgreSQL (when reachable). Targets: ratio >= 0.5, p99 < 50 ms. Also checks that every answered
request left its scan event.

    .venv/bin/python bench/tracking.py [--seconds 10]
"""

import argparse
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._servers import PG_URL, bare_server, offertrack_server, postgres_available, scratch_env  # noqa: E402

CONNECTIONS = 32


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url: str, seconds: int, extra: list[str] | None = None) -> Load:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", *(extra or []), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
    p50 = re.match(r"([\d.]+)(\w+)", latency["50"])
    p99 = re.match(r"([\d.]+)(\w+)", latency["99"])
    assert p50 and p99
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    return Load(
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        p50_ms=_ms(*p50.groups()),
        p99_ms=_ms(*p99.groups()),
        requests=int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        errors=(int(errors.group(1)) if errors else 0)
        + (sum(map(int, socket_errors.groups())) if socket_errors else 0),
    )


def _run_python(env: dict[str, str], code: str) -> str:
    """Run ``code`` against the scratch database, as a separate process like the server."""
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=root
    )
    return done.stdout.strip()


def create_offer(env: dict[str, str]) -> str:
    return _run_python(
        env,
        "from sqlmodel import Session\n"
        "from app.db import get_engine\nfrom app.config import get_settings\n"
        "from tests.factories import make_offer\n"
        "with Session(get_engine(), expire_on_commit=False) as s:\n"
        "    print(make_offer(s, get_settings(), issued=True).id)\n",
    )


def count_scans(env: dict[str, str], offer_id: str) -> int:
    return int(
        _run_python(
            env,
            "from sqlmodel import Session, select, func\nfrom app.db import get_engine\n"
            "from app.tracking.models import ScanEvent\n"
            "with Session(get_engine()) as s:\n"
            "    print(s.exec(select(func.count()).select_from(ScanEvent)"
            f".where(ScanEvent.offer_id == '{offer_id}')).one())\n",
        )
    )


def bench(name: str, database_url: str | None, seconds: int) -> None:
    env = scratch_env(database_url)
    offer_id = create_offer(env)
    with bare_server(env) as base:
        run_wrk(f"{base}/{offer_id}", 2)  # warm-up
        bare = run_wrk(f"{base}/{offer_id}", seconds)
    with offertrack_server(env) as base:
        run_wrk(f"{base}/{offer_id}", 2)
        before = count_scans(env, offer_id)
        ours = run_wrk(f"{base}/{offer_id}", seconds)
        recorded = count_scans(env, offer_id) - before
    print(f"\n[{name}] {CONNECTIONS} connections, {seconds} s each")
    print(
        f"  bare endpoint   {bare.rps:8.0f} req/s  p50 {bare.p50_ms:6.1f} ms  p99 {bare.p99_ms:6.1f} ms"
    )
    print(
        f"  GET /{{ULID}}     {ours.rps:8.0f} req/s  p50 {ours.p50_ms:6.1f} ms  p99 {ours.p99_ms:6.1f} ms"
        f"  errors {ours.errors}"
    )
    print(f"  ratio (ours / bare): {ours.rps / bare.rps:.2f}   (target >= 0.5; p99 target < 50 ms)")
    print(
        f"  scan events: {recorded} for {ours.requests} answered requests "
        f"({'all recorded' if recorded >= ours.requests else 'MISSING'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install -y wrk")
    bench("SQLite", None, args.seconds)
    if args.sqlite_only:
        return
    if postgres_available():
        bench("PostgreSQL", PG_URL, args.seconds)
    else:
        print(f"\n[PostgreSQL] skipped: {PG_URL} not reachable")


if __name__ == "__main__":
    main()
