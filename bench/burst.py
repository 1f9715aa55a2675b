"""A burst of tracking-page views against `offertrack serve`: 50,000 requests at 64
connections (wrk), spread over 50 issued offers, as a phone's QR scan.

Reports errors, throughput and latency, the server's resident memory sampled every 50 ms
(after warm-up, peak, at the end; the server process alone and with its PDF workers), and
checks afterwards that every 200 left its scan event. On SQLite and on PostgreSQL (when
reachable; OFFERTRACK_BENCH_POSTGRES_URL, whose public schema is emptied).

    .venv/bin/python bench/burst.py [--requests 50000] [--connections 64] [--sqlite-only]
"""

import argparse
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._servers import PG_URL, free_port, postgres_available, scratch_env, started_server  # noqa: E402
from bench.tracking import _run_python  # noqa: E402

OFFERS = 50
THREADS = 2
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"

# wrk runs for a duration; this script makes each thread stop after its share of responses
# and leave a marker file, on which the caller ends wrk early (SIGINT: wrk then reports).
# It also counts answers by status (wrk itself only counts "non-2xx or 3xx").
WRK_SCRIPT = """
local ids = {%(ids)s}
local sent = 0
ok, other, done_count = 0, 0, 0
local limit = %(per_thread)d
local threads = {}
wrk.headers["User-Agent"] = "%(ua)s"

function setup(thread)
  table.insert(threads, thread)
  thread:set("marker", "%(markers)s/" .. #threads)
end

function request()
  sent = sent + 1
  return wrk.format("GET", "/" .. ids[(sent %% #ids) + 1])
end

function response(status, headers, body)
  done_count = done_count + 1
  if status == 200 then ok = ok + 1 else other = other + 1 end
  if done_count == limit then
    io.open(marker, "w"):close()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local total_ok, total_other = 0, 0
  for _, thread in ipairs(threads) do
    total_ok = total_ok + thread:get("ok")
    total_other = total_other + thread:get("other")
  end
  io.write(string.format("COUNTS ok=%%d other=%%d\\n", total_ok, total_other))
  io.write(string.format("LATENCY p50=%%d p99=%%d\\n", latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass
class Burst:
    ok: int
    other: int
    socket_errors: int
    seconds: float
    p50_ms: float
    p99_ms: float


class RssSampler:
    """Peak resident memory of the server process, and of it with its children."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak_server = self.peak_total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def now(self) -> tuple[int, int]:
        server = self.process.memory_info().rss
        children = 0
        for child in self.process.children(recursive=True):
            try:
                children += child.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return server, server + children

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            server, total = self.now()
            self.peak_server = max(self.peak_server, server)
            self.peak_total = max(self.peak_total, total)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def create_offers(env: dict[str, str], count: int) -> list[str]:
    out = _run_python(
        env,
        "from sqlmodel import Session\n"
        "from app.db import get_engine\nfrom app.config import get_settings\n"
        "from tests.factories import make_offer\n"
        "with Session(get_engine(), expire_on_commit=False) as s:\n"
        f"    for _ in range({count}):\n"
        "        print(make_offer(s, get_settings(), issued=True).id)\n",
    )
    return out.split()


def count_scans(env: dict[str, str]) -> int:
    return int(
        _run_python(
            env,
            "from sqlmodel import Session, select, func\nfrom app.db import get_engine\n"
            "from app.tracking.models import ScanEvent\n"
            "with Session(get_engine()) as s:\n"
            "    print(s.exec(select(func.count()).select_from(ScanEvent)).one())\n",
        )
    )


def run_wrk(base: str, ids: list[str], requests: int, connections: int) -> Burst:
    markers = Path(tempfile.mkdtemp(prefix="burst-"))
    script = markers / "burst.lua"
    script.write_text(
        WRK_SCRIPT
        % {
            "ids": ", ".join(f'"{i}"' for i in ids),
            "per_thread": requests // THREADS,
            "ua": PHONE,
            "markers": markers,
        }
    )
    args = ["wrk", f"-t{THREADS}", f"-c{connections}", "-d3600s", "--timeout", "10s"]
    wrk = subprocess.Popen([*args, "-s", str(script), base], stdout=subprocess.PIPE, text=True)
    while len([m for m in markers.iterdir() if m.suffix != ".lua"]) < THREADS:
        if wrk.poll() is not None:
            break
        time.sleep(0.05)
    wrk.send_signal(signal.SIGINT)
    out, _ = wrk.communicate(timeout=60)
    shutil.rmtree(markers)
    return _parse(out)


def _parse(out: str) -> Burst:
    counts = re.search(r"COUNTS ok=(\d+) other=(\d+)", out)
    latency = re.search(r"LATENCY p50=(\d+) p99=(\d+)", out)
    duration = re.search(r"requests in ([\d.]+)(\w+),", out)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    assert counts and latency and duration, out
    seconds = float(duration.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0}[duration.group(2)]
    return Burst(
        ok=int(counts.group(1)),
        other=int(counts.group(2)),
        socket_errors=sum(map(int, socket.groups())) if socket else 0,
        seconds=seconds,
        p50_ms=int(latency.group(1)) / 1000,
        p99_ms=int(latency.group(2)) / 1000,
    )


def bench(name: str, database_url: str | None, requests: int, connections: int) -> None:
    env = scratch_env(database_url)
    ids = create_offers(env, OFFERS)
    port = free_port()
    env = {**env, "OFFERTRACK_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}
    args = [sys.executable, "-m", "app.cli", "serve", "--port", str(port)]
    with started_server(args, env, port) as (base, process):
        run_wrk(base, ids, 2000, connections)  # warm-up: caches, pools, visitor key
        scans_before = count_scans(env)
        with RssSampler(process.pid) as rss:
            start_server, start_total = rss.now()
            burst = run_wrk(base, ids, requests, connections)
            end_server, end_total = rss.now()
        scans = count_scans(env) - scans_before
    answered = burst.ok + burst.other
    mb = 1024 * 1024
    print(f"\n[{name}] {answered} requests at {connections} connections over {len(ids)} offers")
    print(
        f"  throughput {answered / burst.seconds:8.0f} req/s in {burst.seconds:.1f} s   "
        f"p50 {burst.p50_ms:.1f} ms  p99 {burst.p99_ms:.1f} ms"
    )
    print(f"  errors: {burst.other} non-200 answers, {burst.socket_errors} socket errors")
    print(
        f"  server RSS: {start_server / mb:.0f} MB after warm-up, peak {rss.peak_server / mb:.0f} MB, "
        f"{end_server / mb:.0f} MB at the end (with PDF workers: {start_total / mb:.0f} / "
        f"{rss.peak_total / mb:.0f} / {end_total / mb:.0f} MB)"
    )
    # wrk stops a thread mid-flight: up to one request per connection was served (and
    # scanned) without its answer being counted here.
    missing = burst.ok - scans
    verdict = "every 200 has its scan event" if missing <= 0 else f"{missing} MISSING"
    print(f"  scan events: {scans} for {burst.ok} answered 200s ({verdict})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install -y wrk")
    bench("SQLite", None, args.requests, args.connections)
    if args.sqlite_only:
        return
    if postgres_available():
        bench("PostgreSQL", PG_URL, args.requests, args.connections)
    else:
        print(f"\n[PostgreSQL] skipped: {PG_URL} not reachable")


if __name__ == "__main__":
    main()
