"""The ``offertrack`` command: serve, migrate, demo data and API keys."""

from typing import Annotated

import typer
from alembic import command
from alembic.config import Config

from app.config import ROOT_DIR, ConfigError, get_settings

cli = typer.Typer(help="OfferTrack: quotations with a QR code that opens a live tracking page.")


def alembic_config() -> Config:
    return Config(str(ROOT_DIR / "alembic.ini"))


@cli.command()
def migrate(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Bring the database schema up to date (or to REVISION)."""
    command.upgrade(alembic_config(), revision)
    typer.echo(f"Database at {revision}: {_display_url()}")


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, help="Processes; use PostgreSQL for more than 1.")
    ] = 1,
    reload: Annotated[bool, typer.Option(help="Reload on code changes (development).")] = False,
    worker: Annotated[
        bool, typer.Option(help="Deliver webhooks from each server process (see `worker`).")
    ] = True,
) -> None:
    """Run the web server."""
    import os

    import uvicorn

    if not worker:
        os.environ["OFFERTRACK_WEBHOOK_WORKER"] = "false"  # read by each server process
        get_settings.cache_clear()
    settings = get_settings()
    try:
        settings.resolved_secret_key()
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if workers > 1 and settings.is_sqlite:
        typer.echo(
            "Note: several workers on SQLite serialize their writes; PostgreSQL scales.", err=True
        )
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        reload=reload,
        proxy_headers=False,
    )


@cli.command("worker")
def webhook_worker() -> None:
    """Deliver webhook events until stopped (Ctrl+C or SIGTERM); any number may run."""
    import signal
    import threading

    from app.analytics.delivery import DeliveryWorker
    from app.db import get_engine

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    worker = DeliveryWorker(get_engine(), get_settings())
    worker.start()
    typer.echo(f"Delivering webhooks from {_display_url()}; Ctrl+C stops.", err=True)
    stop.wait()
    worker.stop()


@cli.command("rebuild-rollup")
def rebuild_rollup() -> None:
    """Recompute the dashboard's daily rollup from every scan event (after a bulk import)."""
    from app.analytics import rollup
    from app.db import get_engine

    rollup.rebuild(get_engine(), get_settings().zone)
    typer.echo("Daily scan rollup rebuilt.")


@cli.command()
def demo() -> None:
    """Load demo offers in several states. Running it again changes nothing."""
    from sqlmodel import Session

    from app.db import get_engine
    from app.demo import demo_links, load_demo_data

    settings = get_settings()
    with Session(get_engine(), expire_on_commit=False) as session:
        created = load_demo_data(session, settings=settings)
        links = demo_links(session, settings=settings)
    typer.echo(f"Demo data: {created} offers created." if created else "Demo data already loaded.")
    for label, url in links:
        typer.echo(f"  {label:<40} {url}")


@cli.command("create-api-key")
def create_api_key(name: Annotated[str, typer.Argument(help="Who or what uses the key.")]) -> None:
    """Create an API key and print its token once; only a hash is stored."""
    from sqlmodel import Session

    from app.auth.service import create_api_key as create
    from app.db import get_engine

    try:
        with Session(get_engine()) as session:
            _, token = create(session, name)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    typer.echo(token)
    typer.echo(f"API key {name!r} created. Store the token now: it is not shown again.", err=True)


def _display_url() -> str:
    from sqlalchemy.engine import make_url

    return make_url(get_settings().database_url).render_as_string(hide_password=True)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
