"""Where the schema's migrations are: Alembic's configuration, for the CLI and the health check."""

from typing import TYPE_CHECKING

from app.config import ROOT_DIR

if TYPE_CHECKING:
    from alembic.config import Config


def alembic_config() -> "Config":
    # Alembic is imported when needed, not by every command: `serve` starts faster without it.
    from alembic.config import Config

    return Config(str(ROOT_DIR / "alembic.ini"))
