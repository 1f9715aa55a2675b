"""Shared by the bench scripts: a migrated scratch database and servers on free ports."""

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get(
    "OFFERTRACK_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/bench"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scratch_env(database_url: str | None) -> dict[str, str]:
    """Environment for a run on a fresh database: SQLite in a temp dir, or PG's emptied schema."""
    tmp = tempfile.mkdtemp(prefix="offertrack-bench-")
    url = database_url or f"sqlite:///{tmp}/bench.db"
    env = {
        **os.environ,
        "OFFERTRACK_DATABASE_URL": url,
        "OFFERTRACK_VAR_DIR": f"{tmp}/var",
        "OFFERTRACK_ENV": "development",
    }
    if url.startswith("postgres"):
        import psycopg

        _create_database(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")
    subprocess.run(
        [sys.executable, "-m", "app.cli", "migrate"],
        env=env,
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return env


def _create_database(url: str) -> None:
    """The bench's own database (never the test suite's), made on first use."""
    import psycopg
    from psycopg import sql

    info = psycopg.conninfo.conninfo_to_dict(url)
    name = str(info.get("dbname", ""))
    with psycopg.connect(url, dbname="postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def postgres_available() -> bool:
    try:
        import psycopg

        psycopg.connect(PG_URL, dbname="postgres", connect_timeout=3).close()
    except Exception:
        return False
    return True


@contextmanager
def started_server(
    args: list[str], env: dict[str, str], port: int
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The server's base URL and its process, once it answers."""
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/robots.txt", timeout=1).close()
                break
            except urllib.error.HTTPError:
                break  # the bare app answers 200 on any path; a 4xx still means it is up
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"server {args} did not start") from None
                time.sleep(0.2)
        yield base, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:  # a finding in itself: say so, and go on measuring
            print(f"  !! {args[0]} ... did not stop within 20 s of SIGTERM: killed", flush=True)
            process.kill()
            process.wait()


@contextmanager
def server(args: list[str], env: dict[str, str], port: int) -> Iterator[str]:
    with started_server(args, env, port) as (base, _):
        yield base


def offertrack_server(env: dict[str, str]) -> AbstractContextManager[str]:
    port = free_port()
    env = {**env, "OFFERTRACK_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}
    # Served the way the bare endpoint is: uvicorn, one process, no access log.
    args = [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--no-access-log"]
    return server(args, env, port)


def bare_server(env: dict[str, str], app: str = "app") -> AbstractContextManager[str]:
    """A baseline of bench/bare_app.py: ``app`` (def endpoints) or ``async_app``."""
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "uvicorn",
        f"bench.bare_app:{app}",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    return server(args, env, port)
