"""``offertrack check-config``: what is wrong with this installation's settings, said before a
start rather than found in a log afterwards."""

import ipaddress
import tempfile
from collections.abc import Callable
from urllib.parse import urlsplit

from pydantic import ValidationError

from app.config import ConfigError, Settings, configuration_problems

Check = Callable[[Settings], str | None]


def settings_errors(error: ValidationError) -> list[str]:
    """Pydantic's errors as the environment variables a person sets."""
    problems = []
    for item in error.errors():
        name = "OFFERTRACK_" + "_".join(str(part) for part in item["loc"][:1]).upper()
        problems.append(f"{name}: {item['msg']}")
    return problems


def problems(settings: Settings) -> list[str]:
    """Every check's complaint; empty when the settings look right. The production rules
    (secret key length, https) are config's own, the ones the server refuses to start on."""
    found = [check(settings) for check in CHECKS]
    return configuration_problems(settings) + [problem for problem in found if problem]


def _secret_key(settings: Settings) -> str | None:
    if settings.env == "production":
        return None  # configuration_problems says what is wrong with it
    try:
        settings.resolved_secret_key()
    except ConfigError as exc:
        return str(exc)
    return None


def _var_dir(settings: Settings) -> str | None:
    try:
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=settings.var_dir):
            pass
    except OSError as exc:
        return f"OFFERTRACK_VAR_DIR: {settings.var_dir} is not writable ({exc.strerror or exc})"
    return None


def _database(settings: Settings) -> str | None:
    from app.health import ReadinessCheck

    check = ReadinessCheck(settings)
    try:
        result = check.probe()
    finally:
        check.close()
    return None if result.ready else f"OFFERTRACK_DATABASE_URL: {result.detail}"


def _redis(settings: Settings) -> str | None:
    if not settings.redis_url:
        return None
    import redis

    try:
        redis.Redis.from_url(settings.redis_url, socket_connect_timeout=3, socket_timeout=3).ping()
    except (redis.RedisError, ValueError) as exc:
        return f"OFFERTRACK_REDIS_URL: Redis does not answer at {_safe(settings.redis_url)} ({exc})"
    return None


def _smtp_url(settings: Settings) -> str | None:
    # Read by name: the mail settings may not exist in every build of this module's callers.
    url = str(getattr(settings, "smtp_url", "") or "")
    if not url:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"OFFERTRACK_SMTP_URL: not a URL ({exc})"
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        return "OFFERTRACK_SMTP_URL: use smtp://user:password@host:587 or smtps://host:465"
    if port is None:
        return f"OFFERTRACK_SMTP_URL: name the port ({parts.scheme}://{parts.hostname}:PORT)"
    return None


def _trusted_proxies(settings: Settings) -> str | None:
    for entry in settings.trusted_proxies:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            return f"OFFERTRACK_TRUSTED_PROXIES: {entry!r} is not an address or network"
    return None


def _safe(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


CHECKS: tuple[Check, ...] = (_secret_key, _var_dir, _database, _redis, _smtp_url, _trusted_proxies)
