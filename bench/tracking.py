"""GET /{ULID} with its scan logging against a bare FastAPI HTML endpoint, served the same way
(uvicorn, one process) and loaded the same way (wrk, 32 connections).

Prints requests per second and p50/p99 latency for both, and the ratio, on SQLite and on
PostgreSQL (when reachable). Targets: ratio >= 0.5, p99 < 50 ms. Also checks that every answered
request left its scan event.

    .venv/bin/python bench/tracking.py [--seconds 5] [--rounds 3] [--sqlite-only]
"""

import argparse
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from statistics import median

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
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=root
    )
    if done.returncode:
        sys.exit(f"scratch database snippet failed:\n{done.stderr}")
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


def bench(name: str, database_url: str | None, seconds: int, rounds: int) -> None:
    env = scratch_env(database_url)
    offer_id = create_offer(env)
    bare_runs: list[Load] = []
    our_runs: list[Load] = []
    # Both servers run side by side and take turns, so that a noisy neighbour on this shared
    # machine weighs on both sides alike; each round's ratio compares neighbouring runs.
    with bare_server(env) as bare_base, offertrack_server(env) as our_base:
        bare_url, our_url = f"{bare_base}/{offer_id}", f"{our_base}/{offer_id}"
        run_wrk(bare_url, 2)  # warm-up
        run_wrk(our_url, 2)
        before = count_scans(env, offer_id)
        for _ in range(rounds):
            bare_runs.append(run_wrk(bare_url, seconds))
            our_runs.append(run_wrk(our_url, seconds))
        recorded = count_scans(env, offer_id) - before
    answered = sum(run.requests for run in our_runs)
    ratios = [ours.rps / bare.rps for ours, bare in zip(our_runs, bare_runs, strict=True)]
    print(f"\n[{name}] {CONNECTIONS} connections, {rounds} rounds of {seconds} s each side")
    for label, runs in (("bare endpoint", bare_runs), ("GET /{ULID}  ", our_runs)):
        print(
            f"  {label}  {median(r.rps for r in runs):8.0f} req/s  "
            f"p50 {median(r.p50_ms for r in runs):6.1f} ms  "
            f"p99 {median(r.p99_ms for r in runs):6.1f} ms  errors {sum(r.errors for r in runs)}"
        )
    print(
        f"  ratio (ours / bare), median of rounds: {median(ratios):.2f}  "
        f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)}; target >= 0.5; p99 target < 50 ms)"
    )
    print(
        f"  scan events: {recorded} for {answered} answered requests "
        f"({'all recorded' if recorded >= answered else 'MISSING'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="length of one run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install -y wrk")
    bench("SQLite", None, args.seconds, args.rounds)
    if args.sqlite_only:
        return
    if postgres_available():
        bench("PostgreSQL", PG_URL, args.seconds, args.rounds)
    else:
        print(f"\n[PostgreSQL] skipped: {PG_URL} not reachable")


if __name__ == "__main__":
    main()
