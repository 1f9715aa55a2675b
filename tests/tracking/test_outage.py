"""PostgreSQL stops in the middle of a load run and starts again: not one answered scan is lost,
and none is counted twice.

The test runs its own PostgreSQL cluster (initdb, pg_ctl) on a free port, so stopping it
disturbs nobody. It runs in the PostgreSQL pass of the suite; in CI missing PostgreSQL binaries
fail it instead of skipping it.
"""

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text

from tests.conftest import TEST_DATABASE_URL, _free_port, serving

ROOT = Path(__file__).resolve().parents[2]
THREADS_PER_URL = 4
pytestmark = pytest.mark.skipif(
    not TEST_DATABASE_URL.startswith("postgresql"),
    reason="runs in the PostgreSQL pass of the suite (OFFERTRACK_TEST_DATABASE_URL)",
)


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        message = f"PostgreSQL's {name} is not installed (apt-get install -y postgresql)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found[-1]


@dataclass
class Cluster:
    directory: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_owner(self, *args: str) -> None:
        # PostgreSQL refuses to run as root; the system's postgres user owns the cluster then.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
        self._as_owner(
            _pg_bin("pg_ctl"), "-D", str(self.directory / "data"), "-o", options,
            "-l", str(self.directory / "log"), "-w", "start",
        )  # fmt: skip

    def stop(self) -> None:
        self._as_owner(_pg_bin("pg_ctl"), "-D", str(self.directory / "data"), "-m", "fast", "stop")


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    initdb = _pg_bin("initdb")
    directory = Path(tempfile.mkdtemp(prefix="offertrack-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    cluster = Cluster(directory, _free_port())
    cluster._as_owner(initdb, "-D", str(directory / "data"), "-U", "postgres", "-A", "trust")
    cluster.start()
    try:
        yield cluster
    finally:
        subprocess.run(
            ["runuser", "-u", "postgres", "--"] * (os.geteuid() == 0)
            + [_pg_bin("pg_ctl"), "-D", str(directory / "data"), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(directory, ignore_errors=True)


def _run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def _make_offer(env: dict[str, str]) -> str:
    return _run(
        env,
        "-c",
        "from sqlmodel import Session\nfrom app.db import get_engine\n"
        "from app.config import get_settings\nfrom tests.factories import make_offer\n"
        "with Session(get_engine(), expire_on_commit=False) as s:\n"
        "    print(make_offer(s, get_settings(), issued=True).id)\n",
    )


def _make_campaign_code(env: dict[str, str]) -> tuple[int, str]:
    """A campaign code with routing rules (iPhones one way, everyone else to the fallback)."""
    rules = [{"when": {"os": ["ios"]}, "destinations": [{"url": "https://x.example/ios"}]}]
    placement_id, slug = _run(
        env,
        "-c",
        "from sqlmodel import Session\nfrom app.db import get_engine\n"
        "from tests.factories import make_campaign, make_placement\n"
        "with Session(get_engine(), expire_on_commit=False) as s:\n"
        "    campaign = make_campaign(s, name='Outage fair', utm_source='print')\n"
        f"    code = make_placement(s, campaign.id, rules={rules!r})\n"
        "    print(code.id, code.slug)\n",
    ).split()
    return int(placement_id), slug


def _activate(base_url: str, offer_id: str, api_key: str) -> None:
    request = urllib.request.Request(
        f"{base_url}/api/v1/offers/{offer_id}/activate",
        method="POST",
        headers={"Authorization": f"Bearer {api_key}"},
    )
    with urllib.request.urlopen(request, timeout=15) as response:
        assert response.status == 200


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 302 is the answer being counted, not a page to fetch


_opener = urllib.request.build_opener(_NoRedirects)


class Load:
    """Threads requesting pages until stopped; counts answers by page, phase and status.

    An answer counts under the phase current when it arrived, so the "outage" phase holds
    exactly what the server answered while PostgreSQL was stopped.
    """

    def __init__(self, urls: list[str], threads_per_url: int) -> None:
        self.phase = "before"
        self.answers: Counter[tuple[str, str, int]] = Counter()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._loop, args=(url,))
            for url in urls
            for _ in range(threads_per_url)
        ]

    def _loop(self, url: str) -> None:
        while not self._stop.is_set():
            try:
                with _opener.open(url, timeout=15) as response:
                    status = response.status
            except urllib.error.HTTPError as error:
                status = error.code
            except OSError:
                status = 0
            with self._lock:
                self.answers[(url, self.phase, status)] += 1

    def count(self, url: str, *, status: int | None = None, phase: str | None = None) -> int:
        with self._lock:
            return sum(
                n
                for (u, p, s), n in self.answers.items()
                if u == url and status in (None, s) and phase in (None, p)
            )

    def statuses(self, url: str) -> set[int]:
        with self._lock:
            return {s for (u, _, s) in self.answers if u == url}

    def __enter__(self) -> "Load":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def _spooled(base_url: str) -> float:
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=15) as response:
        text = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "offertrack_scans_spooled_total"
    )


def test_stopping_postgres_mid_load_loses_no_scan(cluster: Cluster, tmp_path: Path) -> None:
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    spool = tmp_path / "var" / "spool"
    env = {
        **os.environ,
        "OFFERTRACK_DATABASE_URL": cluster.url,
        "OFFERTRACK_VAR_DIR": str(tmp_path / "var"),
        "OFFERTRACK_PUBLIC_BASE_URL": base_url,
        # Pages are read again every 2 s (the default), so the run has views that read the
        # database, views served from the cache during the outage, and the 503s between.
        "OFFERTRACK_PAGE_CACHE_SECONDS": "2",
    }
    _run(env, "-m", "app.cli", "migrate")
    offer_id = _make_offer(env)
    placement_id, slug = _make_campaign_code(env)
    api_key = _run(env, "-m", "app.cli", "create-api-key", "outage test")
    page, redirect = f"{base_url}/{offer_id}", f"{base_url}/c/{slug}"
    log_path = tmp_path / "server.log"
    with serving(env, port, log_path) as base_url:
        with Load([page, redirect], THREADS_PER_URL) as load:
            time.sleep(3)
            spooled_before = _spooled(base_url)
            # A change drops the cached page and the next view reads it afresh, so the
            # outage begins with a page the cache still serves for most of 2 s.
            _activate(base_url, offer_id, api_key)
            time.sleep(0.2)
            cluster.stop()
            load.phase = "outage"
            time.sleep(4)
            spool_files_during_outage = list(spool.glob("*.jsonl"))
            spooled_during_outage = _spooled(base_url) - spooled_before
            load.phase = "after"
            cluster.start()
            time.sleep(4)
        recorded = _wait_for_scans(
            cluster.url,
            {
                "offer_id": (offer_id, load.count(page, status=200)),
                "placement_id": (placement_id, load.count(redirect, status=302)),
            },
        )

    answered = {
        "offer_id": load.count(page, status=200),
        "placement_id": load.count(redirect, status=302),
    }
    outage = {
        "pages": load.count(page, status=200, phase="outage"),
        "page 503s": load.count(page, status=503, phase="outage"),
        "redirects": load.count(redirect, status=302, phase="outage"),
    }
    print(
        f"\noutage run: {dict(load.answers)}\nanswered while PostgreSQL was down: {outage}, "
        f"spooled then {spooled_during_outage:.0f}; answered {answered}, recorded {recorded}"
    )
    assert outage["pages"] > 0 and outage["redirects"] > 0
    # Their scans could not reach the database: they were kept in the spool.
    assert spool_files_during_outage, "no spool file while the database was down"
    # Up to one answer per load thread may have been committed just before the stop.
    in_flight = 2 * THREADS_PER_URL
    assert spooled_during_outage >= outage["pages"] + outage["redirects"] - in_flight
    assert load.count(page, status=0) == load.count(redirect, status=0) == 0
    assert load.statuses(page) <= {200, 503}, load.answers
    assert load.statuses(redirect) == {302}, load.answers
    assert recorded == answered, f"{recorded} scan events for {answered} answered views"
    assert list(spool.glob("*.jsonl")) == []


def _wait_for_scans(url: str, expected: dict[str, tuple[object, int]]) -> dict[str, int]:
    """Scan events per column value once all answered ones are in (or 30 s passed)."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))

    def counts() -> dict[str, int]:
        with engine.connect() as connection:
            return {
                column: int(
                    connection.execute(
                        text(f"SELECT count(*) FROM scan_event WHERE {column} = :value"),
                        {"value": value},
                    ).scalar_one()
                )
                for column, (value, _) in expected.items()
            }

    try:
        deadline = time.monotonic() + 30
        while True:
            found = counts()
            done = all(found[column] >= n for column, (_, n) in expected.items())
            if done or time.monotonic() > deadline:
                time.sleep(3)  # a replay that adds a row twice would show now
                return counts()
            time.sleep(0.5)
    finally:
        engine.dispose()
