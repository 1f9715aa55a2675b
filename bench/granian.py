"""Issue 13's trial: the tracking page served by granian instead of uvicorn, the same app
(``app.main:create_app``), one process each, loaded the same way (wrk, 32 connections), in
alternating rounds against the bare ``async def`` baseline under uvicorn. Prints req/s, p50,
p99 and the ratios granian/uvicorn, and checks that every answered view left its scan event.

granian is not a dependency of OfferTrack (it was tried, see the README's Scaling section):

    .venv/bin/pip install granian && .venv/bin/python bench/granian.py [--sqlite-only]
"""

import argparse
import shutil
import sys
from contextlib import AbstractContextManager
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._servers import (  # noqa: E402
    PG_URL,
    bare_server,
    free_port,
    offertrack_server,
    postgres_available,
    scratch_env,
    server,
)
from bench.tracking import CONNECTIONS, Load, count_scans, create_offer, run_wrk  # noqa: E402


def granian_server(env: dict[str, str]) -> AbstractContextManager[str]:
    port = free_port()
    env = {**env, "OFFERTRACK_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}
    granian = str(Path(sys.executable).with_name("granian"))
    args = [
        granian,
        "--interface",
        "asgi",
        "--factory",
        "--loop",
        "uvloop",
        "--no-ws",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--no-access-log",
        "app.main:create_app",
    ]
    return server(args, env, port)


def bench(name: str, database_url: str | None, seconds: int, rounds: int) -> None:
    env = scratch_env(database_url)
    offer_id = create_offer(env)
    before = count_scans(env, offer_id)
    path = f"/{offer_id}"
    print(f"\n[{name}] {CONNECTIONS} connections, {rounds} rounds of {seconds} s each server")
    runs: dict[str, list[Load]] = {"bare async def": [], "uvicorn": [], "granian": []}
    with (
        bare_server(env, "async_app") as bare,
        offertrack_server(env) as uvicorn_base,
        granian_server(env) as granian_base,
    ):
        urls = {"bare async def": bare, "uvicorn": uvicorn_base, "granian": granian_base}
        for base in urls.values():
            run_wrk(base + path, 2)  # warm-up
        for _ in range(rounds):
            for label, base in urls.items():
                runs[label].append(run_wrk(base + path, seconds))
    for label, label_runs in runs.items():
        print(
            f"  {label:<15} {median(r.rps for r in label_runs):8.0f} req/s  "
            f"p50 {median(r.p50_ms for r in label_runs):6.1f} ms  "
            f"p99 {median(r.p99_ms for r in label_runs):6.1f} ms  "
            f"errors {sum(r.errors for r in label_runs)}"
        )
    pairs = [
        ("granian / uvicorn", "granian", "uvicorn"),
        ("uvicorn / bare async def", "uvicorn", "bare async def"),
        ("granian / bare async def", "granian", "bare async def"),
    ]
    for title, ours, base in pairs:
        ratios = [o.rps / b.rps for o, b in zip(runs[ours], runs[base], strict=True)]
        print(
            f"  {title:<26} median {median(ratios):.2f}  "
            f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)})"
        )
    answered = sum(r.requests for label in ("uvicorn", "granian") for r in runs[label])
    recorded = count_scans(env, offer_id) - before
    print(
        f"  scan events: {recorded} for {answered} answered requests "
        f"({'all recorded' if recorded >= answered else 'MISSING'}; warm-up runs add some)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed (apt-get install wrk)")
    if not Path(sys.executable).with_name("granian").exists():
        sys.exit("granian is not installed here: .venv/bin/pip install granian")
    bench("SQLite", None, args.seconds, args.rounds)
    if not args.sqlite_only and postgres_available():
        bench("PostgreSQL", PG_URL, args.seconds, args.rounds)


if __name__ == "__main__":
    main()
