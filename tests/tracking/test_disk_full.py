"""A full disk under a running server: campaign redirects keep answering, their scans wait in
memory (the spool shares the disk), /readyz says that writes fail, and once space returns every
answered redirect has its scan.

The test puts the server's var directory on a small disk (tests/conftest.py: small_disk,
root only); it runs in the SQLite pass, where the database file is on that disk.
"""

import os
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from contextlib import closing
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import TEST_DATABASE_URL, _free_port, fill, serving
from tests.tracking.test_outage import _make_campaign_code, _opener, _run

pytestmark = pytest.mark.skipif(
    TEST_DATABASE_URL.startswith("postgresql"),
    reason="runs in the SQLite pass, whose database file can be put on a small disk",
)


def _status(url: str) -> int:
    try:
        with _opener.open(url, timeout=15) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def _metric(base_url: str, name: str) -> float:
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=15) as response:
        text = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


def _redirects(url: str, seconds: float, threads: int = 4) -> Counter[int]:
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    until = time.monotonic() + seconds

    def load() -> None:
        while time.monotonic() < until:
            status = _status(url)
            with lock:
                statuses[status] += 1

    workers = [threading.Thread(target=load) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return statuses


def _stored(database: Path, placement_id: int) -> int:
    with closing(sqlite3.connect(database, timeout=10)) as connection:
        query = "SELECT count(*) FROM scan_event WHERE placement_id = ?"
        return int(connection.execute(query, (placement_id,)).fetchone()[0])


def test_a_full_disk_fails_readiness_and_loses_no_campaign_scan(small_disk: Path) -> None:
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    database = small_disk / "var" / "offertrack.db"
    env = {
        **os.environ,
        "OFFERTRACK_DATABASE_URL": f"sqlite:///{database}",
        "OFFERTRACK_VAR_DIR": str(small_disk / "var"),
        "OFFERTRACK_PUBLIC_BASE_URL": base_url,
    }
    _run(env, "-m", "app.cli", "migrate")
    placement_id, slug = _make_campaign_code(env)
    redirect = f"{base_url}/c/{slug}"
    log_path = small_disk.parent / "server.log"
    with serving(env, port, log_path) as base_url:
        before = _redirects(redirect, 1)  # today's visitor key and the rules are loaded
        filler = fill(small_disk)
        during = _redirects(redirect, 4)
        readiness_while_full = _status(f"{base_url}/readyz")
        held = _metric(base_url, "offertrack_scans_held")
        filler.unlink()
        answered = before[302] + during[302]
        deadline = time.monotonic() + 30
        while _stored(database, placement_id) < answered and time.monotonic() < deadline:
            time.sleep(0.5)
        stored = _stored(database, placement_id)
        dropped = _metric(base_url, "offertrack_scans_dropped_total")
        time.sleep(1)
        readiness_after = _status(f"{base_url}/readyz")
    print(f"\nfull disk: before {dict(before)}, during {dict(during)}, held {held:.0f}")
    assert set(during) == {302}, during  # printed codes keep working
    assert held > 0, "the scans during the full disk were not held in memory"
    assert readiness_while_full == 503
    assert dropped == 0
    assert stored == answered, f"{stored} scans stored for {answered} answered redirects"
    assert readiness_after == 200
