"""The ``offertrack`` command: serve, migrate, demo data, API keys, backup and purge."""

import os
import shutil
from pathlib import Path
from typing import Annotated, Any

import typer

from app.config import ConfigError, check_configuration, get_settings
from app.migrations import alembic_config

cli = typer.Typer(help="OfferTrack: quotations with a QR code that opens a live tracking page.")
# Changes made from the command line appear in the audit log under this actor.
CLI = "cli"


@cli.callback()
def _wire_subscribers() -> None:
    # Before every command: the demo, user and key commands run use cases that publish events.
    from app.subscribers import wire

    wire()


@cli.command()
def migrate(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Bring the database schema up to date (or to REVISION)."""
    import logging

    # alembic.ini's logging section is not read any more: show each step as it used to.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)-5.5s [%(name)s] %(message)s")
    logging.getLogger("alembic").setLevel(logging.INFO)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # 7 lines of set-up
    from alembic import command

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
    access_log: Annotated[
        bool,
        typer.Option(
            help="uvicorn's text line per request: method, path and status; no client "
            "address, no query, keys in the path cut to 4 characters. "
            "JSON logs have their own line either way (route template, no address)."
        ),
    ] = True,
    worker: Annotated[
        bool, typer.Option(help="Deliver webhooks from each server process (see `worker`).")
    ] = True,
) -> None:
    """Run the web server."""

    import uvicorn

    if not worker:
        os.environ["OFFERTRACK_WEBHOOK_WORKER"] = "false"  # read by each server process
        get_settings.cache_clear()
    settings = get_settings()
    try:
        # What each server process's app refuses to start on, said once here: from a worker
        # it was a page of traceback per process.
        check_configuration(settings)
        settings.resolved_secret_key()
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from exc
    _refuse_a_database_never_migrated()
    if workers > 1 and settings.is_sqlite:
        typer.echo(
            "Note: several workers on SQLite serialize their writes; PostgreSQL scales.", err=True
        )
    metrics_dir = None
    if workers > 1:
        from app.metrics import MULTIPROC_ENV, prepare_multiprocess_dir

        # Before the workers start: each one then keeps its metrics in files /metrics adds up.
        metrics_dir = prepare_multiprocess_dir(settings.var_dir)
        os.environ[MULTIPROC_ENV] = str(metrics_dir)
    try:
        uvicorn.run(
            "app.main:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            reload=reload,
            proxy_headers=False,
            **{"access_log": access_log, **_log_options(settings.log_format, settings.log_level)},
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)  # in shared memory: give it back


def _refuse_a_database_never_migrated() -> None:
    """Exit with one line when the database was never migrated: the workers and the hourly
    clean-up would print a "no such table" traceback every second or two. A database that does not
    answer is started on (pages answer 503 until it is back), and so is one behind or ahead
    of the code (an update under way: /readyz is 503 until they agree)."""
    from app.health import schema_revisions

    if schema_revisions(get_settings()) == frozenset():
        typer.echo(
            f"PROBLEM OFFERTRACK_DATABASE_URL: the database {_display_url()} has never been "
            "migrated (no schema revision): run `offertrack migrate` first.",
            err=True,
        )
        raise typer.Exit(1)


def _log_options(log_format: str, level: str) -> dict[str, Any]:
    if log_format != "json":
        from app.observability import uvicorn_text_log_config

        return {"log_config": uvicorn_text_log_config(), "log_level": level.lower()}
    from app.observability import uvicorn_log_config

    # Our JSON access line (with request id, without client address) replaces uvicorn's.
    return {"log_config": uvicorn_log_config(level), "access_log": False}


@cli.command("check-config")
def check_config() -> None:
    """Print what is wrong with the settings (exit status 1), or that they look right."""
    from app.checks import all_problems
    from app.config import Settings

    found = all_problems()
    for problem in found:
        typer.echo(f"PROBLEM {problem}", err=True)
    if found:
        raise typer.Exit(1)
    settings = Settings()
    typer.echo(
        f"Configuration looks right: {settings.env}, database {_display_url()} at the "
        f"migrations' head, data in {settings.var_dir.resolve()}, "
        + ("Redis answers." if settings.redis_url else "no Redis (fine for one node).")
    )


@cli.command("worker")
def webhook_worker() -> None:
    """Deliver webhook events and mails until stopped (Ctrl+C or SIGTERM); any number may run."""
    import signal
    import threading

    from app.analytics.delivery import DeliveryWorker
    from app.db import get_engine
    from app.notifications.worker import MailWorker
    from app.restore import claim_database
    from app.subscribers import wire

    wire()
    _refuse_a_database_never_migrated()
    try:
        claim = claim_database(get_settings())  # `offertrack restore` waits for us to stop
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from exc
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    workers: list[DeliveryWorker | MailWorker] = [
        DeliveryWorker(get_engine(), get_settings()),
        MailWorker(get_engine(), get_settings()),
    ]
    for worker in workers:
        worker.start()
    typer.echo(f"Delivering webhooks and mails from {_display_url()}; Ctrl+C stops.", err=True)
    stop.wait()
    for worker in workers:
        worker.stop()
    if claim is not None:
        claim.release()


@cli.command("rebuild-rollup")
def rebuild_rollup() -> None:
    """Recompute the dashboard's daily rollup from scan events; days already purged are kept."""
    from app.analytics import scanfeed
    from app.db import get_engine

    scanfeed.rebuild(get_engine(), get_settings().zone)
    typer.echo("Daily scan rollup rebuilt.")


@cli.command()
def demo() -> None:
    """Load demo offers in several states. Running it again changes nothing."""
    from sqlmodel import Session

    from app.analytics.scanfeed import catch_up
    from app.db import get_engine
    from app.demo import demo_links, load_demo_data
    from app.subscribers import wire

    wire()  # the demo accepts and activates offers, which publishes events
    settings = get_settings()
    with Session(get_engine(), expire_on_commit=False) as session:
        created = load_demo_data(session, settings=settings)
        links = demo_links(session, settings=settings)
    catch_up(get_engine(), settings.zone)  # the dashboard shows the demo's scans at once
    typer.echo(f"Demo data: {created} offers created." if created else "Demo data already loaded.")
    for label, url in links:
        typer.echo(f"  {label:<40} {url}")


@cli.command("create-api-key")
def create_api_key(name: Annotated[str, typer.Argument(help="Who or what uses the key.")]) -> None:
    """Create an API key and print its token once; only a hash is stored."""
    from sqlmodel import Session

    from app.auth.service import create_api_key as create
    from app.db import get_engine
    from app.errors import AppError

    try:
        with Session(get_engine()) as session:
            _, token = create(session, name, actor=CLI)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    except AppError as exc:
        raise typer.BadParameter(exc.detail) from exc
    typer.echo(token)
    typer.echo(f"API key {name!r} created. Store the token now: it is not shown again.", err=True)


@cli.command("revoke-api-key")
def revoke_api_key(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Revoke the active API key called NAME: every server refuses it within a second."""
    from sqlmodel import Session

    from app import invalidation
    from app.auth import service
    from app.db import get_engine
    from app.errors import AppError

    settings = get_settings()
    started = invalidation.start(settings.redis_url, settings.database_url, listen=False)
    try:
        with Session(get_engine()) as session:
            key = service.find_active_key(session, name)
            assert key.id is not None
            service.revoke_api_key(session, key.id, actor=CLI)
    except AppError as exc:
        raise typer.BadParameter(exc.detail) from exc
    finally:
        if started:
            invalidation.stop()
    typer.echo(f"API key {name!r} revoked.")


@cli.command("create-user")
def create_user(
    email: Annotated[str, typer.Argument(help="The staff member's e-mail address (their login).")],
    role: Annotated[
        str, typer.Option(help="admin (everything), sales (offers, orders) or viewer (read only).")
    ] = "viewer",
) -> None:
    """Create a staff user for the admin at /admin. Asks for the password, or reads it from
    standard input when that is not a terminal (``echo "$PW" | offertrack create-user ...``)."""
    from sqlmodel import Session

    from app.admin import users
    from app.auth.staff import Role
    from app.db import get_engine
    from app.errors import AppError

    try:
        chosen = Role(role)
    except ValueError as exc:
        raise typer.BadParameter("use admin, sales or viewer", param_hint="--role") from exc
    password = _read_password()
    try:
        with Session(get_engine(), expire_on_commit=False) as session:
            user = users.create_user(session, email, chosen, password, actor=CLI)
    except AppError as exc:
        raise typer.BadParameter(exc.detail) from exc
    typer.echo(f"Staff user {user.email} ({user.role}) created. Sign in at /admin/.")


@cli.command("set-password")
def set_password(email: Annotated[str, typer.Argument(help="The staff user's e-mail.")]) -> None:
    """Set a new password for a staff user (and end their sessions); prompts or reads stdin."""
    from sqlmodel import Session

    from app.admin import users
    from app.db import get_engine
    from app.errors import AppError

    password = _read_password()
    try:
        with Session(get_engine(), expire_on_commit=False) as session:
            user = users.find_by_email(session, email)
            if user is None or user.id is None:
                raise typer.BadParameter(f"no staff user {email!r}", param_hint="EMAIL")
            users.set_password(session, user.id, password, actor=CLI)
    except AppError as exc:
        raise typer.BadParameter(exc.detail) from exc
    typer.echo(f"New password set for {user.email}.")


@cli.command("reset-2fa")
def reset_2fa(email: Annotated[str, typer.Argument(help="The staff user's e-mail.")]) -> None:
    """Remove a staff user's second factor (a lost phone and no recovery code left) and end
    their sessions; they set it up anew at their next sign-in or on their account page."""
    from sqlmodel import Session

    from app.admin import sessions, twofactor, users
    from app.db import get_engine

    with Session(get_engine(), expire_on_commit=False) as session:
        user = users.find_by_email(session, email)
        if user is None or user.id is None:
            raise typer.BadParameter(f"no staff user {email!r}", param_hint="EMAIL")
        sessions.end_others(session, user.id, keep=None)
        twofactor.reset(session, user.id, user.email, actor=CLI)
    typer.echo(f"Two-factor sign-in reset for {user.email}.")


def _read_password() -> str:
    import sys

    if sys.stdin.isatty():
        password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        return password
    return sys.stdin.readline().rstrip("\r\n")


@cli.command()
def backup(
    # A string: a trailing slash, lost in a Path, says that a directory is meant.
    path: Annotated[str, typer.Argument(help="File to write, or a directory for a dated file.")],
    overwrite: Annotated[bool, typer.Option(help="Replace PATH if it exists.")] = False,
    keep: Annotated[
        int | None,
        typer.Option(
            min=1, help="With a directory PATH: then delete all but its newest N dated backups."
        ),
    ] = None,
) -> None:
    """Write a consistent copy of the database while the server runs, and check it: SQLite's
    online backup, or pg_dump's custom format on PostgreSQL."""
    from app.backup import (
        BackupError,
        PgToolMissing,
        backup_postgresql,
        backup_sqlite,
        backup_target,
        prune,
        sqlite_file,
    )

    settings = get_settings()
    if keep is not None and not Path(path).is_dir():
        typer.echo("--keep needs PATH to be a directory of dated backups.", err=True)
        raise typer.Exit(2)
    try:
        target = backup_target(path)
        if settings.is_sqlite:
            report = backup_sqlite(sqlite_file(settings.database_url), target, overwrite=overwrite)
        else:
            report = backup_postgresql(settings.database_url, target, overwrite=overwrite)
    except PgToolMissing as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    except BackupError as exc:
        typer.echo(f"Backup failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"Backup written: {report.path} ({report.size / 1e6:.1f} MB; {report.check})")
    if keep is not None:  # only once this one is written and checked
        gone = prune(target, keep, report.path)
        typer.echo(f"Removed {len(gone)} older backups" + "".join(f"\n  {p.name}" for p in gone))


@cli.command()
def restore(
    path: Annotated[Path, typer.Argument(help="A file written by `offertrack backup`.")],
) -> None:
    """Put a backup in place of the database. SQLite: refused while a server uses it; the
    current files are kept, renamed. PostgreSQL: into an empty database only."""
    from app.backup import BackupError, PgToolMissing
    from app.health import migration_heads
    from app.restore import restore as restore_backup

    try:
        report = restore_backup(get_settings(), path)
    except PgToolMissing as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    except BackupError as exc:
        typer.echo(f"Restore refused or failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    for kept in report.set_aside:
        typer.echo(f"Previous file kept as {kept}")
    typer.echo(f"Restored {path} into {report.database} (schema {report.revision}).")
    if report.revision not in migration_heads():
        typer.echo("Its schema is older than this version: run `offertrack migrate` next.")


@cli.command()
def purge() -> None:
    """Roll scan events past OFFERTRACK_SCAN_RETENTION_DAYS up into daily counts; delete them.
    On PostgreSQL also make the coming months' scan partitions and drop expired ones. Delete
    mails (and their .eml files) sent over OFFERTRACK_MAIL_RETENTION_DAYS ago."""
    from sqlmodel import Session

    from app.db import get_engine
    from app.tracking.partitions import add_coming_months
    from app.tracking.retention import purge_old_scans

    days = get_settings().scan_retention_days
    with get_engine().connect() as connection:  # on SQLite: no transaction, nothing to do
        made = add_coming_months(connection)
        connection.commit()
    with Session(get_engine(), expire_on_commit=False) as session:
        report = purge_old_scans(session, retention_days=days)
    typer.echo(
        f"Scan events older than {days} days: {report.events} rolled up into "
        f"{report.rows} daily rows over {report.days} days, and deleted."
    )
    if made or report.months_dropped:
        typer.echo(f"Monthly scan partitions: {len(made)} made, {report.months_dropped} dropped.")
    from app.notifications.delivery import purge_sent

    settings = get_settings()
    files = purge_sent(get_engine(), settings)
    typer.echo(
        f"Mails sent over {settings.mail_retention_days} days ago deleted, {files} mail files too."
    )


@cli.command("contact-data")
def contact_data(
    email: Annotated[str, typer.Argument(help="The contact's e-mail address.")],
) -> None:
    """What OfferTrack holds about an e-mail address, place by place, as JSON (the answer to
    a subject access request). Reads only."""
    from sqlmodel import Session

    from app.db import get_engine
    from app.errors import Unprocessable
    from app.privacy import as_json
    from app.privacy import contact_data as held

    with Session(get_engine()) as session:
        try:
            report = held(session, get_settings(), email)
        except Unprocessable as exc:
            raise typer.BadParameter(exc.detail) from exc
    typer.echo(as_json(report))


@cli.command("erase-contact")
def erase_contact(
    email: Annotated[str, typer.Argument(help="The contact's e-mail address.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Erase an e-mail address and what goes with it: customer records, subscriptions,
    questions, alerts, mails and their files, webhook events; the audit log keeps a reference
    instead. Offers sent to it keep their customer snapshot (delete the offer for that)."""
    from sqlmodel import Session

    from app.db import get_engine
    from app.errors import Unprocessable
    from app.privacy import contact_data as held
    from app.privacy import erase_contact as erase

    settings = get_settings()
    with Session(get_engine(), expire_on_commit=False) as session:
        try:
            places = held(session, settings, email)["places"]
        except Unprocessable as exc:
            raise typer.BadParameter(exc.detail) from exc
        for place in places:
            if place["count"]:
                typer.echo(f"{place['count']:>6}  {place['place']}: {place['on_erase']}")
        if not yes and not typer.confirm("Erase this address's data?"):
            raise typer.Exit(1)
        erased = erase(session, settings, email, actor=CLI)
    done = ", ".join(f"{count} {place}" for place, count in erased.counts.items())
    typer.echo(f"Erased: {done or 'nothing was held'}. The audit log calls it {erased.reference}.")
    if erased.kept_offers:
        typer.echo(f"Kept: {erased.kept_offers} offers' customer snapshot (business records).")
    if erased.staff_account:
        typer.echo("Kept: the staff account with this address (delete it on the Users page).")


def _display_url() -> str:
    from app.config import without_password

    # As the settings page shows it: a password given as ?password= is hidden too.
    return without_password(get_settings().database_url)


def main() -> None:
    from pydantic import ValidationError

    from app.checks import settings_errors

    try:
        cli()
    except ValidationError as exc:
        # A setting that does not parse (a typo in the environment file): its name and what
        # it takes, not a page of traceback. check-config itself lists everything else too.
        for problem in settings_errors(exc):
            typer.echo(f"PROBLEM {problem}", err=True)
        typer.echo("`offertrack check-config` lists every problem at once.", err=True)
        raise SystemExit(1) from None
    except PermissionError as exc:
        if exc.filename != ".env":
            raise
        # Settings look for a .env in the working directory: root's home, under runuser.
        typer.echo(
            f"PROBLEM cannot look for .env in {Path.cwd()} ({exc.strerror}): run offertrack "
            "from a directory its user may read, such as its data directory.",
            err=True,
        )
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
