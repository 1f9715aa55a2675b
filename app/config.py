"""Settings, read once from ``OFFERTRACK_*`` environment variables."""

import fcntl
import json
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Depends
from pydantic import Field, IPvAnyNetwork, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app import i18n
from app.files import make_private_dir, write_atomically

PACKAGE_DIR = Path(__file__).resolve().parent
# The checkout (README, tests, bench); an installed package has none around it.
ROOT_DIR = PACKAGE_DIR.parent


def resource_path(name: str) -> Path:
    """``templates``, ``static`` or ``alembic``: the copy a wheel carries inside the package
    (see setup.py), else the checkout's top-level folder (a git checkout, an editable install)."""
    bundled = PACKAGE_DIR / "_resources" / name
    return bundled if bundled.is_dir() else ROOT_DIR / name


STATIC_DIR = resource_path("static")
TEMPLATES_DIR = resource_path("templates")
MIGRATIONS_DIR = resource_path("alembic")
DEFAULT_SECRET = "change-me"
# HMAC-SHA256 keys shorter than its block gain nothing from being so; below 32 bytes a key
# is weaker than the hash.
MIN_SECRET_BYTES = 32


class ConfigError(RuntimeError):
    """The configuration cannot work; the message says what to change."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OFFERTRACK_", env_file=".env", extra="ignore")

    env: Literal["development", "production", "test"] = "development"
    var_dir: Path = Path("var")
    database_url: str = ""
    public_base_url: str = "http://127.0.0.1:8000"
    secret_key: str = ""

    company_name: str = "OfferTrack Demo GmbH"
    company_address: str = "Musterstrasse 1\n10115 Berlin\nGermany"
    company_vat_number: str = "DE123456789"
    company_email: str = "sales@example.com"
    company_logo: Path | None = None
    company_phone: str = ""
    # The public pages' icon: a file name inside static/ (SVG, PNG or ICO).
    company_favicon: str = "favicon.svg"
    # Free-text lines at the foot of every PDF page (bank and IBAN, commercial register,
    # managing directors), separated by "\n", as a European business letter needs.
    company_legal_lines: str = ""
    # The letterhead's colour on the public pages, the PDF and the mails (#rgb or #rrggbb).
    accent_color: str = "#0b5394"
    # A small "powered by OfferTrack" link in the public pages' footer; false removes it.
    powered_by: bool = True
    # The language of offers and customers that name none (one of app.i18n.LANGUAGES).
    default_language: str = "en"

    page_size: Literal["A4", "Letter"] = "A4"
    timezone: str = "Europe/Berlin"
    default_currency: str = "EUR"
    default_validity_days: int = Field(default=30, ge=1, le=3650)

    # Addresses or networks of reverse proxies whose X-Forwarded-For is believed, e.g.
    # OFFERTRACK_TRUSTED_PROXIES='["127.0.0.1", "10.0.0.0/8"]'. Empty: use the peer address.
    trusted_proxies: Annotated[list[str], NoDecode] = []
    # Shared by every process and node: the miss rate limit's counts and cache invalidation
    # (pub/sub), e.g. redis://127.0.0.1:6379/0. Empty: counts in process memory, invalidation
    # through PostgreSQL's LISTEN/NOTIFY (none on SQLite).
    redis_url: str = ""
    miss_limit_per_minute: int = Field(default=20, ge=1)
    # How long a rendered tracking page is reused (0 turns it off). Changes made in this
    # process show at once; other worker processes show them within this time.
    page_cache_seconds: float = Field(default=2.0, ge=0, le=60)
    # A tracking page that is not cached answers 503 once reading it takes longer than this
    # (a database that drops packets, a full pool), instead of after the connect timeout.
    page_deadline_seconds: float = Field(default=0.75, gt=0, le=30)
    # Where scan events wait while the database cannot take them (default {var_dir}/spool):
    # another disk keeps scans safe when the database's disk is full.
    spool_dir: Path | None = None
    # Campaign scans held in memory while neither database nor spool takes them; past this
    # they are dropped (counted in offertrack_scans_dropped_total). About 1 KB each.
    scan_hold_limit: int = Field(default=20_000, ge=0, le=1_000_000)
    # How long a write waits for a lock before the request answers 503 with Retry-After.
    # SQLite: the one writer's lock without seeing it change hands; a queue that keeps moving
    # is waited in for up to three times this. PostgreSQL: a row or table lock another
    # transaction holds (lock_timeout).
    write_wait_seconds: float = Field(default=5.0, gt=0, le=60)

    # Staff sessions end after this many minutes without a request (and 12 hours after sign-in).
    admin_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    # Sensitive staff actions (roles, passwords, two-factor resets, API keys, webhooks) need a
    # password or code given within this many minutes (app/admin/sudo.py); a sign-in counts.
    sudo_minutes: int = Field(default=15, ge=1, le=12 * 60)
    # Staff CSV exports streaming at once in each process; one more answers 503 at once. Each
    # holds a pooled database connection for as long as its download lasts: below the pool's
    # 5 lasting connections (PostgreSQL, app.db), pages keep theirs while exports run.
    max_concurrent_exports: int = Field(default=3, ge=1, le=50)
    # Argon2id's cost per password check (RFC 9106's low-memory profile by default: 3 passes
    # over 64 MiB). Raising either rehashes each password at its owner's next sign-in.
    password_hash_time_cost: int = Field(default=3, ge=1, le=20)
    password_hash_memory_kib: int = Field(default=64 * 1024, ge=1024, le=4 * 1024 * 1024)

    pdf_workers: int = Field(default=2, ge=1, le=32)
    pdf_timeout_seconds: float = Field(default=30.0, gt=0)

    # Operations: /readyz answers within this many seconds; "json" logs one object per line
    # with the request id; bodies above max_request_bytes get a 413 before they are read.
    readiness_timeout_seconds: float = Field(default=2.0, gt=0, le=30)
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # FastAPI's native OpenTelemetry (traces, metrics and logs through the global providers).
    # Off unless asked for: our metrics are Prometheus's (/metrics), and FastAPI asks for the
    # providers on every request, 4% of the cost of a tracking-page view.
    opentelemetry: bool = False
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Scan events older than this are rolled up into daily counts and deleted.
    scan_retention_days: int = Field(default=400, ge=1, le=36500)
    # Sent mails (outbox rows, and the .eml files written without SMTP) go this long after.
    mail_retention_days: int = Field(default=7, ge=1, le=3650)
    # `serve` derives rollups, scan.created events and first-scan alerts from committed scans
    # in each process (one process does each round) unless this is false; keep it on in one.
    scan_feed: bool = True
    # Webhooks: `serve` runs a delivery worker in each process unless this is false
    # (then run `offertrack worker` on its own).
    webhook_worker: bool = True
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    webhook_retry_base_seconds: float = Field(default=10.0, gt=0)
    webhook_retry_max_seconds: float = Field(default=3600.0, gt=0)
    webhook_max_failures: int = Field(default=20, ge=1)
    webhook_disable_after_seconds: float = Field(default=86400.0, gt=0)
    webhook_lease_seconds: float = Field(default=60.0, gt=0)
    webhook_poll_seconds: float = Field(default=1.0, gt=0)
    # Mail: `smtp://user:pass@host:587` (STARTTLS) or `smtps://user:pass@host:465` (TLS). Empty
    # (the default): mails are written as .eml files under {var_dir}/mail/ instead of sent.
    smtp_url: str = ""
    # The From of every mail; empty: the company's name and e-mail address.
    mail_from: str = ""
    mail_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    mail_retry_base_seconds: float = Field(default=30.0, gt=0)
    mail_retry_max_seconds: float = Field(default=3600.0, gt=0)
    mail_lease_seconds: float = Field(default=120.0, gt=0)
    # Staff alerts about offers that have no owner go here; empty: the company's e-mail.
    sales_email: str = ""
    # "Expiring soon" alerts go out this many days before an offer's validity ends.
    alert_expiring_days: int = Field(default=3, ge=1, le=60)

    # Webhooks never reach loopback, private, link-local and other internal addresses unless
    # their network is listed here, e.g. '["10.20.0.0/16"]' for a receiver on the LAN.
    webhook_allowed_networks: Annotated[list[IPvAnyNetwork], NoDecode] = []

    # TLS is terminated by a reverse proxy in front: cookies are Secure and HSTS is sent even
    # though the public base URL says http (production refuses http without this).
    behind_tls_proxy: bool = False
    # Admins must sign in with a second factor (TOTP); they enrol at their next sign-in, and
    # an admin session begun without one ends at its next request.
    require_admin_2fa: bool = False

    @field_validator("public_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        # Printed into every QR code: a comment left after it (systemd's EnvironmentFile keeps
        # one in the value) would be printed too, on paper that cannot be recalled.
        parts = urlsplit(value)
        if (
            parts.scheme not in ("http", "https")
            or not parts.netloc
            or "?" in value  # an empty query or fragment too: the codes would print it
            or "#" in value
            or any(character.isspace() for character in value)
        ):
            raise ValueError("an address like https://track.example.com, and nothing after it")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _psycopg_driver(cls, value: str) -> str:
        # A plain postgresql:// URL would pick psycopg2, which we do not ship; psycopg 3 it is.
        for prefix in ("postgresql://", "postgres://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value.removeprefix(prefix)
        if value and not value.startswith(("sqlite:", "sqlite+pysqlite:", "postgresql+psycopg:")):
            # Any other database (or driver) failed at the first connection, with a traceback.
            raise ValueError(
                "use sqlite:///path/offertrack.db or postgresql://user:password@host:5432/db"
            )
        return value

    @field_validator("trusted_proxies", "webhook_allowed_networks", mode="before")
    @classmethod
    def _json_list(cls, value: object) -> object:
        # Decoded here, not by pydantic-settings: its error for a value that is not JSON (a
        # bare address, the usual slip) was a traceback that named no variable, from
        # check-config and the unit's start alike.
        if not isinstance(value, str):
            return value
        if not value.strip():
            return []
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f'a JSON list such as ["10.0.0.0/8"], not {value!r}') from None

    @field_validator("smtp_url")
    @classmethod
    def _smtp_scheme(cls, value: str) -> str:
        if value and not value.startswith(("smtp://", "smtps://")):
            raise ValueError("use smtp://host:587 (STARTTLS) or smtps://host:465 (TLS)")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("accent_color")
    @classmethod
    def _hex_colour(cls, value: str) -> str:
        # It is written into CSS: only a hex colour can never break out of its declaration.
        if not re.fullmatch(r"#(?:[0-9a-fA-F]{3}){1,2}", value):
            raise ValueError("a colour like #0b5394")
        return value

    @field_validator("default_language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        if not i18n.is_supported(value):
            raise ValueError(f"one of {', '.join(i18n.LANGUAGES)}")
        return value

    @field_validator("default_currency")
    @classmethod
    def _currency_code(cls, value: str) -> str:
        if len(value) != 3 or not value.isalpha():
            raise ValueError("a currency is a three-letter ISO 4217 code")
        if not i18n.is_currency(value):  # every amount would be written "XYZ 10.00"
            raise ValueError(f"{value.upper()!r} is not an ISO 4217 currency code")
        return value.upper()

    @field_validator("mail_from")
    @classmethod
    def _sender_address(cls, value: str) -> str:
        # The From of every mail: one that is no address fails each mail at the server, or
        # goes out as "From: not", long after the start that took it.
        if value and not _is_address(parseaddr(value)[1]):
            raise ValueError(f"an address like Acme Sales <sales@acme.example>, not {value!r}")
        return value

    @model_validator(mode="after")
    def _fill_defaults(self) -> "Settings":
        if not self.database_url:
            self.database_url = f"sqlite:///{self.var_dir / 'offertrack.db'}"
        return self

    @property
    def legal_lines(self) -> list[str]:
        return [line.strip() for line in self.company_legal_lines.split("\n") if line.strip()]

    @property
    def logo_file(self) -> Path | None:
        """OFFERTRACK_COMPANY_LOGO as a file inside static/, or None: the PDF, the pages and the
        mails show a logo only from there (a path that climbs out is left out, not read)."""
        if self.company_logo is None:
            return None
        static = STATIC_DIR.resolve()
        path = (static / self.company_logo).resolve()
        return path if path.is_relative_to(static) and path.is_file() else None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def scan_spool_dir(self) -> Path:
        return self.spool_dir or self.var_dir / "spool"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def uses_tls(self) -> bool:
        """Browsers reach us over https: cookies are Secure and HSTS is sent."""
        return self.public_base_url.startswith("https://") or self.behind_tls_proxy

    def for_display(self) -> dict[str, object]:
        """The settings as the admin's settings page lists them: without the secret key, and
        every URL's password hidden (the mail server's and Redis's as much as the database's)."""
        shown = self.model_dump(exclude={"secret_key"})
        for name, value in shown.items():
            if name.endswith("_url") and isinstance(value, str):
                shown[name] = without_password(value)
        return shown

    def resolved_secret_key(self) -> str:
        """The signing key; generated once per development checkout, required in production."""
        if self.secret_key and self.secret_key != DEFAULT_SECRET:
            return self.secret_key
        if self.env == "production":
            raise ConfigError(
                "OFFERTRACK_SECRET_KEY is missing or still the default. In production set it "
                "to a long random value, e.g. the output of "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`."
            )
        return _development_key(self.var_dir)


def _is_address(address: str) -> bool:
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(address, check_deliverability=False, test_environment=True)
    except EmailNotValidError:
        return False
    return True


def without_password(url: str) -> str:
    """``url`` as it may be shown: its password, in the address or the query, as ***."""
    parts = urlsplit(url)
    # libpq and redis-py also take the password as a query parameter (?password=...).
    query = _PASSWORD_PARAMETER.sub(r"\1=***", parts.query)
    if parts.password is None:
        # Unchanged when there is nothing to hide: urlunsplit drops the empty host of a
        # SQLite URL (sqlite:///var/x.db came back as sqlite:/var/x.db).
        return url if query == parts.query else urlunsplit(parts._replace(query=query))
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + parts.netloc.rpartition("@")[2], query=query))


_PASSWORD_PARAMETER = re.compile(r"(?<![^&])((?:ssl)?password)=[^&]*", re.IGNORECASE)


@lru_cache  # read once per process: every staff request derives its session key from it
def _development_key(var_dir: Path) -> str:
    path = var_dir / "secret_key"
    try:
        make_private_dir(var_dir)
        # Several workers may start at once: one generates the key, the others read it.
        with _exclusive_lock(var_dir / ".secret_key.lock"):
            key = _read_key(path)
            if key is None:
                key = secrets.token_urlsafe(48)
                write_atomically(path, key.encode())
    except OSError as exc:
        raise ConfigError(
            f"Could not write the development secret key to {path} ({exc.strerror or exc}). "
            "Free some disk space, or set OFFERTRACK_SECRET_KEY."
        ) from exc
    return key


def _read_key(path: Path) -> str | None:
    """The key in ``path``; None when there is none yet, or only an empty file (left behind
    by an older version on a full disk: it never signed anything, so a new key replaces it)."""
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


@contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def configuration_problems(settings: Settings) -> list[str]:
    """What keeps this configuration from running safely, each with what to change; empty when
    it is fine. Production is held to more than development (``check_configuration``)."""
    if settings.env != "production":
        return []
    problems = []
    key = settings.secret_key
    if not key or key == DEFAULT_SECRET:
        problems.append(
            "OFFERTRACK_SECRET_KEY is missing or still the default. In production set it to a "
            "long random value, e.g. the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`."
        )
    elif len(key.encode()) < MIN_SECRET_BYTES:
        problems.append(
            f"OFFERTRACK_SECRET_KEY is {len(key.encode())} bytes long; production needs at "
            f"least {MIN_SECRET_BYTES} (`python -c 'import secrets; "
            "print(secrets.token_urlsafe(48))'`)."
        )
    if not settings.public_base_url.startswith("https://") and not settings.behind_tls_proxy:
        problems.append(
            f"OFFERTRACK_PUBLIC_BASE_URL is {settings.public_base_url!r}: production serves "
            "customers over https. Set an https:// address, or, when a proxy in front "
            "terminates TLS, OFFERTRACK_BEHIND_TLS_PROXY=true."
        )
    return problems


def check_configuration(settings: Settings) -> None:
    """Raise ConfigError naming every problem of ``configuration_problems``."""
    problems = configuration_problems(settings)
    if problems:
        raise ConfigError("\n".join(problems))


@lru_cache
def get_settings() -> Settings:
    return Settings()


async def settings_dependency() -> Settings:
    # async: FastAPI would run a plain function in the thread pool, a hop on every request.
    return get_settings()


SettingsDep = Annotated[Settings, Depends(settings_dependency)]
