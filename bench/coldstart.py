"""Cold start: seconds from `offertrack serve` starting to its first answer, then how long
the first views take (a tracking page, a campaign redirect), on a migrated SQLite database.

    .venv/bin/python bench/coldstart.py [--rounds 5] [--checkout PATH]

--checkout runs another checkout's code (e.g. /work/main) with this interpreter, for a
before/after comparison measured in the same run (the machine may be busy: compare ratios).
"""

import argparse
import http.client
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._servers import ROOT, free_port, scratch_env  # noqa: E402
from bench.tracking import create_offer  # noqa: E402


def _get(port: int, path: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("GET", path, headers={"User-Agent": "Mozilla/5.0 (iPhone)"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def one_start(env: dict[str, str], checkout: Path, offer_id: str) -> tuple[float, float]:
    """Seconds to the first answer, and seconds the first tracking page view then took."""
    port = free_port()
    command = [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--no-access-log"]
    started = time.perf_counter()
    server = subprocess.Popen(
        command, env=env, cwd=checkout, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while True:
            try:
                _get(port, "/robots.txt")
                break
            except OSError:
                if server.poll() is not None:
                    raise RuntimeError("the server exited") from None
                time.sleep(0.02)
        up = time.perf_counter() - started
        view_started = time.perf_counter()
        status = _get(port, f"/{offer_id}")
        first_view = time.perf_counter() - view_started
        assert status == 200, status
        return up, first_view
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--checkout", type=Path, action="append", default=[])
    args = parser.parse_args()
    env = scratch_env(None)
    offer_id = create_offer(env)
    checkouts = [ROOT, *args.checkout]
    results: dict[Path, list[tuple[float, float]]] = {c: [] for c in checkouts}
    for _ in range(args.rounds):  # interleaved, so a busy spell hits every checkout alike
        for checkout in checkouts:
            results[checkout].append(one_start(env, checkout, offer_id))
    base = statistics.median(up for up, _ in results[ROOT])
    for checkout, runs in results.items():
        up = statistics.median(u for u, _ in runs)
        view = statistics.median(v for _, v in runs)
        print(
            f"{checkout}: first answer after {up:.2f} s (median of {len(runs)}; "
            f"{up / base:.2f} x this checkout), first tracking page {view * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
