"""`offertrack serve` and `offertrack worker` on a database that was never migrated: one line
that names it and says to run `offertrack migrate`, where they started and then printed a
"no such table" traceback every second or two from the mail and webhook workers."""

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner

from app import config
from app.cli import cli
from app.config import get_settings
from tests.conftest import TEST_DATABASE_URL
from tests.deploy.processes import free_port


def run(command: list[str], database_url: str, var_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "OFFERTRACK_DATABASE_URL": database_url,
        "OFFERTRACK_VAR_DIR": str(var_dir),
    }
    try:
        return subprocess.run(
            [sys.executable, "-m", "app.cli", *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"`offertrack {command[0]}` started on a database never migrated: {exc}")


@pytest.mark.parametrize("command", ["serve", "worker"])
@pytest.mark.parametrize("version_table", [False, True], ids=["no-tables", "empty-version-table"])
def test_a_database_never_migrated_is_refused_in_one_line(
    tmp_path: Path, command: str, version_table: bool
) -> None:
    database = tmp_path / "new.db"
    if version_table:  # a migration that failed before its first step
        with sqlite3.connect(database) as connection:
            connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
    arguments = ["serve", "--port", str(free_port())] if command == "serve" else [command]
    done = run(arguments, f"sqlite:///{database}", tmp_path / "var")

    assert done.returncode != 0
    assert done.stderr.splitlines() == [
        f"PROBLEM OFFERTRACK_DATABASE_URL: the database sqlite:///{database} has never been "
        "migrated (no schema revision): run `offertrack migrate` first."
    ]


def test_a_first_start_without_a_data_directory_is_refused_too(tmp_path: Path) -> None:
    """The newcomer's first `offertrack serve`: the default SQLite file does not exist yet."""
    var_dir = tmp_path / "var"
    done = run(
        ["serve", "--port", str(free_port())], f"sqlite:///{var_dir / 'offertrack.db'}", var_dir
    )

    assert done.returncode != 0
    assert "`offertrack migrate`" in done.stderr and "Traceback" not in done.stderr


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """What `serve` would have handed to uvicorn, the server itself not started."""
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append(kwargs))
    original = get_settings()
    get_settings.cache_clear()
    yield calls
    # The suite's settings object again, not an equal new one: modules and fixtures hold it
    # (a test that sets the sales address on it must reach the alerts' recipient).
    get_settings.cache_clear()
    monkeypatch.setattr(config, "Settings", lambda: original)
    assert get_settings() is original


def serve(database_url: str) -> Any:
    return CliRunner().invoke(
        cli, ["serve", "--port", "1"], env={"OFFERTRACK_DATABASE_URL": database_url}
    )


def test_a_migrated_database_starts(engine: Engine, served: list[dict[str, Any]]) -> None:
    result = serve(TEST_DATABASE_URL)

    assert result.exit_code == 0, result.output
    assert len(served) == 1


def test_a_database_that_does_not_answer_still_starts(served: list[dict[str, Any]]) -> None:
    """The server answers 503 while the database is away (README): it must start then too."""
    result = serve("postgresql://offertrack:secret@127.0.0.1:1/offertrack")

    assert result.exit_code == 0, result.output
    assert len(served) == 1


def test_a_database_behind_the_code_starts_and_readyz_says_so(
    tmp_path: Path, served: list[dict[str, Any]]
) -> None:
    """Behind or ahead (an update half done): it starts, and /readyz is 503 until migrated."""
    database = tmp_path / "old.db"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        connection.execute("INSERT INTO alembic_version VALUES ('0123456789ab')")
    result = serve(f"sqlite:///{database}")

    assert result.exit_code == 0, result.output
    assert len(served) == 1


@pytest.fixture
def empty_postgresql(engine: Engine) -> Iterator[str]:
    """An empty database beside the test database, in a URL with a password."""
    url = make_url(TEST_DATABASE_URL)
    name = f"{url.database}_unmigrated"
    admin = create_engine(
        url.set(drivername="postgresql+psycopg"), poolclass=NullPool, isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        # Trust authentication (CI, a developer's machine) ignores it; shown, it would leak.
        yield url.set(database=name, password=url.password or "hunter2").render_as_string(
            hide_password=False
        )
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.skipif(not TEST_DATABASE_URL.startswith("postgresql"), reason="a PostgreSQL server")
@pytest.mark.parametrize("in_query", [False, True], ids=["in-address", "in-query"])
def test_an_empty_postgresql_database_is_named_without_its_password(
    empty_postgresql: str, served: list[dict[str, Any]], in_query: bool
) -> None:
    url = make_url(empty_postgresql)
    password = url.password
    assert password
    if in_query:  # libpq takes it as a parameter too, as the settings page knows
        in_parameter = url.set(password=None).update_query_dict({"password": str(password)})
        empty_postgresql = in_parameter.render_as_string(hide_password=False)
    result = serve(empty_postgresql)

    assert result.exit_code != 0 and served == []
    assert "has never been migrated" in result.output and "`offertrack migrate`" in result.output
    assert str(password) not in result.output
    assert ("password=***" if in_query else ":***@") in result.output
