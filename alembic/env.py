"""Alembic environment: one set of migrations for SQLite and PostgreSQL."""

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.exc import SAWarning

import app.models  # noqa: F401  (registers every table on the metadata)
from app.db import UTCDateTime, get_engine, metadata
from app.tracking.partitions import is_partition

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    # UTCDateTime only converts values in Python; in the schema it is a plain timestamptz.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    # scan_event's partitions (PostgreSQL) are made at run time; the parent is the model.
    if type_ == "table" and name is not None and is_partition(name):
        return False
    # The offer search's trigram indexes exist on PostgreSQL only (migration b16da7000001).
    return not (type_ == "index" and name is not None and name.endswith("_trgm"))


def check_foreign_keys(ctx: Any, **_: Any) -> None:
    """After each step, in the run's one transaction: the rows it leaves must satisfy every
    foreign key (SQLite checks none while they are off); if not, the whole run rolls back."""
    connection = ctx.connection
    if connection.dialect.name != "sqlite":
        return
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        tables = sorted({str(row[0]) for row in broken})
        raise RuntimeError(f"migration left rows without their parent in {', '.join(tables)}")


@contextmanager
def sqlite_foreign_keys_off(connection: Connection) -> Iterator[None]:
    """Run the migrations with SQLite's foreign keys off, as SQLite's own procedure for table
    changes asks: a batch operation copies a table and drops the old one, and with foreign keys
    on that DROP deletes the rows of every table that references it with ON DELETE CASCADE (and
    clears those with SET NULL). The pragma is a no-op inside a transaction, so it is set before
    Alembic begins one, on the driver's connection (SQLAlchemy's would begin one first)."""
    if connection.dialect.name != "sqlite":
        yield
        return
    if connection.in_transaction():
        if connection.exec_driver_sql("PRAGMA foreign_keys").scalar():
            raise RuntimeError(
                "SQLite migrations need a connection outside a transaction: foreign keys must "
                "be switched off before one begins, or copying a table deletes referencing rows"
            )
        yield
        return
    driver = connection.connection.driver_connection
    assert driver is not None
    driver.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        if connection.in_transaction():  # Alembic's transaction has committed; reads only
            connection.rollback()
        driver.execute("PRAGMA foreign_keys=ON")  # the connection goes back to its pool


def configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=render_item,
        include_name=include_name,
        on_version_apply=check_foreign_keys,
    )


def run_migrations(connection: Connection) -> None:
    configure(connection)
    with (
        sqlite_foreign_keys_off(connection),
        context.begin_transaction(),
        warnings.catch_warnings(),
    ):
        # SQLAlchemy reflects no expression index on SQLite (api_key's unique lower(name)), and
        # says so each time autogenerate compares; PostgreSQL's copy is compared in full.
        warnings.filterwarnings(
            "ignore", "Skipped unsupported reflection of expression-based index", SAWarning
        )
        warnings.filterwarnings(
            "ignore", "autogenerate skipping metadata-specified expression-based index", UserWarning
        )
        if connection.dialect.name == "postgresql":
            # The operator runs them when they choose: they wait for the locks they need (the
            # app's connections give up after a few seconds, app.db.make_engine).
            connection.exec_driver_sql("SET LOCAL lock_timeout = 0")
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    with get_engine().connect() as connection:
        run_migrations(connection)


if context.is_offline_mode():
    raise SystemExit("Offline migrations are not supported; run them against a database.")
run_migrations_online()
