"""Alembic environment: one set of migrations for SQLite and PostgreSQL."""

from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import Connection

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
    return not (type_ == "table" and name is not None and is_partition(name))


def configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=render_item,
        include_name=include_name,
    )


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    with get_engine().connect() as connection:
        configure(connection)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("Offline migrations are not supported; run them against a database.")
run_migrations_online()
