"""Where the schema's migrations are: Alembic's configuration, for the CLI and the health check."""

from typing import TYPE_CHECKING

from app.config import MIGRATIONS_DIR

if TYPE_CHECKING:
    from alembic.config import Config


def alembic_config() -> "Config":
    """Alembic's configuration, built here so that migrations run from any directory and from
    an installed package (alembic.ini in the checkout is for `make revision` only)."""
    # Alembic is imported when needed, not by every command: `serve` starts faster without it.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return config
