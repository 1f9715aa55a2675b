"""GET /{ULID} with its scan logging against bare FastAPI HTML endpoints, served the same way
(uvicorn, one process) and loaded the same way (wrk, 32 connections).

The baselines (bench/bare_app.py) are a ``def`` endpoint, which FastAPI runs in its thread
pool, and an ``async def`` one, which it runs on the event loop and which answers about three
times as many requests; the ratio to each is printed, the second being the stricter. Prints
requests per second and p50/p99 latency for all three, on SQLite and on PostgreSQL (when
reachable). Targets: ratio >= 0.5, p99 < 50 ms. Also checks that every answered request left
its scan event.

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


BASELINES = (("bare def", "app"), ("bare async def", "async_app"))


def compare(
    env: dict[str, str], path: str, ours_label: str, seconds: int, rounds: int, extra: list[str]
) -> list[Load]:
    """Both bare baselines and our server side by side, taking turns, so that a noisy
    neighbour on this shared machine weighs on all alike; each round's ratios compare
    neighbouring runs. Prints the table and returns our runs."""
    runs: dict[str, list[Load]] = {label: [] for label, _ in BASELINES}
    runs[ours_label] = []
    with (
        bare_server(env, "app") as sync_base,
        bare_server(env, "async_app") as async_base,
        offertrack_server(env) as our_base,
    ):
        urls = {"bare def": sync_base + path, "bare async def": async_base + path}
        urls[ours_label] = our_base + path
        for url in urls.values():
            run_wrk(url, 2, extra)  # warm-up
        for _ in range(rounds):
            for label, url in urls.items():
                runs[label].append(run_wrk(url, seconds, extra))
    for label, label_runs in runs.items():
        print(
            f"  {label:<16} {median(r.rps for r in label_runs):8.0f} req/s  "
            f"p50 {median(r.p50_ms for r in label_runs):6.1f} ms  "
            f"p99 {median(r.p99_ms for r in label_runs):6.1f} ms  "
            f"errors {sum(r.errors for r in label_runs)}"
        )
    for label, _ in BASELINES:
        ratios = [o.rps / b.rps for o, b in zip(runs[ours_label], runs[label], strict=True)]
        print(
            f"  ratio to {label:<15} median of rounds {median(ratios):.2f}  "
            f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)}; target >= 0.5)"
        )
    return runs[ours_label]


def bench(name: str, database_url: str | None, seconds: int, rounds: int) -> None:
    env = scratch_env(database_url)
    offer_id = create_offer(env)
    before = count_scans(env, offer_id)
    print(f"\n[{name}] {CONNECTIONS} connections, {rounds} rounds of {seconds} s each server")
    our_runs = compare(env, f"/{offer_id}", "GET /{ULID}", seconds, rounds, [])
    recorded = count_scans(env, offer_id) - before
    answered = sum(run.requests for run in our_runs)
    p99 = median(r.p99_ms for r in our_runs)
    print(f"  p99 of GET /{{ULID}}: {p99:.1f} ms (target < 50 ms)")
    print(
        f"  scan events: {recorded} for {answered} answered requests "
        f"({'all recorded' if recorded >= answered else 'MISSING'}; warm-up runs add some)"
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
