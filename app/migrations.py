"""Where the schema's migrations are: Alembic's configuration, for the CLI and the health check."""

from alembic.config import Config

from app.config import ROOT_DIR


def alembic_config() -> Config:
    return Config(str(ROOT_DIR / "alembic.ini"))
