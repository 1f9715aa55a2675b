"""``offertrack check-config``: what is wrong with this installation's settings, said before a
start rather than found in a log afterwards."""

import ipaddress
import tempfile
from collections.abc import Callable
from urllib.parse import urlsplit

from pydantic import ValidationError

from app.config import STATIC_DIR, ConfigError, Settings, configuration_problems, without_password
from app.files import make_private_dir

Check = Callable[[Settings], str | None]


def settings_errors(error: ValidationError) -> list[str]:
    """Pydantic's errors as the environment variables a person sets."""
    problems = []
    for item in error.errors():
        name = "OFFERTRACK_" + "_".join(str(part) for part in item["loc"][:1]).upper()
        problems.append(f"{name}: {item['msg']}")
    return problems


def problems(settings: Settings, *, unparsed: frozenset[str] = frozenset()) -> list[str]:
    """Every check's complaint; empty when the settings look right. The production rules
    (secret key length, https) are config's own, the ones the server refuses to start on.
    A check that reads a setting in ``unparsed`` (already reported) is left out."""
    rules = [] if "env" in unparsed else configuration_problems(settings)
    found = [
        check(settings)
        for check, reads in CHECKS
        if not reads & unparsed  # it would check the default, not what was set
    ]
    said = tuple(f"OFFERTRACK_{name.upper()}" for name in unparsed)
    return [rule for rule in rules if not rule.startswith(said)] + [p for p in found if p]


def all_problems() -> list[str]:
    """Every problem of the environment's settings: values that do not parse, and what the
    other checks find with those at their defaults, so that one run names them all."""
    try:
        return problems(Settings())
    except ValidationError as exc:
        unparsed = frozenset(str(item["loc"][0]) for item in exc.errors() if item["loc"])
        reported = settings_errors(exc)
    try:
        defaults = {
            name: Settings.model_fields[name].get_default(call_default_factory=True)
            for name in unparsed
        }
        settings = Settings(**defaults)
    except (ValidationError, KeyError):  # a rule across settings: the parse errors alone
        return reported
    return reported + problems(settings, unparsed=unparsed)


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
        make_private_dir(settings.var_dir)
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
        shown = without_password(settings.redis_url)
        return f"OFFERTRACK_REDIS_URL: Redis does not answer at {shown} ({exc})"
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


def _logo(settings: Settings) -> str | None:
    # Left out of the PDF, the pages and the mails when missing (a wheel update removes what
    # was copied into static/): said here rather than found on a customer's offer.
    if settings.company_logo is None or settings.logo_file is not None:
        return None
    return f"OFFERTRACK_COMPANY_LOGO: {_not_in_static(str(settings.company_logo))}"


def _favicon(settings: Settings) -> str | None:
    static = STATIC_DIR.resolve()
    path = (static / settings.company_favicon).resolve()
    if path.is_relative_to(static) and path.is_file():
        return None
    return f"OFFERTRACK_COMPANY_FAVICON: {_not_in_static(settings.company_favicon)}"


def _not_in_static(name: str) -> str:
    return (
        f"no file {name} in {STATIC_DIR.resolve()} (a file name inside static/; copy it "
        "there again after every update)"
    )


# Each check with the settings it reads.
CHECKS: tuple[tuple[Check, frozenset[str]], ...] = (
    (_secret_key, frozenset({"env", "secret_key", "var_dir"})),
    (_var_dir, frozenset({"var_dir"})),
    (_database, frozenset({"database_url", "var_dir"})),
    (_redis, frozenset({"redis_url"})),
    (_smtp_url, frozenset({"smtp_url"})),
    (_trusted_proxies, frozenset({"trusted_proxies"})),
    (_logo, frozenset({"company_logo"})),
    (_favicon, frozenset({"company_favicon"})),
)
