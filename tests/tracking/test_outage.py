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

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import TEST_DATABASE_URL, _free_port, _wait_until_up

ROOT = Path(__file__).resolve().parents[2]
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


class Load:
    """Threads requesting one page until stopped; counts answers by status."""

    def __init__(self, url: str, threads: int = 8) -> None:
        self.url = url
        self.statuses: Counter[int] = Counter()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._loop) for _ in range(threads)]

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=15) as response:
                    status = response.status
            except urllib.error.HTTPError as error:
                status = error.code
            except OSError:
                status = 0
            with self._lock:
                self.statuses[status] += 1

    def __enter__(self) -> "Load":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def test_stopping_postgres_mid_load_loses_no_scan(cluster: Cluster, tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "OFFERTRACK_DATABASE_URL": cluster.url,
        "OFFERTRACK_VAR_DIR": str(tmp_path / "var"),
        "OFFERTRACK_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "OFFERTRACK_PAGE_CACHE_SECONDS": "0.2",  # most views read the database
    }
    _run(env, "-m", "app.cli", "migrate")
    offer_id = _make_offer(env)
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_until_up(f"http://127.0.0.1:{port}", server, log_path)
            with Load(f"http://127.0.0.1:{port}/{offer_id}") as load:
                time.sleep(3)
                cluster.stop()
                time.sleep(4)
                during_outage = dict(load.statuses)
                cluster.start()
                time.sleep(4)
            answered = load.statuses[200]
            recorded = _wait_for_scans(cluster.url, offer_id, answered)
        finally:
            server.terminate()
            server.wait(timeout=20)

    print(
        f"\noutage run: {dict(load.statuses)}, during outage {during_outage}, recorded {recorded}"
    )
    assert answered > 0 and during_outage.get(200, 0) > 0
    assert load.statuses[0] == 0, f"connections failed: {load.statuses}"
    assert set(load.statuses) <= {200, 503}, load.statuses
    assert recorded == answered, f"{recorded} scan events for {answered} answered views"
    assert list((tmp_path / "var" / "spool").glob("*.jsonl")) == []


def _wait_for_scans(url: str, offer_id: str, expected: int) -> int:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    query = text("SELECT count(*) FROM scan_event WHERE offer_id = :id")
    try:
        deadline = time.monotonic() + 30
        while True:
            with engine.connect() as connection:
                count = int(connection.execute(query, {"id": offer_id}).scalar_one())
            if count >= expected or time.monotonic() > deadline:
                time.sleep(3)  # a replay that adds a row twice would show now
                with engine.connect() as connection:
                    return int(connection.execute(query, {"id": offer_id}).scalar_one())
            time.sleep(0.5)
    finally:
        engine.dispose()
